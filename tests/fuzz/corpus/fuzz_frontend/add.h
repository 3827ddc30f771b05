#pragma once
namespace shop {
struct Item { int qty; double price; bool gift; };
enum class Color { red, green };
enum Size : unsigned char { small = 1, large = 2 };
[[dispatch::function]] long long add(long long a, long long b);
[[dispatch::function]] Item pick(const Item& item, Color c, Size s);
[[dispatch::function("ping_v2")]] void ping();
}
