// The shop's function bodies. Orders live in memory in this process: an
// example, not a database. The store is a function-local static because a
// [[dispatch::function]] is a plain function with no object to hang it on.
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "dispatch/core/error.h"
#include "shop/api.h"

namespace shop {
namespace {

struct Store {
  std::mutex mu;
  std::map<std::string, Order> orders;
  int64_t next_id = 1;
};

Store& store() {
  static Store s;
  return s;
}

}  // namespace

int64_t add(int64_t a, int64_t b) { return a + b; }

Order place_order(const std::vector<Item>& items, std::string customer) {
  std::size_t used = 0;
  int64_t number = 0;
  try {
    number = std::stoll(customer, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (customer.empty() || used != customer.size()) {
    throw std::invalid_argument("customer '" + customer + "' is not a customer number");
  }
  if (items.empty()) throw std::invalid_argument("an order needs at least one item");
  for (const Item& item : items) {
    if (item.qty <= 0) {
      throw std::invalid_argument("item '" + item.sku + "' has qty " + std::to_string(item.qty) +
                                  "; quantities must be positive");
    }
  }
  Store& s = store();
  std::lock_guard lock(s.mu);
  Order order{"o-" + std::to_string(s.next_id++), number, items, std::nullopt, Status::pending, {}};
  if (items.size() > 3) order.note = "bulk order";
  for (const Item& item : items) order.tags.push_back(item.qty);
  s.orders[order.id] = order;
  return order;
}

void charge(const Order& order) {
  Store& s = store();
  std::lock_guard lock(s.mu);
  auto it = s.orders.find(order.id);
  if (it == s.orders.end()) throw dispatch::Error(dispatch::Code::not_found, "no order '" + order.id + "'");
  if (it->second.status != Status::pending) {
    throw dispatch::Error(dispatch::Code::failed_precondition, "order '" + order.id + "' is not pending");
  }
  it->second.status = Status::paid;
}

Order get_order(std::string id) {
  Store& s = store();
  std::lock_guard lock(s.mu);
  auto it = s.orders.find(id);
  if (it == s.orders.end()) throw dispatch::Error(dispatch::Code::not_found, "no order '" + id + "'");
  return it->second;
}

std::string slow(int32_t ms) {
  if (ms < 0 || ms > 60000) throw std::invalid_argument("ms must be 0..60000, got " + std::to_string(ms));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return "slept " + std::to_string(ms) + " ms";
}

}  // namespace shop
