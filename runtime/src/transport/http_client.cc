// dispatch::HttpClient on Boost.Beast/Asio (+ OpenSSL for https): URL
// parsing, the keep-alive connection pools, the synchronous call path, the
// event-driven call_async() path and the mapping of transport failures and
// Connect error bodies to dispatch::Error.
//
// A synchronous call runs its write and read on the calling thread, without
// a hop to another thread. Plain TCP connections are blocking sockets: a
// call is one send (MSG_DONTWAIT, poll() only when the socket's buffer is
// full) and one recv that blocks under SO_RCVTIMEO, two system calls as for
// a bare TCP ping-pong (DeadlineSocket). TLS ones run on the tiny io_context
// each pooled connection owns (Asio's blocking calls have no timeout).
//
// call_async() on http:// runs on one event-loop thread per client
// (AsyncLoop): the request is serialized on the caller's thread and queued;
// one wake-up hands the loop every call queued since its last round. The
// loop owns its own non-blocking keep-alive connections (one call in flight
// on each), writes directly, waits for readability in epoll, feeds Beast's
// response_parser, enforces deadlines with one lazily re-armed timer and
// runs the callbacks. A blocking call per pool thread (the previous design)
// cost two thread switches per call, which this 2-core VM pays dearly for.
// https:// keeps the pool of threads running blocking calls.
#include "dispatch/transport/http_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/thread_name.h"
#include "dispatch/security/signature.h"
#include "transport/connect.h"

namespace dispatch {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Url {
  bool tls = false;
  std::string host;       // without brackets
  std::string port;       // always set
  std::string authority;  // Host header: host[:port], port omitted when default
  std::string prefix;     // path prefix without trailing '/'
};

Result<Url> parse_url(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return Error(Code::invalid_argument, "base URL '" + std::string(url) + "' " + why +
                                             "; expected http://host[:port][/prefix] or https://...");
  };
  Url out;
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return bad("has no http:// or https:// scheme");
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.prefix = std::string(rest.substr(slash));
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  if (authority.find('@') != std::string_view::npos) return bad("carries credentials; use api_key");
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unterminated [IPv6] host");
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("has junk after the [IPv6] host");
      port = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("has no host");
  if (!port.empty() && (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
                        std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)) {
    return bad("has an invalid port");
  }
  out.port = port.empty() ? (out.tls ? "443" : "80") : std::string(port);
  out.authority = std::string(authority);
  return out;
}

// Whether an idle pooled connection may carry a request. One the server has
// closed (or that holds stray bytes) reads as ready and must not. One back
// in the pool for less than kFreshFor is taken as is (a poll per call costs
// more than the exchange's own parsing): a server does not close a
// connection it has just answered on, and if it did, the call is retried
// (see call()).
bool idle_connection_usable(int fd, std::size_t buffered, Clock::time_point idle_since) {
  static constexpr auto kFreshFor = std::chrono::milliseconds(200);
  if (buffered != 0) return false;
  if (Clock::now() - idle_since < kFreshFor) return true;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

// Whether a failed exchange on a reused connection met a close the server
// made while the connection sat idle, so that the request was never read and
// may be sent again on a fresh connection.
bool stale_connection_error(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof;
}

// One keep-alive connection and the io_context its operations run on.
struct Conn {
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> tcp;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;  // when it went back to the pool
  // The socket's SO_RCVTIMEO as last set by DeadlineSocket; zero: none (a
  // receive waits for as long as it takes).
  Clock::duration receive_timeout{0};

  // Beast reads at most the buffer's free capacity (512 bytes when empty)
  // and the parser empties it into the body as it goes: without this a 4 KiB
  // reply takes 9 reads, each a trip through the io_context.
  Conn() { buffer.reserve(16 * 1024); }

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }

  bool looks_alive() { return idle_connection_usable(lowest().socket().native_handle(), buffer.size(), idle_since); }
};

// A plain connection's blocking socket as a Beast synchronous stream whose
// reads and writes give up at a deadline, with no more system calls than
// the exchange needs:
// - A write is a sendmsg with MSG_DONTWAIT; only when the socket's buffer is
//   full does it wait in poll() for room, up to the deadline.
// - A read is one recv that blocks: an answer is never there the moment the
//   request has gone, and polling first would cost a system call per read.
//   The deadline is kept with SO_RCVTIMEO, set a margin short of it and left
//   as it is while it ends early enough (and not before half of what is
//   left), so calls with the same timeout set it once per connection. When
//   it fires before the deadline the read goes on with what is left; the
//   last kBlockingReadAtLeast before the deadline are waited for in poll(),
//   exactly (SO_RCVTIMEO counts in scheduler ticks, which may be 10 ms).
class DeadlineSocket {
 public:
  DeadlineSocket(Conn& conn, std::optional<Clock::time_point> deadline)
      : conn_(conn), fd_(conn.tcp->socket().native_handle()), deadline_(deadline) {}

  template <typename Buffers>
  std::size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    const asio::mutable_buffer buffer = beast::buffers_front(buffers);
    if (buffer.size() == 0) return 0;
    for (;;) {
      int flags = 0;
      if (!deadline_) {
        if (!set_receive_timeout(Clock::duration::zero(), ec)) return 0;
      } else {
        const auto left = *deadline_ - Clock::now();
        if (left <= Clock::duration::zero()) {
          ec = beast::error::timeout;
          return 0;
        }
        if (left >= kBlockingReadAtLeast) {
          // A timeout already set stays while it ends early enough, and
          // not so early that a slow answer would wake the read many times.
          const bool fits = conn_.receive_timeout > Clock::duration::zero() &&
                            conn_.receive_timeout <= left - kTickSlack && conn_.receive_timeout >= left / 2;
          if (!fits && !set_receive_timeout(left - std::max(left / 16, kTickSlack), ec)) return 0;
        } else {
          if (!wait(POLLIN, ec)) return 0;
          flags = MSG_DONTWAIT;
        }
      }
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), flags);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) {
        ec = asio::error::eof;
        return 0;
      }
      // EAGAIN: SO_RCVTIMEO ran out before the deadline (or poll() woke for
      // nothing); the deadline is checked again above.
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      ec = last_error();
      return 0;
    }
  }
  template <typename Buffers>
  std::size_t write_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    iovec iov[kMaxIov];
    std::size_t count = 0;
    for (const auto b : beast::buffers_range_ref(buffers)) {
      if (b.size() == 0) continue;
      if (count == kMaxIov) break;  // the rest goes in the next write_some
      iov[count++] = iovec{const_cast<void*>(b.data()), b.size()};
    }
    if (count == 0) return 0;
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = count;
    for (;;) {
      const ssize_t n = ::sendmsg(fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec = last_error();
        return 0;
      }
      if (!wait(POLLOUT, ec)) return 0;
    }
  }
  // The throwing forms Beast's stream concepts ask for.
  template <typename Buffers>
  std::size_t read_some(const Buffers& buffers) {
    beast::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }
  template <typename Buffers>
  std::size_t write_some(const Buffers& buffers) {
    beast::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  static constexpr std::size_t kMaxIov = 16;
  static constexpr Clock::duration kBlockingReadAtLeast = std::chrono::milliseconds(100);
  // More than a scheduler tick at the slowest common HZ (100), by which
  // SO_RCVTIMEO may run past what it was set to.
  static constexpr Clock::duration kTickSlack = std::chrono::milliseconds(20);

  // errno, as the error code Beast's stream concept reports.
  static beast::error_code last_error() { return beast::error_code(errno, boost::system::system_category()); }

  // Sets SO_RCVTIMEO to `timeout` (zero: none) unless it is that already.
  bool set_receive_timeout(Clock::duration timeout, beast::error_code& ec) {
    if (timeout == conn_.receive_timeout) return true;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
      ec = last_error();
      return false;
    }
    conn_.receive_timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(us));
    return true;
  }

  // Until the socket is ready for `events`: false with ec = timeout when the
  // deadline passes first.
  bool wait(short events, beast::error_code& ec) {
    for (;;) {
      int timeout_ms = -1;
      if (deadline_) {
        const auto left = *deadline_ - Clock::now();
        if (left <= Clock::duration::zero()) {
          ec = beast::error::timeout;
          return false;
        }
        timeout_ms = static_cast<int>(
            std::min<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1 << 30));
      }
      pollfd p{fd_, events, 0};
      const int ready = ::poll(&p, 1, timeout_ms);
      if (ready > 0) return true;
      if (ready < 0 && errno != EINTR) {
        ec = last_error();
        return false;
      }
      // Timed out (checked again at the top) or interrupted.
    }
  }

  Conn& conn_;
  int fd_;
  std::optional<Clock::time_point> deadline_;
};

}  // namespace

struct HttpClient::Impl {
  class AsyncLoop;

  Impl(Url u, HttpClientOptions o) : url(std::move(u)), options(std::move(o)) {
    if (url.tls) {
      tls_context.emplace(ssl::context::tls_client);
      tls_context->set_default_verify_paths();
      if (!options.ca_file.empty()) tls_context->load_verify_file(options.ca_file);
      tls_context->set_verify_mode(options.verify_tls ? ssl::verify_peer : ssl::verify_none);
    }
  }
  ~Impl();

  Url url;
  std::string base;
  HttpClientOptions options;
  std::optional<ssl::context> tls_context;
  // Started by the first call_async(): the event loop for http://, the
  // thread pool running blocking calls for https://.
  std::once_flag async_started;
  std::unique_ptr<AsyncLoop> loop;
  std::unique_ptr<asio::thread_pool> async_pool;
  std::mutex mu;
  std::vector<std::unique_ptr<Conn>> idle;  // guarded by mu
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> calls{0};

  std::unique_ptr<Conn> take_idle() {
    std::lock_guard lock(mu);
    while (!idle.empty()) {
      auto conn = std::move(idle.back());
      idle.pop_back();
      if (conn->looks_alive()) return conn;
    }
    return nullptr;
  }
  void give_back(std::unique_ptr<Conn> conn) {
    conn->idle_since = Clock::now();
    std::lock_guard lock(mu);
    if (idle.size() < options.max_idle_connections) idle.push_back(std::move(conn));
  }

  std::string where() const { return (url.tls ? "https://" : "http://") + url.authority; }

  // The call's timeout: its own, else the client's default.
  std::optional<std::chrono::milliseconds> timeout_of(const CallOptions& call_options) const {
    return call_options.timeout ? call_options.timeout : options.default_timeout;
  }
  http::request<http::string_body> build_request(const std::string& target, std::string body,
                                                 const CallOptions& call_options,
                                                 std::optional<std::chrono::milliseconds> timeout) const;
  // A complete reply: its body when 200, else the Connect error it carries.
  // A reply as a Result: 200 with application/proto is the response
  // message; any other 200 is internal (a proxy's page, a misrouted URL);
  // other statuses are the Connect error they carry.
  Result<std::string> reply_result(int status, beast::string_view content_type, std::string reply,
                                   const std::string& target) const;

  Result<std::unique_ptr<Conn>> connect(std::optional<Clock::time_point> deadline);
  Result<std::string> call(std::string_view path, std::string request, const CallOptions& options);
  void call_async(std::string_view path, std::string request, const CallOptions& options, Client::Callback done);
};

Result<std::unique_ptr<Conn>> HttpClient::Impl::connect(std::optional<Clock::time_point> deadline) {
  auto conn = std::make_unique<Conn>();
  // The connect timeout, shortened by the call's deadline when that is nearer.
  auto limit = Clock::now() + options.connect_timeout;
  const bool deadline_first = deadline && *deadline < limit;
  if (deadline_first) limit = *deadline;
  auto timed_out = [&](const char* what) {
    if (deadline_first) {
      return Error(Code::deadline_exceeded, std::string(what) + " " + where() + " did not finish before the call's deadline");
    }
    return Error(Code::unavailable, std::string(what) + " " + where() + " timed out after " +
                                        std::to_string(options.connect_timeout.count()) + " ms");
  };

  beast::error_code ec;
  tcp::resolver::results_type endpoints;
  tcp::resolver resolver(conn->ioc);
  resolver.async_resolve(url.host, url.port, [&](beast::error_code e, tcp::resolver::results_type r) {
    ec = e;
    endpoints = std::move(r);
  });
  conn->ioc.run_until(limit);
  if (!conn->ioc.stopped()) {
    resolver.cancel();
    return timed_out("resolving");
  }
  if (ec) return Error(Code::unavailable, "cannot resolve " + where() + ": " + ec.message());

  if (url.tls) {
    conn->tls.emplace(conn->ioc, *tls_context);
  } else {
    conn->tcp.emplace(conn->ioc);
  }
  beast::tcp_stream& stream = conn->lowest();
  stream.expires_at(limit);
  conn->ioc.restart();
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  conn->ioc.run();
  if (ec == beast::error::timeout) return timed_out("connecting to");
  if (ec) return Error(Code::unavailable, "cannot connect to " + where() + ": " + ec.message());
  stream.socket().set_option(tcp::no_delay(true), ec);
  // Calls on a plain connection block in recv() (DeadlineSocket); Asio
  // left the socket non-blocking for its asynchronous connect.
  if (!url.tls) {
    stream.socket().native_non_blocking(false, ec);
    if (ec) return Error(Code::unavailable, "cannot set up the connection to " + where() + ": " + ec.message());
  }

  if (url.tls) {
    if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), url.host.c_str())) {
      return Error(Code::unavailable, "cannot set TLS server name for " + where());
    }
    if (options.verify_tls) conn->tls->set_verify_callback(ssl::host_name_verification(url.host));
    conn->ioc.restart();
    conn->tls->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    conn->ioc.run();
    if (ec == beast::error::timeout) return timed_out("TLS handshake with");
    if (ec) return Error(Code::unavailable, "TLS handshake with " + where() + " failed: " + ec.message());
  }
  stream.expires_never();
  connections_opened.fetch_add(1, std::memory_order_relaxed);
  return conn;
}

namespace {

// One request/response exchange on an open connection, run on its io_context.
template <typename Stream>
beast::error_code exchange(Conn& conn, Stream& stream, http::request<http::string_body>& req,
                           http::response_parser<http::string_body>& parser) {
  beast::error_code result;
  http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
    if (ec) {
      result = ec;
      return;
    }
    http::async_read(stream, conn.buffer, parser, [&](beast::error_code ec2, std::size_t) { result = ec2; });
  });
  conn.ioc.restart();
  conn.ioc.run();
  return result;
}

}  // namespace

http::request<http::string_body> HttpClient::Impl::build_request(
    const std::string& target, std::string body, const CallOptions& call_options,
    std::optional<std::chrono::milliseconds> timeout) const {
  http::request<http::string_body> req;
  req.method(http::verb::post);
  req.version(11);
  req.target(target);
  req.set(http::field::host, url.authority);
  const std::string_view content_type =
      options.plain_content_type.empty() ? connect::kProtoContentType : std::string_view(options.plain_content_type);
  req.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  if (options.plain_content_type.empty()) req.set("connect-protocol-version", "1");
  req.set(http::field::user_agent, "dispatch-cpp/0.1");
  if (timeout && options.plain_content_type.empty()) {
    req.set("connect-timeout-ms", std::to_string(std::max<int64_t>(1, timeout->count())));
  }
  if (!options.api_key.empty()) req.set(http::field::authorization, "Bearer " + options.api_key);
  for (const auto& [name, value] : call_options.headers) req.set(name, value);
  if (options.signer) {
    for (auto& [name, value] : options.signer->sign("POST", target, url.authority, content_type, body)) {
      req.set(name, value);
    }
  }
  if (options.decorate) {
    std::vector<std::pair<std::string, std::string>> extra;
    options.decorate("POST", target, url.authority, content_type, body, extra);
    for (const auto& [name, value] : extra) req.set(name, value);
  }
  req.body() = std::move(body);
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

Result<std::string> HttpClient::Impl::reply_result(int status, beast::string_view content_type_header,
                                                   std::string reply, const std::string& target) const {
  // A plain POST: any 2xx answer's body is the result.
  if (!options.plain_content_type.empty() && status >= 200 && status < 300) return reply;
  if (status == 200) {
    const std::string_view content_type(content_type_header.data(), content_type_header.size());
    if (connect::encoding_from_content_type(content_type) == connect::Encoding::proto) return reply;
    return Error(Code::internal, "reply from " + where() + target + " has Content-Type '" +
                                     std::string(content_type.substr(0, 100)) + "', not " +
                                     std::string(connect::kProtoContentType) + " (is the URL a Connect server?)");
  }
  Error error = connect::error_from_json(reply, status);
  return Error(error.code(),
               error.message().empty() ? "HTTP " + std::to_string(status) + " from " + where() + target
                                       : error.message(),
               error.details());
}

Result<std::string> HttpClient::Impl::call(std::string_view path, std::string body,
                                           const CallOptions& call_options) {
  calls.fetch_add(1, std::memory_order_relaxed);
  const auto timeout = timeout_of(call_options);
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  const std::string target = url.prefix + std::string(path);
  http::request<http::string_body> req = build_request(target, std::move(body), call_options, timeout);

  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Conn> conn = take_idle();
    const bool reused = conn != nullptr;
    if (!conn) {
      auto opened = connect(deadline);
      if (!opened.ok()) return std::move(opened).error();
      conn = std::move(*opened);
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    beast::error_code ec;
    if (conn->tls) {
      if (deadline) {
        conn->lowest().expires_at(*deadline);
      } else {
        conn->lowest().expires_never();
      }
      ec = exchange(*conn, *conn->tls, req, parser);
    } else {
      DeadlineSocket socket(*conn, deadline);
      http::write(socket, req, ec);
      if (!ec) http::read(socket, conn->buffer, parser, ec);
    }
    if (ec) {
      const bool stale = reused && !parser.got_some() && stale_connection_error(ec);
      if (stale && attempt == 0) continue;  // the server closed it while idle: never received
      const std::string what = where() + target;
      if (ec == beast::error::timeout) {
        return Error(Code::deadline_exceeded,
                     "call to " + what + " timed out after " + std::to_string(timeout->count()) + " ms");
      }
      if (ec == http::error::body_limit) {
        return Error(Code::resource_exhausted, "reply from " + what + " exceeds the client's limit of " +
                                                   std::to_string(options.max_response_bytes) + " bytes");
      }
      return Error(Code::unavailable, "call to " + what + " failed: " + ec.message());
    }
    if (conn->tls) conn->lowest().expires_never();
    auto& res = parser.get();
    const int status = static_cast<int>(res.result_int());
    const bool keep = res.keep_alive();
    const beast::string_view content_type = res[http::field::content_type];  // lives with `parser`
    std::string reply = std::move(res.body());
    if (keep) give_back(std::move(conn));
    return reply_result(status, content_type, std::move(reply), target);
  }
}

namespace {

// Beast's serializer output as one string: the head and the body, ready to
// be written by the event loop without touching the request again.
std::string serialize(http::request<http::string_body>& req) {
  std::string out;
  out.reserve(req.body().size() + 512);
  http::serializer<true, http::string_body> sr(req);
  beast::error_code ec;
  do {
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      std::size_t n = 0;
      for (const auto b : beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      sr.consume(n);
    });
  } while (!ec && !sr.is_done());
  return out;
}

// Runs a user callback; an exception escaping it must not take the event
// loop (and every other call on it) down.
void run_callback(Client::Callback& done, Result<std::string> result) {
  try {
    done(std::move(result));
  } catch (...) {
    // Documented as a contract violation; nobody is left to report it to.
  }
}

}  // namespace

// One call_async() call as the event loop sees it.
struct AsyncCall {
  std::string bytes;   // the serialized request
  std::string target;  // path with the URL's prefix, for messages
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<Clock::time_point> deadline;
  bool resent = false;  // already re-sent once after meeting a stale connection
  Client::Callback done;
};

// One keep-alive connection owned by the event loop. Handlers hold it by
// shared_ptr: a closed connection lives until its cancelled operations have
// run, and they find `call` empty and do nothing.
struct AsyncConn {
  enum class State { connecting, busy, idle, closed };

  explicit AsyncConn(asio::io_context& ioc) : socket(ioc) { buffer.reserve(16 * 1024); }

  tcp::socket socket;
  beast::flat_buffer buffer;
  State state = State::connecting;
  std::unique_ptr<AsyncCall> call;  // in flight on it (also while connecting)
  std::optional<http::response_parser<http::string_body>> parser;
  std::size_t written = 0;
  uint64_t served = 0;                  // replies read on it
  Clock::time_point connect_limit;      // while connecting
  bool connect_limit_is_deadline = false;
  Clock::time_point idle_since;
};

// The event loop behind call_async() for http:// URLs: one thread, one
// io_context (concurrency hint 1: no locking inside Asio), its own pool of
// connections, at most options.max_connections open. Everything but
// submit() and the destructor runs on the loop thread.
class HttpClient::Impl::AsyncLoop {
 public:
  explicit AsyncLoop(Impl& client)
      : client_(client), timer_(ioc_), resolver_(ioc_), work_(ioc_.get_executor()) {
    beast::error_code ec;
    const auto address = asio::ip::make_address(client_.url.host, ec);
    if (!ec) {
      numeric_ = tcp::resolver::results_type::create(
          tcp::endpoint(address, static_cast<unsigned short>(std::stoul(client_.url.port))), client_.url.host,
          client_.url.port);
    }
    thread_ = std::thread([this] {
      // Named for top -H, perf and gdb, like the server's threads.
      detail::name_this_thread("dispatch-client");
      ioc_.run();
    });
  }

  // Completes every call not yet answered with `canceled`, on the loop
  // thread, then stops it. Must not run on the loop thread (a callback must
  // not destroy its client).
  ~AsyncLoop() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    asio::post(ioc_, [this] { shut_down(); });
    thread_.join();
  }

  AsyncLoop(const AsyncLoop&) = delete;
  AsyncLoop& operator=(const AsyncLoop&) = delete;

  // Any thread. Queues the call; only the first call queued since the loop's
  // last round wakes it.
  void submit(std::unique_ptr<AsyncCall> call) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (!closed_) {
        incoming_.push_back(std::move(call));
        wake = !drain_posted_;
        drain_posted_ = true;
      }
    }
    if (call) {  // the client is going away
      run_callback(call->done, canceled(*call));
      return;
    }
    if (wake) asio::post(ioc_, [this] { drain(); });
  }

 private:
  using ConnPtr = std::shared_ptr<AsyncConn>;

  std::string what(const AsyncCall& call) const { return client_.where() + call.target; }
  Error canceled(const AsyncCall& call) const {
    return Error(Code::canceled, "call to " + what(call) + " canceled: the client was destroyed");
  }
  Error timed_out(const AsyncCall& call) const {
    return Error(Code::deadline_exceeded,
                 "call to " + what(call) + " timed out after " + std::to_string(call.timeout->count()) + " ms");
  }

  // Completes a call: its slot (if any) is already given back, so the
  // callback may start new calls.
  void complete(std::unique_ptr<AsyncCall> call, Result<std::string> result) {
    run_callback(call->done, std::move(result));
  }

  void drain() {
    std::vector<std::unique_ptr<AsyncCall>> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(incoming_);
      drain_posted_ = false;
    }
    for (auto& call : batch) {
      if (call->deadline) arm(*call->deadline);
      waiting_.push_back(std::move(call));
    }
    start_waiting();
  }

  // Starts waiting calls, in order, while connections allow.
  void start_waiting() {
    while (!waiting_.empty() && !stopping_) {
      if (ConnPtr conn = take_idle()) {
        auto call = std::move(waiting_.front());
        waiting_.pop_front();
        send(conn, std::move(call));
        continue;
      }
      if (live_.size() >= std::max<std::size_t>(1, client_.options.max_connections)) return;
      auto call = std::move(waiting_.front());
      waiting_.pop_front();
      open(std::move(call));
    }
  }

  ConnPtr take_idle() {
    while (!idle_.empty()) {
      ConnPtr conn = std::move(idle_.back());
      idle_.pop_back();
      if (idle_connection_usable(conn->socket.native_handle(), conn->buffer.size(), conn->idle_since)) return conn;
      close(*conn);
    }
    return nullptr;
  }

  void close(AsyncConn& conn) {
    conn.state = AsyncConn::State::closed;
    beast::error_code ignored;
    conn.socket.close(ignored);
    live_.erase(&conn);
  }

  // A new connection for `call`: resolve (unless the host is an address),
  // connect, then send.
  void open(std::unique_ptr<AsyncCall> call) {
    auto conn = std::make_shared<AsyncConn>(ioc_);
    live_.emplace(conn.get(), conn);
    conn->connect_limit = Clock::now() + client_.options.connect_timeout;
    if (call->deadline && *call->deadline < conn->connect_limit) {
      conn->connect_limit = *call->deadline;
      conn->connect_limit_is_deadline = true;
    }
    conn->call = std::move(call);
    arm(conn->connect_limit);
    if (numeric_) {
      connect(conn, *numeric_);
      return;
    }
    resolver_.async_resolve(client_.url.host, client_.url.port,
                            [this, conn](beast::error_code ec, tcp::resolver::results_type results) {
                              if (conn->state != AsyncConn::State::connecting) return;
                              if (ec) {
                                fail(conn, Error(Code::unavailable,
                                                 "cannot resolve " + client_.where() + ": " + ec.message()));
                                return;
                              }
                              connect(conn, results);
                            });
  }

  void connect(const ConnPtr& conn, const tcp::resolver::results_type& endpoints) {
    asio::async_connect(conn->socket, endpoints, [this, conn](beast::error_code ec, const tcp::endpoint&) {
      if (conn->state != AsyncConn::State::connecting) return;
      if (ec) {
        fail(conn, Error(Code::unavailable, "cannot connect to " + client_.where() + ": " + ec.message()));
        return;
      }
      conn->socket.set_option(tcp::no_delay(true), ec);
      conn->socket.non_blocking(true, ec);
      client_.connections_opened.fetch_add(1, std::memory_order_relaxed);
      send(conn, std::move(conn->call));
    });
  }

  // Fails the connection's call and drops the connection.
  void fail(const ConnPtr& conn, Error error) {
    auto call = std::move(conn->call);
    close(*conn);
    start_waiting();
    complete(std::move(call), std::move(error));
  }

  void send(const ConnPtr& conn, std::unique_ptr<AsyncCall> call) {
    conn->state = AsyncConn::State::busy;
    conn->call = std::move(call);
    conn->written = 0;
    conn->parser.emplace();
    conn->parser->body_limit(client_.options.max_response_bytes);
    write(conn);
  }

  // Writes what the socket takes now; waits for room only when it is full
  // (rare: requests are small and the socket's buffer is not).
  void write(const ConnPtr& conn) {
    const std::string& bytes = conn->call->bytes;
    for (;;) {
      beast::error_code ec;
      const std::size_t n =
          conn->socket.write_some(asio::buffer(bytes.data() + conn->written, bytes.size() - conn->written), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        conn->socket.async_wait(tcp::socket::wait_write, [this, conn](beast::error_code wait_ec) {
          if (conn->state != AsyncConn::State::busy) return;
          if (wait_ec) {
            failed_exchange(conn, wait_ec);
          } else {
            write(conn);
          }
        });
        return;
      }
      if (ec) {
        failed_exchange(conn, ec);
        return;
      }
      conn->written += n;
      if (conn->written == bytes.size()) {
        wait_readable(conn);
        return;
      }
    }
  }

  // Reads the reply as it arrives into the connection's buffer and feeds it
  // to the parser. async_read_some, not async_wait: Asio re-registers the
  // socket with epoll (epoll_ctl) for every async_wait, while a read that
  // found nothing is simply queued until epoll reports the socket readable
  // (it was registered once, edge-triggered, when the socket opened), and
  // the reactor then reads on our behalf: one recv per reply.
  void wait_readable(const ConnPtr& conn) {
    const std::size_t room = std::max<std::size_t>(4096, conn->buffer.capacity() - conn->buffer.size());
    conn->socket.async_read_some(conn->buffer.prepare(room), [this, conn](beast::error_code ec, std::size_t n) {
      if (conn->state != AsyncConn::State::busy) return;
      conn->buffer.commit(n);
      parse(conn, ec);
    });
  }

  void parse(const ConnPtr& conn, beast::error_code ec) {
    auto& parser = *conn->parser;
    if (ec == asio::error::eof && parser.got_some()) {
      // A reply delimited by the end of the connection ends here.
      parser.put_eof(ec);
      if (!ec && parser.is_done()) {
        replied(conn);
        return;
      }
      failed_exchange(conn, ec ? ec : beast::error_code(http::error::partial_message));
      return;
    }
    if (ec) {
      failed_exchange(conn, ec);
      return;
    }
    while (conn->buffer.size() != 0 && !parser.is_done()) {
      const std::size_t used = parser.put(conn->buffer.data(), ec);
      conn->buffer.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) {
        failed_exchange(conn, ec);
        return;
      }
      if (used == 0) break;
    }
    if (parser.is_done()) {
      replied(conn);
    } else {
      wait_readable(conn);
    }
  }

  void replied(const ConnPtr& conn) {
    auto& res = conn->parser->get();
    const int status = static_cast<int>(res.result_int());
    const bool keep = res.keep_alive();
    auto call = std::move(conn->call);
    // While the parser still holds the Content-Type it is read from.
    Result<std::string> result =
        client_.reply_result(status, res[http::field::content_type], std::move(res.body()), call->target);
    conn->parser.reset();
    conn->served++;
    if (keep) {
      reuse(conn);
    } else {
      close(*conn);
      start_waiting();
    }
    complete(std::move(call), std::move(result));
  }

  // A connection free again: the next waiting call, else the idle pool.
  void reuse(const ConnPtr& conn) {
    if (!waiting_.empty() && !stopping_) {
      auto next = std::move(waiting_.front());
      waiting_.pop_front();
      send(conn, std::move(next));
      return;
    }
    if (idle_.size() >= client_.options.max_idle_connections) {
      close(*conn);
      return;
    }
    conn->state = AsyncConn::State::idle;
    conn->idle_since = Clock::now();
    idle_.push_back(conn);
  }

  void failed_exchange(const ConnPtr& conn, const beast::error_code& ec) {
    auto call = std::move(conn->call);
    const bool stale = conn->served > 0 && !conn->parser->got_some() && stale_connection_error(ec);
    close(*conn);
    if (stale && !call->resent) {
      // The server closed it while idle: the request was never read. Once,
      // on a fresh connection, as the blocking path does.
      call->resent = true;
      open(std::move(call));
      return;
    }
    start_waiting();
    const std::string target = what(*call);
    if (ec == http::error::body_limit) {
      complete(std::move(call), Error(Code::resource_exhausted,
                                      "reply from " + target + " exceeds the client's limit of " +
                                          std::to_string(client_.options.max_response_bytes) + " bytes"));
      return;
    }
    complete(std::move(call), Error(Code::unavailable, "call to " + target + " failed: " + ec.message()));
  }

  // Deadlines: one timer, armed at the earliest deadline it knows of. When
  // it fires it fails what is due and re-arms at the next one; calls that
  // finish in time cost nothing but the comparison here.
  void arm(Clock::time_point at) {
    if (timer_at_ && *timer_at_ <= at) return;
    timer_at_ = at;
    timer_.expires_at(at);
    timer_.async_wait([this](beast::error_code ec) {
      if (ec == asio::error::operation_aborted || stopping_) return;
      timer_at_.reset();
      expire();
    });
  }

  void expire() {
    const auto now = Clock::now();
    std::vector<std::pair<std::unique_ptr<AsyncCall>, Error>> due;
    std::optional<Clock::time_point> next;
    auto later = [&](Clock::time_point at) {
      if (!next || at < *next) next = at;
    };
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if ((*it)->deadline && *(*it)->deadline <= now) {
        Error e = timed_out(**it);
        due.emplace_back(std::move(*it), std::move(e));
        it = waiting_.erase(it);
      } else {
        if ((*it)->deadline) later(*(*it)->deadline);
        ++it;
      }
    }
    std::vector<ConnPtr> expired;
    for (auto& [raw, conn] : live_) {
      if (conn->state == AsyncConn::State::connecting) {
        if (conn->connect_limit <= now) {
          expired.push_back(conn);
        } else {
          later(conn->connect_limit);
        }
      } else if (conn->state == AsyncConn::State::busy && conn->call->deadline) {
        if (*conn->call->deadline <= now) {
          expired.push_back(conn);
        } else {
          later(*conn->call->deadline);
        }
      }
    }
    for (ConnPtr& conn : expired) {
      auto call = std::move(conn->call);
      Error e = timed_out(*call);
      if (conn->state == AsyncConn::State::connecting) {
        const std::string where = client_.where();
        e = conn->connect_limit_is_deadline
                ? Error(Code::deadline_exceeded, "connecting to " + where + " did not finish before the call's deadline")
                : Error(Code::unavailable, "connecting to " + where + " timed out after " +
                                               std::to_string(client_.options.connect_timeout.count()) + " ms");
      }
      close(*conn);
      due.emplace_back(std::move(call), std::move(e));
    }
    if (next) arm(*next);
    start_waiting();
    for (auto& [call, error] : due) complete(std::move(call), std::move(error));
  }

  void shut_down() {
    stopping_ = true;
    std::vector<std::unique_ptr<AsyncCall>> left;
    {
      std::lock_guard lock(mu_);
      left.swap(incoming_);
    }
    for (auto& call : waiting_) left.push_back(std::move(call));
    waiting_.clear();
    std::vector<ConnPtr> conns;
    for (auto& [raw, conn] : live_) conns.push_back(conn);
    for (ConnPtr& conn : conns) {
      if (conn->call) left.push_back(std::move(conn->call));
      close(*conn);
    }
    idle_.clear();
    timer_.cancel();
    resolver_.cancel();
    work_.reset();
    for (auto& call : left) {
      Error e = canceled(*call);
      complete(std::move(call), std::move(e));
    }
  }

  Impl& client_;
  asio::io_context ioc_{1};
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::optional<tcp::resolver::results_type> numeric_;  // the host is an address
  std::thread thread_;

  std::mutex mu_;
  std::vector<std::unique_ptr<AsyncCall>> incoming_;  // guarded by mu_
  bool drain_posted_ = false;                         // guarded by mu_
  bool closed_ = false;                               // guarded by mu_

  // Loop thread only.
  std::deque<std::unique_ptr<AsyncCall>> waiting_;
  std::unordered_map<AsyncConn*, ConnPtr> live_;  // connecting, busy or idle
  std::vector<ConnPtr> idle_;
  std::optional<Clock::time_point> timer_at_;
  bool stopping_ = false;
};

HttpClient::Impl::~Impl() {
  loop.reset();
  if (async_pool) async_pool->join();
}

void HttpClient::Impl::call_async(std::string_view path, std::string body, const CallOptions& call_options,
                                  Client::Callback done) {
  if (url.tls) {
    // TLS stays on blocking calls, one pool thread each.
    std::call_once(async_started, [&] {
      async_pool = std::make_unique<asio::thread_pool>(std::max<std::size_t>(1, options.async_threads));
    });
    asio::post(*async_pool, [this, path = std::string(path), body = std::move(body), call_options,
                             done = std::move(done)]() mutable {
      run_callback(done, call(path, std::move(body), call_options));
    });
    return;
  }
  std::call_once(async_started, [&] { loop = std::make_unique<AsyncLoop>(*this); });
  calls.fetch_add(1, std::memory_order_relaxed);
  auto call = std::make_unique<AsyncCall>();
  call->timeout = timeout_of(call_options);
  if (call->timeout) call->deadline = Clock::now() + *call->timeout;
  call->target = url.prefix + std::string(path);
  try {
    auto req = build_request(call->target, std::move(body), call_options, call->timeout);
    call->bytes = serialize(req);
  } catch (const std::exception& e) {  // e.g. a header Beast refuses
    run_callback(done, Error(Code::invalid_argument, "cannot send a call to " + where() + call->target + ": " +
                                                         e.what()));
    return;
  }
  call->done = std::move(done);
  loop->submit(std::move(call));
}

// HttpClientOptions::from_env() and try_from_env() are in secure_options.cc.

HttpClient::HttpClient(std::string_view base_url, HttpClientOptions options) {
  auto url = parse_url(base_url);
  if (!url.ok()) throw url.error();
  impl_ = std::make_unique<Impl>(std::move(*url), std::move(options));
  impl_->base = std::string(base_url);
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(std::string_view base_url, HttpClientOptions options) {
  auto url = parse_url(base_url);
  if (!url.ok()) return std::move(url).error();
  try {
    return std::make_unique<HttpClient>(base_url, std::move(options));
  } catch (const std::exception& e) {  // e.g. an unreadable ca_file
    return Error(Code::invalid_argument, std::string("cannot set up a client for ") + std::string(base_url) +
                                             ": " + e.what());
  }
}

HttpClient::~HttpClient() = default;

Result<std::string> HttpClient::call(std::string_view path, std::string request, const CallOptions& options) {
  return impl_->call(path, std::move(request), options);
}

void HttpClient::call_async(std::string_view path, std::string request, const CallOptions& options,
                            Callback done) {
  impl_->call_async(path, std::move(request), options, std::move(done));
}

HttpClientStats HttpClient::stats() const noexcept {
  return {impl_->connections_opened.load(), impl_->calls.load()};
}

const std::string& HttpClient::base_url() const noexcept { return impl_->base; }

}  // namespace dispatch
