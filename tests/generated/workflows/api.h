// Workflows as users declare them (docs/workflows.md), beside the plain
// functions they call, as generated-code tests use them.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/workflow/workflow.h"

namespace flows {

struct Receipt {
  std::string order;
  std::int64_t total = 0;
  std::vector<std::string> reserved;
  bool operator==(const Receipt&) const = default;
};

// Plain functions.
[[dispatch::function]] std::int64_t price(const std::string& sku);
[[dispatch::function]] std::string reserve(const std::string& sku);
[[dispatch::function]] void audit(std::string_view what);

// Workflows: checkout calls the plain functions durably, gathers, sleeps
// for `pause` and calls the total workflow as a child; tick returns nothing.
[[dispatch::function]] dispatch::Workflow<Receipt> checkout(const std::string& order, std::vector<std::string> skus,
                                                            std::chrono::milliseconds pause);
[[dispatch::function]] dispatch::Workflow<std::int64_t> total(const std::vector<std::string>& skus);
[[dispatch::function("nightly")]] dispatch::Workflow<void> tick(std::string_view note);
// A workflow whose version its annotation pins (docs/workflows.md,
// "Changing a deployed workflow"): the Definition carries "2026-12.1", not
// the hash of its signature.
[[dispatch::function(version = "2026-12.1")]] dispatch::Workflow<std::int64_t> recount(
    const std::vector<std::string>& skus);

}  // namespace flows
