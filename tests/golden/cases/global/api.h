// The global namespace: no package, generated code in ::remote and ::api_wire.
#pragma once
#include <chrono>
#include <string>
#include <vector>
struct Greeting {
  std::string text;
  std::chrono::system_clock::time_point at;
};
[[dispatch::function]] Greeting greet(const std::string& name);
[[dispatch::function]] void reset();
