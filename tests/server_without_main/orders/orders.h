// Event functions served by a dispatch_add_server() executable: events.sh
// delivers CloudEvents to them over HTTP as Knative Eventing would.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dispatch/core/cloud_event.h"

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

// The order and the event's attributes in, a whole reply event out: a
// com.example.shipment.tracked event about the order (subject: the order
// id; extension `causedby`: the incoming event's id; text data).
[[dispatch::event("com.example.order.shipped")]]
dispatch::CloudEvent on_order_shipped(const Order& order, const dispatch::CloudEvent& event);

// The whole event in; with a subject, the same event back as a
// com.example.audited reply (the server gives it an id and source), without
// one no reply.
[[dispatch::event("com.example.audit")]]
std::optional<dispatch::CloudEvent> audit(const dispatch::CloudEvent& event);

}  // namespace orders
