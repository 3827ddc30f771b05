// What the Dispatch protocol's coroutines mean to the scheduler: a Poll
// checked and turned into the state to keep and the children to make, a
// tail call into the call that goes on under the same IDs, and the
// PollResult a suspended call is resumed with. Pure: no store, no I/O, so
// the scheduler and its tests share one reading of the protocol.
//
// Not for: recording any of it (the Store) or when a call resumes (the
// store's Poll extension and the pump in scheduler.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "dispatch/durable/function_service.h"
#include "dispatch/scheduler/scheduler.h"
#include "dispatch/scheduler/store.h"
#include "dispatch/sdk/v1/sdk.pb.h"

namespace dispatch::scheduler::coroutine {

// The largest coroutine state a Poll may carry: its resume (the state and
// up to max_results results) must fit the request limit of an endpoint
// (ServerOptions::max_body_bytes, 16 MB by default).
inline constexpr std::size_t kMaxStateBytes = std::size_t{4} << 20;
// The longest max_wait: google.protobuf.Duration's range (10,000 years).
inline constexpr int64_t kMaxWaitSeconds = 315'576'000'000;

// The resume of a call that answered Poll: its state as it gave it (same
// oneof variant), the results the store handed this attempt, and the
// error when the calls of that Poll were refused.
void to_poll_result(const CallRecord& c, sdk::v1::PollResult* out);

// What a Poll asks for, checked, into `o.poll`: the state to keep, the
// children to make (with `c`'s trace, expiring no later than `c`), when to
// resume. A Poll that cannot be followed is invalid_response with the
// reason in `o`; calls that cannot be made are refused together and the
// function resumes at once with PollResult.error. Moves out of `poll`.
RunStatus poll_outcome(const CallRecord& c, sdk::v1::Poll& poll, int64_t now, const SchedulerOptions& opts,
                       Outcome& o);

// Exit.tail_call, checked, into `o.tail_call`: the call goes on as that
// call, same IDs. Moves out of `call`.
RunStatus tail_call_outcome(const CallRecord& c, sdk::v1::Call& call, int64_t now, const SchedulerOptions& opts,
                            Outcome& o);

}  // namespace dispatch::scheduler::coroutine
