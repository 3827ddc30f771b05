// Tests for the closed-loop driver: the order statistics it reports, that
// every lane's calls are counted, and that a failing connection fails the run
// instead of producing a number. No timing assertions (a shared 2-core
// machine makes them flaky); durations are kept short.
#include "load.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {
namespace {

TEST(Quantile, NearestRank) {
  std::vector<std::int64_t> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i);  // unsorted on purpose
  EXPECT_EQ(quantile(samples, 0.50), 50);
  EXPECT_EQ(quantile(samples, 0.99), 99);
  EXPECT_EQ(quantile(samples, 1.0), 100);
  EXPECT_EQ(quantile(samples, 0.001), 1);
}

TEST(Quantile, SmallSamples) {
  std::vector<std::int64_t> one{7};
  EXPECT_EQ(quantile(one, 0.5), 7);
  EXPECT_EQ(quantile(one, 0.99), 7);
  std::vector<std::int64_t> two{30, 10};
  EXPECT_EQ(quantile(two, 0.5), 10);
  EXPECT_EQ(quantile(two, 0.99), 30);
}

// Counts its calls into a shared counter.
class CountingConnection : public Connection {
 public:
  explicit CountingConnection(std::atomic<std::uint64_t>& calls) : calls_(calls) {}
  void call() override { calls_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t>& calls_;
};

TEST(RunClosedLoop, CountsOnlyMeasuredCallsOfEveryLane) {
  std::atomic<std::uint64_t> calls{0};
  std::atomic<int> opened{0};
  LoadOptions options;
  options.connections = 4;
  options.warmup = std::chrono::milliseconds(20);
  options.duration = std::chrono::milliseconds(50);
  LoadResult r = run_closed_loop(
      [&](int) {
        ++opened;
        return std::make_unique<CountingConnection>(calls);
      },
      options);
  EXPECT_EQ(opened.load(), 4);
  EXPECT_GT(r.calls, 0u);
  // Warm-up calls happen but are not reported.
  EXPECT_LT(r.calls, calls.load());
  EXPECT_GT(r.qps, 0);
  EXPECT_GE(r.seconds, 0.05);
  EXPECT_LE(r.p50_us, r.p99_us);
}

class FailingConnection : public Connection {
 public:
  void call() override { throw std::runtime_error("server answered 41"); }
};

TEST(RunClosedLoop, AFailingConnectionFailsTheRun) {
  LoadOptions options;
  options.connections = 3;
  options.warmup = std::chrono::milliseconds(0);
  options.duration = std::chrono::milliseconds(10000);  // must stop long before this
  std::atomic<std::uint64_t> calls{0};
  auto factory = [&](int index) -> std::unique_ptr<Connection> {
    if (index == 1) return std::make_unique<FailingConnection>();
    return std::make_unique<CountingConnection>(calls);
  };
  try {
    run_closed_loop(factory, options);
    FAIL() << "a failing connection must fail the run";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "server answered 41");
  }
}

// Keeps up to in_flight "calls" open at once and records the most it had:
// the oldest returns each time the connection is full or may start no more.
class MultiplexingConnection : public Connection {
 public:
  MultiplexingConnection(std::atomic<int>& most, std::atomic<std::uint64_t>& calls) : most_(most), calls_(calls) {}
  void call() override { throw std::logic_error("call_in_flight only"); }
  void call_in_flight(int in_flight, const std::function<bool(Clock::time_point)>& may_start,
                      const std::function<void(Clock::time_point, Clock::time_point)>& returned) override {
    std::vector<Clock::time_point> open;
    for (;;) {
      while (static_cast<int>(open.size()) < in_flight) {
        const auto begin = Clock::now();
        if (!may_start(begin)) break;
        open.push_back(begin);
      }
      const int now_open = static_cast<int>(open.size());
      int seen = most_.load();
      while (now_open > seen && !most_.compare_exchange_weak(seen, now_open)) {
      }
      if (open.empty()) return;
      returned(open.front(), Clock::now());
      open.erase(open.begin());
      ++calls_;
    }
  }

 private:
  std::atomic<int>& most_;
  std::atomic<std::uint64_t>& calls_;
};

TEST(RunClosedLoop, KeepsTheAskedCallsInFlightOnEveryConnection) {
  LoadOptions options;
  options.connections = 2;
  options.in_flight = 5;
  options.warmup = std::chrono::milliseconds(10);
  options.duration = std::chrono::milliseconds(50);
  std::atomic<int> most{0};
  std::atomic<std::uint64_t> calls{0};
  LoadResult r = run_closed_loop(
      [&](int) { return std::make_unique<MultiplexingConnection>(most, calls); }, options);
  EXPECT_EQ(most.load(), 5);
  EXPECT_GT(r.calls, 0u);
  EXPECT_LT(r.calls, calls.load());  // the warm-up's returned calls are not reported
}

TEST(RunClosedLoop, AOneAtATimeClientRefusesMoreInFlight) {
  std::atomic<std::uint64_t> calls{0};
  LoadOptions options;
  options.connections = 1;
  options.in_flight = 2;
  try {
    run_closed_loop([&](int) { return std::make_unique<CountingConnection>(calls); }, options);
    FAIL() << "a client that makes one call at a time cannot keep 2 in flight";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("2 calls in flight"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls.load(), 0u);
}

TEST(RunClosedLoop, AFactoryErrorPropagates) {
  LoadOptions options;
  options.connections = 2;
  auto factory = [](int) -> std::unique_ptr<Connection> {
    throw std::runtime_error("cannot connect to 127.0.0.1:1");
  };
  EXPECT_THROW(run_closed_loop(factory, options), std::runtime_error);
}

TEST(ProcessCpuSeconds, GrowsWithWorkAndFailsForAProcessThatIsGone) {
  double before = process_cpu_seconds(0);
  ASSERT_GE(before, 0);
  volatile std::uint64_t x = 0;
  // Busy until the tick-granular counter moves (at most a few seconds).
  for (double now = before; now <= before;) {
    for (int i = 0; i < 1000000; ++i) x = x + static_cast<std::uint64_t>(i);
    now = process_cpu_seconds(0);
  }
  EXPECT_GT(process_cpu_seconds(static_cast<int>(getpid())), before);
  EXPECT_EQ(process_cpu_seconds(1 << 30), -1);  // beyond pid_max: no such process
}

TEST(RunClosedLoop, ReportsCpuOfTheWindowForItselfAndAPid) {
  std::atomic<std::uint64_t> calls{0};
  LoadOptions options;
  options.connections = 2;
  options.warmup = std::chrono::milliseconds(10);
  options.duration = std::chrono::milliseconds(200);
  options.cpu_of_pid = static_cast<int>(getpid());  // the "server" is this process too
  LoadResult r = run_closed_loop([&](int) { return std::make_unique<CountingConnection>(calls); }, options);
  // Two lanes spinning for 200 ms use CPU; both samples are of this process.
  EXPECT_GE(r.client_cpu_s, 0);
  EXPECT_GE(r.server_cpu_s, 0);
  EXPECT_LT(r.client_cpu_s, 10.0);

  options.cpu_of_pid = 0;
  r = run_closed_loop([&](int) { return std::make_unique<CountingConnection>(calls); }, options);
  EXPECT_EQ(r.server_cpu_s, -1);  // not asked for
}

}  // namespace
}  // namespace bench
