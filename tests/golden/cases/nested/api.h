// Nested and inline namespaces, an unscoped enum with a narrow underlying
// type, an attribute list, and a remote name.
#pragma once
#include <cstdint>
#include <string>
namespace outer::inner {
inline namespace v1 {
enum Mode : std::int16_t { off = 0, on = 1, auto_ = -1 };
struct Config {
  std::string name;
  Mode mode;
};
[[dispatch::function]] Config configure(const Config& config);
}  // namespace v1
namespace tools {
struct Point {
  std::int32_t x;
  std::int32_t y;
};
[[nodiscard, dispatch::function("measure_distance")]] double distance(Point a, Point b);
}  // namespace tools
}  // namespace outer::inner
