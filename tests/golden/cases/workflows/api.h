// Workflows: functions declared as returning dispatch::Workflow<T>, beside
// a plain function. Each workflow's server half is a Definition run by the
// runtime, with its generated or its pinned version; its stub gives T; its
// response message holds T.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/workflow/workflow.h"

namespace flows {

enum class Step { reserved = 0, charged = 1 };
struct Receipt {
  std::string order;
  std::int64_t total;
  std::vector<Step> steps;
};

[[dispatch::function]] std::int64_t price(const std::string& sku);
[[dispatch::function]] dispatch::Workflow<Receipt> checkout(const std::string& order, std::vector<std::string> skus);
[[dispatch::function("nightly")]] dispatch::Workflow<void> tick(std::string_view note, std::int32_t round = 1);
// Its version pinned by the annotation, beside a remote name and without one.
[[dispatch::function("restock_v2", version = "3")]] dispatch::Workflow<std::int64_t> restock(const std::string& sku);
[[dispatch::function(version = "2026-12.1")]] dispatch::Workflow<void> recount();

}  // namespace flows
