// The workflow benchmark's input to dispatch-gen: a no-op child function and
// two generated workflows over it, so what is measured is the workflow
// runtime and the scheduler (journal replay, Poll, child calls, resumes,
// the store), not user code.
//
// Not for: anything but the benchmark.
#pragma once

#include <cstdint>

#include "dispatch/workflow/workflow.h"

namespace bench_workflow {

// The child: does nothing.
[[dispatch::function]] void noop(std::int64_t step);

// `steps` no-op calls one after another (each awaited before the next);
// returns how many it made. 3 for the throughput and latency rows; 10, 100
// and 1,000 for the replay-cost rows.
[[dispatch::function]] dispatch::Workflow<std::int64_t> sequence(std::int64_t steps);

// One dispatch::all() over `width` no-op calls made at once; returns how
// many it made.
[[dispatch::function]] dispatch::Workflow<std::int64_t> fan_out(std::int64_t width);

}  // namespace bench_workflow
