// How a call's W3C trace context passes to the calls it leads to inside the
// scheduler: a child call the scheduler creates for a running call (a
// workflow's step, a tail call) continues the parent's trace, so one trace
// id ties a whole durable execution together. (Calls an endpoint dispatches
// from inside a function carry the trace already: HttpClient sends the
// running call's traceparent with the Dispatch request.)
//
// Not for: parsing or generating trace ids (dispatch/core/trace_context.h).
#pragma once

#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler {

// `child` continues `parent`'s trace unless it already carries one.
inline void carry_trace(const CallRecord& parent, NewCall& child) {
  if (!child.traceparent.empty() || parent.traceparent.empty()) return;
  child.traceparent = parent.traceparent;
  child.tracestate = parent.tracestate;
}

}  // namespace dispatch::scheduler
