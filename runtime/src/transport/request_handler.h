// The server's answer to one complete HTTP request, without a socket:
// routing, the Connect checks (method, content type, protocol version,
// Connect-Timeout-Ms, Dispatch-Attempt), the credential checks, JSON <->
// binary, the call itself, the `executing:` log line, the call metrics and
// the error bodies; GET /metrics and /healthz. http1_session.cc runs it on the
// I/O thread that read the request or on a worker; the fuzz target and tests
// feed it parsed requests or raw bytes. Its protocol-neutral half (admit(),
// run()) serves gRPC calls too (grpc_web.cc, grpc_calls.cc).
//
// Not for: sockets, timeouts, keep-alive and drain (http1_session.cc, http_server.cc), or the
// protocols' pure parts (connect.h, grpc_framing.h).
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dispatch/core/service.h"
#include "dispatch/metrics/registry.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/server.h"
#include "transport/connect.h"

namespace dispatch::transport {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// A Connect error answer: the JSON error body under its HTTP status. The
// payload is prepared (Content-Length set).
Response error_response(const Error& error, boost::beast::http::status status, bool keep_alive);

// The answer to a request that could not be read: a crossed body or header
// limit (413, 431) or malformed HTTP (400), each closing the connection; or
// nullopt when there is nobody to answer (the peer closed, idle timeout).
std::optional<Response> read_error_response(boost::beast::error_code ec, const ServerOptions& options);

class GrpcServices;

// A Connect or gRPC-Web request's headers as its function sees them
// (CallContext::request_headers): Beast's parsed fields, lower-cased as
// they are visited.
class BeastRequestHeaders final : public RequestHeaders {
 public:
  explicit BeastRequestHeaders(const Request& request) : request_(request) {}
  void for_each(const Visitor& visit) const override;

 private:
  const Request& request_;
};

// The headers a function added (CallContext::response_headers) on its
// HTTP/1.1 answer, success or error.
void add_function_headers(Response& response, const ResponseHeaders& headers);

// How a call arrived: a label of the call metrics.
enum class Protocol { connect = 0, grpc = 1, grpc_web = 2 };
std::string_view protocol_name(Protocol protocol) noexcept;

class RequestHandler {
 public:
  // `table` and `options` must outlive the handler. Metrics go to
  // options.metrics, or to a registry of the handler's own when unset.
  RequestHandler(const DispatchTable& table, const ServerOptions& options);
  ~RequestHandler();
  RequestHandler(const RequestHandler&) = delete;
  RequestHandler& operator=(const RequestHandler&) = delete;

  // --- The protocol-neutral half, shared by Connect, gRPC and gRPC-Web ---

  const Method* find(std::string_view path) const noexcept { return table_.find(path); }
  // Whether a call of `method` runs on the I/O thread (not marked slow,
  // and not a function that waits).
  bool is_quick(const Method& method) const;
  // Where a call of `method` runs: on the I/O thread that read it when it
  // is quick, on the workers when not, and on the pool for waiting calls
  // when its function waits (Method::waits).
  enum class Place : uint8_t { io_thread, workers, waiting };
  Place place(const Method& method) const;
  // The function a call of `method` on the binary `request` runs: the one
  // its request names for a route that runs another (Method::runs), else
  // `method`. Calls are placed and marked slow by it.
  const Method& target(const Method& method, std::string_view request) const;
  // The authenticate hook, then the bearer keys, then the signature: the
  // error to answer with, if any.
  Result<void> admit(const RequestInfo& info, const security::HttpRequestView& request) const;
  // The checks a request's headers alone can pass: the authenticate hook
  // and the bearer keys, not the signature (which covers a body). For the
  // streaming built-ins (reflection), whose body is not known up front.
  Result<void> admit_headers(const RequestInfo& info, const security::HttpRequestView& request) const;
  // A call's context: its function, logger and trace context (the
  // traceparent/tracestate headers continued, or a new trace).
  CallContext context_for(const Method& method, std::optional<std::string_view> traceparent,
                          std::optional<std::string_view> tracestate) const;
  // Runs a decoded call: the deadline checks, DispatchTable::invoke(), the
  // slow marking, the `executing:` line and the call metrics. `request` is
  // the binary request message.
  Result<std::string> run(const Method& method, std::string_view request, const CallContext& context,
                          std::chrono::steady_clock::time_point received, Protocol protocol) const;
  // A request refused before it reached a function, for the metrics.
  void count_rejected(Protocol protocol, Code code) const;
  // An HTTP/1.1 request that could not be read (read_error_response's
  // answer), counted as rejected; nullopt when nobody is there to answer.
  std::optional<Response> refuse_unread(boost::beast::error_code ec) const;
  // An HTTP/1.1 request whose head (request line and headers) is read,
  // before its body is: the framing and Host rules of RFC 9112, where a
  // request that breaks them is refused and the connection closed (its
  // body's end cannot be trusted, and a body read as a next request would
  // be a smuggled one):
  //  - Transfer-Encoding must end in chunked, once (else 400), and name no
  //    other coding (501: gzip and others are not supported as transfer
  //    codings; Content-Encoding is the place for gzip);
  //  - an HTTP/1.1 request has exactly one Host line (400);
  //  - an absolute-form target ("http://host/path") is taken as its path,
  //    with the target's authority as Host (RFC 9112 3.2.2), which is why
  //    `request` may change.
  std::optional<Response> refuse_head(Request& request) const;
  // grpc.health.v1.Health and server reflection over this table.
  const GrpcServices& grpc_services() const noexcept { return *grpc_services_; }
  metrics::Registry& metrics() const noexcept { return *metrics_; }
  const ServerOptions& options() const noexcept { return options_; }

  std::size_t function_count() const noexcept { return routes_.size(); }

  // Who answers a request: the function its path names, or the route
  // (ServerOptions::routes) that takes it and the function that route
  // picks. Found once per request by resolve(), for is_quick() and then
  // serve(), so a route's takes() and function_for() run once, not twice.
  struct Resolution {
    const Method* named = nullptr;          // table lookup of the path
    const RequestRoute* route = nullptr;    // the route that takes it, if any
    const Method* function = nullptr;       // who runs: `named`, or the route's pick
  };
  Resolution resolve(const Request& request) const;

  // Whether answering `request` is known to be quick: it names no function
  // (the answer is an error), or a function that is not marked slow. A call
  // that runs longer than ServerOptions::inline_limit marks its function
  // slow; kQuickRunsToReturn calls in a row within the limit clear the mark.
  // The server runs quick requests on the I/O thread that read them.
  bool is_quick(const Request& request) const { return is_quick(resolve(request)); }
  bool is_quick(const Resolution& resolved) const;
  Place place(const Resolution& resolved) const;

  // How many calls in a row a slow function must finish within
  // inline_limit to be quick again. The durations are wall-clock time, so
  // a quick function held up once (its thread preempted on a busy machine)
  // also looks slow; this lets it come back instead of staying on the
  // workers for good, while a function that is often slow stays there.
  static constexpr uint32_t kQuickRunsToReturn = 100;

  // The answer to a complete request whose body arrived at `received`
  // (Connect-Timeout-Ms counts from then). Runs the function when the
  // request is a valid call; never throws. The response's payload is
  // prepared and keep_alive follows the request's.
  // `resolved`: resolve(request), when the caller has it already.
  Response serve(Request& request, std::chrono::steady_clock::time_point received,
                 const Resolution* resolved = nullptr) const;
  // A gRPC-Web request (application/grpc-web[-text][+proto|+json]) over
  // HTTP/1.1 or HTTP/2, or a gRPC one over HTTP/1.1, which needs HTTP/2
  // (refused); see grpc_web.cc.
  Response serve_grpc_web(Request& request, std::chrono::steady_clock::time_point received) const;

  // The JSON codec's two directions for a function's messages (gRPC's and
  // gRPC-Web's "+json", as Connect's JSON): a request in protobuf's JSON
  // mapping (empty: the empty message) to its protobuf bytes
  // (invalid_argument naming what does not fit), and a reply's bytes to
  // JSON (internal if they do not parse). unimplemented when JSON is not
  // available for the function's service.
  Result<std::string> request_from_json(const Method& method, std::string_view json) const;
  Result<std::string> reply_to_json(const Method& method, std::string_view binary) const;

  // The answer to the raw bytes of one request as a server would give it
  // (a malformed or oversized request included), or nullopt when the bytes
  // end before the request does and the server would close without an answer.
  std::optional<Response> serve_bytes(std::string_view bytes) const;

  // From now on readiness probes (/health/readiness, /_/ready) answer 503:
  // the server is draining.
  void set_draining() noexcept { draining_.store(true, std::memory_order_relaxed); }

 private:
  static constexpr std::size_t kProtocols = 3, kCodes = 17;
  struct Route {
    std::string log_name;                       // "shop.add"
    const connect::JsonCodec* codec = nullptr;  // null: JSON not available
    std::string codec_problem;                  // why, when null
    // Its .proto says idempotency_level = NO_SIDE_EFFECTS: Connect's GET
    // calls it too (connect::parse_get_query).
    bool get = false;
    mutable std::atomic<bool> slow{false};      // its last long call is recent (is_quick)
    mutable std::atomic<uint32_t> quick_runs{0};  // calls within inline_limit since then
    metrics::Histogram* duration = nullptr;
    // dispatch_server_calls_total by protocol and code, made at first use.
    mutable std::atomic<metrics::Counter*> calls[kProtocols][kCodes] = {};
  };
  metrics::Counter& calls_counter(const Route& route, Protocol protocol, Code code) const;

  // serve() without CORS: the answer itself.
  Response answer(Request& request, std::chrono::steady_clock::time_point received,
                  const Resolution* resolved) const;
  Response reject(const Request& request, const Error& error, boost::beast::http::status status) const;
  // The answer refusing a request that fails `authenticate`, the bearer keys
  // or the signature check; nullopt when it passes them.
  std::optional<Response> check_access(const Request& request, const RequestInfo& info) const;
  // The body as a function or route reads it: nullopt when it is as sent
  // (identity, or empty), the inflated bytes for Content-Encoding: gzip.
  // Errors: unimplemented (another coding), invalid_argument (not gzip),
  // resource_exhausted (past max_body_bytes). Asked after check_access(),
  // whose signature check covers the bytes as sent.
  Result<std::optional<std::string>> decoded_body(const Request& request) const;
  // The answer refusing a body decoded_body() could not decode.
  Response refuse_body(const Request& request, const Error& error) const;
  // A request a RequestRoute took: checked like a call, then answered by it.
  Response answer_route(const Request& request, const RequestRoute& route, const RequestInfo& info) const;
  // Marks the route slow after a call longer than inline_limit, and quick
  // again after kQuickRunsToReturn calls in a row within it.
  void note_duration(const Route& route, std::chrono::steady_clock::duration elapsed) const;
  // request_from_json() and reply_to_json() for a route found already.
  Result<std::string> request_from_json(const Route& route, const Method& method, std::string_view json) const;
  Result<std::string> reply_to_json(const Route& route, const Method& method, std::string_view binary) const;
  // A Connect GET call made the POST it stands for: the query's message
  // as the body, its encoding as Content-Type, its compression as
  // Content-Encoding; the refusal when the query is not one.
  std::optional<Response> as_post(Request& request) const;
  Response call(Request& request, const Method& method, const Route& route, connect::Encoding encoding,
                bool octet_stream,
                CallContext context, std::chrono::steady_clock::time_point received) const;

  const DispatchTable& table_;
  const ServerOptions& options_;
  std::unordered_map<const Method*, std::unique_ptr<Route>> routes_;
  std::vector<std::unique_ptr<connect::JsonCodec>> codecs_;
  std::atomic<bool> draining_{false};
  std::shared_ptr<metrics::Registry> metrics_;
  metrics::Gauge* in_flight_ = nullptr;
  mutable std::atomic<metrics::Counter*> rejected_[kProtocols][kCodes] = {};
  std::unique_ptr<GrpcServices> grpc_services_;
};

}  // namespace dispatch::transport
