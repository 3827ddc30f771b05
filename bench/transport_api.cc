// The implementations bench-transport's "ours" server serves.
#include "transport_api.h"

namespace bench_transport {

std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }

std::vector<std::uint8_t> echo(const std::vector<std::uint8_t>& data) { return data; }

}  // namespace bench_transport
