#include "orders/orders.h"

#include <stdexcept>

#include "dispatch/core/error.h"

namespace orders {

Receipt on_order_placed(const Order& order) {
  if (order.amount < 0) throw dispatch::Error(dispatch::Code::invalid_argument, "amount is negative");
  if (order.id == "boom") throw std::runtime_error("the receipt printer is on fire");
  return Receipt{order.id, order.amount * 2};
}

void on_order_cancelled(const Order&) {}

}  // namespace orders
