// The durable benchmark's input to dispatch-gen: one no-op function the
// scheduler delivers, so what is measured is the scheduler (store, delivery,
// Run over HTTP), not user code.
//
// Not for: anything but the benchmark.
#pragma once

#include <cstdint>

namespace bench_durable {

[[dispatch::function]] void noop(std::int64_t sequence);

}  // namespace bench_durable
