// dispatch::CloudEvent: one CloudEvents 1.0 event as a value: its context
// attributes (the required id, source, specversion and type, the optional
// ones the spec names, and extensions) and its data bytes. A function takes
// one as `const dispatch::CloudEvent&` or returns one (docs/events.md); the
// events layer reads and writes it over HTTP, the wire layer as the
// CloudEvents protobuf format.
//
// Not for: checking an event against the spec or reading it from bytes
// (dispatch/events/, dispatch/wire/cloud_event.h). Attribute values are kept
// as the spec's canonical strings; nothing here parses a time or a URI.
// Public header: compiles as C++17 and C++20.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace dispatch {

// An extension attribute's type, as far as the event formats tell them
// apart: JSON writes integers and booleans as numbers and literals, every
// other type (URI, timestamp, binary as base64) as a string.
enum class AttributeKind : std::uint8_t { string, integer, boolean };

struct ExtensionValue {
  std::string text;  // canonical string form: "5", "true", "https://x"
  AttributeKind kind = AttributeKind::string;

  friend bool operator==(const ExtensionValue& a, const ExtensionValue& b) {
    return a.text == b.text && a.kind == b.kind;
  }
  friend bool operator!=(const ExtensionValue& a, const ExtensionValue& b) { return !(a == b); }
};

struct CloudEvent {
  // REQUIRED: every event has these, none empty.
  std::string specversion = "1.0";
  std::string id;
  std::string source;  // URI-reference
  std::string type;
  // OPTIONAL attributes of the spec; nullopt when absent.
  std::optional<std::string> datacontenttype;  // RFC 2046 media type of `data`
  std::optional<std::string> dataschema;       // URI
  std::optional<std::string> subject;
  std::optional<std::string> time;  // RFC 3339
  // Extension attributes by name (lower-case ASCII letters and digits).
  std::map<std::string, ExtensionValue> extensions;
  // The data as bytes (JSON data as its UTF-8 text); nullopt when the event
  // has none.
  std::optional<std::string> data;

  // Any attribute by name ("id", "subject", an extension), as its string
  // form; nullopt when absent. The value points into this event.
  std::optional<std::string_view> attribute(std::string_view name) const;
  // Sets an attribute by name: a core attribute, an optional one, or else an
  // extension of `kind`. Checking the name is the events layer's job.
  void set_attribute(std::string_view name, std::string value, AttributeKind kind = AttributeKind::string);

  friend bool operator==(const CloudEvent& a, const CloudEvent& b) {
    return a.specversion == b.specversion && a.id == b.id && a.source == b.source && a.type == b.type &&
           a.datacontenttype == b.datacontenttype && a.dataschema == b.dataschema && a.subject == b.subject &&
           a.time == b.time && a.extensions == b.extensions && a.data == b.data;
  }
  friend bool operator!=(const CloudEvent& a, const CloudEvent& b) { return !(a == b); }
};

}  // namespace dispatch
