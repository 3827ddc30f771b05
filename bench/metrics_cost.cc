// bench-metrics: what the metrics one server call updates cost (the
// in-flight gauge up and down, a calls counter, a latency histogram), per
// call, from 1, 2 and 8 threads updating the same series, as I/O threads do.
// Prints "<threads>\t<ns per call>" rows.
//
// Not for: judging the server (bench-transport does that).
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "dispatch/metrics/registry.h"

int main() {
  using namespace dispatch::metrics;
  Registry r;
  Counter& calls = r.counter("c_total", "Calls.", {{"function", "f"}, {"code", "ok"}});
  Histogram& duration = r.histogram("d_seconds", "Durations.", latency_buckets(), {{"function", "f"}});
  Gauge& in_flight = r.gauge("g", "In flight.");
  constexpr long kCalls = 5'000'000;
  for (int threads : {1, 2, 8}) {
    const auto began = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (long i = 0; i < kCalls; ++i) {
          in_flight.inc();
          calls.inc();
          duration.observe(0.00002 * static_cast<double>(i & 7));
          in_flight.dec();
        }
      });
    }
    for (auto& w : workers) w.join();
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - began).count();
    // Wall time per call per thread: with more threads than cores it
    // includes waiting for a core.
    std::printf("%d\t%.1f\n", threads, ns / kCalls);
  }
  return 0;
}
