// The consumer's implementation of shop/api.h (server side only).
#include "shop/api.h"

namespace shop {
int64_t add(int64_t a, int64_t b) { return a + b; }
Order place_order(const std::vector<Item>& items, std::string customer) {
  Order order;
  order.id = customer;
  order.items = items;
  return order;
}
void charge(const Order&) {}
}  // namespace shop
