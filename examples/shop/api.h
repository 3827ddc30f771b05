// The shop example's remote API: plain declarations marked
// [[dispatch::function]]. dispatch-gen turns this header into codecs, client
// stubs (shop::remote::add(client, 1, 2)), a dispatch table
// (shop::remote::api_service()) and shop/api.proto for other languages.
// Implementations are in impl.cc; see docs/examples.md to run and call them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shop {

enum class Status { pending, paid, shipped };

struct Item {
  std::string sku;
  int32_t qty;
  double price;
};

struct Order {
  std::string id;
  int64_t customer;
  std::vector<Item> items;
  std::optional<std::string> note;
  Status status;
  std::vector<int64_t> tags;
};

// a + b.
[[dispatch::function]] int64_t add(int64_t a, int64_t b);

// Records an order for `customer` (a decimal customer number); a bad number
// or an item with qty <= 0 is invalid_argument.
[[dispatch::function]] Order place_order(const std::vector<Item>& items, std::string customer);

// Marks a pending order paid; served under the remote name "charge_v2".
// Unknown order: not_found; not pending: failed_precondition.
[[dispatch::function("charge_v2")]] void charge(const Order& order);

// An order placed earlier; unknown ids fail with not_found. It changes
// nothing, so Connect clients may call it with GET (cacheable).
[[dispatch::function(idempotency = "no_side_effects")]] Order get_order(std::string id);

// Sleeps `ms` milliseconds (at most 60000), then says how long it slept: for
// timeouts, drains and worker-pool behaviour.
[[dispatch::function]] std::string slow(int32_t ms);

}  // namespace shop
