// The workflows the crash test runs (crash_test.cc,
// KillNineWhileGeneratedWorkflowsRun): declared as users declare them,
// generated with dispatch_generate() and served by the server
// dispatch_add_server() makes, so the journal-replay runtime itself is
// what dispatchd and the endpoint are killed under.
//
// Not for: anything but that test (square logs every execution to a file).
#pragma once
#include <chrono>
#include <cstdint>

#include "dispatch/workflow/workflow.h"

namespace crash {

// A child: x * x. Each execution appends "<dispatch id> <x>\n" to the file
// the environment variable CRASH_CHILD_LOG names, with one write(2), so the
// line survives a SIGKILL of the endpoint.
[[dispatch::function]] std::int64_t square(std::int64_t x);

// The nested workflow: square(x) + 1.
[[dispatch::function]] dispatch::Workflow<std::int64_t> nested(std::int64_t x);

// The parent: square(10n), ..., square(10n + 9) at once with all(), a sleep
// of `pause`, then nested(100000 + n) as a child workflow; returns the sum
// of the eleven results.
[[dispatch::function]] dispatch::Workflow<std::int64_t> tree(std::int64_t n, std::chrono::milliseconds pause);

}  // namespace crash
