// How a dispatch.sdk.v1.Call becomes a NewCall for the store, with every
// check a call gets: from a client's Dispatch, from a Poll (a child), or as
// a tail call. One place, so that a child is held to what a dispatched call
// is held to.
//
// Not for: policy (a call without an expiration gets its function's policy
// expiration from the scheduler, not here).
#pragma once

#include <cstdint>
#include <string>

#include "dispatch/core/result.h"
#include "dispatch/scheduler/store.h"
#include "dispatch/sdk/v1/sdk.pb.h"

namespace dispatch::scheduler {

// `where` names the call in errors ("call 2 ('shop.add')"). An empty
// endpoint is `default_endpoint` (a child or a tail call goes to its
// parent's endpoint); refused when that is empty too. A timer
// (kSleepFunction) needs no endpoint: its input, a Duration or a Timestamp,
// says when it is due. Moves the input out of `c`.
Result<NewCall> new_call_from(sdk::v1::Call& c, int64_t now_ms, const std::string& where,
                              const std::string& default_endpoint);

}  // namespace dispatch::scheduler
