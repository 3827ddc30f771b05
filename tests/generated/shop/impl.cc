// The shop functions the generated server half calls in tests. Their errors
// are chosen to exercise the exception-to-code mapping.
#include "shop/api.h"

#include <stdexcept>

#include "dispatch/core/error.h"

namespace shop {

int64_t add(int64_t a, int64_t b) { return a + b; }

Order place_order(const std::vector<Item>& items, std::string customer) {
  if (items.empty()) throw std::invalid_argument("an order needs at least one item");
  Order order;
  order.id = "order-" + customer;
  order.customer = static_cast<int64_t>(customer.size());
  order.items = items;
  order.note = "placed by " + customer;
  order.status = Status::pending;
  for (const Item& item : items) order.tags.push_back(item.qty);
  return order;
}

void charge(const Order& order) {
  if (order.status == Status::paid) {
    throw dispatch::Error(dispatch::Code::failed_precondition, "order " + order.id + " is already paid");
  }
  if (order.items.empty()) throw std::runtime_error("nothing to charge");
}

}  // namespace shop
