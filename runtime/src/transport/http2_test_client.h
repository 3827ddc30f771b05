// A small blocking HTTP/2 client for the server's tests, on nghttp2's client
// session over a plain socket: requests with any headers and body, the
// answers' headers, data and trailers as they arrived, RST_STREAM and
// GOAWAY codes, and raw bytes for frames no good client sends.
//
// Not for: anything but tests (no TLS, no flow control tuning, one thread).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dispatch::transport::testing {

class Http2TestClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  struct Stream {
    Headers headers;   // the response's first header block
    Headers trailers;  // a second block, if any
    std::string data;
    bool closed = false;
    uint32_t reset_code = 0;  // RST_STREAM's error code (0: ended normally)
    bool reset = false;
  };

  explicit Http2TestClient(uint16_t port, bool send_preface = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &on_header);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &on_begin_headers);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &on_frame);
    nghttp2_session_client_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    if (send_preface) {
      nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
      flush();
    }
  }
  ~Http2TestClient() {
    nghttp2_session_del(session_);
    ::close(fd_);
  }
  bool connected() const { return connected_; }

  // A request; `body` is sent as DATA, ending the stream when `end`. A
  // ":method" in `extra` replaces POST.
  int32_t request(const std::string& path, Headers extra, std::string body, bool end = true) {
    Headers h{{":method", "POST"}, {":scheme", "http"}, {":authority", "127.0.0.1"}, {":path", path}};
    for (auto& e : extra) {
      if (e.first == ":method") {
        h[0].second = std::move(e.second);
      } else {
        h.push_back(std::move(e));
      }
    }
    std::vector<nghttp2_nv> nv;
    for (auto& [n, v] : h) {
      nv.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    auto body_ptr = std::make_unique<Body>(Body{std::move(body), 0, end});
    nghttp2_data_provider provider{};
    provider.source.ptr = body_ptr.get();
    provider.read_callback = &read_body;
    const int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, nullptr);
    bodies_.push_back(std::move(body_ptr));
    streams_[id];
    flush();
    return id;
  }

  // Sends bytes as they are (frames built by hand).
  void send_raw(const std::string& bytes) { write_all(bytes); }

  // Reads and answers until `done()` or the timeout; false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (eof_) return done();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      nghttp2_session_mem_recv(session_, reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n));
      flush();
    }
    return true;
  }
  bool wait_closed(int32_t id) {
    return run_until([&] { return streams_[id].closed; });
  }
  // True once the server closed the connection (reads end).
  bool wait_eof(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return run_until([&] { return eof_; }, timeout) || eof_;
  }

  Stream& stream(int32_t id) { return streams_[id]; }
  bool got_goaway() const { return goaway_; }
  uint32_t goaway_code() const { return goaway_code_; }

  static std::string find(const Headers& h, const std::string& name) {
    for (const auto& [n, v] : h) {
      if (n == name) return v;
    }
    return {};
  }
  // The header or trailer `name` of a finished stream (trailers-only
  // answers carry grpc-status in the headers).
  std::string status_field(int32_t id, const std::string& name) {
    std::string v = find(streams_[id].trailers, name);
    return v.empty() ? find(streams_[id].headers, name) : v;
  }

 private:
  struct Body {
    std::string data;
    std::size_t offset;
    bool end;
  };
  static Http2TestClient& self(void* user) { return *static_cast<Http2TestClient*>(user); }
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    auto* b = static_cast<Body*>(source->ptr);
    const std::size_t n = std::min(length, b->data.size() - b->offset);
    std::memcpy(buf, b->data.data() + b->offset, n);
    b->offset += n;
    if (b->offset == b->data.size()) {
      if (!b->end) return n == 0 ? static_cast<ssize_t>(NGHTTP2_ERR_DEFERRED) : static_cast<ssize_t>(n);
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  }
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& s = self(user).streams_[frame->hd.stream_id];
    s.in_trailers = !s.headers.empty();
    return 0;
  }
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto& s = self(user).streams_[frame->hd.stream_id];
    auto& list = s.in_trailers ? s.trailers : s.headers;
    list.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                      std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
    self(user).streams_[id].data.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* user) {
    auto& s = self(user).streams_[id];
    s.closed = true;
    s.reset_code = code;
    return 0;
  }
  static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_RST_STREAM) self(user).streams_[frame->hd.stream_id].reset = true;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self(user).goaway_ = true;
      self(user).goaway_code_ = frame->goaway.error_code;
    }
    return 0;
  }
  void flush() {
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) return;
      write_all(std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
    }
  }
  void write_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  struct StreamState : Stream {
    bool in_trailers = false;
  };
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  bool goaway_ = false;
  uint32_t goaway_code_ = 0;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, StreamState> streams_;
  std::vector<std::unique_ptr<Body>> bodies_;
};

// An HTTP/2 frame header and payload, for frames built by hand.
inline std::string http2_frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  const auto n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>((stream >> 24) & 0x7f));
  f.push_back(static_cast<char>(stream >> 16));
  f.push_back(static_cast<char>(stream >> 8));
  f.push_back(static_cast<char>(stream));
  return f + payload;
}

}  // namespace dispatch::transport::testing
