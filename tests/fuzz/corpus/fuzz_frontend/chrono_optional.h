#pragma once
#include <chrono>
#include <map>
#include <optional>
#include <string>
namespace t::v1 {
struct Span { std::chrono::milliseconds d; std::chrono::system_clock::time_point at; std::optional<std::string> note; };
[[dispatch::function]] std::map<std::string, Span> spans(std::optional<int> limit);
}
