// What every Store backend shares: the names of call states and the blocking
// forms of the asynchronous writes. A backend adds only its own storage.
#include "dispatch/scheduler/store.h"

#include <future>

namespace dispatch::scheduler {
namespace {

template <typename T, typename Start>
Result<T> wait_for(Start start) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  start([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace

std::string_view state_name(CallState state) noexcept {
  switch (state) {
    case CallState::pending: return "pending";
    case CallState::running: return "running";
    case CallState::completed: return "completed";
    case CallState::failed: return "failed";
    case CallState::cancelled: return "cancelled";
    case CallState::suspended: return "suspended";
  }
  return "unknown";
}

std::optional<CallState> state_from_name(std::string_view name) noexcept {
  for (auto s : {CallState::pending, CallState::running, CallState::completed, CallState::failed,
                 CallState::cancelled, CallState::suspended}) {
    if (state_name(s) == name) return s;
  }
  return std::nullopt;
}

Result<std::vector<std::string>> Store::enqueue_sync(std::vector<NewCall> calls, int64_t now_ms) {
  return wait_for<std::vector<std::string>>(
      [&](auto done) { enqueue(std::move(calls), now_ms, std::move(done)); });
}
Result<std::vector<CallRecord>> Store::claim_sync(ClaimOptions options) {
  return wait_for<std::vector<CallRecord>>(
      [&](auto done) { claim(std::move(options), std::move(done)); });
}
Result<bool> Store::finish_sync(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms) {
  return wait_for<bool>([&](auto done) {
    finish(std::move(id), lease, std::move(outcome), now_ms, std::move(done));
  });
}
Result<CallRecord> Store::cancel_sync(std::string id, int64_t now_ms) {
  return wait_for<CallRecord>([&](auto done) { cancel(std::move(id), now_ms, std::move(done)); });
}
Result<CallRecord> Store::retry_sync(std::string id, int64_t now_ms) {
  return wait_for<CallRecord>([&](auto done) { retry(std::move(id), now_ms, std::move(done)); });
}
Result<std::size_t> Store::release_leases_sync(int64_t now_ms, bool all) {
  return wait_for<std::size_t>(
      [&](auto done) { release_leases(now_ms, all, std::move(done)); });
}
Result<std::size_t> Store::delete_ended_sync(int64_t ended_before_ms) {
  return wait_for<std::size_t>([&](auto done) { delete_ended(ended_before_ms, std::move(done)); });
}

}  // namespace dispatch::scheduler
