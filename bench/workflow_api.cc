// The workflows of workflow_api.h. Each awaits the generated stubs' call()
// forms; its last run counts itself in `finished` for bench-workflow's
// backlog bound.
#include "workflow_api.h"

#include <string>
#include <vector>

#include "dispatch/core/error.h"
#include "workflow_api.dispatch.h"
#include "workflow_counter.h"

namespace bench_workflow {

std::atomic<std::uint64_t>* finished = nullptr;

namespace {

constexpr std::int64_t kMaxSteps = 100'000;

void check_count(const char* what, std::int64_t n) {
  if (n < 1 || n > kMaxSteps) {
    throw dispatch::Error(dispatch::Code::invalid_argument,
                          std::string(what) + " must be in [1, 100000], got " + std::to_string(n));
  }
}

void count_finished() {
  if (finished != nullptr) finished->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void noop(std::int64_t) {}

dispatch::Workflow<std::int64_t> sequence(std::int64_t steps) {
  check_count("steps", steps);
  for (std::int64_t i = 0; i < steps; ++i) co_await remote::noop.call(i);
  count_finished();
  co_return steps;
}

dispatch::Workflow<std::int64_t> fan_out(std::int64_t width) {
  check_count("width", width);
  std::vector<dispatch::DurableCall<void>> calls;
  calls.reserve(static_cast<std::size_t>(width));
  for (std::int64_t i = 0; i < width; ++i) calls.push_back(remote::noop.call(i));
  co_await dispatch::all(std::move(calls));
  count_finished();
  co_return width;
}

}  // namespace bench_workflow
