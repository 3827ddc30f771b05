// One of the two libraries tests/server_without_main serves from one
// executable without a main() of its own.
#pragma once

#include <string>

namespace greet {

// "hello, <name>"; an empty name is invalid_argument.
[[dispatch::function]] std::string hello(std::string name);

}  // namespace greet
