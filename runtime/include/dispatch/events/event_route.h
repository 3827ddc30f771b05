// CloudEvents delivery to [[dispatch::event]] functions: a RequestRoute for
// dispatch::Server that takes events over HTTP in binary, structured and
// batched mode, finds the function, maps the event's data to its parameter
// by datacontenttype through the service's descriptor, runs it and answers
// as the Knative Eventing data plane asks. docs/events.md has the whole
// mapping; in short:
//
//   routing   POST to a function's method path with CloudEvents headers or
//             content type: that function. POST to "/": the function that
//             declared the event's type; else a service's only function
//             declaring no type. Other types: 404.
//   data      JSON (`*/json`, `*/*+json`) through the protobuf JSON mapping of
//             the parameter's type; protobuf (`application/protobuf`,
//             `application/x-protobuf`) as the binary message of a struct
//             parameter; `text/*` into a std::string; anything into bytes.
//   answers   200 with a reply event (in the request's mode) when the
//             function returns data or an event; 202 without one; 400 for a
//             malformed event or data that does not decode (not retried); 415
//             for a format or data type the function cannot take; the code's
//             HTTP status when the function fails (5xx: retried).
//
//   dispatch::ServerOptions options = dispatch::ServerOptions::from_env().value();
//   options.routes.push_back(dispatch::events::event_route(table).value());
//
// Not for: sending events (event_client.h). Public header: compiles as
// C++17 and C++20.
#pragma once

#include <memory>
#include <string>

#include "dispatch/core/result.h"
#include "dispatch/core/service.h"
#include "dispatch/transport/server.h"

namespace dispatch::events {

struct EventOptions {
  // `source` of the reply events the server makes from a function's data
  // (and of an event a function returns without one); empty: the function's
  // method path, "/shop.ApiService/on_order".
  std::string reply_source;

  // reply_source from DISPATCH_EVENT_SOURCE.
  static EventOptions from_env();
};

// The route delivering events to the event functions of `table` (which must
// outlive it). Two functions declaring one event type, or two declaring
// none, are failed_precondition naming both: an event must have one
// destination.
Result<std::shared_ptr<const RequestRoute>> event_route(const DispatchTable& table, EventOptions options = {});

// How many functions of `table` take events.
std::size_t event_function_count(const DispatchTable& table) noexcept;

}  // namespace dispatch::events
