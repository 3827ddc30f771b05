// dispatch::DispatchClient: hands calls to a durable scheduler (dispatchd or
// any scheduler speaking dispatch.sdk.v1.DispatchService). Generated stubs'
// .dispatch() forms call it; a dispatch ID comes back once the scheduler has
// persisted the call, and the call's result can be awaited by that ID.
//
//   auto scheduler = dispatch::DispatchClient::from_env().value();  // DISPATCH_API_URL, _KEY
//   auto sum = shop::remote::add.dispatch(scheduler, 1, 2).value().wait();
//
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/client.h"
#include "dispatch/core/result.h"

namespace dispatch {

struct DispatchOptions {
  // A retried Dispatch request with the same key does not create a second call.
  std::string idempotency_key;
  // How long the scheduler keeps trying; unset: the scheduler's policy.
  std::optional<std::chrono::milliseconds> expiration;
  // Endpoint URL that serves the function; empty: the client's default
  // (DISPATCH_ENDPOINT_URL).
  std::string endpoint;
  // Fairness key: calls sharing it share one round-robin queue at the
  // scheduler; empty: the function name.
  std::string tenant;
  // Run later: after `delay` (counted from when the scheduler accepts the
  // call) or at `start_at`, not both. The scheduler keeps the call (on
  // disk, across restarts) until then; it can be cancelled meanwhile, and
  // its expiration counts from then.
  std::optional<std::chrono::milliseconds> delay;
  std::optional<std::chrono::system_clock::time_point> start_at;
};

// One call for a batch: what a generated stub's encoder produced.
struct PendingCall {
  std::string function;      // "<package>.<remote name>"
  std::string request_type;  // full proto name of the request message
  std::string request;       // its binary encoding
  DispatchOptions options;
};

class DispatchClient {
 public:
  // `scheduler` speaks to the scheduler's API (an HttpClient pointed at
  // DISPATCH_API_URL with DISPATCH_API_KEY, or an in-process client); it must
  // outlive this object. `default_endpoint` is used when a call names none;
  // empty: DISPATCH_ENDPOINT_URL.
  DispatchClient(Client& scheduler, std::string default_endpoint);

  // The client side as the Dispatch protocol configures it: the scheduler's
  // API at DISPATCH_API_URL (http:// or https://; unset or empty:
  // http://127.0.0.1:4450, where dispatchd listens by default), with
  // "Authorization: Bearer $DISPATCH_API_KEY" when that is set, and
  // DISPATCH_ENDPOINT_URL as the default endpoint of the calls. The client
  // owns its connection to the scheduler. A malformed URL or key is
  // invalid_argument naming the variable.
  static Result<DispatchClient> from_env();

  DispatchClient(DispatchClient&&) noexcept = default;
  DispatchClient& operator=(DispatchClient&&) noexcept = default;

  // Persists one call; returns its dispatch ID.
  Result<std::string> dispatch(std::string_view function, std::string_view request_type,
                               std::string request, const DispatchOptions& options = {});
  // Persists all calls in one request (all or none); IDs in order.
  Result<std::vector<std::string>> dispatch_batch(std::vector<PendingCall> calls);

  // The await form: waits up to `timeout` for a dispatched call to finish
  // (dispatch.scheduler.v1.AdminService/Get on the scheduler) and returns its
  // response message's bytes. Otherwise an Error: the function's own (its
  // code, its message) when the call failed, canceled when it was cancelled,
  // deadline_exceeded when it is still pending or running at the timeout,
  // not_found for an unknown ID. Generated stubs' dispatch() forms return a
  // dispatch::Dispatched<R> handle whose wait() decodes this into the
  // function's C++ result.
  Result<std::string> await_result(std::string_view dispatch_id,
                                   std::chrono::milliseconds timeout);
  // The same without blocking a thread: `done` runs once, on the scheduler
  // client's thread (for an HttpClient, its event loop: it must not block).
  void await_result_async(std::string dispatch_id, std::chrono::milliseconds timeout,
                          std::function<void(Result<std::string>)> done);

  const std::string& default_endpoint() const noexcept { return default_endpoint_; }

 private:
  std::shared_ptr<Client> owned_;  // from_env(): the connection to the scheduler
  Client* scheduler_;
  std::string default_endpoint_;
};

// The code a failed durable call reports to whoever awaits it: the one the
// endpoint named in Error.type when that is a code name (this runtime's Run
// route does so), otherwise one that keeps the meaning of the final
// dispatch.sdk.v1.Status number `status`.
Code code_for_call_failure(int status, std::string_view error_type) noexcept;

}  // namespace dispatch
