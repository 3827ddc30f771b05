// Generated with PACKAGE acme.billing.v1: the package and paths follow it,
// the C++ namespaces do not. Maps, optionals, durations, bytes.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>
namespace billing {
enum class Currency : std::uint8_t { eur = 1, usd = 2 };
struct Invoice {
  std::map<std::string, std::int64_t> lines;
  std::optional<std::chrono::seconds> grace;
  std::vector<std::byte> signature;
  std::unordered_map<std::int32_t, std::vector<std::string>> notes;
  Currency currency;
};
[[dispatch::function]] Invoice draft(std::optional<Invoice> base, std::vector<std::vector<std::int64_t>> amounts);
}  // namespace billing
