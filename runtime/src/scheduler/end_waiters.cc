#include "scheduler/end_waiters.h"

#include <algorithm>

namespace dispatch::scheduler {

EndWaiters::Wait::Wait(EndWaiters& owner, std::string id) : owner_(owner), id_(std::move(id)) {
  std::lock_guard<std::mutex> lock(owner_.mu_);
  auto& slot = owner_.entries_[id_];
  if (!slot) slot = std::make_shared<Entry>();
  entry_ = slot;
  entry_->users++;
  seen_ = entry_->ends;
  owner_.waiting_.fetch_add(1, std::memory_order_relaxed);
}

EndWaiters::Wait::~Wait() {
  std::lock_guard<std::mutex> lock(owner_.mu_);
  owner_.waiting_.fetch_sub(1, std::memory_order_relaxed);
  if (--entry_->users == 0) owner_.entries_.erase(id_);
}

void EndWaiters::Wait::sleep(std::chrono::milliseconds poll, std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock(owner_.mu_);
  const auto wake_at = std::min(until, std::chrono::steady_clock::now() + poll);
  entry_->cv.wait_until(lock, wake_at, [&] { return entry_->ends != seen_ || owner_.closed(); });
  seen_ = entry_->ends;
}

void EndWaiters::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_.store(true, std::memory_order_release);
  for (auto& [id, entry] : entries_) entry->cv.notify_all();
}

void EndWaiters::ended(std::string_view id) {
  if (!anyone_waiting()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(std::string(id));
  if (it == entries_.end()) return;
  it->second->ends++;
  it->second->cv.notify_all();
}

}  // namespace dispatch::scheduler
