// dispatch::HttpClient on Boost.Beast/Asio (+ OpenSSL for https): URL
// parsing, the keep-alive connection pool, the synchronous call path and the
// mapping of transport failures and Connect error bodies to dispatch::Error.
//
// A synchronous call runs its write and read on the calling thread, without
// a hop to another thread. Plain TCP connections are non-blocking sockets
// driven with poll() (send, poll, recv: the fewest system calls a timed
// exchange can make); TLS ones run on the tiny io_context each pooled
// connection owns (Asio's blocking calls have no timeout).
#include "dispatch/http_client.h"

#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "connect.h"
#include "dispatch/security/signature.h"

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

// One keep-alive connection and the io_context its operations run on.
struct Conn {
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> tcp;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;  // when it went back to the pool

  // Beast reads at most the buffer's free capacity (512 bytes when empty)
  // and the parser empties it into the body as it goes: without this a 4 KiB
  // reply takes 9 reads, each a trip through the io_context.
  Conn() { buffer.reserve(16 * 1024); }

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }

  // An idle connection the server has closed (or that holds stray bytes)
  // reads as ready; it must not carry a request. One back in the pool for
  // less than kFreshFor is taken as is (a poll per call costs more than the
  // exchange's own parsing): a server does not close a connection it has
  // just answered on, and if it did, the call is retried (see call()).
  bool looks_alive() {
    static constexpr auto kFreshFor = std::chrono::milliseconds(200);
    if (buffer.size() != 0) return false;
    if (Clock::now() - idle_since < kFreshFor) return true;
    pollfd p{lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
};

// A connected non-blocking socket as a Beast synchronous stream whose reads
// and writes give up at a deadline: each waits in poll() only when the
// socket is not ready. A read polls first, as an answer is never there the
// moment the request has gone.
class DeadlineSocket {
 public:
  DeadlineSocket(tcp::socket& socket, std::optional<Clock::time_point> deadline)
      : socket_(socket), deadline_(deadline) {}

  template <typename Buffers>
  std::size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    for (;;) {
      if (!wait(POLLIN, ec)) return 0;
      const std::size_t n = socket_.read_some(buffers, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return n;
    }
  }
  template <typename Buffers>
  std::size_t write_some(const Buffers& buffers, beast::error_code& ec) {
    for (;;) {
      const std::size_t n = socket_.write_some(buffers, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return n;
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
      pollfd p{socket_.native_handle(), events, 0};
      const int ready = ::poll(&p, 1, timeout_ms);
      if (ready > 0) return true;
      if (ready < 0 && errno != EINTR) {
        ec = beast::error_code(errno, boost::system::system_category());
        return false;
      }
      // Timed out (checked again at the top) or interrupted.
    }
  }

  tcp::socket& socket_;
  std::optional<Clock::time_point> deadline_;
};

}  // namespace

struct HttpClient::Impl {
  Impl(Url u, HttpClientOptions o) : url(std::move(u)), options(std::move(o)) {
    if (url.tls) {
      tls_context.emplace(ssl::context::tls_client);
      tls_context->set_default_verify_paths();
      if (!options.ca_file.empty()) tls_context->load_verify_file(options.ca_file);
      tls_context->set_verify_mode(options.verify_tls ? ssl::verify_peer : ssl::verify_none);
    }
    async_pool = std::make_unique<asio::thread_pool>(std::max<std::size_t>(1, options.async_threads));
  }
  ~Impl() { async_pool->join(); }

  Url url;
  std::string base;
  HttpClientOptions options;
  std::optional<ssl::context> tls_context;
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

  Result<std::unique_ptr<Conn>> connect(std::optional<Clock::time_point> deadline);
  Result<std::string> call(std::string_view path, std::string request, const CallOptions& options);
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
  // Calls on a plain connection wait in poll() (DeadlineSocket).
  if (!url.tls) stream.socket().non_blocking(true, ec);

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

Result<std::string> HttpClient::Impl::call(std::string_view path, std::string body,
                                           const CallOptions& call_options) {
  calls.fetch_add(1, std::memory_order_relaxed);
  const auto timeout = call_options.timeout ? call_options.timeout : options.default_timeout;
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;

  http::request<http::string_body> req;
  req.method(http::verb::post);
  req.version(11);
  const std::string target = url.prefix + std::string(path);
  req.target(target);
  req.set(http::field::host, url.authority);
  req.set(http::field::content_type,
          beast::string_view(connect::kProtoContentType.data(), connect::kProtoContentType.size()));
  req.set("connect-protocol-version", "1");
  req.set(http::field::user_agent, "dispatch-cpp/0.1");
  if (timeout) req.set("connect-timeout-ms", std::to_string(std::max<int64_t>(1, timeout->count())));
  if (!options.api_key.empty()) req.set(http::field::authorization, "Bearer " + options.api_key);
  for (const auto& [name, value] : call_options.headers) req.set(name, value);
  if (options.signer) {
    for (auto& [name, value] : options.signer->sign("POST", target, url.authority, connect::kProtoContentType, body)) {
      req.set(name, value);
    }
  }
  if (options.decorate) {
    std::vector<std::pair<std::string, std::string>> extra;
    options.decorate("POST", target, url.authority, connect::kProtoContentType, body, extra);
    for (const auto& [name, value] : extra) req.set(name, value);
  }
  req.body() = std::move(body);
  req.keep_alive(true);
  req.prepare_payload();

  const std::string what = where() + target;
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
      DeadlineSocket socket(conn->tcp->socket(), deadline);
      http::write(socket, req, ec);
      if (!ec) http::read(socket, conn->buffer, parser, ec);
    }
    if (ec) {
      const bool stale = reused && !parser.got_some() &&
                         (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                          ec == asio::error::broken_pipe || ec == asio::error::eof);
      if (stale && attempt == 0) continue;  // the server closed it while idle: never received
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
    std::string reply = std::move(res.body());
    if (keep) give_back(std::move(conn));
    if (status == 200) return reply;
    Error error = connect::error_from_json(reply, status);
    return Error(error.code(), error.message().empty() ? "HTTP " + std::to_string(status) + " from " + what
                                                       : error.message(),
                 error.details());
  }
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
  asio::post(*impl_->async_pool, [impl = impl_.get(), path = std::string(path), request = std::move(request),
                                  options, done = std::move(done)]() mutable {
    done(impl->call(path, std::move(request), options));
  });
}

HttpClientStats HttpClient::stats() const noexcept {
  return {impl_->connections_opened.load(), impl_->calls.load()};
}

const std::string& HttpClient::base_url() const noexcept { return impl_->base; }

}  // namespace dispatch
