// The shop example (README.md): an enum, nested and repeated structs, optional fields, a renamed function,
// idempotency levels.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
namespace shop {
enum class Status { pending, paid, shipped };
struct Item { std::string sku; int32_t qty; double price; };
struct Order { std::string id; int64_t customer; std::vector<Item> items;
               std::optional<std::string> note; Status status;
               std::vector<int64_t> tags; };

[[dispatch::function]] int64_t add(int64_t a, int64_t b);
[[dispatch::function]] Order place_order(const std::vector<Item>& items, std::string customer);
[[dispatch::function("charge_v2")]] void charge(const Order& order);
[[dispatch::function(idempotency = "no_side_effects")]] Order get_order(std::string id);
[[dispatch::function("cancel_v2", idempotency = "idempotent")]] void cancel(std::string id);
}
