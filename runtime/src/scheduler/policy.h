// Pure pieces of the delivery policy, kept apart so tests can pin them down:
// the backoff cap of an attempt, full jitter, and AIMD steps.
//
// Not for: I/O or state (the Scheduler owns those).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "dispatch/durable/function_service.h"
#include "dispatch/scheduler/scheduler.h"

namespace dispatch::scheduler::policy {

// The policy of `function`: its own if it has one, else the default.
inline const FunctionPolicy& policy_for(const SchedulerOptions& o, const std::string& function) {
  auto it = o.policies.find(function);
  return it == o.policies.end() ? o.default_policy : it->second;
}

// min_backoff * 2^(attempt-1), capped at max_backoff; attempt is 1-based.
inline int64_t backoff_cap_ms(uint32_t attempt, const FunctionPolicy& p) noexcept {
  const int64_t base = std::max<int64_t>(1, p.min_backoff.count());
  const int64_t cap = std::max<int64_t>(base, p.max_backoff.count());
  const uint32_t doublings = attempt == 0 ? 0 : std::min<uint32_t>(attempt - 1, 40);
  const int64_t grown = doublings >= 40 ? cap : base << doublings;
  return std::min(cap, grown);
}

// "Full jitter" (AWS Architecture Blog, Exponential Backoff and Jitter): a
// uniform wait in [0, cap], so that many clients failing together do not
// retry together.
inline int64_t full_jitter_ms(int64_t cap, std::mt19937_64& rng) {
  return std::uniform_int_distribution<int64_t>(0, cap)(rng);
}

// Statuses that mean "this endpoint is overloaded or unreachable": they halve
// its concurrency. A function's own TEMPORARY_ERROR does not.
inline bool lowers_concurrency(RunStatus s, bool transport_error) noexcept {
  return s == RunStatus::throttled || s == RunStatus::timeout ||
         (transport_error && is_temporary(s));
}

inline double aimd_increase(double limit, double ceiling) noexcept {
  return std::min(ceiling, limit + 1.0);
}
inline double aimd_decrease(double limit) noexcept { return std::max(1.0, limit / 2.0); }

}  // namespace dispatch::scheduler::policy
