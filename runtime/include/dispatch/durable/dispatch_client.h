// dispatch::DispatchClient: hands calls to a durable scheduler (dispatchd or
// any scheduler speaking dispatch.sdk.v1.DispatchService). Generated stubs'
// .dispatch() forms call it; a dispatch ID comes back once the scheduler has
// persisted the call.
//
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
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
  // scheduler; empty: the function name. (Added by the scheduler work.)
  std::string tenant;
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
  // outlive this object. `default_endpoint` is used when a call names none.
  DispatchClient(Client& scheduler, std::string default_endpoint);

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
  // not_found for an unknown ID. (Added by the scheduler work.)
  Result<std::string> await_result(std::string_view dispatch_id,
                                   std::chrono::milliseconds timeout);

  const std::string& default_endpoint() const noexcept { return default_endpoint_; }

 private:
  Client& scheduler_;
  std::string default_endpoint_;
};

}  // namespace dispatch
