// Sending CloudEvents over HTTP: one POST per event (or per batch) to a
// sink's URL, as a Knative broker, a Knative Service or a server of
// [[dispatch::event]] functions takes them, in binary or structured mode
// (the HTTP binding, 1.0.2), and the reply event read back.
//
//   dispatch::CloudEvent e;
//   e.id = "evt-1"; e.source = "/billing"; e.type = "com.example.order.placed";
//   e.datacontenttype = "application/json"; e.data = R"({"id":"o-1","amount":21})";
//   auto reply = dispatch::events::send_event("http://127.0.0.1:8080/", e);
//   // Result<std::optional<CloudEvent>>: the reply, nullopt for 202/204.
//
// Not for: https:// (a sink outside the cluster is reached through a
// broker or a proxy; say so with an error rather than send in clear), retries
// (Knative's delivery spec retries on the broker), connection reuse (one
// connection per send). Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "dispatch/core/cloud_event.h"
#include "dispatch/core/result.h"
#include "dispatch/events/http_binding.h"

namespace dispatch::events {

struct SendOptions {
  // binary (ce- headers, the data as the body) or structured (the JSON event
  // format); batch is for send_batch().
  ContentMode mode = ContentMode::binary;
  // For connecting, writing and reading the answer together.
  std::chrono::milliseconds timeout{30'000};
  // Replies larger than this are resource_exhausted.
  std::size_t max_reply_bytes = 16u << 20;
};

// Checks `event` (check_event(); invalid_argument before anything is sent),
// POSTs it to `url` (http://host[:port][/path]) and reads the answer: a 2xx
// with an event (binary or structured, read as the server wrote it) is the
// reply; 202 or 204, or a 2xx without ce- headers or body, is nullopt. A
// non-2xx answer is an error with the code its status maps to (400
// invalid_argument, 404 not_found, 5xx unavailable/internal ...) and the
// server's message when its body is a Connect JSON error. Cannot connect:
// unavailable; past the timeout: deadline_exceeded; a reply that is not a
// valid event: invalid_argument saying so.
Result<std::optional<CloudEvent>> send_event(std::string_view url, const CloudEvent& event,
                                             const SendOptions& options = {});

// The events as one batched-mode message (application/cloudevents-batch+json);
// the replies, in the order the server sent them (none for 202/204).
Result<std::vector<CloudEvent>> send_batch(std::string_view url, const std::vector<CloudEvent>& events,
                                           const SendOptions& options = {});

}  // namespace dispatch::events
