// GrpcClient: gRPC calls over nghttp2 client sessions on plain blocking
// sockets, one stream at a time per pooled connection (see the header).
#include "dispatch/transport/grpc_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "dispatch/core/service.h"
#include "dispatch/security/signature.h"
#include "transport/grpc_framing.h"
#include "transport/http_text.h"

namespace dispatch {
namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

struct Target {
  std::string host;
  std::string port;
  std::string authority;
  bool tls = false;  // https://: TLS with ALPN "h2"
};

std::string openssl_error(std::string_view what) {
  std::string out(what);
  const unsigned long e = ERR_get_error();
  if (e != 0) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    out += ": ";
    out += text;
  }
  ERR_clear_error();
  return out;
}

using TlsContext = std::shared_ptr<SSL_CTX>;

// TLS 1.2 or later (RFC 9113 9.2), the system's CAs plus `ca_file`.
Result<TlsContext> make_tls_context(const GrpcClientOptions& o) {
  TlsContext ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return Error(Code::internal, openssl_error("gRPC client: SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (o.verify_tls) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_default_verify_paths(ctx.get());
    if (!o.ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr) != 1) {
      return Error(Code::invalid_argument,
                   openssl_error("gRPC client: cannot load the CA certificates in '" + o.ca_file + "'"));
    }
  }
  // ALPN: "h2" only; a server that does not select it is refused.
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn);
  return ctx;
}

Result<Target> parse_target(std::string_view text) {
  auto bad = [&](const char* why) {
    return Error(Code::invalid_argument, "gRPC target '" + std::string(text.substr(0, 200)) + "' " + why +
                                             "; expected host:port, http://host:port or https://host:port");
  };
  std::string_view rest = text;
  bool tls = false;
  if (rest.rfind("http://", 0) == 0) rest.remove_prefix(7);
  else if (rest.rfind("https://", 0) == 0) {
    rest.remove_prefix(8);
    tls = true;
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return bad("has a path");
  Target t;
  t.tls = tls;
  t.authority = std::string(rest);
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad("has an unterminated or portless [IPv6] host");
    }
    t.host = std::string(rest.substr(1, close - 1));
    t.port = std::string(rest.substr(close + 2));
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    t.host = std::string(rest.substr(0, colon));
    t.port = std::string(rest.substr(colon + 1));
  }
  if (t.host.empty()) return bad("has no host");
  if (t.port.empty() || t.port.size() > 5 || t.port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(t.port) > 65535) {
    return bad("has no valid port");
  }
  return t;
}

// One HTTP/2 connection: a socket and a client session.
class Connection {
 public:
  ~Connection() {
    if (session_) nghttp2_session_del(session_);
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  // `tls`: the client's context when the target is https, else null.
  static Result<std::unique_ptr<Connection>> open(const Target& target, SSL_CTX* tls, bool verify,
                                                  Clock::time_point deadline) {
    const std::string where = target.authority;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(target.host.c_str(), target.port.c_str(), &hints, &found); rc != 0) {
      return Error(Code::unavailable, "cannot resolve " + where + ": " + gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, ::freeaddrinfo);
    std::string last = "no address";
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      auto c = std::unique_ptr<Connection>(new Connection());
      c->fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (c->fd_ < 0) continue;
      int one = 1;
      ::setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(c->fd_, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last = std::strerror(errno);
        continue;
      }
      pollfd p{c->fd_, POLLOUT, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0))) <= 0) {
        last = "timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = std::strerror(err);
        continue;
      }
      if (tls) {
        // A refused handshake is the answer for every address: no retry.
        if (auto shaken = c->handshake(target, tls, verify, deadline); !shaken.ok()) return shaken.error();
      }
      c->start();
      return c;
    }
    return Error(Code::unavailable, "cannot connect to " + where + ": " + last);
  }

  // TLS on the connected socket: SNI and host name verification for
  // `target.host`, ALPN "h2" required.
  Result<void> handshake(const Target& target, SSL_CTX* tls, bool verify, Clock::time_point deadline) {
    const std::string where = "TLS with " + target.authority;
    ssl_ = SSL_new(tls);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return Error(Code::internal, openssl_error(where + ": SSL_new"));
    in6_addr v6;
    in_addr v4;
    const bool literal = ::inet_pton(AF_INET, target.host.c_str(), &v4) == 1 ||
                         ::inet_pton(AF_INET6, target.host.c_str(), &v6) == 1;
    if (!literal) SSL_set_tlsext_host_name(ssl_, target.host.c_str());
    if (verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      const int set = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, target.host.c_str())
                              : X509_VERIFY_PARAM_set1_host(param, target.host.c_str(), 0);
      if (set != 1) return Error(Code::internal, openssl_error(where + ": setting the name to verify"));
    }
    for (;;) {
      const int rc = SSL_connect(ssl_);
      if (rc == 1) break;
      const int why = SSL_get_error(ssl_, rc);
      if (why != SSL_ERROR_WANT_READ && why != SSL_ERROR_WANT_WRITE) {
        const long verified = SSL_get_verify_result(ssl_);
        if (verify && verified != X509_V_OK) {
          ERR_clear_error();
          return Error(Code::unavailable,
                       where + ": the server's certificate is not trusted: " + X509_verify_cert_error_string(verified));
        }
        return Error(Code::unavailable, openssl_error(where + ": handshake failed"));
      }
      if (!wait(why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        return Error(Code::unavailable, where + ": the handshake timed out");
      }
    }
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &proto, &len);
    if (std::string_view(reinterpret_cast<const char*>(proto), len) != "h2") {
      return Error(Code::unavailable, where + ": the server did not select HTTP/2 (\"h2\") by ALPN");
    }
    return {};
  }

  struct Reply {
    Headers headers, trailers;
    std::string data;
    bool closed = false;
    uint32_t reset_code = 0;
  };

  // One call on this connection. `reusable` says whether it can serve
  // another afterwards.
  Result<Reply> exchange(const Headers& headers, const std::string& body, std::optional<Clock::time_point> deadline,
                         std::size_t max_bytes, bool& reusable) {
    reusable = false;
    reply_ = Reply{};
    max_bytes_ = max_bytes;
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : headers) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    body_ = &body;
    body_offset_ = 0;
    nghttp2_data_provider provider{};
    provider.read_callback = &read_body;
    stream_ = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, nullptr);
    if (stream_ < 0) return Error(Code::unavailable, std::string("HTTP/2: ") + nghttp2_strerror(stream_));
    while (!reply_.closed) {
      if (auto sent = flush(); !sent.ok()) return sent.error();
      int wait_ms = -1;
      if (deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
        if (left <= 0) {
          nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_, NGHTTP2_CANCEL);
          (void)flush();
          return Error(Code::deadline_exceeded, "deadline exceeded waiting for the gRPC reply");
        }
        wait_ms = static_cast<int>(left);
      }
      // Bytes TLS already decrypted are not on the socket any more.
      if (!ssl_ || SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        const int ready = ::poll(&p, 1, wait_ms);
        if (ready < 0 && errno != EINTR) return Error(Code::unavailable, std::string("poll: ") + std::strerror(errno));
        if (ready <= 0) continue;
      }
      char buf[16 * 1024];
      const ssize_t n = receive(buf, sizeof buf);
      if (n == 0) return Error(Code::unavailable, "the server closed the connection");
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return Error(Code::unavailable, std::string("reading the reply: ") + io_error_);
      }
      const ssize_t used = nghttp2_session_mem_recv(session_, reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n));
      if (used < 0) {
        return Error(Code::unavailable, std::string("HTTP/2 reply: ") + nghttp2_strerror(static_cast<int>(used)));
      }
      if (too_big_) {
        return Error(Code::resource_exhausted,
                     "the reply exceeds the client's limit of " + std::to_string(max_bytes_) + " bytes");
      }
    }
    (void)flush();
    reusable = !goaway_ && nghttp2_session_want_read(session_) && nghttp2_session_want_write(session_) >= 0;
    return std::move(reply_);
  }

  // A connection the server has closed while idle shows as readable.
  bool looks_alive() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) return true;
    char c;
    if (!ssl_) return ::recv(fd_, &c, 1, MSG_PEEK) > 0;  // bytes (a PING, SETTINGS): still alive
    // TLS: a record that is not whole yet, or one with frames, is alive; a
    // close_notify or a closed socket is not.
    const int n = SSL_peek(ssl_, &c, 1);
    if (n > 0) return true;
    const int why = SSL_get_error(ssl_, n);
    ERR_clear_error();
    return why == SSL_ERROR_WANT_READ;
  }

 private:
  Connection() = default;

  void start() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &on_header);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &on_begin_headers);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &on_frame);
    nghttp2_session_client_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                               {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 1 << 24);
  }

  Result<void> flush() {
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return Error(Code::unavailable, std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n)));
      if (n == 0) return {};
      std::size_t done = 0;
      while (done < static_cast<std::size_t>(n)) {
        short want = POLLOUT;
        const ssize_t w = transmit(data + done, static_cast<std::size_t>(n) - done, want);
        if (w > 0) {
          done += static_cast<std::size_t>(w);
          continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
          pollfd p{fd_, want, 0};
          ::poll(&p, 1, 1000);
          continue;
        }
        return Error(Code::unavailable, std::string("sending the request: ") + io_error_);
      }
    }
  }

  // Waits until the socket is ready for `events`; false at the deadline.
  bool wait(short events, Clock::time_point deadline) const {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left));
      if (ready > 0) return true;
      if (ready < 0 && errno != EINTR) return false;
    }
  }

  // The socket's or TLS's read and write: > 0 bytes; 0 the peer closed;
  // -1 with errno EAGAIN (try again once the socket is ready for `want`)
  // or an error described in io_error_.
  ssize_t receive(char* buf, std::size_t size) {
    if (!ssl_) {
      const ssize_t n = ::recv(fd_, buf, size, 0);
      if (n < 0) io_error_ = std::strerror(errno);
      return n;
    }
    const int n = SSL_read(ssl_, buf, static_cast<int>(size));
    if (n > 0) return n;
    return tls_failure(n, "TLS read");
  }
  ssize_t transmit(const uint8_t* data, std::size_t size, short& want) {
    if (!ssl_) {
      const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n < 0) io_error_ = std::strerror(errno);
      return n;
    }
    const int n = SSL_write(ssl_, data, static_cast<int>(size));
    if (n > 0) return n;
    if (SSL_get_error(ssl_, n) == SSL_ERROR_WANT_READ) want = POLLIN;
    return tls_failure(n, "TLS write");
  }
  ssize_t tls_failure(int rc, std::string_view what) {
    const int why = SSL_get_error(ssl_, rc);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) {
      errno = EAGAIN;
      return -1;
    }
    if (why == SSL_ERROR_ZERO_RETURN) return 0;  // close_notify
    io_error_ = openssl_error(what);
    if (why == SSL_ERROR_SYSCALL && errno == 0) return 0;  // closed without close_notify
    errno = EIO;
    return -1;
  }

  static Connection& self(void* user) { return *static_cast<Connection*>(user); }
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source*, void* user) {
    Connection& c = self(user);
    const std::size_t n = std::min(length, c.body_->size() - c.body_offset_);
    std::memcpy(buf, c.body_->data() + c.body_offset_, n);
    c.body_offset_ += n;
    if (c.body_offset_ == c.body_->size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Connection& c = self(user);
    if (frame->hd.stream_id == c.stream_) c.in_trailers_ = !c.reply_.headers.empty();
    return 0;
  }
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    Connection& c = self(user);
    if (frame->hd.stream_id != c.stream_) return 0;
    auto& list = c.in_trailers_ ? c.reply_.trailers : c.reply_.headers;
    list.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                      std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
    Connection& c = self(user);
    if (id != c.stream_) return 0;
    if (c.reply_.data.size() + len > c.max_bytes_ + 5) {
      c.too_big_ = true;
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    c.reply_.data.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* user) {
    Connection& c = self(user);
    if (id == c.stream_) {
      c.reply_.closed = true;
      c.reply_.reset_code = code;
    }
    return 0;
  }
  static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_GOAWAY) self(user).goaway_ = true;
    return 0;
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string io_error_;
  nghttp2_session* session_ = nullptr;
  int32_t stream_ = -1;
  Reply reply_;
  bool in_trailers_ = false;
  bool goaway_ = false;
  bool too_big_ = false;
  std::size_t max_bytes_ = 0;
  const std::string* body_ = nullptr;
  std::size_t body_offset_ = 0;
};

std::string find(const Headers& h, std::string_view name) {
  for (const auto& [n, v] : h) {
    if (n == name) return v;
  }
  return {};
}

}  // namespace

struct GrpcClient::Impl {
  Target target;
  GrpcClientOptions options;
  TlsContext tls;  // https targets only
  std::mutex mu;
  std::vector<std::unique_ptr<Connection>> idle;  // guarded by mu
  std::atomic<std::size_t> opened{0};
  std::unique_ptr<boost::asio::thread_pool> pool;  // made at the first call_async
  std::once_flag pool_once;

  Result<std::string> call(std::string_view path, std::string request, const CallOptions& call_options) {
    std::optional<Clock::time_point> deadline;
    const auto timeout = call_options.timeout ? call_options.timeout : options.default_timeout;
    const auto now = Clock::now();
    if (timeout) deadline = now + *timeout;
    Headers h{{":method", "POST"},
              {":scheme", target.tls ? "https" : "http"},
              {":path", std::string(path)},
              {":authority", target.authority},
              {"content-type", "application/grpc"},
              {"te", "trailers"},
              {"user-agent", "dispatch-cpp/0.1"},
              {"grpc-accept-encoding", std::string(grpc::kAcceptEncoding)}};
    if (timeout) h.emplace_back("grpc-timeout", grpc::format_timeout(*timeout));
    if (options.gzip_requests) h.emplace_back("grpc-encoding", "gzip");
    if (!options.api_key.empty()) h.emplace_back("authorization", "Bearer " + options.api_key);
    bool explicit_trace = false;
    for (const auto& [n, v] : call_options.headers) explicit_trace = explicit_trace || n == "traceparent";
    if (const CallContext& caller = this_call(); caller.trace.valid() && !explicit_trace) {
      h.emplace_back("traceparent", caller.trace.traceparent());
      if (!caller.trace.tracestate.empty()) h.emplace_back("tracestate", caller.trace.tracestate);
    }
    for (const auto& [n, v] : call_options.headers) h.emplace_back(n, v);
    const std::string body = options.gzip_requests ? grpc::frame_message(grpc::gzip_compress(request), true)
                                                   : grpc::frame_message(request);
    // Signed last, over the body as it goes out. HTTP/2 field names must
    // be lower case (RFC 9113 8.2.1); the signer names them as HTTP/1.1
    // writes them ("Content-Digest").
    if (options.signer) {
      for (auto& [n, v] : options.signer->sign("POST", path, target.authority, "application/grpc", body)) {
        h.emplace_back(transport::lowercase_ascii(std::move(n)), std::move(v));
      }
    }

    std::unique_ptr<Connection> conn;
    bool fresh = false;
    {
      std::lock_guard lock(mu);
      while (!idle.empty() && !conn) {
        conn = std::move(idle.back());
        idle.pop_back();
        if (!conn->looks_alive()) conn.reset();
      }
    }
    if (!conn) {
      auto opened_conn = Connection::open(target, tls.get(), options.verify_tls, now + options.connect_timeout);
      if (!opened_conn.ok()) return std::move(opened_conn).error();
      conn = std::move(*opened_conn);
      fresh = true;
      ++opened;
    }
    bool reusable = false;
    auto reply = conn->exchange(h, body, deadline, options.max_response_bytes, reusable);
    if (!reply.ok() && !fresh && reply.error().code() == Code::unavailable) {
      // A pooled connection the server closed as the request went out: once
      // more on a fresh one.
      auto again = Connection::open(target, tls.get(), options.verify_tls, Clock::now() + options.connect_timeout);
      if (!again.ok()) return std::move(again).error();
      conn = std::move(*again);
      ++opened;
      reply = conn->exchange(h, body, deadline, options.max_response_bytes, reusable);
    }
    if (!reply.ok()) return std::move(reply).error().with_context(target.authority + std::string(path));
    if (call_options.response_headers != nullptr) {
      auto& out = *call_options.response_headers;
      out.clear();
      for (const Headers* block : {&reply->headers, &reply->trailers}) {
        for (const auto& [name, value] : *block) {
          if (!name.empty() && name[0] != ':') out.emplace_back(name, value);
        }
      }
    }
    if (reusable) {
      std::lock_guard lock(mu);
      if (idle.size() < options.max_idle_connections) idle.push_back(std::move(conn));
    }
    return interpret(*reply, path);
  }

  Result<std::string> interpret(const Connection::Reply& reply, std::string_view path) const {
    const std::string where = target.authority + std::string(path);
    const std::string http_status = find(reply.headers, ":status");
    if (http_status != "200") {
      const int status = http_status.empty() ? 0 : std::atoi(http_status.c_str());
      return Error(code_from_http_status(status), where + ": HTTP status " + http_status + " (not a gRPC reply)");
    }
    // Trailers-only replies carry the status in the headers.
    const Headers& status_block = reply.trailers.empty() ? reply.headers : reply.trailers;
    const std::string status_text = find(status_block, "grpc-status");
    if (status_text.empty()) {
      if (reply.reset_code != 0) {
        return Error(Code::unavailable, where + ": the stream was reset (HTTP/2 error " +
                                            std::to_string(reply.reset_code) + ")");
      }
      return Error(Code::internal, where + ": the reply carries no grpc-status");
    }
    const int code = std::atoi(status_text.c_str());
    if (code != 0) {
      const auto details = grpc::decode_binary_header(find(status_block, "grpc-status-details-bin"));
      return grpc::error_from_status(code >= 0 && code <= 16 ? static_cast<Code>(code) : Code::unknown,
                                     grpc::percent_decode(find(status_block, "grpc-message")),
                                     details ? std::optional<std::string_view>(*details) : std::nullopt);
    }
    auto encoding = grpc::compression_from_header(find(reply.headers, "grpc-encoding"));
    if (!encoding.ok()) return Error(Code::internal, where + ": " + encoding.error().message());
    grpc::MessageReader reader(options.max_response_bytes);
    reader.append(reply.data);
    auto message = reader.next(*encoding);
    if (!message.ok()) return std::move(message).error().with_context(where);
    if (!*message) return Error(Code::internal, where + ": the reply carries no message");
    return std::move(**message);
  }
};

Result<std::unique_ptr<GrpcClient::Impl>> GrpcClient::prepare(std::string_view target, GrpcClientOptions options) {
  auto parsed = parse_target(target);
  if (!parsed.ok()) return std::move(parsed).error();
  auto impl = std::make_unique<Impl>();
  if (parsed->tls) {
    auto tls = make_tls_context(options);
    if (!tls.ok()) return std::move(tls).error();
    impl->tls = std::move(*tls);
  }
  impl->target = std::move(*parsed);
  impl->options = std::move(options);
  return impl;
}

GrpcClient::GrpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcClient::GrpcClient(std::string_view target, GrpcClientOptions options)
    : GrpcClient([&] {
        auto impl = prepare(target, std::move(options));
        if (!impl.ok()) throw impl.error();
        return std::move(*impl);
      }()) {}

Result<std::unique_ptr<GrpcClient>> GrpcClient::create(std::string_view target, GrpcClientOptions options) {
  auto impl = prepare(target, std::move(options));
  if (!impl.ok()) return std::move(impl).error();
  return std::unique_ptr<GrpcClient>(new GrpcClient(std::move(*impl)));
}

GrpcClient::~GrpcClient() {
  if (impl_->pool) impl_->pool->join();
}

Result<std::string> GrpcClient::call(std::string_view path, std::string request, const CallOptions& options) {
  return impl_->call(path, std::move(request), options);
}

void GrpcClient::call_async(std::string_view path, std::string request, const CallOptions& options, Callback done) {
  std::call_once(impl_->pool_once, [this] {
    impl_->pool = std::make_unique<boost::asio::thread_pool>(std::max<std::size_t>(1, impl_->options.async_threads));
  });
  // The caller's trace goes with the call to the pool thread.
  CallOptions with_trace = options;
  if (const CallContext& caller = this_call(); caller.trace.valid()) {
    bool explicit_trace = false;
    for (const auto& [n, v] : options.headers) explicit_trace = explicit_trace || n == "traceparent";
    if (!explicit_trace) with_trace.headers.emplace_back("traceparent", caller.trace.traceparent());
  }
  boost::asio::post(*impl_->pool, [impl = impl_.get(), path = std::string(path), request = std::move(request),
                                   with_trace = std::move(with_trace), done = std::move(done)]() mutable {
    done(impl->call(path, std::move(request), with_trace));
  });
}

std::size_t GrpcClient::connections_opened() const noexcept { return impl_->opened.load(); }

}  // namespace dispatch
