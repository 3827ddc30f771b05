// Event functions that take or return the whole event (dispatch::CloudEvent)
// beside typed data: events_test.cc delivers events to them in every content
// mode and calls them as ordinary methods.
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

// The order and the event's attributes in, a whole reply event out: a
// com.example.shipment.tracked event about the order (subject: the order id;
// extension `causedby`: the incoming event's id; text data). An order id
// "down" fails unavailable; "bad" returns an event with an invalid
// extension name.
[[dispatch::event("com.example.order.shipped")]]
dispatch::CloudEvent on_order_shipped(const Order& order, const dispatch::CloudEvent& event);

// The whole event in and, when it has a subject, the same event back as the
// reply with type com.example.audited and no id or source of its own (the
// server fills them in); no reply (202) without a subject.
[[dispatch::event("com.example.audit")]]
std::optional<dispatch::CloudEvent> audit(const dispatch::CloudEvent& event);

// The whole event in, nothing out: counts the events it saw.
[[dispatch::event("com.example.ping")]]
void on_ping(const dispatch::CloudEvent& event);

// How many on_ping saw, and the id of the last.
int64_t pings();
std::string last_ping_id();

}  // namespace events
