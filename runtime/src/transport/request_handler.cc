// RequestHandler: one request in, one answer out, no I/O (see the header).
#include "transport/request_handler.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <cstdio>
#include <deque>
#include <functional>
#include <utility>

#include "dispatch/security/signature.h"
#include "transport/cors.h"
#include "transport/grpc_framing.h"
#include "transport/grpc_services.h"
#include "transport/http_text.h"
#include "transport/secure_options.h"

namespace dispatch::transport {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

std::string format_ms(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", std::chrono::duration<double, std::milli>(d).count());
  return buf;
}

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

Response make_response(http::status status, std::string_view content_type, std::string body, bool keep_alive) {
  Response response;
  response.result(status);
  response.version(11);
  response.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  if (status == http::status::method_not_allowed) response.set(http::field::allow, "POST");
  if (status == http::status::unsupported_media_type) {
    response.set(http::field::accept_post, "application/proto, application/json");
  }
  response.body() = std::move(body);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

// Connect unary compression (Content-Encoding / Accept-Encoding): gzip
// through zlib, beside identity.
enum class Coding { identity, gzip };

// A Content-Encoding value: none or "identity" is identity; "gzip" (any
// case); anything else is not supported (nullopt).
std::optional<Coding> coding_of(std::string_view value) {
  const beast::string_view v(value.data(), value.size());
  if (v.empty() || beast::iequals(v, "identity")) return Coding::identity;
  if (beast::iequals(v, "gzip")) return Coding::gzip;
  return std::nullopt;
}

// Whether an Accept-Encoding item's parameters give it weight 0 ("q=0",
// "q=0.000"): RFC 9110 12.4.2, "not acceptable".
bool weighs_zero(std::string_view params) {
  bool zero = false;
  find_list_item(
      params,
      [&](std::string_view param) {
        if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
          const std::string_view weight = trim_ows(param.substr(2));
          zero = !weight.empty() && weight.find_first_not_of("0.") == std::string_view::npos;
        }
        return false;  // the last weight counts
      },
      ';');
  return zero;
}

// The answer's coding: the first of the client's Accept-Encoding list
// (ordered by preference, as the Connect protocol reads it; weights other
// than q=0, which refuses a coding, are ignored) that is supported; without
// the header, the request's own coding. Identity when nothing listed is
// supported.
Coding reply_coding_for(std::optional<std::string_view> accept, Coding request) {
  if (!accept) return request;
  Coding chosen = Coding::identity;
  find_list_item(*accept, [&](std::string_view item) {
    const std::size_t semi = item.find(';');
    if (semi != std::string_view::npos && weighs_zero(item.substr(semi + 1))) return false;
    auto c = coding_of(trim_ows(item.substr(0, semi)));
    if (c) chosen = *c;
    return c.has_value();
  });
  return chosen;
}

// The refusal of a Content-Encoding other than gzip and identity.
Error unsupported_coding(const Request& req) {
  return Error(Code::unimplemented, "Content-Encoding '" + std::string(req[http::field::content_encoding]) +
                                        "' is not supported; supported: gzip, identity");
}

// Answers smaller than this go uncompressed even to a client that accepts
// gzip: gzip's own 18 bytes of framing and zlib's time are not repaid.
constexpr std::size_t kCompressMinBytes = 1024;

// The path a request is routed by: its target without the query. Connect
// unary POSTs carry no query, but a proxy or client may add one
// (`/shop.ApiService/add?trace=1` is still add).
std::string_view route_path(std::string_view target) { return target.substr(0, target.find('?')); }

// What a signature check sees of a request. Repeated header lines are
// combined with ", " (RFC 9110 5.3), as the signature base requires; the
// combined strings live in `combined` (a deque: growing it does not move the
// strings the views point into).
security::HttpRequestView signature_view(const Request& req, std::deque<std::string>& combined) {
  security::HttpRequestView v;
  v.method = view(req.method_string());
  v.target = view(req.target());
  v.authority = view(req[http::field::host]);
  v.body = req.body();
  v.header = [&req, &combined](std::string_view name) -> std::optional<std::string_view> {
    auto [first, last] = req.equal_range(beast::string_view(name.data(), name.size()));
    if (first == last) return std::nullopt;
    if (std::next(first) == last) return view(first->value());
    std::string joined;
    for (auto it = first; it != last; ++it) {
      if (!joined.empty()) joined += ", ";
      joined.append(it->value().data(), it->value().size());
    }
    return std::string_view(combined.emplace_back(std::move(joined)));
  };
  return v;
}

class Info final : public RequestInfo {
 public:
  Info(const Request& req, std::string_view path) : req_(req) {
    method = view(req.method_string());
    this->path = path;
    authority = view(req[http::field::host]);
    content_type = view(req[http::field::content_type]);
    body = req.body();
  }
  std::optional<std::string_view> header(std::string_view name) const override {
    auto it = req_.find(beast::string_view(name.data(), name.size()));
    if (it == req_.end()) return std::nullopt;
    return view(it->value());
  }
  void for_each_header(const std::function<void(std::string_view, std::string_view)>& f) const override {
    for (const auto& field : req_) f(view(field.name_string()), view(field.value()));
  }

 private:
  const Request& req_;
};

// GET probes beside /healthz, for the platforms that run a server: Knative
// and Kubernetes (/health/liveness, /health/readiness) and OpenFaaS (/_/health,
// /_/ready). A readiness probe fails once a drain has begun, so the platform
// stops sending new requests while the in-flight ones finish.
enum class Probe { none, liveness, readiness };
Probe probe_for(std::string_view path) {
  if (path == "/healthz" || path == "/health/liveness" || path == "/_/health") return Probe::liveness;
  if (path == "/health/readiness" || path == "/_/ready") return Probe::readiness;
  return Probe::none;
}

}  // namespace

void BeastRequestHeaders::for_each(const Visitor& visit) const {
  std::string name;
  for (const auto& field : request_) {
    name = lowercase_ascii(std::string(field.name_string()));
    visit(name, view(field.value()));
  }
}

void add_function_headers(Response& response, const ResponseHeaders& headers) {
  // Lines as the function gave them (checked by ResponseHeaders::add(),
  // which keeps out every name the server writes itself).
  for (const auto& [name, value] : headers.lines()) {
    response.insert(beast::string_view(name.data(), name.size()), beast::string_view(value.data(), value.size()));
  }
}

std::string_view protocol_name(Protocol protocol) noexcept {
  switch (protocol) {
    case Protocol::connect:
      return "connect";
    case Protocol::grpc:
      return "grpc";
    case Protocol::grpc_web:
      return "grpc-web";
  }
  return "connect";
}

Response error_response(const Error& error, http::status status, bool keep_alive) {
  return make_response(status, connect::kJsonContentType, connect::error_to_json(error), keep_alive);
}

namespace {

// Why a request could not be read: the error and its HTTP status, or
// nullopt when nobody is there to answer.
std::optional<std::pair<Error, http::status>> read_error(beast::error_code ec, const ServerOptions& options) {
  if (ec == http::error::body_limit) {
    return std::pair{Error(Code::resource_exhausted,
                           "request body exceeds the server's limit of " + std::to_string(options.max_body_bytes) +
                               " bytes"),
                     http::status::payload_too_large};
  }
  if (ec == http::error::header_limit) {
    return std::pair{Error(Code::resource_exhausted, "request headers exceed the server's limit of " +
                                                         std::to_string(options.max_header_bytes) + " bytes"),
                     http::status::request_header_fields_too_large};
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return std::pair{Error(Code::invalid_argument, "malformed HTTP request: " + ec.message()),
                     http::status::bad_request};
  }
  return std::nullopt;
}

}  // namespace

std::optional<Response> read_error_response(beast::error_code ec, const ServerOptions& options) {
  auto error = read_error(ec, options);
  if (!error) return std::nullopt;
  return error_response(error->first, error->second, false);
}

RequestHandler::RequestHandler(const DispatchTable& table, const ServerOptions& options)
    : table_(table),
      options_(options),
      metrics_(options.metrics ? options.metrics : std::make_shared<metrics::Registry>()) {
  in_flight_ = &metrics_->gauge("dispatch_server_calls_in_flight", "Calls running now, on any protocol.");
  for (const Service* service : table.services()) {
    const connect::JsonCodec* codec = nullptr;
    std::string problem;
    auto created = connect::JsonCodec::create(service->file_descriptor);
    if (created.ok()) {
      codec = created->get();
      codecs_.push_back(std::move(*created));
    } else {
      problem = created.error().message();
    }
    for (std::size_t i = 0; i < service->method_count; ++i) {
      auto route = std::make_unique<Route>();
      route->log_name = std::string(service->package) + (service->package[0] ? "." : "") +
                        service->methods[i].name;
      route->codec = codec;
      route->codec_problem = problem;
      if (codec != nullptr) {
        const std::string full = std::string(service->package) + (service->package[0] ? "." : "") + service->name +
                                 "." + service->methods[i].name;
        const auto* described = codec->pool().FindMethodByName(full);
        route->get = described != nullptr &&
                     described->options().idempotency_level() == google::protobuf::MethodOptions::NO_SIDE_EFFECTS;
      }
      route->duration = &metrics_->histogram(
          "dispatch_server_call_duration_seconds",
          "Time a function took to run, from the decoded request to its result, in seconds.",
          metrics::latency_buckets(), {{"function", route->log_name}});
      routes_.emplace(&service->methods[i], std::move(route));
    }
  }
  grpc_services_ = std::make_unique<GrpcServices>(table, options.logger);
}

RequestHandler::~RequestHandler() = default;

Result<std::string> RequestHandler::request_from_json(const Method& method, std::string_view json) const {
  auto it = routes_.find(&method);
  if (it == routes_.end()) return Error(Code::unimplemented, "JSON is not available for " + std::string(method.name));
  return request_from_json(*it->second, method, json);
}

Result<std::string> RequestHandler::reply_to_json(const Method& method, std::string_view binary) const {
  auto it = routes_.find(&method);
  if (it == routes_.end()) return Error(Code::unimplemented, "JSON is not available for " + std::string(method.name));
  return reply_to_json(*it->second, method, binary);
}

Result<std::string> RequestHandler::request_from_json(const Route& route, const Method& method,
                                                      std::string_view json) const {
  if (route.codec == nullptr) {
    return Error(Code::unimplemented, "JSON is not available for " + route.log_name + ": " + route.codec_problem +
                                          "; send protobuf (application/proto, application/grpc or "
                                          "application/grpc-web+proto)");
  }
  // An empty JSON body is the empty message, as for binary.
  return route.codec->to_binary(method.request_type, json.empty() ? "{}" : json);
}

Result<std::string> RequestHandler::reply_to_json(const Route& route, const Method& method,
                                                  std::string_view binary) const {
  if (route.codec == nullptr) {
    return Error(Code::unimplemented, "JSON is not available for " + route.log_name + ": " + route.codec_problem);
  }
  return route.codec->to_json(method.response_type, binary);
}

bool RequestHandler::is_quick(const Method& method) const {
  if (method.waits) return false;
  auto it = routes_.find(&method);
  return it == routes_.end() || !it->second->slow.load(std::memory_order_relaxed);
}

RequestHandler::Place RequestHandler::place(const Method& method) const {
  if (method.waits) return Place::waiting;
  return is_quick(method) ? Place::io_thread : Place::workers;
}

const Method& RequestHandler::target(const Method& method, std::string_view request) const {
  if (method.runs == nullptr) return method;
  const Method* runs = method.runs(table_, request);
  return runs != nullptr && routes_.count(runs) != 0 ? *runs : method;
}

metrics::Counter& RequestHandler::calls_counter(const Route& route, Protocol protocol, Code code) const {
  const auto c = static_cast<std::size_t>(code) < kCodes ? static_cast<std::size_t>(code) : 2;  // unknown
  std::atomic<metrics::Counter*>& slot = route.calls[static_cast<std::size_t>(protocol)][c];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // First call with this code: the registry's lock, once per series.
    counter = &metrics_->counter("dispatch_server_calls_total",
                                 "Calls that reached a function, by function, protocol and outcome code.",
                                 {{"function", route.log_name},
                                  {"protocol", std::string(protocol_name(protocol))},
                                  {"code", std::string(code_name(static_cast<Code>(c)))}});
    slot.store(counter, std::memory_order_release);
  }
  return *counter;
}

void RequestHandler::count_rejected(Protocol protocol, Code code) const {
  const auto c = static_cast<std::size_t>(code) < kCodes ? static_cast<std::size_t>(code) : 2;
  std::atomic<metrics::Counter*>& slot = rejected_[static_cast<std::size_t>(protocol)][c];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter = &metrics_->counter(
        "dispatch_server_rejected_total",
        "Requests answered with an error before reaching a function (unknown path, bad headers, credentials), "
        "by protocol and code.",
        {{"protocol", std::string(protocol_name(protocol))}, {"code", std::string(code_name(static_cast<Code>(c)))}});
    slot.store(counter, std::memory_order_release);
  }
  counter->inc();
}

std::optional<Response> RequestHandler::refuse_unread(beast::error_code ec) const {
  auto error = read_error(ec, options_);
  if (!error) return std::nullopt;
  count_rejected(Protocol::connect, error->first.code());
  return error_response(error->first, error->second, false);
}

std::optional<Response> RequestHandler::refuse_head(Request& req) const {
  // Refused as any request is (counted, logged), and the connection closed.
  auto refuse = [&](Code code, std::string message, http::status status) {
    Response refused = reject(req, Error(code, std::move(message)), status);
    refused.keep_alive(false);
    return refused;
  };
  // RFC 9112 6.1 and 6.3: the codings of every Transfer-Encoding line, in
  // order; chunked must be the last and come once.
  int chunked = 0;
  bool chunked_last = false;
  std::string other;
  for (auto [it, end] = req.equal_range(http::field::transfer_encoding); it != end; ++it) {
    find_list_item(view(it->value()), [&](std::string_view item) {
      const std::string_view name = trim_ows(item.substr(0, item.find(';')));
      chunked_last = beast::iequals(beast::string_view(name.data(), name.size()), "chunked");
      if (chunked_last) {
        ++chunked;
      } else if (other.empty()) {
        other = std::string(name.substr(0, 64));
      }
      return false;
    });
  }
  if (req.count(http::field::transfer_encoding) != 0) {
    if (!chunked_last || chunked > 1) {
      return refuse(Code::invalid_argument,
                    "Transfer-Encoding '" + std::string(req[http::field::transfer_encoding].substr(0, 100)) +
                        "' does not end in chunked exactly once, so the request's length cannot be known "
                        "(RFC 9112 6.3)",
                    http::status::bad_request);
    }
    if (!other.empty()) {
      return refuse(Code::unimplemented,
                    "transfer coding '" + other + "' is not supported; only chunked (compress a body with "
                                                  "Content-Encoding: gzip)",
                    http::status::not_implemented);
    }
  }
  // RFC 9112 3.2.2: an absolute-form target names the authority itself.
  const std::string_view target = view(req.target());
  const std::size_t scheme_end = target.find("://");
  if (scheme_end != std::string_view::npos && target.front() != '/') {
    const std::string_view scheme = target.substr(0, scheme_end);
    if (!beast::iequals(beast::string_view(scheme.data(), scheme.size()), "http") &&
        !beast::iequals(beast::string_view(scheme.data(), scheme.size()), "https")) {
      return refuse(Code::invalid_argument,
                    "request target '" + std::string(target.substr(0, 100)) + "' is not a path or an http(s) URL",
                    http::status::bad_request);
    }
    const std::string_view rest = target.substr(scheme_end + 3);
    const std::size_t path_at = rest.find_first_of("/?");
    const std::string authority(rest.substr(0, path_at));
    std::string path(path_at == std::string_view::npos ? std::string_view("/") : rest.substr(path_at));
    if (path.front() == '?') path.insert(0, "/");
    if (authority.empty()) {
      return refuse(Code::invalid_argument,
                    "request target '" + std::string(target.substr(0, 100)) + "' names no host",
                    http::status::bad_request);
    }
    req.target(path);
    req.erase(http::field::host);
    req.set(http::field::host, authority);
  }
  // RFC 9112 3.2: exactly one Host line in an HTTP/1.1 request.
  const std::size_t hosts = req.count(http::field::host);
  if (req.version() >= 11 && hosts != 1) {
    return refuse(Code::invalid_argument,
                  hosts == 0 ? std::string("an HTTP/1.1 request needs a Host header (RFC 9112 3.2)")
                             : "the request has " + std::to_string(hosts) + " Host headers; it needs exactly one "
                                                                            "(RFC 9112 3.2)",
                  http::status::bad_request);
  }
  return std::nullopt;
}

Result<void> RequestHandler::admit(const RequestInfo& info, const security::HttpRequestView& request) const {
  if (options_.authenticate) {
    auto allowed = options_.authenticate(info);
    if (!allowed.ok()) return allowed;
  }
  if (options_.verifier || options_.bearer_keys) {
    return check_credentials(options_.verifier.get(), options_.bearer_keys.get(), request);
  }
  return {};
}

Result<void> RequestHandler::admit_headers(const RequestInfo& info, const security::HttpRequestView& request) const {
  if (options_.authenticate) {
    auto allowed = options_.authenticate(info);
    if (!allowed.ok()) return allowed;
  }
  if (options_.bearer_keys) return check_credentials(nullptr, options_.bearer_keys.get(), request);
  return {};
}

CallContext RequestHandler::context_for(const Method& method, std::optional<std::string_view> traceparent,
                                        std::optional<std::string_view> tracestate) const {
  CallContext context;
  context.logger = &options_.logger;
  auto it = routes_.find(&method);
  if (it != routes_.end()) context.function = it->second->log_name;
  context.trace = start_call_trace(traceparent, tracestate);
  return context;
}

RequestHandler::Resolution RequestHandler::resolve(const Request& request) const {
  Resolution r;
  const std::string_view path = route_path(view(request.target()));
  r.named = table_.find(path);
  r.function = r.named;
  // A route running another function (the Dispatch protocol's Run) is
  // placed by that function, when the body is binary protobuf as sent.
  if (r.named != nullptr && r.named->runs != nullptr && request.find(http::field::content_encoding) == request.end()) {
    const std::string_view type = view(request[http::field::content_type]);
    const std::string_view media = trim_ows(type.substr(0, type.find(';')));
    if (connect::encoding_from_content_type(media) == connect::Encoding::proto ||
        beast::iequals(beast::string_view(media.data(), media.size()), "application/octet-stream")) {
      r.function = &target(*r.named, request.body());
    }
  }
  if ((r.named == nullptr || r.named->event != nullptr) && !options_.routes.empty()) {
    const Info info(request, path);
    for (const auto& route : options_.routes) {
      if (route->takes(info)) {
        r.route = route.get();
        r.function = route->function_for(info);
        break;
      }
    }
  }
  return r;
}

bool RequestHandler::is_quick(const Resolution& resolved) const {
  return resolved.function == nullptr || is_quick(*resolved.function);
}

RequestHandler::Place RequestHandler::place(const Resolution& resolved) const {
  return resolved.function == nullptr ? Place::io_thread : place(*resolved.function);
}

void RequestHandler::note_duration(const Route& route, std::chrono::steady_clock::duration elapsed) const {
  const Logger& logger = options_.logger;
  if (elapsed > options_.inline_limit) {
    route.quick_runs.store(0, std::memory_order_relaxed);
    if (!route.slow.exchange(true, std::memory_order_relaxed) && logger.enabled(LogLevel::debug)) {
      logger.log(LogLevel::debug, route.log_name + " ran for " + format_ms(elapsed) +
                                      ": its calls run on the worker pool until " +
                                      std::to_string(kQuickRunsToReturn) + " in a row are quick");
    }
    return;
  }
  if (!route.slow.load(std::memory_order_relaxed)) return;
  // Racing callers may count a run twice or miss one; either only moves the
  // return by a call.
  if (route.quick_runs.fetch_add(1, std::memory_order_relaxed) + 1 < kQuickRunsToReturn) return;
  route.quick_runs.store(0, std::memory_order_relaxed);
  if (route.slow.exchange(false, std::memory_order_relaxed) && logger.enabled(LogLevel::debug)) {
    logger.log(LogLevel::debug, route.log_name + " ran within " + format_ms(options_.inline_limit) + " " +
                                    std::to_string(kQuickRunsToReturn) +
                                    " times in a row: its calls run on the I/O threads again");
  }
}

Response RequestHandler::reject(const Request& req, const Error& error, http::status status) const {
  count_rejected(Protocol::connect, error.code());
  if (options_.logger.enabled(LogLevel::warn)) {
    options_.logger.log(LogLevel::warn, "rejected " + std::string(req.method_string()) + " " +
                                            std::string(req.target().substr(0, 200)) + ": " +
                                            std::to_string(static_cast<int>(status)) + " " + error.what());
  }
  return error_response(error, status, req.keep_alive());
}

Response RequestHandler::serve(Request& req, Clock::time_point received, const Resolution* resolved) const {
  if (options_.cors_origins.empty()) return answer(req, received, resolved);
  // CORS: a preflight from an allowed page is answered before routing and
  // credentials (a browser sends none with it); any other answer to such a
  // page says the page may read it.
  const std::string_view origin = view(req[http::field::origin]);
  if (!cors_allows(options_.cors_origins, origin)) return answer(req, received, resolved);
  if (is_cors_preflight(req)) return cors_preflight(req, origin);
  Response res = answer(req, received, resolved);
  add_cors_fields(res, origin);
  return res;
}

Response RequestHandler::answer(Request& req, Clock::time_point received, const Resolution* resolved) const {
  try {
    const std::string_view target = view(req.target()), path = route_path(target);
    const bool keep = req.keep_alive();
    // The probes and /metrics answer GET, and HEAD with the same header and
    // no body (RFC 9110 9.3.2: a general-purpose server supports both).
    const bool head = req.method() == http::verb::head;
    auto for_method = [head](Response res) {
      if (head) {
        res.content_length(res.body().size());
        res.body().clear();
      }
      return res;
    };
    if (req.method() == http::verb::get || head) {
      const Probe probe = probe_for(path);
      if (probe == Probe::readiness && draining_.load(std::memory_order_relaxed)) {
        return for_method(make_response(http::status::service_unavailable, "text/plain", "draining\n", keep));
      }
      if (probe != Probe::none) return for_method(make_response(http::status::ok, "text/plain", "ok\n", keep));
      if (path == "/metrics") {
        return for_method(
            make_response(http::status::ok, metrics::Registry::kContentType, metrics_->expose(), keep));
      }
    }
    if (grpc::looks_like_grpc(view(req[http::field::content_type]))) return serve_grpc_web(req, received);
    const Resolution r = resolved != nullptr ? *resolved : resolve(req);
    if (r.route != nullptr) return answer_route(req, *r.route, Info(req, path));
    const Method* method = r.named;
    if (method == nullptr) {
      return reject(req, Error(Code::unimplemented, "no function is served at " + std::string(target.substr(0, 200))),
                    http::status::not_found);
    }
    const Route& route = *routes_.at(method);
    if (req.method() == http::verb::get && route.get) {
      if (auto refused = as_post(req)) return std::move(*refused);
    } else if (req.method() != http::verb::post) {
      Response refused = reject(
          req,
          Error(Code::unimplemented, std::string(req.method_string()) + " " + std::string(target.substr(0, 200)) +
                                         (route.get ? ": Connect unary calls are POST or GET requests"
                                                    : ": Connect unary calls are POST requests (GET only for "
                                                      "functions marked idempotency = \"no_side_effects\")")),
          http::status::method_not_allowed);
      refused.set(http::field::allow, route.get ? "GET, POST" : "POST");
      return refused;
    }
    const std::string_view content_type = view(req[http::field::content_type]);
    // Apache Flink StateFun's request-reply protocol POSTs binary protobuf
    // as application/octet-stream and wants its answer the same way.
    const std::string_view media = content_type.substr(0, content_type.find(';'));
    const bool octet_stream = beast::iequals(beast::string_view(media.data(), media.size()), "application/octet-stream");
    const auto encoding = octet_stream ? std::optional<connect::Encoding>(connect::Encoding::proto)
                                       : connect::encoding_from_content_type(content_type);
    if (!encoding) {
      return reject(req,
                    Error(Code::unimplemented, "content type '" + std::string(content_type) +
                                                   "' is not supported; use application/proto or application/json"),
                    http::status::unsupported_media_type);
    }
    if (auto v = req.find("connect-protocol-version"); v != req.end() && v->value() != "1") {
      return reject(req,
                    Error(Code::invalid_argument,
                          "Connect-Protocol-Version must be 1, got '" + std::string(v->value()) + "'"),
                    http::status::bad_request);
    }
    const std::optional<Coding> request_coding = coding_of(view(req[http::field::content_encoding]));
    if (!request_coding) return refuse_body(req, unsupported_coding(req));
    auto header = [&req](std::string_view name) -> std::optional<std::string_view> {
      auto it = req.find(beast::string_view(name.data(), name.size()));
      if (it == req.end()) return std::nullopt;
      return view(it->value());
    };
    CallContext context = context_for(*method, header("traceparent"), header("tracestate"));
    if (auto v = req.find("connect-timeout-ms"); v != req.end()) {
      auto timeout = connect::parse_timeout(view(v->value()));
      if (!timeout.ok()) return reject(req, timeout.error(), http::status::bad_request);
      context.deadline = received + *timeout;
    }
    if (auto v = req.find("dispatch-attempt"); v != req.end()) {
      auto attempt = connect::parse_attempt(view(v->value()));
      if (!attempt.ok()) return reject(req, attempt.error(), http::status::bad_request);
      context.attempt = *attempt;
    }
    if (auto refused = check_access(req, Info(req, path))) return std::move(*refused);
    auto decoded = decoded_body(req);
    if (!decoded.ok()) return refuse_body(req, decoded.error());
    if (*decoded) req.body() = std::move(**decoded);
    Response response = call(req, *method, route, *encoding, octet_stream, std::move(context), received);
    // The client's Accept-Encoding is read only for an answer worth
    // compressing, not on every call.
    if (response.result() == http::status::ok && response.body().size() >= kCompressMinBytes &&
        reply_coding_for(header("accept-encoding"), *request_coding) == Coding::gzip) {
      std::string packed = grpc::gzip_compress(response.body());
      if (!packed.empty()) {
        response.body() = std::move(packed);
        response.set(http::field::content_encoding, "gzip");
        response.prepare_payload();
      }
    }
    return response;
  } catch (...) {
    // Allocation failure, or a logger or hook that threw: still an answer.
    return error_response(error_from_current_exception(), http::status::internal_server_error, false);
  }
}

std::optional<Response> RequestHandler::as_post(Request& req) const {
  const std::string_view target = view(req.target());
  const std::size_t mark = target.find('?');
  auto query = connect::parse_get_query(mark == std::string_view::npos ? std::string_view() : target.substr(mark + 1));
  if (!query.ok()) {
    return reject(req, query.error(),
                  query.error().code() == Code::unimplemented ? http::status::unsupported_media_type
                                                              : http::status::bad_request);
  }
  if (query->message.size() > options_.max_body_bytes) {
    return reject(req,
                  Error(Code::resource_exhausted, "the query's message exceeds the server's limit of " +
                                                      std::to_string(options_.max_body_bytes) + " bytes"),
                  http::status::payload_too_large);
  }
  const std::string_view type =
      query->encoding == connect::Encoding::json ? connect::kJsonContentType : connect::kProtoContentType;
  req.set(http::field::content_type, beast::string_view(type.data(), type.size()));
  if (query->compression.empty()) {
    req.erase(http::field::content_encoding);
  } else {
    req.set(http::field::content_encoding, query->compression);
  }
  req.body() = std::move(query->message);
  req.prepare_payload();
  return std::nullopt;
}

std::optional<Response> RequestHandler::check_access(const Request& req, const RequestInfo& info) const {
  if (!options_.authenticate && !options_.verifier && !options_.bearer_keys) return std::nullopt;
  std::deque<std::string> combined;
  auto allowed = admit(info, signature_view(req, combined));
  if (allowed.ok()) return std::nullopt;
  return reject(req, allowed.error(), static_cast<http::status>(code_to_http_status(allowed.error().code())));
}

Result<std::optional<std::string>> RequestHandler::decoded_body(const Request& req) const {
  const std::optional<Coding> coding = coding_of(view(req[http::field::content_encoding]));
  if (!coding) return unsupported_coding(req);
  // An empty body is not inflated (the Connect protocol says so; it is the
  // empty message).
  if (*coding == Coding::identity || req.body().empty()) return std::optional<std::string>();
  auto plain = grpc::gzip_decompress(req.body(), options_.max_body_bytes);
  if (plain.ok()) return std::optional<std::string>(std::move(*plain));
  if (plain.error().code() == Code::resource_exhausted) {
    return Error(Code::resource_exhausted,
                 "the gzip request body inflates past " + std::to_string(options_.max_body_bytes) + " bytes");
  }
  return Error(Code::invalid_argument,
               "the request body is not valid gzip (Content-Encoding: gzip): " + plain.error().message());
}

Response RequestHandler::refuse_body(const Request& req, const Error& error) const {
  switch (error.code()) {
    case Code::unimplemented: {
      Response refused = reject(req, error, http::status::not_implemented);
      refused.set(http::field::accept_encoding, "gzip, identity");
      return refused;
    }
    case Code::resource_exhausted:
      return reject(req, error, http::status::payload_too_large);
    default:
      return reject(req, error, http::status::bad_request);
  }
}

Response RequestHandler::answer_route(const Request& req, const RequestRoute& route, const RequestInfo& info) const {
  if (auto refused = check_access(req, info)) return std::move(*refused);
  // A route (CloudEvents, StateFun) reads the body as the Connect path does:
  // inflated when it came gzip.
  auto decoded = decoded_body(req);
  if (!decoded.ok()) return refuse_body(req, decoded.error());
  std::optional<Info> inflated;
  if (*decoded) {
    inflated.emplace(req, info.path);
    inflated->body = **decoded;
  }
  CallContext context;
  context.logger = &options_.logger;
  // The functions the route runs (an event's) read the request's headers
  // and add to the answer's, as a Connect call's do.
  const BeastRequestHeaders request_headers(req);
  ResponseHeaders answer_headers;
  context.request_headers = &request_headers;
  context.response_headers = &answer_headers;
  const auto started = Clock::now();
  HttpAnswer answer = route.answer(inflated ? *inflated : info, context);
  if (answer.function != nullptr) {
    if (auto it = routes_.find(answer.function); it != routes_.end()) {
      note_duration(*it->second, Clock::now() - started);
    }
  }
  Response response;
  response.result(static_cast<http::status>(answer.status));
  response.version(11);
  // Lines as given (a route's names are its own, and distinct): inserted,
  // without set()'s search for a line to replace.
  for (auto& [name, value] : answer.headers) {
    response.insert(beast::string_view(name.data(), name.size()), beast::string_view(value.data(), value.size()));
  }
  add_function_headers(response, answer_headers);
  response.body() = std::move(answer.body);
  response.keep_alive(req.keep_alive());
  response.prepare_payload();
  return response;
}

Response RequestHandler::call(Request& req, const Method& method, const Route& route, connect::Encoding encoding,
                              bool octet_stream, CallContext context, Clock::time_point received) const {
  const bool keep = req.keep_alive();
  std::string body = std::move(req.body());
  if (encoding == connect::Encoding::json) {
    auto binary = request_from_json(route, method, body);
    if (!binary.ok()) {
      return reject(req, binary.error(),
                    binary.error().code() == Code::unimplemented ? http::status::unsupported_media_type
                                                                 : http::status::bad_request);
    }
    body = std::move(*binary);
  }
  const BeastRequestHeaders request_headers(req);
  ResponseHeaders answer_headers;
  context.request_headers = &request_headers;
  context.response_headers = &answer_headers;
  Result<std::string> result = run(method, body, context, received, Protocol::connect);
  if (result.ok() && encoding == connect::Encoding::json) result = reply_to_json(route, method, *result);
  Response response =
      result.ok() ? make_response(http::status::ok,
                                  encoding == connect::Encoding::json ? connect::kJsonContentType
                                  : octet_stream                      ? std::string_view("application/octet-stream")
                                                                      : connect::kProtoContentType,
                                  std::move(*result), keep)
                  : error_response(result.error(),
                                   static_cast<http::status>(code_to_http_status(result.error().code())), keep);
  add_function_headers(response, answer_headers);
  return response;
}

Result<std::string> RequestHandler::run(const Method& method, std::string_view request, const CallContext& context,
                                        Clock::time_point received, Protocol protocol) const {
  const Route& route = *routes_.at(&method);
  const Logger& logger = options_.logger;
  const std::string trace_id = context.trace.trace_id_hex();
  const LogFields fields{route.log_name, context.dispatch_id, trace_id};
  if (logger.enabled(LogLevel::debug)) logger.log(LogLevel::debug, "calling: " + route.log_name, fields);
  in_flight_->inc();
  const auto started = Clock::now();
  Result<std::string> result = [&]() -> Result<std::string> {
    if (context.expired()) {
      return Error(Code::deadline_exceeded,
                   std::string(method.path) + ": deadline passed before the function could start");
    }
    auto r = table_.invoke(method, request, context);
    if (r.ok() && context.expired()) {
      return Error(Code::deadline_exceeded, std::string(method.path) + " ran past its deadline (" +
                                                format_ms(*context.deadline - received) + ")");
    }
    return r;
  }();
  const auto elapsed = Clock::now() - started;
  in_flight_->dec();
  // Slow or quick is the function's that ran, which for the Run route is
  // the one its request named.
  const Method& ran = target(method, request);
  note_duration(&ran == &method ? route : *routes_.at(&ran), elapsed);
  route.duration->observe(std::chrono::duration<double>(elapsed).count());
  calls_counter(route, protocol, result.ok() ? Code::ok : result.error().code()).inc();
  if (logger.enabled(LogLevel::info)) {
    std::string line = "executing: " + route.log_name + " -> " +
                       std::string(code_name(result.ok() ? Code::ok : result.error().code())) + " in " +
                       format_ms(elapsed);
    if (protocol != Protocol::connect) line += " (" + std::string(protocol_name(protocol)) + ")";
    if (!result.ok()) line += ": " + result.error().message();
    logger.log(result.ok() || result.error().code() != Code::internal ? LogLevel::info : LogLevel::warn, line,
               fields);
  }
  return result;
}

std::optional<Response> RequestHandler::serve_bytes(std::string_view bytes) const {
  http::request_parser<http::string_body> parser;
  parser.eager(false);  // stops after the head, which is checked before the body is read
  parser.body_limit(options_.max_body_bytes);
  parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
  beast::error_code ec;
  std::size_t used = 0;
  bool head_checked = false;
  while (used < bytes.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    // As a session does: the head is checked before the body is read.
    if (!ec && !head_checked && parser.is_header_done()) {
      head_checked = true;
      if (auto refused = refuse_head(parser.get())) return refused;
      parser.eager(true);
    }
    if (ec == http::error::need_more) {
      ec = {};
      if (n == 0) break;
    } else if (ec) {
      break;
    }
  }
  // The bytes ended mid-request: what the peer closing means to the parser.
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec) return refuse_unread(ec);
  if (!parser.is_done()) return std::nullopt;
  Request request = parser.release();
  return serve(request, Clock::now());
}

}  // namespace dispatch::transport
