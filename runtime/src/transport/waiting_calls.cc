#include "transport/waiting_calls.h"

#include <algorithm>
#include <utility>

#include "core/thread_name.h"

namespace dispatch::transport {
namespace {

// The pool whose serve() runs on this thread, and whether the work it is
// running has called finishing().
thread_local WaitingCalls* this_threads_pool = nullptr;
thread_local bool this_thread_finishing = false;

}  // namespace

WaitingCalls::WaitingCalls(std::size_t max_threads) : max_threads_(std::max<std::size_t>(1, max_threads)) {}

WaitingCalls::~WaitingCalls() { join(); }

void WaitingCalls::post(std::function<void()> work) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  queue_.push_back(std::move(work));
  // A thread that is idle, or finishing and about to be, takes it; with
  // none, a new one, up to the maximum.
  if (idle_ + finishing_ >= queue_.size() || threads_.size() >= max_threads_) {
    cv_.notify_one();
    return;
  }
  threads_.emplace_back([this] { serve(); });
}

void WaitingCalls::finishing() {
  WaitingCalls* pool = this_threads_pool;
  if (pool == nullptr || this_thread_finishing) return;
  std::lock_guard lock(pool->mu_);
  ++pool->finishing_;
  this_thread_finishing = true;
}

void WaitingCalls::join() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
    cv_.notify_all();
  }
  for (std::thread& t : threads) t.join();
}

std::size_t WaitingCalls::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

std::size_t WaitingCalls::idle_threads() const {
  std::lock_guard lock(mu_);
  return idle_;
}

void WaitingCalls::serve() {
  detail::name_this_thread("dispatch-wait");
  this_threads_pool = this;
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (queue_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    lock.lock();
    if (this_thread_finishing) {
      --finishing_;
      this_thread_finishing = false;
    }
  }
}

}  // namespace dispatch::transport
