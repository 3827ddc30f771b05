// dispatch::function_service(): the Dispatch protocol's endpoint route,
// `POST /dispatch.sdk.v1.FunctionService/Run`, as a built-in Service that any
// DispatchTable can add beside its generated services. A scheduler (dispatchd
// or any other speaking dispatch.sdk.v1) delivers durable calls through it.
//
// What Run does: finds the target by RunRequest.function in the table running
// the call ("add" or "shop.add"), checks that the input
// Any carries the method's request type, runs it with the dispatch ID, the
// IDs of its parent and root, and the attempt number in this_call(), and
// answers RunResponse{status, exit}. A function that speaks the protocol
// itself (a Method with a `run` entry: a workflow) is handed the whole
// RunRequest, a first run or a resume with a poll result, and answers Exit
// or Poll. Outcome to status (dispatch::Code -> dispatch.sdk.v1.Status) is
// run_status_for() below; docs/scheduler.md has the table. A malformed
// RunRequest is an invalid_argument error (HTTP 400); an unknown function a
// NOT_FOUND status; a type mismatch, or a poll result for a function that
// is not a workflow, an INVALID_ARGUMENT status.
//
// Every generated service brings this route along (Service::companion): a
// table serving any generated service serves Run, once.
//
// Not for: coroutines themselves (dispatch/workflow/ runs those).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <string_view>

#include "dispatch/core/error.h"
#include "dispatch/core/service.h"

namespace dispatch {

// The service holding the Run method. Generated services bring it along;
// a table of hand-written services adds it itself:
//   DispatchTable table{&my_service, &dispatch::function_service()};
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

// This scheduler's timer, an extension of the protocol: a call of this
// function in a Poll (endpoint empty, input a google.protobuf.Duration, or a
// google.protobuf.Timestamp) is delivered nowhere; the scheduler completes
// it (output google.protobuf.Empty) once the duration has passed since it
// took the Poll, or at the time. dispatch::sleep() in a workflow is one.
inline constexpr std::string_view kSleepFunction = "dispatch.sleep";

// The status a function's error reports to the scheduler.
RunStatus run_status_for(Code code) noexcept;
// "STATUS_TEMPORARY_ERROR" etc., as the .proto spells them.
std::string_view run_status_name(RunStatus status) noexcept;
// True for the statuses a scheduler retries (spec: TIMEOUT, THROTTLED,
// TEMPORARY_ERROR, INCOMPATIBLE_STATE, DNS/TCP/TLS/HTTP errors).
bool is_temporary(RunStatus status) noexcept;

}  // namespace dispatch
