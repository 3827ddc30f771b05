// EndWaiters: wakes the API's Gets that wait for a call to end (Get with
// wait_ms, which DispatchClient::await_result uses) as soon as this
// scheduler records the end, instead of at their next look at the store.
// A Get registers the call's ID, reads the store, and sleeps until the
// scheduler says the call ended or `poll` has passed, then reads it again:
// ends recorded by paths that do not pass here (a cancelled tree's
// descendants, expiration, another process sharing the store) are still
// seen, within `poll`.
//
// Not for: deciding what has ended (the store says; this only says when to
// look again).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dispatch::scheduler {

class EndWaiters {
  struct Entry {
    std::condition_variable cv;
    uint64_t ends = 0;    // times ended() named this ID
    std::size_t users = 0;  // registered Waits
  };

 public:
  // One Get's registration; unregisters when destroyed.
  class Wait {
   public:
    Wait(EndWaiters& owner, std::string id);
    ~Wait();
    Wait(const Wait&) = delete;
    Wait& operator=(const Wait&) = delete;

    // Sleeps until ended() names the call (since the last sleep, or since
    // the registration), `poll` has passed or `until` has come.
    void sleep(std::chrono::milliseconds poll, std::chrono::steady_clock::time_point until);

   private:
    EndWaiters& owner_;
    std::string id_;
    std::shared_ptr<Entry> entry_;
    uint64_t seen_ = 0;
  };

  // The scheduler recorded the end of call `id` (completed, failed,
  // cancelled). Costs one relaxed atomic load when nobody waits.
  void ended(std::string_view id);

  bool anyone_waiting() const noexcept { return waiting_.load(std::memory_order_relaxed) > 0; }

  // Wakes every sleeping Get and makes later sleeps return at once: the
  // server is draining, and a wait must not hold it.
  void close();
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  std::atomic<std::size_t> waiting_{0};
};

}  // namespace dispatch::scheduler
