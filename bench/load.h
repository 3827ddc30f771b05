// The closed-loop load driver shared by every system in the transport
// benchmark: N connections, each on its own thread, call back to back for a
// fixed time (one call in flight per connection, or several where the
// system's client multiplexes them); every call's latency is kept, so
// p50/p99 are exact order statistics of the measured window, not bucket
// estimates.
//
// Not for: opening connections or speaking any protocol (a system's
// Connection does that), nor for judging whether a number is good.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

// One client connection of the system under test. call() makes one
// round trip and checks the answer; it throws std::runtime_error saying what
// was wrong when the call fails or the answer is not the expected one.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void call() = 0;

  // Keeps `in_flight` calls going on this connection at once (HTTP/2
  // streams): starts one whenever one returns, while may_start(now) says
  // so, and reports each checked call's start and return to returned().
  // Comes back once none is left in flight; throws as call() does, after
  // the calls still in flight have ended. The default makes one call at a
  // time with call(), so it accepts in_flight 1 only (and says so); a
  // client that multiplexes calls on one connection overrides it.
  virtual void call_in_flight(int in_flight, const std::function<bool(Clock::time_point)>& may_start,
                              const std::function<void(Clock::time_point, Clock::time_point)>& returned);
};

using ConnectionFactory = std::function<std::unique_ptr<Connection>(int index)>;

struct LoadOptions {
  int connections = 1;
  std::chrono::milliseconds warmup{300};  // calls made but not counted
  std::chrono::milliseconds duration{3000};
  // Calls each connection keeps in flight at once (Connection::call_in_flight).
  int in_flight = 1;
  // A process whose CPU time over the measured window is reported too (the
  // server under test, in its own process); 0: none.
  int cpu_of_pid = 0;
};

struct LoadResult {
  std::uint64_t calls = 0;   // completed in the measured window
  double seconds = 0;        // length of the measured window
  double qps = 0;
  double p50_us = 0;
  double p99_us = 0;
  // CPU time (user + system) used over the measured window by this load
  // process and by options.cpu_of_pid (-1 when not measured). On 2 cores a
  // heavy client leaves the server little CPU, so calls per second alone
  // compare clients as much as servers; CPU per call compares the servers.
  double client_cpu_s = -1;
  double server_cpu_s = -1;
};

// The CPU time (user + system) `pid` has used so far, from /proc/<pid>/stat
// (0: this process); -1 when it cannot be read (the process is gone).
double process_cpu_seconds(int pid);

// The q-quantile (0 < q <= 1) of `samples` by the nearest-rank method:
// the smallest sample such that at least q of all samples are <= it.
// Sorts `samples` in place. Empty input is a programmer error (asserts).
std::int64_t quantile(std::vector<std::int64_t>& samples, double q);

// Opens options.connections connections with `factory` (all before any call
// starts), runs them for warmup + duration, and reports the measured window.
// The first failure of any connection stops the run and is rethrown, so a
// broken system never reports a throughput.
LoadResult run_closed_loop(const ConnectionFactory& factory, const LoadOptions& options);

}  // namespace bench
