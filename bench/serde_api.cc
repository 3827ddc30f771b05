// The server half generated from serde_api.h calls store(); the benchmark
// never serves it, so it does nothing.
#include "serde_api.h"

namespace bench_serde {

void store(const Order&) {}

}  // namespace bench_serde
