// The events benchmark's input to dispatch-gen: one event function, which
// bench-events calls as CloudEvents (binary and structured mode) and as a
// Connect method, on the same server.
//
// Not for: anything but the benchmark.
#pragma once

#include <cstdint>
#include <string>

namespace bench_events {

struct Tick {
  std::int32_t n;
  std::string note;
};

struct Tally {
  std::int32_t n;
};

// Tally{tick.n + 1}, as the reply event's data.
[[dispatch::event("bench.tick", "bench.tallied")]] Tally on_tick(const Tick& tick);

}  // namespace bench_events
