// Nested and inline namespaces, an unscoped enum with a narrow underlying
// type, an attribute list, a remote name, and view parameters.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
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
[[dispatch::function]] std::uint32_t checksum(std::string_view name, std::span<const std::uint8_t> data,
                                              std::span<const Point> path = {});
}  // namespace tools
}  // namespace outer::inner
