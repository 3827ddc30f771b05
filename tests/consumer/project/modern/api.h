// A header that needs C++20 or later (a defaulted <=>), in a project whose
// CMAKE_CXX_STANDARD is 17: its target asks for C++23 with
// target_compile_features, and dispatch_generate() must read it so (clang
// 14, inside the generator, rejects -std=c++23 and takes c++2b).
#pragma once

#include <compare>
#include <string>

namespace modern {

struct Version {
  int major = 0;
  int minor = 0;
  auto operator<=>(const Version&) const = default;
};

[[dispatch::function]] Version newer(const Version& a, const Version& b);

}  // namespace modern
