// The CloudEvents JSON event format (1.0.2), for structured mode
// (`application/cloudevents+json`) and batched mode
// (`application/cloudevents-batch+json`), over nlohmann::json.
//
// Reading: attributes are the object's top-level members (strings; numbers
// and booleans for extensions; null is absent); `data` is a JSON value kept
// as its JSON text when datacontenttype is JSON or absent (absent then
// becomes "application/json", as the format asks of an event carried on in
// another binding), and otherwise
// must be a string, kept as its UTF-8 bytes; `data_base64` is base64 data.
// Both at once, a member of another JSON type, nesting deeper than 64
// levels, text that is not JSON or not UTF-8, and every check_event()
// failure are invalid_argument.
//
// Writing: data goes out as a JSON value when datacontenttype is JSON and
// the data parses as JSON, as a string when the type is text (`text/*`,
// `*/xml`, `*/*+xml`) and the data is UTF-8, and as `data_base64`
// otherwise (no datacontenttype included).
//
// Not for: HTTP (http_binding.h). Public header: compiles as C++17 and
// C++20; nlohmann::json stays in the .cc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/cloud_event.h"
#include "dispatch/core/result.h"

namespace dispatch::events {

Result<CloudEvent> from_json(std::string_view text);
// An array of events (an empty one included); an element that is not an
// event is an error naming its index.
Result<std::vector<CloudEvent>> from_json_batch(std::string_view text);

// The event as one JSON object. Attribute text that is not UTF-8 (an event
// that would fail check_event()) is written with U+FFFD in its place.
std::string to_json(const CloudEvent& event);
std::string to_json_batch(const std::vector<CloudEvent>& events);

}  // namespace dispatch::events
