// Event functions in every form dispatch-gen generates (docs/events.md):
// typed data in and out, data with the event's attributes, the whole event
// in and out, and an optional reply event.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dispatch/core/cloud_event.h"

namespace events {

struct Order {
  std::string id;
  int64_t amount;
};

struct Receipt {
  std::string order_id;
  int64_t total;
};

// The data in, the reply's data out.
[[dispatch::event("com.example.order.placed", "com.example.receipt.issued")]]
Receipt on_order_placed(const Order& order);

// The data and the event's attributes in, a whole reply event out.
[[dispatch::event("com.example.order.shipped")]]
dispatch::CloudEvent on_order_shipped(const Order& order, const dispatch::CloudEvent& event);

// The whole event in, nothing out (202).
[[dispatch::event("com.example.ping")]]
void on_ping(const dispatch::CloudEvent& event);

// Any other type: the whole event in, a reply event or none.
[[dispatch::event]]
std::optional<dispatch::CloudEvent> audit(const dispatch::CloudEvent& event);

}  // namespace events
