// Types hidden by a function or variable of their own name (C's `struct
// stat` beside `stat()`): the plain name means the function, so generated
// code writes `struct ::hidden::status` and `enum ::hidden::mode`.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace hidden {

struct status { std::int32_t code; };
enum mode { mode_a, mode_b };
struct other {
  std::int32_t b;
  std::vector<struct status> history;
  std::optional<enum mode> m;
};

[[dispatch::function]] struct status status(std::int32_t id);
[[dispatch::function]] std::int32_t mode(enum mode m, const std::vector<struct other>& others);

inline int other = 0;

}  // namespace hidden
