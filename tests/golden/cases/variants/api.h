// std::variant in every position the generator supports: a field, a
// parameter, a result, a vector's element, an optional, a map's value, an
// alternative that needs a wrapper, and a variant inside a variant.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace shapes {

struct Circle {
  double radius;
};
struct Square {
  double side;
};
enum class Tint { plain = 0, red = 1 };

struct Drawing {
  std::string title;
  std::vector<std::variant<Circle, Square>> shapes;
  std::optional<std::variant<Tint, std::string>> tint;
  std::map<std::string, std::variant<std::int64_t, std::vector<std::string>>> notes;
  std::variant<std::variant<Circle, Square>, std::int32_t> focus;
};

[[dispatch::function]] std::variant<double, std::string> area(const std::variant<Circle, Square>& shape);
[[dispatch::function]] Drawing normalize(const Drawing& drawing);

}  // namespace shapes
