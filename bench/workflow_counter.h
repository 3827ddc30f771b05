// How many benchmark workflows have reached their end (the run that
// returns), shared by the workflows (workflow_api.cc) and bench-workflow's
// driver, which bounds its backlog with it.
//
// Not for: exactly-once accounting (a final run delivered again counts
// again; the driver reports the scheduler's retries beside it).
#pragma once

#include <atomic>
#include <cstdint>

namespace bench_workflow {

// Set by bench-workflow's main() before the endpoint serves.
extern std::atomic<std::uint64_t>* finished;

}  // namespace bench_workflow
