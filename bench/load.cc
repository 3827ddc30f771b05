// The closed-loop load driver; see load.h.
#include "load.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cassert>
#include <cmath>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <unistd.h>

namespace bench {

std::int64_t quantile(std::vector<std::int64_t>& samples, double q) {
  assert(!samples.empty() && q > 0 && q <= 1);
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
  return samples[std::max<std::size_t>(rank, 1) - 1];
}

double process_cpu_seconds(int pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat") : "/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // The command name (field 2) is in parentheses and may hold spaces; the
  // fields after its closing parenthesis start at field 3 (state).
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  if (!fields) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void Connection::call_in_flight(int in_flight, const std::function<bool(Clock::time_point)>& may_start,
                                const std::function<void(Clock::time_point, Clock::time_point)>& returned) {
  if (in_flight != 1) {
    throw std::invalid_argument("this system's client makes one call at a time on a connection, so " +
                                std::to_string(in_flight) + " calls in flight per connection cannot be measured");
  }
  for (;;) {
    const auto begin = Clock::now();
    if (!may_start(begin)) return;
    call();
    returned(begin, Clock::now());
  }
}

namespace {

// What one connection's thread measured.
struct Lane {
  std::vector<std::int64_t> latencies_ns;
  std::exception_ptr error;
};

}  // namespace

LoadResult run_closed_loop(const ConnectionFactory& factory, const LoadOptions& options) {
  const int n = options.connections;
  std::vector<std::unique_ptr<Connection>> connections;
  connections.reserve(n);
  for (int i = 0; i < n; ++i) connections.push_back(factory(i));

  std::vector<Lane> lanes(n);
  std::atomic<bool> failed{false};
  // Every thread passes the barrier once its connection is ready; the
  // completion step fixes the shared timeline so all lanes measure the
  // same window.
  Clock::time_point measure_from, measure_until;
  // n lanes and the CPU sampler.
  std::barrier start(n + 1, [&]() noexcept {
    measure_from = Clock::now() + options.warmup;
    measure_until = measure_from + options.duration;
  });

  // CPU over the measured window, sampled at its start and end by a thread
  // of its own (the warm-up's calls are not charged).
  double cpu_begin[2] = {-1, -1}, cpu_end[2] = {-1, -1};
  std::thread sampler([&] {
    start.arrive_and_wait();
    std::this_thread::sleep_until(measure_from);
    cpu_begin[0] = process_cpu_seconds(0);
    if (options.cpu_of_pid > 0) cpu_begin[1] = process_cpu_seconds(options.cpu_of_pid);
    std::this_thread::sleep_until(measure_until);
    cpu_end[0] = process_cpu_seconds(0);
    if (options.cpu_of_pid > 0) cpu_end[1] = process_cpu_seconds(options.cpu_of_pid);
  });

  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      Lane& lane = lanes[i];
      lane.latencies_ns.reserve(1 << 16);
      start.arrive_and_wait();
      try {
        // A call counts when it started inside the window; calls straddling
        // the end are counted (closed loop: each lane keeps in_flight going).
        connections[i]->call_in_flight(
            options.in_flight,
            [&](Clock::time_point begin) { return begin < measure_until && !failed.load(std::memory_order_relaxed); },
            [&](Clock::time_point begin, Clock::time_point end) {
              if (begin >= measure_from) {
                lane.latencies_ns.push_back(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
              }
            });
      } catch (...) {
        lane.error = std::current_exception();
        failed = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  sampler.join();
  auto finished = Clock::now();

  std::vector<std::int64_t> all;
  for (auto& lane : lanes) {
    if (lane.error) std::rethrow_exception(lane.error);
    all.insert(all.end(), lane.latencies_ns.begin(), lane.latencies_ns.end());
  }
  connections.clear();

  LoadResult result;
  result.calls = all.size();
  if (cpu_begin[0] >= 0 && cpu_end[0] >= 0) result.client_cpu_s = cpu_end[0] - cpu_begin[0];
  if (cpu_begin[1] >= 0 && cpu_end[1] >= 0) result.server_cpu_s = cpu_end[1] - cpu_begin[1];
  // The window ends when the last lane's last call returned.
  result.seconds = std::chrono::duration<double>(std::max(finished, measure_until) - measure_from).count();
  if (all.empty()) return result;
  result.qps = static_cast<double>(result.calls) / result.seconds;
  result.p50_us = static_cast<double>(quantile(all, 0.50)) / 1000.0;
  result.p99_us = static_cast<double>(quantile(all, 0.99)) / 1000.0;
  return result;
}

}  // namespace bench
