// dispatch::Server on Boost.Beast/Asio: accepting, HTTP/1.1 keep-alive
// sessions, limits, the Connect unary routing, the worker pool and drain.
// The protocol's pure parts (content types, timeouts, error bodies, JSON) are
// in connect.cc; this file is the I/O around them.
#include "dispatch/server.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "connect.h"
#include "dispatch/security/signature.h"
#include "secure_options.h"

namespace dispatch {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Route {
  std::string log_name;  // "shop.add"
  const connect::JsonCodec* codec = nullptr;  // null: JSON not available
  std::string codec_problem;                  // why, when null
};

std::string format_ms(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms",
                std::chrono::duration<double, std::milli>(d).count());
  return buf;
}

}  // namespace

Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view address) {
  auto bad = [&](const char* why) {
    return Error(Code::invalid_argument,
                 "listen address '" + std::string(address) + "' " + why + "; expected host:port");
  };
  std::string host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return bad("has an unterminated or portless [IPv6] host");
    }
    host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    host = std::string(address.substr(0, colon));
    port = address.substr(colon + 1);
  }
  if (host.empty()) return bad("has no host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535) {
    return bad("has no valid port (0-65535)");
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stoul(std::string(port))));
}

Result<ServerOptions> ServerOptions::from_env() {
  ServerOptions options;
  if (const char* port = std::getenv("PORT"); port != nullptr && *port != '\0') {
    auto parsed = parse_listen_address(std::string("0.0.0.0:") + port);
    if (!parsed.ok()) {
      return Error(Code::invalid_argument, "PORT='" + std::string(port) + "' is not a port number (0-65535)");
    }
    options.host = parsed->first;
    options.port = parsed->second;
  } else if (const char* addr = std::getenv("DISPATCH_ENDPOINT_ADDR"); addr != nullptr && *addr != '\0') {
    auto parsed = parse_listen_address(addr);
    if (!parsed.ok()) return std::move(parsed).error().with_context("DISPATCH_ENDPOINT_ADDR");
    options.host = parsed->first;
    options.port = parsed->second;
  }
  auto verifier = transport::verifier_from_env("DISPATCH_VERIFICATION_KEY");
  if (!verifier.ok()) return std::move(verifier).error();
  options.verifier = std::move(*verifier);
  options.warn_if_unverified = true;
  return options;
}

class Session;

// Everything a server shares with its sessions (Server::Impl is this).
struct ServerCore : std::enable_shared_from_this<ServerCore> {
  ServerCore(const DispatchTable& t, ServerOptions o) : table(t), options(std::move(o)) {}

  const DispatchTable& table;
  ServerOptions options;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{asio::make_strand(ioc)};
  std::optional<asio::signal_set> signals;
  std::unique_ptr<asio::thread_pool> workers;
  std::vector<std::thread> io_threads;
  std::unordered_map<const Method*, Route> routes;
  std::vector<std::unique_ptr<connect::JsonCodec>> codecs;
  std::atomic<uint16_t> bound_port{0};

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
  bool started = false;       // guarded by mu
  bool draining = false;      // guarded by mu
  bool force_close = false;   // guarded by mu
  bool threads_joined = false;  // guarded by mu
  std::once_flag shutdown_once;

  void build_routes();
  Result<void> start();
  void accept();
  void begin_drain(bool force);
  void wait_and_shutdown();
  void session_closed(Session* s) {
    std::lock_guard lock(mu);
    sessions.erase(s);
    cv.notify_all();
  }
};

// One HTTP/1.1 connection: reads a request, answers it (the worker that ran
// the call writes its answer, then hands the session back to the strand to
// read the next request), repeats while keep-alive holds.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerCore> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    // Beast reads at most the buffer's free capacity (512 bytes when empty)
    // and the parser empties it into the body as it goes, so an unreserved
    // buffer reads a 4 KiB request in 9 recvmsg calls, each re-arming the
    // read timer.
    buffer_.reserve(kReadBufferBytes);
  }
  ~Session() { server_->session_closed(this); }

  // Each on the session's strand.
  void start() { read_header(); }
  void reject_over_limit() {
    respond_error(Error(Code::unavailable, "server has reached its limit of " +
                                               std::to_string(server_->options.max_connections) +
                                               " connections; retry later"),
                  http::status::service_unavailable, /*keep_alive=*/false);
  }
  void begin_drain(bool force) {
    draining_.store(true);
    if (force || state_ == State::idle) close();
  }
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  enum class State { idle, reading, busy, writing };
  static constexpr std::size_t kReadBufferBytes = 16 * 1024;

  class Info final : public RequestInfo {
   public:
    explicit Info(const http::request<http::string_body>& req) : req_(req) {}
    std::optional<std::string_view> header(std::string_view name) const override {
      auto it = req_.find(beast::string_view(name.data(), name.size()));
      if (it == req_.end()) return std::nullopt;
      return std::string_view(it->value().data(), it->value().size());
    }

   private:
    const http::request<http::string_body>& req_;
  };

  void read_header() {
    state_ = State::idle;
    if (draining_.load()) return close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
    stream_.expires_after(server_->options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    state_ = State::reading;
    stream_.expires_after(server_->options.read_timeout);
    auto& req = parser_->get();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      // curl sends Expect for larger bodies and waits for this before sending.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_body(ec);
                     });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return respond_error(
          Error(Code::resource_exhausted, "request body exceeds the server's limit of " +
                                              std::to_string(server_->options.max_body_bytes) + " bytes"),
          http::status::payload_too_large, false);
    }
    if (ec == http::error::header_limit) {
      return respond_error(
          Error(Code::resource_exhausted, "request headers exceed the server's limit of " +
                                              std::to_string(server_->options.max_header_bytes) + " bytes"),
          http::status::request_header_fields_too_large, false);
    }
    if (ec == beast::error::timeout && state_ == State::reading) {
      return respond_error(
          Error(Code::deadline_exceeded, "request body not received within the server's read timeout of " +
                                             std::to_string(server_->options.read_timeout.count()) + " ms"),
          http::status::request_timeout, false);
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return respond_error(Error(Code::invalid_argument, "malformed HTTP request: " + ec.message()),
                           http::status::bad_request, false);
    }
    close();  // peer closed, idle timeout, drain: nothing to answer
  }

  void on_body(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    state_ = State::busy;
    stream_.expires_never();
    request_ = parser_->release();
    received_ = Clock::now();
    handle();
  }

  void handle() {
    const auto& req = request_;
    const std::string_view target(req.target().data(), req.target().size());
    const bool keep = req.keep_alive();
    if (target == "/healthz" && req.method() == http::verb::get) {
      return respond(http::status::ok, "text/plain", "ok\n", keep);
    }
    const Method* method = server_->table.find(target);
    if (method == nullptr) {
      return reject(Error(Code::unimplemented, "no function is served at " + std::string(target.substr(0, 200))),
                    http::status::not_found, keep);
    }
    if (req.method() != http::verb::post) {
      return reject(Error(Code::unimplemented, std::string(req.method_string()) + " " + std::string(target) +
                                                   ": Connect unary calls are POST requests"),
                    http::status::method_not_allowed, keep);
    }
    const auto content_type = req[http::field::content_type];
    const auto encoding =
        connect::encoding_from_content_type(std::string_view(content_type.data(), content_type.size()));
    if (!encoding) {
      return reject(Error(Code::unimplemented, "content type '" + std::string(content_type) +
                                                   "' is not supported; use application/proto or application/json"),
                    http::status::unsupported_media_type, keep);
    }
    encoding_ = *encoding;
    if (auto v = req.find("connect-protocol-version"); v != req.end() && v->value() != "1") {
      return reject(Error(Code::invalid_argument, "Connect-Protocol-Version must be 1, got '" +
                                                      std::string(v->value()) + "'"),
                    http::status::bad_request, keep);
    }
    if (auto v = req.find(http::field::content_encoding); v != req.end() && !beast::iequals(v->value(), "identity")) {
      return reject(Error(Code::unimplemented, "Content-Encoding '" + std::string(v->value()) +
                                                   "' is not supported; send the body uncompressed"),
                    http::status::not_implemented, keep);
    }
    CallContext context;
    if (auto v = req.find("connect-timeout-ms"); v != req.end()) {
      auto timeout = connect::parse_timeout(std::string_view(v->value().data(), v->value().size()));
      if (!timeout.ok()) return reject(timeout.error(), http::status::bad_request, keep);
      context.deadline = received_ + *timeout;
    }
    if (auto v = req.find("dispatch-attempt"); v != req.end()) {
      auto attempt = connect::parse_attempt(std::string_view(v->value().data(), v->value().size()));
      if (!attempt.ok()) return reject(attempt.error(), http::status::bad_request, keep);
      context.attempt = *attempt;
    }
    if (server_->options.authenticate) {
      Info info(req);
      info.method = std::string_view(req.method_string().data(), req.method_string().size());
      info.path = target;
      const auto host = req[http::field::host];
      info.authority = std::string_view(host.data(), host.size());
      info.content_type = std::string_view(content_type.data(), content_type.size());
      info.body = req.body();
      auto allowed = server_->options.authenticate(info);
      if (!allowed.ok()) {
        return reject(allowed.error(),
                      static_cast<http::status>(code_to_http_status(allowed.error().code())), keep);
      }
    }
    keep_alive_ = keep;
    if (server_->options.verifier || server_->options.bearer_keys) {
      // An Ed25519 verify costs tens of microseconds: on a worker, so this I/O
      // thread goes on parsing other connections' requests meanwhile.
      asio::post(*server_->workers, [self = shared_from_this(), method, context = std::move(context)]() mutable {
        auto allowed = self->check_credentials();
        if (!allowed.ok()) return self->reject_from_worker(std::move(allowed).error());
        self->decode_and_call(*method, std::move(context), /*on_worker=*/true);
      });
      return;
    }
    decode_and_call(*method, std::move(context), /*on_worker=*/false);
  }

  // The built-in checks (ServerOptions::bearer_keys, verifier) over the
  // received request. On a worker thread: request_ is not touched by the
  // strand while the session is busy.
  Result<void> check_credentials() const {
    const auto& req = request_;
    // Repeated header lines are combined with ", " (RFC 9110 5.3), as the
    // signature base requires; the combined strings live until we return (a
    // deque: growing it does not move the strings the views point into).
    std::deque<std::string> combined;
    security::HttpRequestView view;
    view.method = std::string_view(req.method_string().data(), req.method_string().size());
    view.target = std::string_view(req.target().data(), req.target().size());
    const auto host = req[http::field::host];
    view.authority = std::string_view(host.data(), host.size());
    view.body = req.body();
    view.header = [&req, &combined](std::string_view name) -> std::optional<std::string_view> {
      auto [first, last] = req.equal_range(beast::string_view(name.data(), name.size()));
      if (first == last) return std::nullopt;
      if (std::next(first) == last) return std::string_view(first->value().data(), first->value().size());
      std::string joined;
      for (auto it = first; it != last; ++it) {
        if (!joined.empty()) joined += ", ";
        joined.append(it->value().data(), it->value().size());
      }
      return std::string_view(combined.emplace_back(std::move(joined)));
    };
    return transport::check_credentials(server_->options.verifier.get(), server_->options.bearer_keys.get(),
                                        view);
  }

  // reject() from a worker thread: on the session's strand.
  void reject_from_worker(Error error) {
    const auto status = static_cast<http::status>(code_to_http_status(error.code()));
    reject_from_worker(std::move(error), status);
  }
  void reject_from_worker(Error error, http::status status) {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), error = std::move(error), status] {
      self->reject(error, status, self->keep_alive_);
    });
  }

  // JSON to binary, then the call: on the strand (posts the call to the
  // workers) or already on a worker (runs it here).
  void decode_and_call(const Method& method, CallContext context, bool on_worker) {
    const Route& route = server_->routes.at(&method);
    std::string body = std::move(request_.body());
    if (encoding_ == connect::Encoding::json) {
      auto fail = [&](Error error, http::status status) {
        if (on_worker) return reject_from_worker(std::move(error), status);
        reject(error, status, keep_alive_);
      };
      if (route.codec == nullptr) {
        return fail(Error(Code::unimplemented, "JSON is not available for " + route.log_name + ": " +
                                                   route.codec_problem + "; use application/proto"),
                    http::status::unsupported_media_type);
      }
      // An empty JSON body is the empty message, as for binary.
      auto binary = route.codec->to_binary(method.request_type, body.empty() ? "{}" : body);
      if (!binary.ok()) return fail(std::move(binary).error(), http::status::bad_request);
      body = std::move(*binary);
    }
    if (on_worker) return run_call(method, std::move(body), std::move(context));
    asio::post(*server_->workers, [self = shared_from_this(), &method, context = std::move(context),
                                   body = std::move(body)]() mutable {
      self->run_call(method, std::move(body), std::move(context));
    });
  }

  // On a worker thread.
  void run_call(const Method& method, std::string body, CallContext context) {
    const auto started = Clock::now();
    const Route& route = server_->routes.at(&method);
    server_->options.logger.log(LogLevel::debug, "calling: " + route.log_name);
    Result<std::string> result = [&]() -> Result<std::string> {
      if (context.expired()) {
        return Error(Code::deadline_exceeded, std::string(method.path) +
                                                  ": deadline passed before the function could start");
      }
      auto r = server_->table.invoke(method, body, context);
      if (r.ok() && context.expired()) {
        return Error(Code::deadline_exceeded, std::string(method.path) + " ran past its deadline (" +
                                                  format_ms(*context.deadline - received_) + ")");
      }
      return r;
    }();
    const auto elapsed = Clock::now() - started;
    if (result.ok() && encoding_ == connect::Encoding::json) {
      result = route.codec->to_json(method.response_type, *result);
    }
    const Logger& logger = server_->options.logger;
    if (logger.enabled(LogLevel::info)) {
      std::string line = "executing: " + route.log_name + " -> " +
                         std::string(code_name(result.ok() ? Code::ok : result.error().code())) + " in " +
                         format_ms(elapsed);
      if (!result.ok()) line += ": " + result.error().message();
      logger.log(result.ok() || result.error().code() != Code::internal ? LogLevel::info : LogLevel::warn,
                 line);
    }
    if (!result.ok()) {
      const auto status = static_cast<http::status>(code_to_http_status(result.error().code()));
      prepare_response(status, connect::kJsonContentType, connect::error_to_json(result.error()), keep_alive_);
    } else {
      prepare_response(http::status::ok,
                       encoding_ == connect::Encoding::json ? connect::kJsonContentType : connect::kProtoContentType,
                       std::move(*result), keep_alive_);
    }
    write_from_worker();
  }

  // On a worker thread, the answer prepared. The worker writes it itself when
  // the socket takes it whole without waiting (the usual case: header and
  // body in one sendmsg), so the client gets its answer without first waking
  // the I/O thread; only the read of the next request goes back there. While
  // the session is busy nothing on the strand touches the socket except
  // close() (a forced drain), which socket_mu_ keeps apart from this write.
  void write_from_worker() {
    beast::error_code ec;
    {
      std::lock_guard lock(socket_mu_);
      if (closed_) return;  // forced drain: nobody is waiting for this answer
      serializer_.emplace(response_);
      http::write(stream_.socket(), *serializer_, ec);
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), ec] {
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        // The socket's buffer is full (a big answer or a slow reader): the
        // rest goes out asynchronously under the write timeout.
        return self->finish_write();
      }
      self->after_write(ec);
    });
  }

  // A request refused before any function ran: logged at warn, answered.
  void reject(const Error& error, http::status status, bool keep_alive) {
    server_->options.logger.log(
        LogLevel::warn, "rejected " + std::string(request_.method_string()) + " " +
                            std::string(request_.target().substr(0, 200)) + ": " + std::to_string(static_cast<int>(status)) +
                            " " + error.what());
    respond_error(error, status, keep_alive);
  }

  void respond_error(const Error& error, http::status status, bool keep_alive) {
    respond(status, connect::kJsonContentType, connect::error_to_json(error), keep_alive);
  }

  void respond(http::status status, std::string_view content_type, std::string body, bool keep_alive) {
    prepare_response(status, content_type, std::move(body), keep_alive);
    serializer_.emplace(response_);
    finish_write();
  }

  // On the strand, or on the worker that owns the busy session.
  void prepare_response(http::status status, std::string_view content_type, std::string body, bool keep_alive) {
    response_ = {};
    response_.result(static_cast<unsigned>(status));
    response_.version(11);
    response_.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
    if (status == http::status::method_not_allowed) response_.set(http::field::allow, "POST");
    if (status == http::status::unsupported_media_type) {
      response_.set(http::field::accept_post, "application/proto, application/json");
    }
    response_.body() = std::move(body);
    response_.keep_alive(keep_alive && !draining_.load());
    response_.prepare_payload();
  }

  // On the strand: writes what serializer_ has not written yet.
  void finish_write() {
    state_ = State::writing;
    stream_.expires_after(server_->options.read_timeout);
    http::async_write(stream_, *serializer_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->after_write(ec); });
  }

  void after_write(beast::error_code ec) {
    if (ec || !response_.keep_alive()) return close();
    read_header();
  }

  void close() {
    std::lock_guard lock(socket_mu_);
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerCore> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::mutex socket_mu_;  // a worker's write of an answer vs close() on the strand
  bool closed_ = false;   // guarded by socket_mu_
  Clock::time_point received_;
  connect::Encoding encoding_ = connect::Encoding::proto;
  bool keep_alive_ = true;
  std::atomic<bool> draining_{false};  // set on the strand, read by the worker answering
  State state_ = State::idle;
};

void ServerCore::build_routes() {
  for (const Service* service : table.services()) {
    Route base;
    auto codec = connect::JsonCodec::create(service->file_descriptor);
    if (codec.ok()) {
      base.codec = codec->get();
      codecs.push_back(std::move(*codec));
    } else {
      base.codec_problem = codec.error().message();
    }
    for (std::size_t i = 0; i < service->method_count; ++i) {
      Route route = base;
      route.log_name = std::string(service->package) + (service->package[0] ? "." : "") +
                       service->methods[i].name;
      routes.emplace(&service->methods[i], std::move(route));
    }
  }
}

Result<void> ServerCore::start() {
  {
    std::lock_guard lock(mu);
    if (started) return {};
    started = true;
  }
  build_routes();
  const std::string where = options.host + ":" + std::to_string(options.port);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    std::lock_guard lock(mu);
    started = false;
    return Error(Code::unavailable, "cannot resolve listen address " + where + ": " + ec.message());
  }
  const tcp::endpoint endpoint = *endpoints.begin();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::lock_guard lock(mu);
    started = false;  // nothing runs: stop()/drain() have nothing to wait for
    return Error(Code::unavailable, "cannot listen on " + where + ": " + ec.message());
  }
  bound_port = acceptor.local_endpoint().port();

  std::size_t n_workers = options.workers ? options.workers : std::thread::hardware_concurrency();
  workers = std::make_unique<asio::thread_pool>(n_workers ? n_workers : 1);
  work.emplace(ioc.get_executor());
  asio::post(acceptor.get_executor(), [self = shared_from_this()] { self->accept(); });
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options.io_threads); ++i) {
    io_threads.emplace_back([this] { ioc.run(); });
  }
  options.logger.log(LogLevel::info, "listening on http://" + options.host + ":" +
                                         std::to_string(bound_port.load()) + " (" +
                                         std::to_string(routes.size()) +
                                         (routes.size() == 1 ? " function)" : " functions)"));
  if (options.verifier) {
    options.logger.log(LogLevel::info, "verifying request signatures (RFC 9421, Ed25519)");
  } else if (options.warn_if_unverified) {
    options.logger.log(LogLevel::warn,
                       "DISPATCH_VERIFICATION_KEY is not set: requests are not verified, so anyone who can "
                       "reach this address can call its functions");
  }
  return {};
}

void ServerCore::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [self = shared_from_this()](beast::error_code ec,
                                                                            tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!ec) {
      // Without TCP_NODELAY, Nagle holds a reply's segment until the client
      // ACKs the previous one, and the client's delayed ACK waits 40 ms.
      // Non-blocking (for synchronous calls only; asynchronous ones always
      // are): a worker's write of an answer must never wait for a slow reader.
      beast::error_code option_ec;
      socket.set_option(tcp::no_delay(true), option_ec);
      socket.non_blocking(true, option_ec);
      auto session = std::make_shared<Session>(std::move(socket), self);
      bool over_limit;
      {
        std::lock_guard lock(self->mu);
        over_limit = self->sessions.size() >= self->options.max_connections;
        self->sessions.emplace(session.get(), session);
      }
      asio::dispatch(session->executor(), [session, over_limit] {
        if (over_limit) {
          session->reject_over_limit();
        } else {
          session->start();
        }
      });
    } else {
      // EMFILE and friends: keep accepting; the log says why connections fail.
      self->options.logger.log(LogLevel::error, "accept failed: " + ec.message());
    }
    self->accept();
  });
}

void ServerCore::begin_drain(bool force) {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mu);
    if ((draining && !force) || threads_joined) return;
    draining = true;
    cv.notify_all();
    // Never started: nothing runs the io_context, so post nothing to it.
    if (!started) return;
    force_close = force_close || force;
    for (auto& [_, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    cv.notify_all();
  }
  options.logger.log(LogLevel::info, force ? "stopping: closing all connections"
                                           : "draining: no new connections; finishing in-flight calls");
  asio::post(acceptor.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor.close(ignored);
    if (self->signals) self->signals->cancel(ignored);
  });
  for (auto& s : live) {
    asio::post(s->executor(), [s, force] { s->begin_drain(force); });
  }
}

void ServerCore::wait_and_shutdown() {
  std::call_once(shutdown_once, [this] {
    {
      std::unique_lock lock(mu);
      if (!started) return;
      const bool drained = cv.wait_for(lock, options.drain_timeout, [this] { return sessions.empty(); });
      if (!drained) {
        lock.unlock();
        options.logger.log(LogLevel::warn, "drain timeout: closing the remaining connections");
        begin_drain(/*force=*/true);
        lock.lock();
        cv.wait_for(lock, std::chrono::seconds(5), [this] { return sessions.empty(); });
      }
    }
    // Workers first: a call still running posts its answer to the io_context.
    if (workers) workers->join();
    work.reset();
    ioc.stop();
    for (auto& t : io_threads) t.join();
    // Run what the stop left queued (aborted reads, the acceptor's last
    // handler): their captures hold this Impl, and must not outlive it.
    ioc.restart();
    ioc.run();
    std::lock_guard lock(mu);
    threads_joined = true;
    cv.notify_all();
  });
}

struct Server::Impl : ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(const DispatchTable& table, ServerOptions options)
    : impl_(std::make_shared<Impl>(table, std::move(options))) {}

Server::~Server() { stop(); }

Result<void> Server::start() { return impl_->start(); }

uint16_t Server::port() const noexcept { return impl_->bound_port.load(); }

void Server::handle_signals() {
  impl_->signals.emplace(impl_->ioc, SIGINT, SIGTERM);
  impl_->signals->async_wait([weak = std::weak_ptr<ServerCore>(impl_)](beast::error_code ec, int signal) {
    if (ec) return;
    if (auto impl = weak.lock()) {
      impl->options.logger.log(LogLevel::info,
                               std::string("received ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT"));
      impl->begin_drain(false);
    }
  });
}

Result<void> Server::run() {
  auto started = impl_->start();
  if (!started.ok()) return started;
  {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [this] { return impl_->draining; });
  }
  impl_->wait_and_shutdown();
  impl_->options.logger.log(LogLevel::info, "stopped");
  return {};
}

void Server::drain() {
  impl_->begin_drain(false);
  impl_->wait_and_shutdown();
}

void Server::stop() {
  impl_->begin_drain(true);
  impl_->wait_and_shutdown();
}

}  // namespace dispatch
