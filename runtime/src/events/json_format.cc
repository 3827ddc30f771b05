// The CloudEvents JSON event format over nlohmann::json (see the header).
#include "dispatch/events/json_format.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "dispatch/events/http_binding.h"
#include "dispatch/wire/wire.h"
#include "security/base64.h"

namespace dispatch::events {
namespace {

using Json = nlohmann::json;

// Deeper JSON is refused: what a function's data needs is far shallower, and
// protobuf's JSON parser stops at 100 anyway.
constexpr int kMaxDepth = 64;

Error bad(std::string message) { return Error(Code::invalid_argument, std::move(message)); }

// Parses one JSON text, refusing more than kMaxDepth levels of nesting.
Result<Json> parse(std::string_view text) {
  int deepest = 0;
  Json::parser_callback_t depth = [&deepest](int d, Json::parse_event_t, Json&) {
    deepest = std::max(deepest, d);
    return true;
  };
  Json value;
  try {
    value = Json::parse(text.begin(), text.end(), depth);
  } catch (const Json::exception& e) {
    // parse_error for bad syntax; out_of_range for a number no double holds.
    return bad(std::string("not valid JSON: ") + e.what());
  }
  if (deepest > kMaxDepth) return bad("JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
  return value;
}

std::string dump(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

const char* json_type(const Json& v) { return v.type_name(); }

bool is_text_media(std::string_view media) {
  if (media.substr(0, 5) == "text/") return true;
  const auto slash = media.find('/');
  const std::string_view subtype = slash == std::string_view::npos ? media : media.substr(slash + 1);
  return subtype == "xml" || (subtype.size() > 4 && subtype.substr(subtype.size() - 4) == "+xml");
}

Result<CloudEvent> event_from(const Json& object) {
  if (!object.is_object()) return bad(std::string("an event is a JSON object, not ") + json_type(object));
  CloudEvent event;
  event.specversion.clear();
  const Json* data = nullptr;
  const Json* data_base64 = nullptr;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& name = it.key();
    const Json& value = it.value();
    if (name == "data") {
      data = &value;
      continue;
    }
    if (name == "data_base64") {
      // Null is unset here as for an attribute: only the other member is
      // the data (a producer that writes every member, null or not).
      if (!value.is_null()) data_base64 = &value;
      continue;
    }
    if (value.is_null()) continue;  // the format: null is unset
    const bool core = name == "specversion" || name == "id" || name == "source" || name == "type" ||
                      name == "datacontenttype" || name == "dataschema" || name == "subject" || name == "time";
    if (value.is_string()) {
      event.set_attribute(name, value.get<std::string>());
    } else if (core) {
      return bad("attribute '" + name + "' must be a JSON string, not " + json_type(value));
    } else if (value.is_boolean()) {
      event.set_attribute(name, value.get<bool>() ? "true" : "false", AttributeKind::boolean);
    } else if (value.is_number_integer()) {
      event.set_attribute(name, dump(value), AttributeKind::integer);
    } else {
      return bad("attribute '" + name + "' is a JSON " + json_type(value) +
                 "; attribute values are strings, integers or booleans");
    }
  }
  if (data && data_base64) return bad("an event has 'data' or 'data_base64', not both");
  if (data_base64) {
    if (!data_base64->is_string()) return bad("'data_base64' must be a JSON string of base64");
    auto bytes = security::detail::base64_decode(data_base64->get_ref<const std::string&>());
    if (!bytes) return bad("'data_base64' is not valid base64");
    event.data = std::move(*bytes);
  }
  if (data) {
    // JSON-formatted data (datacontenttype JSON, or none, which means JSON)
    // is kept as JSON text; a null there is an explicit null payload.
    if (!event.datacontenttype || is_json_media(media_type(*event.datacontenttype))) {
      event.data = dump(*data);
      // The format: carried on in another binding, implied JSON is said.
      if (!event.datacontenttype) event.datacontenttype = "application/json";
    } else if (data->is_string()) {
      event.data = data->get<std::string>();
    } else if (!data->is_null()) {
      return bad("'data' must be a JSON string when datacontenttype is " + *event.datacontenttype);
    }
  }
  if (auto checked = check_event(event); !checked.ok()) return std::move(checked).error();
  return event;
}

Json object_for(const CloudEvent& e) {
  Json out = Json::object();
  out["specversion"] = e.specversion;
  out["id"] = e.id;
  out["source"] = e.source;
  out["type"] = e.type;
  if (e.subject) out["subject"] = *e.subject;
  if (e.dataschema) out["dataschema"] = *e.dataschema;
  if (e.time) out["time"] = *e.time;
  for (const auto& [name, value] : e.extensions) {
    if (value.kind == AttributeKind::boolean && (value.text == "true" || value.text == "false")) {
      out[name] = value.text == "true";
      continue;
    }
    if (value.kind == AttributeKind::integer) {
      Json number = Json::parse(value.text, nullptr, /*allow_exceptions=*/false);
      if (number.is_number_integer()) {
        out[name] = number;
        continue;
      }
    }
    out[name] = value.text;
  }
  if (!e.data) {
    if (e.datacontenttype) out["datacontenttype"] = *e.datacontenttype;
    return out;
  }
  const std::string media = e.datacontenttype ? media_type(*e.datacontenttype) : std::string();
  if (e.datacontenttype && is_json_media(media)) {
    auto parsed = parse(*e.data);
    if (parsed.ok()) {
      out["datacontenttype"] = *e.datacontenttype;
      out["data"] = std::move(*parsed);
      return out;
    }
  }
  if (e.datacontenttype && is_text_media(media) && wire::is_valid_utf8(*e.data)) {
    out["datacontenttype"] = *e.datacontenttype;
    out["data"] = *e.data;
    return out;
  }
  // Bytes: the format says a datacontenttype is kept only when it is known.
  if (e.datacontenttype) out["datacontenttype"] = *e.datacontenttype;
  out["data_base64"] = security::detail::base64_encode(*e.data);
  return out;
}

}  // namespace

Result<CloudEvent> from_json(std::string_view text) {
  auto parsed = parse(text);
  if (!parsed.ok()) return std::move(parsed).error();
  return event_from(*parsed);
}

Result<std::vector<CloudEvent>> from_json_batch(std::string_view text) {
  auto parsed = parse(text);
  if (!parsed.ok()) return std::move(parsed).error();
  if (!parsed->is_array()) {
    return bad(std::string("a batch is a JSON array of events, not ") + json_type(*parsed));
  }
  std::vector<CloudEvent> events;
  events.reserve(parsed->size());
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    auto event = event_from((*parsed)[i]);
    if (!event.ok()) return std::move(event).error().with_context("batch event " + std::to_string(i));
    events.push_back(std::move(*event));
  }
  return events;
}

std::string to_json(const CloudEvent& event) { return dump(object_for(event)); }

std::string to_json_batch(const std::vector<CloudEvent>& events) {
  Json array = Json::array();
  for (const CloudEvent& e : events) array.push_back(object_for(e));
  return dump(array);
}

}  // namespace dispatch::events
