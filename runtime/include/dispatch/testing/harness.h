// dispatch::testing::Harness: runs a call (a workflow with its children, or
// any function) to its end inside a unit test, through the real scheduler
// engine on the in-memory store, with a clock the test owns: no network, no
// disk, and a 24-hour sleep takes no time (when nothing is left to do, the
// clock jumps to the next call that is due).
//
//   dispatch::DispatchTable table{&shop::remote::api_service()};
//   dispatch::testing::Harness harness(table);
//   harness.fake("payments.charge", [](std::string_view) -> dispatch::Result<std::string> {
//     return dispatch::Error(dispatch::Code::unavailable, "card network down");
//   });
//   dispatch::Result<Receipt> r = harness.run(shop::remote::checkout.call(order));
//
// A function is served by `table` unless a fake replaces it; every call of
// the tree goes to the same in-process endpoint whatever URL it names.
// Failures are retried as the scheduler retries them (its policy: pass
// HarnessOptions::policy to make retries quick or give up sooner).
//
// Not for: concurrency or timing tests (calls run one round at a time on
// the test's thread), or production.
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"
#include "dispatch/core/service.h"
#include "dispatch/durable/durable_call.h"
#include "dispatch/scheduler/scheduler.h"

namespace dispatch::testing {

// The harness's clock: Unix milliseconds that move only when told to.
class ManualClock final : public scheduler::Clock {
 public:
  explicit ManualClock(int64_t start_ms) : now_(start_ms) {}
  int64_t now_ms() override { return now_; }
  void set(int64_t ms) { now_ = ms; }
  void advance(std::chrono::milliseconds by) { now_ += by.count(); }

 private:
  int64_t now_;
};

// The scheduler's default policy, with calls that may live a year (the
// scheduler's default of a day would expire a workflow sleeping a day).
inline scheduler::FunctionPolicy long_lived_policy() {
  scheduler::FunctionPolicy p;
  p.expiration = std::chrono::hours(24 * 366);
  return p;
}

struct HarnessOptions {
  // The clock starts here (Unix ms). Default: 2030-01-01T00:00:00Z.
  int64_t start_ms = 1'893'456'000'000;
  // The scheduler's policy for every function (retries, backoff,
  // expiration). Default: long_lived_policy().
  scheduler::FunctionPolicy policy = long_lived_policy();
  // run() gives up once the clock passed this much beyond where it began
  // (deadline_exceeded): a workflow that never ends.
  std::chrono::milliseconds horizon{std::chrono::hours(24 * 365)};
};

class Harness {
 public:
  // A fake: receives the function's encoded request, returns its encoded
  // response, or the Error the function would throw.
  using Fake = std::function<Result<std::string>(std::string_view request)>;

  // `table` must outlive the harness.
  explicit Harness(const DispatchTable& table, HarnessOptions options = {});
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  // Answers every call of `function` ("shop.charge") with `fake` instead of
  // the table.
  void fake(std::string function, Fake fake);
  // How many times `function` was delivered (a fake's or the table's).
  std::size_t deliveries(std::string_view function) const;

  // Dispatches `call` and runs the scheduler until it ends: its result, or
  // the Error it ended with (its code as the function threw it;
  // deadline_exceeded when it did not end within the horizon).
  template <typename R>
  Result<R> run(DurableCall<R> call) {
    if (!call.request().ok()) return call.request().error();
    auto ended = run_to_end(call.function(), call.request_type(), std::move(call.request()).value());
    if (!ended.ok()) return std::move(ended).error();
    if (ended->state != scheduler::CallState::completed) return error_of(*ended);
    return call.decode()(ended->output);
  }
  // The same, by name and encoded request: the call as the scheduler kept it.
  Result<scheduler::CallRecord> run_to_end(std::string function, std::string request_type, std::string request);

  // The calls `id` made (its children), oldest first; the scheduler's view
  // of any call; the clock.
  std::vector<scheduler::CallRecord> children(std::string_view id);
  Result<scheduler::CallRecord> get(std::string_view id);
  ManualClock& clock() noexcept { return clock_; }
  scheduler::Scheduler& scheduler() noexcept { return *scheduler_; }
  // The ID of the last call run() dispatched.
  const std::string& last_id() const noexcept { return last_id_; }

 private:
  class Endpoint;
  static Error error_of(const scheduler::CallRecord& ended);

  ManualClock clock_;
  HarnessOptions options_;
  std::shared_ptr<Endpoint> endpoint_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::string last_id_;
};

}  // namespace dispatch::testing
