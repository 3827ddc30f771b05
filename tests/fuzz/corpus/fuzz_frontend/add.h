#pragma once
#include <cstdint>
#include <string>
#include <vector>
namespace shop {
struct Item { std::string name; int32_t qty; };
enum class Color { red, green };
[[dispatch::function]] int64_t add(int64_t a, int64_t b);
[[dispatch::function]] std::vector<Item> order(const std::vector<Item>& items, Color c);
[[dispatch::function]] void ping();
}
