// Test-only: a blocking POSIX socket that speaks just enough HTTP/1.1 to send
// requests no well-behaved client would (truncated, oversized, byte by byte,
// dropped mid-way) and to read whatever comes back, with a receive timeout
// so a server that stops answering fails the test instead of hanging it.
// Also a strict service (a decoder built on dispatch/wire/wire_io.h, as generated
// code is) so invalid protobuf reaches real decoding code.
//
// Not for: anything outside tests/badinput and tests/soak.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <google/protobuf/descriptor.pb.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "dispatch/core/error.h"
#include "dispatch/core/service.h"
#include "dispatch/wire/wire_io.h"

namespace dispatch::badinput {

struct Answer {
  // 0 when the server closed (or reset) the connection without answering.
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool reset = false;  // the connection ended with ECONNRESET

  // The Connect error code in a JSON error body ("" when there is none).
  std::string code() const {
    static const std::regex re("\"code\"\\s*:\\s*\"([a-z_]+)\"");
    std::smatch m;
    return std::regex_search(body, m, re) ? m[1].str() : std::string();
  }
};

class RawSocket {
 public:
  explicit RawSocket(uint16_t port, std::chrono::milliseconds receive_timeout = std::chrono::seconds(10)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(receive_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((receive_timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::runtime_error(std::string("connect to 127.0.0.1: ") + std::strerror(e));
    }
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // False when the server has closed or reset the connection.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // No more bytes from us (the peer sees end of stream).
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Closes with a TCP reset instead of an orderly FIN: the harshest way a
  // client can vanish.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }

  // One response (Content-Length framed). Throws when the receive timeout
  // passes with neither an answer nor a close.
  Answer read() {
    Answer a;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(a)) return a;
    }
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) {
      throw std::runtime_error("not an HTTP response: " + head.substr(0, 80));
    }
    a.status = std::stoi(head.substr(9, 3));
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
      const std::size_t next = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      a.headers[name] = value;
      pos = next;
    }
    const std::size_t length = a.headers.count("content-length") ? std::stoul(a.headers["content-length"]) : 0;
    while (buf_.size() < length) {
      if (!fill(a)) break;
    }
    a.body = buf_.substr(0, length);
    buf_.erase(0, std::min(length, buf_.size()));
    return a;
  }

  // Waits (up to the receive timeout) for the server to end the connection;
  // true when it did, false when bytes arrived instead.
  bool wait_closed() {
    char c;
    for (;;) {
      const ssize_t n = ::recv(fd_, &c, 1, 0);
      if (n == 0) return true;
      if (n < 0 && errno == ECONNRESET) return true;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        throw std::runtime_error("the server kept the connection open past the receive timeout");
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
  }

 private:
  bool fill(Answer& a) {
    char chunk[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buf_.append(chunk, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) {
        a.reset = true;
        return false;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        throw std::runtime_error("no answer from the server within the receive timeout");
      }
      throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
    }
  }
  int fd_ = -1;
  std::string buf_;
};

inline std::string request(std::string_view method, std::string_view path, std::string_view content_type,
                           std::string_view body, std::string_view extra_headers = "") {
  std::string r = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!content_type.empty()) r += "Content-Type: " + std::string(content_type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra_headers) + "\r\n";
  return r + std::string(body);
}

// ---- a strict service: message Strict { int32 n = 1; string s = 2; Strict child = 3; } ----
// check() answers StrictReply { int32 depth = 1; } with the nesting depth it read.

namespace strict {

inline void read_strict(wire::Stream& in, int depth, int* max_depth) {
  constexpr const char* kName = "bad.Strict";
  if (depth > *max_depth) *max_depth = depth;
  while (std::uint32_t tag = wire::next_tag(in, kName)) {
    switch (tag >> 3) {
      case 1:
        wire::expect(tag, wire::kVarint, kName, "n");
        (void)wire::read_int<std::int32_t>(in, kName, "n", "int32");
        break;
      case 2: {
        wire::expect(tag, wire::kLen, kName, "s");
        std::string s;
        wire::read_string(in, &s, kName, "s");
        break;
      }
      case 3: {
        wire::expect(tag, wire::kLen, kName, "child");
        auto limit = wire::enter(in, kName, "child");
        read_strict(in, depth + 1, max_depth);
        wire::leave(in, limit);
        break;
      }
      default:
        wire::skip(in, tag, kName);
    }
  }
}

inline Result<std::string> check(const MethodCall& call) {
  int depth = 0;
  wire::decode_buffer(call.request, "bad.Strict", [&](wire::Stream& in) { read_strict(in, 0, &depth); });
  std::string response;
  if (depth != 0) {
    response.push_back(0x08);
    response.push_back(static_cast<char>(depth));  // depth <= kRecursionLimit < 128
  }
  return response;
}

inline std::string descriptor() {
  namespace pb = google::protobuf;
  pb::FileDescriptorProto file;
  file.set_name("bad/strict.proto");
  file.set_package("bad");
  file.set_syntax("proto3");
  auto add_field = [](pb::DescriptorProto* m, const char* name, int number, pb::FieldDescriptorProto::Type type,
                      const char* type_name = nullptr) {
    auto* f = m->add_field();
    f->set_name(name);
    f->set_number(number);
    f->set_type(type);
    f->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
    if (type_name) f->set_type_name(type_name);
  };
  auto* s = file.add_message_type();
  s->set_name("Strict");
  add_field(s, "n", 1, pb::FieldDescriptorProto::TYPE_INT32);
  add_field(s, "s", 2, pb::FieldDescriptorProto::TYPE_STRING);
  add_field(s, "child", 3, pb::FieldDescriptorProto::TYPE_MESSAGE, ".bad.Strict");
  auto* r = file.add_message_type();
  r->set_name("StrictReply");
  add_field(r, "depth", 1, pb::FieldDescriptorProto::TYPE_INT32);
  return file.SerializeAsString();
}

inline const Service& service() {
  static const std::string fd = descriptor();
  static const Method methods[] = {{"check", "/bad.Strict/check", "bad.Strict", "bad.StrictReply", &check}};
  static const Service s{"bad", "Strict", methods, 1, fd};
  return s;
}

// n nested Strict messages, innermost first.
inline std::string nested(int n) {
  std::string m;
  for (int i = 0; i < n; ++i) {
    std::string outer;
    outer.push_back(0x1a);
    std::size_t len = m.size();
    do {
      unsigned char b = len & 0x7f;
      len >>= 7;
      outer.push_back(static_cast<char>(len ? b | 0x80 : b));
    } while (len);
    m = outer + m;
  }
  return m;
}

}  // namespace strict
}  // namespace dispatch::badinput
