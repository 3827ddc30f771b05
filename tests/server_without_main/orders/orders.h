// Event functions served by a dispatch_add_server() executable: events.sh
// delivers CloudEvents to them over HTTP as Knative Eventing would.
#pragma once

#include <cstdint>
#include <string>

namespace orders {

struct Order {
  std::string id;
  int64_t amount;
};

struct Receipt {
  std::string order_id;
  int64_t total;
};

// A receipt for the order, as the data of a com.example.receipt.issued reply.
// A negative amount is invalid_argument; the order id "boom" fails (internal).
[[dispatch::event("com.example.order.placed", "com.example.receipt.issued")]]
Receipt on_order_placed(const Order& order);

// No reply.
[[dispatch::event("com.example.order.cancelled")]]
void on_order_cancelled(const Order& order);

}  // namespace orders
