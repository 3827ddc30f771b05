// Test-only: a hand-written service standing in for generated code (echo,
// add, fail, slow, context, crash), with a hand-built FileDescriptorProto so
// JSON works, and a raw HTTP/1.1 socket helper for requests the HttpClient
// would never send. Used by the transport's unit tests only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "dispatch/core/error.h"
#include "dispatch/core/service.h"

namespace dispatch::testing {

namespace pb = google::protobuf;

// Reads varint fields 1..n of a message (the only kind these tests use).
inline std::map<int, uint64_t> read_varints(std::string_view bytes) {
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  std::map<int, uint64_t> out;
  while (uint32_t tag = in.ReadTag()) {
    if ((tag & 7) != 0) {
      if (!pb::internal::WireFormatLite::SkipField(&in, tag)) throw Error(Code::invalid_argument, "bad bytes");
      continue;
    }
    uint64_t v = 0;
    if (!in.ReadVarint64(&v)) throw Error(Code::invalid_argument, "truncated varint");
    out[static_cast<int>(tag >> 3)] = v;
  }
  if (!in.ConsumedEntireMessage()) throw Error(Code::invalid_argument, "malformed request");
  return out;
}

inline std::string varint_field(int field, uint64_t value) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.WriteTag(static_cast<uint32_t>(field) << 3);
    coded.WriteVarint64(value);
  }
  return out;
}

inline std::string string_field(int field, std::string_view value) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.WriteTag((static_cast<uint32_t>(field) << 3) | 2);
    coded.WriteVarint32(static_cast<uint32_t>(value.size()));
    coded.WriteRaw(value.data(), static_cast<int>(value.size()));
  }
  return out;
}

inline Result<std::string> echo(const MethodCall& call) { return std::string(call.request); }
inline Result<std::string> add(const MethodCall& call) {
  auto f = read_varints(call.request);
  return varint_field(1, static_cast<uint64_t>(static_cast<int64_t>(f[1]) + static_cast<int64_t>(f[2])));
}
inline Result<std::string> fail(const MethodCall&) {
  throw Error(Code::not_found, "order \"42\" <not> found", {{"google.protobuf.StringValue", std::string("\x0a\x02id", 4)}});
}
inline Result<std::string> slow(const MethodCall& call) {
  std::this_thread::sleep_for(std::chrono::milliseconds(read_varints(call.request)[1]));
  return std::string();
}
inline Result<std::string> context(const MethodCall&) {
  const CallContext& c = this_call();
  return string_field(1, "attempt=" + std::to_string(c.attempt) + (c.deadline ? " deadline" : ""));
}
inline Result<std::string> crash(const MethodCall&) { throw std::runtime_error("boom"); }

// A function that blocks until the test opens the gate: proves that calls
// run off the I/O threads and that a drain waits for them, without timing.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  bool open = false;
  void reset() { std::lock_guard l(mu); entered = 0; open = false; }
  void release() { std::lock_guard l(mu); open = true; cv.notify_all(); }
  void wait_entered(int n) { std::unique_lock l(mu); cv.wait(l, [&] { return entered >= n; }); }
  bool wait_entered(int n, std::chrono::milliseconds timeout) {
    std::unique_lock l(mu);
    return cv.wait_for(l, timeout, [&] { return entered >= n; });
  }
};
inline Gate& gate() { static Gate g; return g; }
inline Result<std::string> gated(const MethodCall&) {
  Gate& g = gate();
  std::unique_lock l(g.mu);
  ++g.entered;
  g.cv.notify_all();
  g.cv.wait(l, [&] { return g.open; });
  return string_field(1, "opened");
}

inline std::string descriptor() {
  pb::FileDescriptorProto file;
  file.set_name("t/api.proto");
  file.set_package("t");
  file.set_syntax("proto3");
  auto message = [&](const char* name) { auto* m = file.add_message_type(); m->set_name(name); return m; };
  auto field = [](pb::DescriptorProto* m, const char* name, int number, pb::FieldDescriptorProto::Type type) {
    auto* f = m->add_field();
    f->set_name(name);
    f->set_number(number);
    f->set_type(type);
    f->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
  };
  field(message("EchoRequest"), "text", 1, pb::FieldDescriptorProto::TYPE_STRING);
  field(message("EchoResponse"), "text", 1, pb::FieldDescriptorProto::TYPE_STRING);
  auto* add_req = message("AddRequest");
  field(add_req, "a", 1, pb::FieldDescriptorProto::TYPE_INT64);
  field(add_req, "b", 2, pb::FieldDescriptorProto::TYPE_INT64);
  field(message("AddResponse"), "result", 1, pb::FieldDescriptorProto::TYPE_INT64);
  message("Empty");
  field(message("SlowRequest"), "ms", 1, pb::FieldDescriptorProto::TYPE_INT32);
  field(message("ContextResponse"), "text", 1, pb::FieldDescriptorProto::TYPE_STRING);
  // The service, for what reads its methods' options: echo is free of side
  // effects (Connect's GET may call it).
  auto* service = file.add_service();
  service->set_name("TService");
  auto method = [&](const char* name, const char* in, const char* out) {
    auto* m = service->add_method();
    m->set_name(name);
    m->set_input_type(std::string(".t.") + in);
    m->set_output_type(std::string(".t.") + out);
    return m;
  };
  method("echo", "EchoRequest", "EchoResponse")->mutable_options()->set_idempotency_level(
      pb::MethodOptions::NO_SIDE_EFFECTS);
  method("add", "AddRequest", "AddResponse");
  method("fail", "Empty", "Empty");
  return file.SerializeAsString();
}

inline const Service& test_service() {
  static const std::string fd = descriptor();
  static const Method methods[] = {
      {"echo", "/t.TService/echo", "t.EchoRequest", "t.EchoResponse", &echo},
      {"add", "/t.TService/add", "t.AddRequest", "t.AddResponse", &add},
      {"fail", "/t.TService/fail", "t.Empty", "t.Empty", &fail},
      {"slow", "/t.TService/slow", "t.SlowRequest", "t.Empty", &slow},
      {"context", "/t.TService/context", "t.Empty", "t.ContextResponse", &context},
      {"crash", "/t.TService/crash", "t.Empty", "t.Empty", &crash},
      {"gate", "/t.TService/gate", "t.Empty", "t.EchoResponse", &gated},
      // The gate as a function that waits (Method::waits): its calls run on
      // the server's pool for waiting calls.
      {"wait", "/t.TService/wait", "t.Empty", "t.EchoResponse", &gated, nullptr, nullptr, /*waits=*/true},
  };
  static const Service service{"t", "TService", methods, std::size(methods), fd};
  return service;
}

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A plain blocking socket speaking just enough HTTP/1.1 for tests.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot connect to test server");
    }
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Reads one response (Content-Length framed); status 0 when the server
  // closed the connection first.
  RawResponse read() {
    RawResponse r;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return r;
    }
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    r.status = std::stoi(head.substr(9, 3));
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
      const std::size_t next = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = next;
    }
    const std::size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    while (buf_.size() < length) {
      if (!fill()) break;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  // True when the server has closed the connection (reads EOF).
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  bool fill() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  int fd_;
  std::string buf_;
};

inline std::string post(std::string_view path, std::string_view content_type, std::string_view body,
                        std::string_view extra_headers = "") {
  return "POST " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + std::string(content_type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra_headers) + "\r\n" +
         std::string(body);
}

}  // namespace dispatch::testing
