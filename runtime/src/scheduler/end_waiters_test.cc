#include "scheduler/end_waiters.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace dispatch::scheduler {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(EndWaiters, AnEndWakesTheWaitAtOnce) {
  EndWaiters w;
  EndWaiters::Wait wait(w, "a");
  EXPECT_TRUE(w.anyone_waiting());
  std::thread ender([&] {
    std::this_thread::sleep_for(milliseconds(50));
    w.ended("a");
  });
  const auto start = Clock::now();
  wait.sleep(milliseconds(10'000), Clock::now() + milliseconds(10'000));
  EXPECT_LT(Clock::now() - start, milliseconds(5'000)) << "woken by the end, not by the poll interval";
  ender.join();
}

TEST(EndWaiters, AnEndBeforeTheSleepIsNotMissed) {
  EndWaiters w;
  EndWaiters::Wait wait(w, "a");
  w.ended("a");  // between the Get's read of the store and its sleep
  const auto start = Clock::now();
  wait.sleep(milliseconds(10'000), Clock::now() + milliseconds(10'000));
  EXPECT_LT(Clock::now() - start, milliseconds(5'000));
}

TEST(EndWaiters, AnotherCallsEndDoesNotWakeIt) {
  EndWaiters w;
  EndWaiters::Wait wait(w, "a");
  w.ended("b");
  const auto start = Clock::now();
  wait.sleep(milliseconds(200), Clock::now() + milliseconds(10'000));
  EXPECT_GE(Clock::now() - start, milliseconds(150)) << "slept until the poll interval";
}

TEST(EndWaiters, SleepEndsAtTheDeadlineOrThePollInterval) {
  EndWaiters w;
  EndWaiters::Wait wait(w, "a");
  auto start = Clock::now();
  wait.sleep(milliseconds(10'000), Clock::now() + milliseconds(100));
  EXPECT_GE(Clock::now() - start, milliseconds(90));
  EXPECT_LT(Clock::now() - start, milliseconds(5'000));
}

TEST(EndWaiters, EveryWaitOfOneCallIsWokenAndEachLeavesCleanly) {
  EndWaiters w;
  {
    EndWaiters::Wait first(w, "a");
    {
      EndWaiters::Wait second(w, "a");
      w.ended("a");
      const auto start = Clock::now();
      first.sleep(milliseconds(10'000), Clock::now() + milliseconds(10'000));
      second.sleep(milliseconds(10'000), Clock::now() + milliseconds(10'000));
      EXPECT_LT(Clock::now() - start, milliseconds(5'000));
    }
    EXPECT_TRUE(w.anyone_waiting());
  }
  EXPECT_FALSE(w.anyone_waiting());
  w.ended("a");  // nobody waits: nothing to do
}

}  // namespace
}  // namespace dispatch::scheduler
