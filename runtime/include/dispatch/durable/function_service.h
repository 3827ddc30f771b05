// dispatch::function_service(): the Dispatch protocol's endpoint route,
// `POST /dispatch.sdk.v1.FunctionService/Run`, as a built-in Service that any
// DispatchTable can add beside its generated services. A scheduler (dispatchd
// or any other speaking dispatch.sdk.v1) delivers durable calls through it.
//
// What Run does: finds the target by RunRequest.function in the table running
// the call ("add" or "shop.add"), checks that the input
// Any carries the method's request type, runs it with the dispatch ID and
// attempt number in this_call(), and answers RunResponse{status, exit}.
// Outcome to status (dispatch::Code -> dispatch.sdk.v1.Status) is
// run_status_for() below; docs/scheduler.md has the table. A malformed
// RunRequest is an invalid_argument error (HTTP 400); an unknown function a
// NOT_FOUND status; a type mismatch an INVALID_ARGUMENT status.
//
// Not for: Poll directives or coroutines (answers Exit only, for now).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <string_view>

#include "dispatch/core/error.h"
#include "dispatch/core/service.h"

namespace dispatch {

// The service holding the Run method. Add it to a table:
//   DispatchTable table{&shop::api_service(), &dispatch::function_service()};
const Service& function_service();

// The method path the scheduler posts to.
inline constexpr std::string_view kRunPath = "/dispatch.sdk.v1.FunctionService/Run";

// dispatch.sdk.v1.Status numbers (the enum in sdk.proto), for code that does
// not include generated protobuf headers.
enum class RunStatus : int {
  unspecified = 0,
  ok = 1,
  timeout = 2,
  throttled = 3,
  invalid_argument = 4,
  invalid_response = 5,
  temporary_error = 6,
  permanent_error = 7,
  incompatible_state = 8,
  dns_error = 9,
  tcp_error = 10,
  tls_error = 11,
  http_error = 12,
  unauthenticated = 13,
  permission_denied = 14,
  not_found = 15,
};

// The status a function's error reports to the scheduler.
RunStatus run_status_for(Code code) noexcept;
// "STATUS_TEMPORARY_ERROR" etc., as the .proto spells them.
std::string_view run_status_name(RunStatus status) noexcept;
// True for the statuses a scheduler retries (spec: TIMEOUT, THROTTLED,
// TEMPORARY_ERROR, INCOMPATIBLE_STATE, DNS/TCP/TLS/HTTP errors).
bool is_temporary(RunStatus status) noexcept;

}  // namespace dispatch
