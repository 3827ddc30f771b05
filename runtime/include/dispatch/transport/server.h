// dispatch::Server: serves a DispatchTable on one port with the Connect
// unary protocol over HTTP/1.1 (binary and JSON), gRPC over HTTP/2
// (cleartext, prior knowledge: a connection that opens with the HTTP/2
// preface) and gRPC-Web over HTTP/1.1, so generated functions can be called
// from other processes and from any Connect or gRPC client. Every server
// also answers GET /metrics (Prometheus text format), GET /healthz,
// grpc.health.v1.Health and gRPC server reflection (v1 and v1alpha).
//
//   dispatch::DispatchTable table{&shop::remote::api_service()};
//   dispatch::Server server(table, dispatch::ServerOptions::from_env().value());
//   server.handle_signals();          // SIGTERM/SIGINT drain, then run() returns
//   return server.run().ok() ? 0 : 1;
//
// Threads: each I/O thread has its own connections. A quick call runs on
// the I/O thread that read it, with no hand-off between threads; other calls
// run on a worker pool. A call longer than ServerOptions::inline_limit makes
// its function's next calls go to the workers, until 100 of them in a row
// are within the limit again. When a call holds an I/O thread for longer
// than inline_limit, a watchdog lends that thread's connections another
// thread until it returns: a slow function stalls other connections for at
// most about inline_limit + 5 ms. The watchdog sleeps while no call runs
// inline, so an idle server does not wake. Calls of a function that waits
// (Method::waits) run on a pool of their own, never inline nor on the
// workers.
//
// Not for: TLS termination (put a proxy in front), streaming user functions
// (every function is a unary method).
// Public header: compiles as C++17 and C++20; no Boost (pimpl).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/core/logger.h"
#include "dispatch/core/result.h"
#include "dispatch/core/service.h"

namespace dispatch {

namespace security {
class Verifier;
class BearerKeys;
}  // namespace security
namespace metrics {
class Registry;
}  // namespace metrics

// What an authenticate hook sees of a request, before its body is decoded.
class RequestInfo {
 public:
  std::string_view method;        // "POST"
  std::string_view path;          // "/shop.ApiService/add" (the request target without its query)
  std::string_view authority;     // the Host header
  std::string_view content_type;
  std::string_view body;
  // First value of the header `name` (case-insensitive), nullopt when absent.
  virtual std::optional<std::string_view> header(std::string_view name) const = 0;
  // Every header line in the order received, names as the client spelled them.
  virtual void for_each_header(const std::function<void(std::string_view name, std::string_view value)>& f) const = 0;

 protected:
  ~RequestInfo() = default;
};

// An answer given by a route beside the Connect ones (RequestRoute).
struct HttpAnswer {
  int status = 200;
  // Header lines besides Content-Length, which the server sets.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The function that answered, when one did: the server times it for its
  // quick/slow mark (ServerOptions::inline_limit) as it times a call.
  const Method* function = nullptr;
};

// A kind of request the server answers beside Connect calls, such as the
// CloudEvents delivery of dispatch/events/event_route.h. The server asks
// each route of ServerOptions::routes, in order, about every request that
// is not a Connect call of a function without a route of its own (a path
// that names no function, or one whose Method has an EventBinding); the
// first that takes it answers it, after the same checks as a call
// (`authenticate`, `bearer_keys`, `verifier`). Answering runs on the thread
// that will run the call, like a call. takes() and function_for() run once
// per request. An exception from any of the three is a 500 for that
// request (its connection closed), not the server's end.
class RequestRoute {
 public:
  virtual ~RequestRoute() = default;
  // Whether this route answers `request`, from its method, path and headers
  // (not its body). Cheap: it runs for every request a route could take.
  virtual bool takes(const RequestInfo& request) const = 0;
  // The function answering `request` will run, when the route can tell from
  // the path and headers; the server runs a function that has turned slow
  // on its workers. nullptr: the server treats the request as quick. (The
  // answer names the function that ran: HttpAnswer::function.)
  virtual const Method* function_for(const RequestInfo& request) const = 0;
  // The answer to a request this route took. `context` carries the logger
  // and deadline the call runs with. Errors are answers too: never throws.
  virtual HttpAnswer answer(const RequestInfo& request, const CallContext& context) const = 0;
};

struct ServerOptions {
  // Listen address: an IPv4/IPv6 literal or a host name; port 0 picks a free
  // port (see Server::port()).
  std::string host = "127.0.0.1";
  uint16_t port = 8000;

  // Threads doing socket I/O and HTTP parsing, and running quick calls; each
  // connection stays on one, given out in turn. 0 means
  // max(std::thread::hardware_concurrency(), 8): up to 8 connections each
  // get a thread of their own even on a small machine, which spares
  // cross-CPU wake-ups (docs/transport.md).
  std::size_t io_threads = 0;
  // Threads running the calls that are not quick (below); 0 means
  // std::thread::hardware_concurrency().
  std::size_t workers = 0;
  // A call runs on the I/O thread that read it (no hand-off to a worker:
  // lower latency, less CPU) unless its function is marked slow. A call
  // that runs longer than this (wall-clock time) marks its function slow,
  // and 100 calls in a row within it clear the mark, so a quick function
  // held up once by a busy machine comes back. Zero: every call runs on a
  // worker, and no I/O thread ever runs user code.
  std::chrono::microseconds inline_limit{1000};
  // Threads running the calls of functions that wait (Method::waits, such
  // as the scheduler's Get with wait_ms), made when the first such call
  // comes; that many calls wait at once, and more queue for a thread.
  std::size_t waiting_threads = 256;

  // Limits. Crossing one answers a Connect error naming the limit.
  std::size_t max_body_bytes = 16'000'000;   // 413 resource_exhausted, then close
  std::size_t max_header_bytes = 16 * 1024;  // 431 resource_exhausted, then close
  std::size_t max_connections = 4096;        // 503 unavailable to the extra connection
  // Timeouts (docs/transport.md, "Timeouts"). Time allowed to receive a
  // request's headers, counted from the request's first byte (for a new
  // connection's first request, from the accept), however the client
  // spaces them out: past it the client gets 408 deadline_exceeded and the
  // connection is closed (a new connection that has sent nothing is closed
  // without an answer).
  std::chrono::milliseconds header_timeout{20'000};
  // Time allowed to receive a request body once its headers have arrived
  // (408 deadline_exceeded, then close); also bounds writing an answer.
  std::chrono::milliseconds read_timeout{30'000};
  // Time a keep-alive connection may wait for the first byte of its next
  // request; then it is closed without an answer.
  std::chrono::milliseconds idle_timeout{60'000};
  // How long drain() waits for in-flight calls before closing connections.
  std::chrono::milliseconds drain_timeout{30'000};
  // Runs once when a drain (or stop) begins, before in-flight calls are
  // waited for: where calls that wait (Method::waits, e.g. dispatchd's Get
  // with wait_ms) are told to answer now rather than hold the drain. It
  // runs on a server thread and must not block.
  std::function<void()> on_drain;

  // Runs before the body is decoded, on the thread that will run the call;
  // an error rejects the request with its code (e.g. unauthenticated -> 401).
  // Must not block.
  std::function<Result<void>(const RequestInfo&)> authenticate;

  // Request signatures (RFC 9421, Ed25519; docs/security.md). When set, every
  // call must carry a signature this verifier accepts (several keys for
  // rotation): 401 unauthenticated when none is usable, 403
  // permission_denied when one fails a check, with a Connect JSON body that
  // names the check. Runs after `authenticate` and `bearer_keys`, before the
  // body is decoded: a refused body never reaches a function. Runs on the
  // thread that will run the call. /healthz is exempt.
  std::shared_ptr<const security::Verifier> verifier;
  // When set, every call must carry "Authorization: Bearer <key>" with one of
  // these keys (constant-time compare); 401 unauthenticated otherwise.
  std::shared_ptr<const security::BearerKeys> bearer_keys;
  // Routes for requests that are not Connect calls (RequestRoute above), in
  // the order they are asked; e.g. dispatch::events::event_route(table).
  std::vector<std::shared_ptr<const RequestRoute>> routes;
  // start() logs one warning that requests are not verified when `verifier`
  // is null. from_env() sets it: an endpoint is expected to verify.
  bool warn_if_unverified = false;
  // Web pages whose browsers may call this server (CORS): exact origins
  // ("https://app.example.com", scheme, host and any port) or "*" for any.
  // Empty (the default): no CORS headers, so a browser calls only from the
  // server's own origin. For an allowed Origin, a preflight (OPTIONS with
  // Access-Control-Request-Method) is answered 204 before routing and
  // credentials, and every answer to it names the origin and exposes the
  // headers gRPC-Web and Connect clients read (docs/transport.md, "CORS").
  std::vector<std::string> cors_origins;

  Logger logger = Logger::from_env();

  // Where the server counts calls and connections, shown at GET /metrics
  // (docs/operations.md). Unset: a registry of the server's own. Share one
  // to expose other metrics beside them (dispatchd adds the scheduler's).
  std::shared_ptr<metrics::Registry> metrics;

  // HTTP/2 (gRPC): streams one connection may have open at once
  // (SETTINGS_MAX_CONCURRENT_STREAMS; more are refused with
  // REFUSED_STREAM, and calls still running count until they end).
  uint32_t max_concurrent_streams = 100;

  // Defaults with the listen address from the environment: 0.0.0.0:$PORT
  // when PORT is set (the Knative/Cloud Run contract), otherwise
  // DISPATCH_ENDPOINT_ADDR ("host:port", "[v6]:port"), otherwise
  // 127.0.0.1:8000. `verifier` from DISPATCH_VERIFICATION_KEY: a public key
  // (SPKI PEM, literal "\n" allowed, or base64 of the 32 bytes), or several
  // separated by commas during a rotation; unset or empty: no verification,
  // and warn_if_unverified. `cors_origins` from DISPATCH_CORS_ORIGINS
  // (comma-separated). A malformed value is invalid_argument naming the
  // variable and what is wrong.
  static Result<ServerOptions> from_env();
};

// "host:port" or "[v6]:port" -> host and port.
Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view address);

// ServerOptions::cors_origins from a comma-separated list
// ("https://app.example.com,http://localhost:5173", or "*"): each origin
// scheme://host[:port] with no path, or *. A malformed one is
// invalid_argument naming `source` (a variable or flag) and the origin.
Result<std::vector<std::string>> parse_cors_origins(std::string_view list, std::string_view source);

class Server {
 public:
  // `table` must outlive the server.
  explicit Server(const DispatchTable& table, ServerOptions options = {});
  ~Server();  // stop()s if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the threads; returns at once. A bind failure
  // is unavailable with the address in the message.
  Result<void> start();
  // The bound port (useful after port 0); 0 before start().
  uint16_t port() const noexcept;
  // The registry GET /metrics shows (ServerOptions::metrics, or the
  // server's own); null before start().
  std::shared_ptr<metrics::Registry> metrics() const;

  // Makes SIGTERM and SIGINT start a drain. Call before start()/run().
  void handle_signals();

  // start()s if needed, then blocks until a drain (signal or drain()) or
  // stop() has finished. Returns the start() error, if any.
  Result<void> run();

  // Stops accepting, lets in-flight calls finish and answer, closes idle
  // connections, then stops the threads. Blocks until done (at most about
  // drain_timeout). Safe from any thread except the server's own.
  void drain();
  // Closes everything at once; in-flight calls' answers are dropped.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace dispatch
