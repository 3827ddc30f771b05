// WaitingCalls: a thread per call that waits, made only when every thread
// is busy, up to the maximum; past it calls queue; join() runs what is
// queued and ends the threads.
#include "transport/waiting_calls.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace dispatch::transport {
namespace {

using namespace std::chrono_literals;

// Calls that wait until the test lets them go.
struct Held {
  std::mutex mu;
  std::condition_variable cv;
  int waiting = 0;
  bool go = false;
  std::atomic<int> done{0};

  std::function<void()> call() {
    return [this] {
      std::unique_lock lock(mu);
      ++waiting;
      cv.notify_all();
      cv.wait(lock, [this] { return go; });
      ++done;
    };
  }
  bool wait_for_waiting(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return waiting >= n; });
  }
  void release() {
    std::lock_guard lock(mu);
    go = true;
    cv.notify_all();
  }
};

// Two calls that wait at once, on a pool whose threads are idle: two
// threads, then join().
void two_calls_at_once_take_two_threads(WaitingCalls& pool) {
  Held held;
  pool.post(held.call());
  ASSERT_TRUE(held.wait_for_waiting(1));
  pool.post(held.call());
  ASSERT_TRUE(held.wait_for_waiting(2));
  EXPECT_EQ(pool.threads(), 2u);
  held.release();
  pool.join();
}

TEST(WaitingCalls, AThreadIsMadeOnlyWhenEveryThreadIsBusy) {
  WaitingCalls pool(8);
  EXPECT_EQ(pool.threads(), 0u);
  std::atomic<int> ran{0};
  for (int i = 0; i < 20; ++i) {
    pool.post([&] { ++ran; });
    // One at a time: the one thread is free again before the next call.
    for (int spin = 0; spin < 10'000 && (ran.load() <= i || pool.idle_threads() == 0); ++spin) {
      std::this_thread::sleep_for(1ms);
    }
  }
  EXPECT_EQ(ran.load(), 20);
  EXPECT_EQ(pool.threads(), 1u);
}

// A call that answers, then is slow to return (a loaded machine): the
// call its answer prompts waits for that thread instead of making one.
TEST(WaitingCalls, AThreadThatHasAnsweredTakesTheNextCallInsteadOfANewThread) {
  WaitingCalls pool(8);
  std::mutex mu;
  std::condition_variable cv;
  bool answered = false;
  std::atomic<int> ran{0};
  std::atomic<bool> second_ran_on_first_thread{false};
  std::thread::id first_thread;
  pool.post([&] {
    WaitingCalls::finishing();
    WaitingCalls::finishing();  // once per call, however often it is called
    {
      std::lock_guard lock(mu);
      answered = true;
      first_thread = std::this_thread::get_id();
    }
    cv.notify_all();
    std::this_thread::sleep_for(100ms);  // on its way back
    ++ran;
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return answered; }));
  }
  pool.post([&] {
    second_ran_on_first_thread = std::this_thread::get_id() == first_thread;
    ++ran;
  });
  EXPECT_EQ(pool.threads(), 1u) << "a thread was made while the one that answered was on its way back";
  for (int spin = 0; spin < 10'000 && ran.load() < 2; ++spin) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(ran.load(), 2);
  EXPECT_TRUE(second_ran_on_first_thread.load());
  // Back and idle: the count is whole again, and a call while the thread
  // is busy makes a second thread as before.
  two_calls_at_once_take_two_threads(pool);
}

TEST(WaitingCalls, FinishingOnAnotherThreadDoesNothing) {
  WaitingCalls::finishing();  // not a pool's thread: no effect, no crash
  WaitingCalls pool(4);
  two_calls_at_once_take_two_threads(pool);
}

TEST(WaitingCalls, CallsWaitTogetherUpToTheMaximumAndTheRestQueue) {
  Held held;
  WaitingCalls pool(4);
  for (int i = 0; i < 6; ++i) pool.post(held.call());
  ASSERT_TRUE(held.wait_for_waiting(4));
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard lock(held.mu);
    EXPECT_EQ(held.waiting, 4) << "more calls ran at once than the maximum";
  }
  EXPECT_EQ(pool.threads(), 4u);
  held.release();
  pool.join();
  EXPECT_EQ(held.done.load(), 6);
}

TEST(WaitingCalls, JoinRunsWhatIsQueuedAndLaterPostsRunNothing) {
  Held held;
  std::atomic<int> ran{0};
  WaitingCalls pool(1);
  pool.post(held.call());
  ASSERT_TRUE(held.wait_for_waiting(1));
  pool.post([&] { ++ran; });
  held.release();
  pool.join();
  EXPECT_EQ(ran.load(), 1);
  pool.post([&] { ++ran; });
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(pool.threads(), 0u);
}

}  // namespace
}  // namespace dispatch::transport
