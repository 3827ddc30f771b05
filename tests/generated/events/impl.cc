#include <atomic>
#include <mutex>

#include "dispatch/core/error.h"
#include "events/api.h"

namespace events {
namespace {
std::atomic<int64_t> ping_count{0};
std::mutex ping_mutex;
std::string ping_id;
}  // namespace

dispatch::CloudEvent on_order_shipped(const Order& order, const dispatch::CloudEvent& event) {
  if (order.id == "down") throw dispatch::Error(dispatch::Code::unavailable, "the carrier is down");
  dispatch::CloudEvent reply;
  reply.id = "shipment-" + order.id;
  reply.source = "/carrier";
  reply.type = "com.example.shipment.tracked";
  reply.subject = order.id;
  reply.set_attribute(order.id == "bad" ? "CausedBy" : "causedby", event.id);
  reply.set_attribute("amount", std::to_string(order.amount), dispatch::AttributeKind::integer);
  reply.datacontenttype = "text/plain";
  reply.data = "shipped " + order.id + (event.data ? " (with data)" : "");
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

void on_ping(const dispatch::CloudEvent& event) {
  std::lock_guard<std::mutex> lock(ping_mutex);
  ping_id = event.id;
  ++ping_count;
}

int64_t pings() { return ping_count; }
std::string last_ping_id() {
  std::lock_guard<std::mutex> lock(ping_mutex);
  return ping_id;
}

}  // namespace events
