// The global namespace: no package, generated code in ::remote and ::api_wire.
// A deprecated function and field: options in the .proto, a deprecated stub.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>
struct Greeting {
  std::string text;
  std::chrono::system_clock::time_point at;
  std::unordered_set<std::int64_t> seen_by;  // encoded in ascending order
};
[[dispatch::function]] Greeting greet(const std::string& name);
[[dispatch::function]] void reset();
struct Visitor {
  std::string name;
  [[deprecated("use name")]] std::string login;
};
[[deprecated("use greet"), dispatch::function]] std::string hello(const Visitor& visitor);
