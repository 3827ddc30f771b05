// The CloudEvents HTTP protocol binding (1.0.2) and the checks the core spec
// (1.0) asks of every event: which content mode a message is in, binary
// mode's `ce-` headers with their percent-encoded values, and the JSON event
// format of structured and batched mode (json_format.h). Pure functions over
// strings, no sockets: the server side is event_route.h, the client side
// event_client.h.
//
// Not for: routing an event to a function or mapping its data to a
// parameter (event_route.h). Public header: compiles as C++17 and C++20.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/core/cloud_event.h"
#include "dispatch/core/result.h"

namespace dispatch::events {

// The three content modes (binding 3): the Content-Type tells them apart.
enum class ContentMode { binary, structured, batch };

inline constexpr std::string_view kStructuredJson = "application/cloudevents+json";
inline constexpr std::string_view kBatchJson = "application/cloudevents-batch+json";

// batch when the Content-Type starts with "application/cloudevents-batch",
// structured when it starts with "application/cloudevents", binary
// otherwise (case-insensitive, as the binding says).
ContentMode content_mode(std::string_view content_type) noexcept;

// What the spec requires of an event, each failure invalid_argument naming
// the attribute: specversion "1.0" (another version is refused as unknown);
// id, source and type present and not empty; subject, dataschema and
// datacontenttype not empty when present; time in RFC 3339; datacontenttype
// a media type (type/subtype); attribute names of lower-case letters and
// digits, not "data"; every value valid UTF-8 without control characters
// (U+0000-U+001F, U+007F-U+009F) or noncharacters; integer extensions
// within 32 bits, boolean ones "true" or "false".
Result<void> check_event(const CloudEvent& event);

// A header value as binding 3.1.3.2 encodes it: space, '"', '%' and every
// byte outside printable ASCII as %XY (upper-case hex).
std::string percent_encode(std::string_view value);
// Whether `value` is only bytes percent_encode() leaves as they are
// (printable ASCII but space, '"' and '%'): such a value is its own
// encoding and its own decoding.
bool is_plain_header_text(std::string_view value) noexcept;
// The inverse, for a received value: a double-quoted string is unquoted
// first (RFC 7230 3.2.6, backslash escapes), then one round of
// percent-decoding (either hex case). A lone '%', bad hex, an unterminated
// quote or bytes that are not valid UTF-8 after decoding (an overlong form
// such as %C0%A0 included) are invalid_argument.
Result<std::string> decode_header_value(std::string_view value);

using HeaderViews = std::vector<std::pair<std::string_view, std::string_view>>;
using HeaderLines = std::vector<std::pair<std::string, std::string>>;

// A binary-mode message as an event: each `ce-<name>` header (names
// case-insensitive) is the attribute <name>, its value decoded as above;
// Content-Type is datacontenttype; a non-empty body is the data. A repeated
// `ce-` header, a `ce-datacontenttype` header (the binding forbids it), a
// name that is not lower-case letters and digits, or any check_event()
// failure is invalid_argument.
Result<CloudEvent> from_binary(const HeaderViews& headers, std::string_view body);

// The headers of a binary-mode message carrying `event`: Content-Type from
// datacontenttype (when set), `ce-<name>` for every other attribute,
// percent-encoded. The body is event.data.
HeaderLines binary_headers(const CloudEvent& event);
// The same, taking the attributes' strings instead of copying them (a
// server's reply event, answered once); `event.data` is left in place for
// the body, every attribute is left moved-from.
HeaderLines binary_headers(CloudEvent&& event);

// Media type helpers for datacontenttype and Content-Type values: the type
// and subtype in lower case, parameters dropped ("Application/JSON;
// charset=utf-8" -> "application/json").
std::string media_type(std::string_view content_type);
// The same as written, without the copy: parameters dropped and trimmed,
// case kept ("Application/JSON; charset=utf-8" -> "Application/JSON").
std::string_view media_type_as_written(std::string_view content_type) noexcept;
// Whether a media type declares JSON (`*/json` or `*/*+json`), as the JSON
// event format decides between `data` as a JSON value and as a string.
bool is_json_media(std::string_view media);

}  // namespace dispatch::events
