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

dispatch::CloudEvent on_order_shipped(const Order& order, const dispatch::CloudEvent& event) {
  dispatch::CloudEvent reply;
  reply.id = "shipment-" + order.id;
  reply.source = "/carrier";
  reply.type = "com.example.shipment.tracked";
  reply.subject = order.id;
  reply.set_attribute("causedby", event.id);
  reply.datacontenttype = "text/plain";
  reply.data = "shipped " + order.id;
  return reply;
}

std::optional<dispatch::CloudEvent> audit(const dispatch::CloudEvent& event) {
  if (!event.subject) return std::nullopt;
  dispatch::CloudEvent reply = event;
  reply.id.clear();
  reply.source.clear();
  reply.type = "com.example.audited";
  return reply;
}

}  // namespace orders
