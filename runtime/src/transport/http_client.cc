// dispatch::HttpClient on Boost.Beast/Asio (+ OpenSSL for https): the client
// itself, its pool of blocking keep-alive connections with the synchronous
// call path, and the request each call sends. The pieces it is made of have
// files of their own: url.h (the base URL), deadline_socket.h (a plain
// connection's reads and writes), client_endpoint.h (what both call paths
// share: replies, stale connections), event_loop.h (the loop threads,
// dispatch::ClientLoops) and async_pool.h (call_async()).
//
// A synchronous call runs its write and read on the calling thread, without
// a hop to another thread. Plain TCP connections are blocking sockets: a
// call is one send (MSG_DONTWAIT, poll() only when the socket's buffer is
// full) and one recv that blocks under SO_RCVTIMEO, two system calls as for
// a bare TCP ping-pong (DeadlineSocket). TLS ones run on the tiny io_context
// each pooled connection owns (Asio's blocking calls have no timeout).
//
// call_async() serializes the request here, on the caller's thread, and
// hands it to the client's AsyncPool on its event loop: one of the
// ClientLoops in its options, else a loop of its own.
#include "dispatch/transport/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <mutex>
#include <vector>

#include "dispatch/core/service.h"
#include "dispatch/security/signature.h"
#include "security/base64.h"
#include "transport/async_pool.h"
#include "transport/client_endpoint.h"
#include "transport/connect.h"
#include "transport/deadline_socket.h"
#include "transport/event_loop.h"
#include "transport/http_text.h"
#include "transport/url.h"

namespace dispatch {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using transport::AsyncCall;
using transport::AsyncPool;
using transport::ClientEndpoint;
using transport::EventLoop;

// One keep-alive connection of the blocking pool and the io_context its
// operations run on.
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

  bool looks_alive() {
    return transport::idle_connection_usable(lowest().socket().native_handle(), buffer.size(), idle_since);
  }
};

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

std::string_view view(beast::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

struct HttpClient::Impl {
  Impl(std::shared_ptr<ClientEndpoint> e, std::shared_ptr<ClientLoops> l)
      : endpoint(std::move(e)), loops(std::move(l)) {}
  ~Impl();

  std::shared_ptr<ClientEndpoint> endpoint;
  const transport::Url& url = endpoint->url;
  const HttpClientOptions& options = endpoint->options;

  // options.loops, else (made by the first call_async()) a loop of its own.
  // Held here only, never by the endpoint: the pool's handlers may hold
  // the endpoint on a loop thread, where the loops must not be destroyed.
  std::shared_ptr<ClientLoops> loops;
  // Set by the first call_async(): the loop the client is placed on and its
  // connections there.
  std::once_flag async_started;
  EventLoop* loop = nullptr;
  std::unique_ptr<AsyncPool> pool;

  std::mutex mu;
  std::vector<std::unique_ptr<Conn>> idle;  // guarded by mu

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

  std::string where() const { return endpoint->where(); }
  http::request<http::string_body> build_request(const std::string& target, std::string body,
                                                 const CallOptions& call_options,
                                                 std::optional<std::chrono::milliseconds> timeout) const;

  Result<std::unique_ptr<Conn>> connect(std::optional<Clock::time_point> deadline);
  Result<std::string> call(std::string_view path, std::string request, const CallOptions& options);
  void call_async(std::string_view path, std::string request, const CallOptions& options, Client::Callback done);
};

HttpClient::Impl::~Impl() {
  pool.reset();  // completes what is still in flight
  if (loop) loops->impl_->detach(*loop);
  // Then `loops` goes: when this client was the last to hold them, their
  // threads finish what the pool left queued and are joined.
}

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
    conn->tls.emplace(conn->ioc, *endpoint->tls_context);
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
  endpoint->connections_opened.fetch_add(1, std::memory_order_relaxed);
  return conn;
}

http::request<http::string_body> HttpClient::Impl::build_request(
    const std::string& target, std::string body, const CallOptions& call_options,
    std::optional<std::chrono::milliseconds> timeout) const {
  http::request<http::string_body> req;
  req.version(11);
  req.set(http::field::host, url.authority);
  req.set(http::field::user_agent, "dispatch-cpp/0.1");
  if (!options.api_key.empty()) req.set(http::field::authorization, "Bearer " + options.api_key);
  // A call made from inside a function carries that call's trace on (W3C
  // Trace Context: this call's span is the callee's parent); a traceparent
  // in call_options.headers wins.
  if (const CallContext& caller = this_call(); caller.trace.valid()) {
    req.set("traceparent", caller.trace.traceparent());
    if (!caller.trace.tracestate.empty()) req.set("tracestate", caller.trace.tracestate);
  }
  // A Connect GET (use_get): the message in the query, its protocol
  // version there too, and no body (so no content type). Never for a
  // signing client: a signature covers a POST's body.
  std::optional<std::string> get_target;
  if (options.use_get && call_options.no_side_effects && options.plain_content_type.empty() && !options.signer &&
      !options.decorate) {
    std::string get = target + "?connect=v1&encoding=proto&base64=1&message=" +
                      security::detail::base64url_encode(body);
    if (get.size() <= options.max_get_url_bytes) get_target = std::move(get);
  }
  const std::string_view content_type =
      options.plain_content_type.empty() ? connect::kProtoContentType : std::string_view(options.plain_content_type);
  if (get_target) {
    req.method(http::verb::get);
    req.target(*get_target);
  } else {
    req.method(http::verb::post);
    req.target(target);
    req.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
    if (options.plain_content_type.empty()) req.set("connect-protocol-version", "1");
  }
  if (timeout && options.plain_content_type.empty()) {
    req.set("connect-timeout-ms", std::to_string(std::max<int64_t>(1, timeout->count())));
  }
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
  if (!get_target) req.body() = std::move(body);
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

Result<std::string> HttpClient::Impl::call(std::string_view path, std::string body,
                                           const CallOptions& call_options) {
  endpoint->calls.fetch_add(1, std::memory_order_relaxed);
  const auto timeout = endpoint->timeout_of(call_options);
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
      transport::DeadlineSocket socket(conn->tcp->socket().native_handle(), conn->receive_timeout, deadline);
      http::write(socket, req, ec);
      if (!ec) http::read(socket, conn->buffer, parser, ec);
    }
    if (ec) {
      const bool stale = reused && !parser.got_some() && transport::stale_connection_error(ec);
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
    if (call_options.response_headers != nullptr) transport::copy_fields(res, *call_options.response_headers);
    const beast::string_view content_type = res[http::field::content_type];  // lives with `parser`
    const beast::string_view content_encoding = res[http::field::content_encoding];
    std::string reply = std::move(res.body());
    if (keep) give_back(std::move(conn));
    return endpoint->reply_result(status, view(content_type), view(content_encoding), std::move(reply), target);
  }
}

void HttpClient::Impl::call_async(std::string_view path, std::string body, const CallOptions& call_options,
                                  Client::Callback done) {
  std::call_once(async_started, [&] {
    if (!loops) {
      ClientLoopsOptions own;
      own.threads = 1;
      loops = std::make_shared<ClientLoops>(own);
    }
    loop = &loops->impl_->attach();
    pool = std::make_unique<AsyncPool>(endpoint, *loop, loops->options().idle_timeout);
  });
  endpoint->calls.fetch_add(1, std::memory_order_relaxed);
  auto call = std::make_unique<AsyncCall>();
  call->timeout = endpoint->timeout_of(call_options);
  if (call->timeout) call->deadline = Clock::now() + *call->timeout;
  call->target = url.prefix + std::string(path);
  call->response_headers = call_options.response_headers;
  try {
    auto req = build_request(call->target, std::move(body), call_options, call->timeout);
    call->bytes = serialize(req);
  } catch (const std::exception& e) {  // e.g. a header Beast refuses
    transport::run_callback(done, Error(Code::invalid_argument, "cannot send a call to " + where() + call->target +
                                                                    ": " + e.what()));
    return;
  }
  call->done = std::move(done);
  pool->submit(std::move(call));
}

// HttpClientOptions::from_env() and try_from_env() are in secure_options.cc.

HttpClient::HttpClient(std::string_view base_url, HttpClientOptions options) {
  auto url = transport::parse_url(base_url);
  if (!url.ok()) throw url.error();
  auto endpoint = std::make_shared<ClientEndpoint>();
  endpoint->url = std::move(*url);
  endpoint->base = std::string(base_url);
  std::shared_ptr<ClientLoops> loops = std::move(options.loops);
  endpoint->options = std::move(options);
  if (endpoint->url.tls) {
    const bool verify = endpoint->options.verify_tls;
    const std::string& ca_file = endpoint->options.ca_file;
    auto make = [&]() -> ClientLoops::Impl::TlsContext {
      auto tls = std::make_shared<ssl::context>(ssl::context::tls_client);
      tls->set_default_verify_paths();
      if (!ca_file.empty()) tls->load_verify_file(ca_file);
      tls->set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none);
      return tls;
    };
    endpoint->tls_context = loops ? loops->impl_->tls_context(verify, ca_file, make) : make();
  }
  impl_ = std::make_unique<Impl>(std::move(endpoint), std::move(loops));
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(std::string_view base_url, HttpClientOptions options) {
  auto url = transport::parse_url(base_url);
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
  return {impl_->endpoint->connections_opened.load(), impl_->endpoint->calls.load()};
}

const std::string& HttpClient::base_url() const noexcept { return impl_->endpoint->base; }

}  // namespace dispatch
