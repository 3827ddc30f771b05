// dispatch::DurableCall<R>: a call a workflow makes durably, as a generated
// stub's call() form describes it: the function, its encoded request, and
// how its response decodes into R. Nothing happens until a workflow awaits
// it (co_await, or dispatch::all / any / race); the scheduler then makes it
// a call of its own (a child of the workflow's), retries it, and hands its
// result back to the workflow, which sees R or a thrown dispatch::Error.
//
//   Receipt r = co_await payments::remote::charge.call(card, total).at("http://payments:8000");
//
// Not for: calls outside a workflow (use the stub's direct forms, or
// dispatch() to hand a call to the scheduler and wait for it).
// Public header: compiles as C++17 and C++20 (awaiting needs C++20 and
// dispatch/workflow/workflow.h).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dispatch/core/result.h"

namespace dispatch {

// [[nodiscard]]: a call made and dropped (`remote::release.call(id);`, the
// co_await forgotten) would silently never run.
template <typename R>
class [[nodiscard]] DurableCall {
 public:
  using result_type = R;
  // Decodes the function's response message into its result.
  using Decode = Result<R> (*)(std::string_view response);

  // `fn` ("shop.add") and `type` ("shop.AddRequest", the request message)
  // point to static storage; `req` is the encoded request, or why encoding
  // failed (awaiting the call then throws that error). (Named unlike the
  // accessors below: -Wshadow builds include this header.)
  DurableCall(const char* fn, const char* type, Result<std::string> req, Decode dec)
      : function_(fn), request_type_(type), request_(std::move(req)), decode_(dec) {}

  // The endpoint (URL) that serves the function. Default: the endpoint of
  // the workflow making the call.
  DurableCall& at(std::string endpoint) & {
    endpoint_ = std::move(endpoint);
    return *this;
  }
  [[nodiscard]] DurableCall&& at(std::string endpoint) && { return std::move(at(std::move(endpoint))); }
  // How long the scheduler keeps trying. Default: the scheduler's policy,
  // and never past the workflow's own expiration.
  DurableCall& expire_after(std::chrono::milliseconds expiration) & {
    expiration_ = expiration;
    return *this;
  }
  [[nodiscard]] DurableCall&& expire_after(std::chrono::milliseconds expiration) && {
    return std::move(expire_after(expiration));
  }

  const char* function() const noexcept { return function_; }
  const char* request_type() const noexcept { return request_type_; }
  const Result<std::string>& request() const noexcept { return request_; }
  Result<std::string>& request() noexcept { return request_; }
  Decode decode() const noexcept { return decode_; }
  const std::string& endpoint() const noexcept { return endpoint_; }
  const std::optional<std::chrono::milliseconds>& expiration() const noexcept { return expiration_; }

 private:
  const char* function_;
  const char* request_type_;
  Result<std::string> request_;
  Decode decode_;
  std::string endpoint_;
  std::optional<std::chrono::milliseconds> expiration_;
};

}  // namespace dispatch
