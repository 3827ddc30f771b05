// The ledger example: a second service whose function calls the shop's
// functions over HTTP from inside its own body (service-to-service calls
// through generated stubs). See docs/examples.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ledger {

struct Summary {
  int64_t total;        // sum of the amounts, computed by shop.add
  int32_t calls_made;   // how many calls to the shop that took
  std::string shop_url; // where the shop was reached
};

// Sums `amounts` by calling shop.add once per amount. A shop that cannot be
// reached surfaces as unavailable, with its address.
[[dispatch::function]] Summary total(const std::vector<int64_t>& amounts);

}  // namespace ledger
