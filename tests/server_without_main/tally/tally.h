// The second library tests/server_without_main serves beside greet/.
#pragma once

#include <cstdint>

namespace tally {

// n + n.
[[dispatch::function]] int64_t twice(int64_t n);

}  // namespace tally
