// A struct named `std` in the functions' namespace, where the generated code
// lives: the generated code writes `::std::`, so `std::string` there still
// means the standard library's.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shop {

struct std { ::std::int32_t a; };
struct Holder {
  std s;
  ::std::string name;
  ::std::vector<::std::optional<::std::string>> notes;
  ::std::map<::std::string, std> by_name;
};

[[dispatch::function]] Holder f(const Holder& h, ::std::string label = "x");

}  // namespace shop
