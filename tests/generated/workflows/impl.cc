// The functions and workflows of workflows/api.h, served by the generated
// server half in tests. The workflows await the generated stubs' call()
// forms.
#include <chrono>
#include <cstddef>
#include <stdexcept>

#include "dispatch/core/error.h"
#include "workflows/api.dispatch.h"

namespace flows {

std::int64_t price(const std::string& sku) {
  if (sku.empty()) throw std::invalid_argument("no such sku: ''");
  return static_cast<std::int64_t>(sku.size()) * 100;
}

std::string reserve(const std::string& sku) { return "reserved " + sku; }

void audit(std::string_view what) {
  if (what.empty()) throw dispatch::Error(dispatch::Code::invalid_argument, "nothing to audit");
}

dispatch::Workflow<Receipt> checkout(const std::string& order, std::vector<std::string> skus,
                                     std::chrono::milliseconds pause) {
  if (skus.empty()) throw dispatch::Error(dispatch::Code::invalid_argument, "order " + order + " has no items");
  // The first reservation and the child workflow at once, then the rest.
  auto [reserved, sum] = co_await dispatch::all(remote::reserve.call(skus.front()), remote::total.call(skus));
  std::vector<dispatch::DurableCall<std::string>> reservations;
  for (std::size_t i = 1; i < skus.size(); ++i) reservations.push_back(remote::reserve.call(skus[i]));
  std::vector<std::string> rest = co_await dispatch::all(std::move(reservations));
  co_await dispatch::sleep(pause);
  // A named string, not a temporary inside the co_await: GCC 12 may destroy
  // such temporaries twice (docs/types.md).
  const std::string what = "checked out " + order;
  co_await remote::audit.call(what);
  Receipt receipt{order, sum, {reserved}};
  receipt.reserved.insert(receipt.reserved.end(), rest.begin(), rest.end());
  co_return receipt;
}

dispatch::Workflow<std::int64_t> total(const std::vector<std::string>& skus) {
  std::vector<dispatch::DurableCall<std::int64_t>> prices;
  for (const std::string& sku : skus) prices.push_back(remote::price.call(sku));
  std::vector<std::int64_t> each = co_await dispatch::all(std::move(prices));
  std::int64_t sum = 0;
  for (std::int64_t p : each) sum += p;
  co_return sum;
}

dispatch::Workflow<void> tick(std::string_view note) {
  co_await dispatch::sleep(std::chrono::milliseconds(10));
  co_await remote::audit.call(note);
}

dispatch::Workflow<std::int64_t> recount(const std::vector<std::string>& skus) {
  std::int64_t sum = 0;
  for (const std::string& sku : skus) sum += co_await remote::price.call(sku);
  co_return sum;
}

}  // namespace flows
