// CloudEvent's attribute access by name (see the header).
#include "dispatch/core/cloud_event.h"

namespace dispatch {

std::optional<std::string_view> CloudEvent::attribute(std::string_view name) const {
  auto optional = [](const std::optional<std::string>& v) -> std::optional<std::string_view> {
    if (!v) return std::nullopt;
    return std::string_view(*v);
  };
  if (name == "specversion") return std::string_view(specversion);
  if (name == "id") return std::string_view(id);
  if (name == "source") return std::string_view(source);
  if (name == "type") return std::string_view(type);
  if (name == "datacontenttype") return optional(datacontenttype);
  if (name == "dataschema") return optional(dataschema);
  if (name == "subject") return optional(subject);
  if (name == "time") return optional(time);
  auto it = extensions.find(std::string(name));
  if (it == extensions.end()) return std::nullopt;
  return std::string_view(it->second.text);
}

void CloudEvent::set_attribute(std::string_view name, std::string value, AttributeKind kind) {
  if (name == "specversion") {
    specversion = std::move(value);
  } else if (name == "id") {
    id = std::move(value);
  } else if (name == "source") {
    source = std::move(value);
  } else if (name == "type") {
    type = std::move(value);
  } else if (name == "datacontenttype") {
    datacontenttype = std::move(value);
  } else if (name == "dataschema") {
    dataschema = std::move(value);
  } else if (name == "subject") {
    subject = std::move(value);
  } else if (name == "time") {
    time = std::move(value);
  } else {
    extensions[std::string(name)] = ExtensionValue{std::move(value), kind};
  }
}

}  // namespace dispatch
