// The CloudEvents HTTP binding's content modes, binary-mode headers and the
// spec's checks on an event (see the header).
#include "dispatch/events/http_binding.h"

#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "dispatch/wire/wire.h"
#include "transport/http_text.h"

namespace dispatch::events {
namespace {

// ASCII only, as the binding's names and media types are: no locale lookup
// per character (this runs over every header of every event).
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

using transport::trim_ows;

// Per byte: printable ASCII with space (text), and without space, '"' and
// '%' (plain). One lookup per byte on the path every event takes.
struct ByteClasses {
  bool text[256] = {};
  bool plain[256] = {};
  constexpr ByteClasses() {
    for (int b = 0x20; b <= 0x7E; ++b) {
      text[b] = true;
      plain[b] = b != ' ' && b != '"' && b != '%';
    }
  }
};
constexpr ByteClasses kClasses;

bool all_of_class(std::string_view s, const bool (&in_class)[256]) {
  for (char c : s) {
    if (!in_class[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

}  // namespace

bool is_plain_header_text(std::string_view s) noexcept { return all_of_class(s, kClasses.plain); }

namespace {

Error bad(std::string message) { return Error(Code::invalid_argument, std::move(message)); }

// Text an attribute may hold: valid UTF-8, no control characters, no
// noncharacters (core spec, "Type System", String). Empty `why` when fine.
std::string text_problem(std::string_view s) {
  // Printable ASCII (the usual id, source and type) is fine as it is: one
  // pass instead of the UTF-8 check and the decoding below.
  if (all_of_class(s, kClasses.text)) return {};
  if (!wire::is_valid_utf8(s)) return "is not valid UTF-8";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    std::uint32_t cp;
    int n;
    if (*p < 0x80) {
      cp = *p, n = 1;
    } else if ((*p >> 5) == 0x6) {
      cp = *p & 0x1F, n = 2;
    } else if ((*p >> 4) == 0xE) {
      cp = *p & 0x0F, n = 3;
    } else {
      cp = *p & 0x07, n = 4;
    }
    for (int i = 1; i < n; ++i) cp = (cp << 6) | (p[i] & 0x3F);
    p += n;
    char hex[16];
    if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F)) {
      std::snprintf(hex, sizeof hex, "U+%04X", cp);
      return std::string("contains the control character ") + hex;
    }
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE) {
      std::snprintf(hex, sizeof hex, "U+%04X", cp);
      return std::string("contains the noncharacter ") + hex;
    }
  }
  return {};
}

bool is_attribute_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The bit of a context attribute the spec names (datacontenttype aside,
// which binary mode carries in Content-Type), 0 for an extension: from_binary
// tells repeated headers apart without a set of names per event.
unsigned core_attribute_bit(std::string_view name) {
  // from_binary() sets the fields by these bits: keep the two in step.
  static constexpr std::string_view kNames[] = {"specversion", "id",      "source", "type",
                                                "dataschema",  "subject", "time"};
  for (unsigned i = 0; i < std::size(kNames); ++i) {
    if (name == kNames[i]) return 1u << i;
  }
  return 0;
}

// RFC 3339 through protobuf's parser, which wants its upper-case 'T' and
// 'Z' and no leap second; RFC 3339 allows 't', 'z' (its section 5.6) and a
// second of 60 (5.7), as a producer may write them.
bool is_rfc3339(std::string_view text) {
  std::string s(text);
  if (s.size() > 10 && s[10] == 't') s[10] = 'T';
  if (!s.empty() && s.back() == 'z') s.back() = 'Z';
  if (s.size() > 18 && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s.compare(17, 2, "60") == 0) {
    s.replace(17, 2, "59");
  }
  google::protobuf::Timestamp parsed;
  return google::protobuf::util::TimeUtil::FromString(s, &parsed);
}

std::string quoted(std::string_view s) {
  std::string out = "'";
  out.append(s.substr(0, 100));
  if (s.size() > 100) out.append("...");
  return out + "'";
}

}  // namespace

ContentMode content_mode(std::string_view content_type) noexcept {
  content_type = trim_ows(content_type);
  if (starts_with_ci(content_type, "application/cloudevents-batch")) return ContentMode::batch;
  if (starts_with_ci(content_type, "application/cloudevents")) return ContentMode::structured;
  return ContentMode::binary;
}

std::string_view media_type_as_written(std::string_view content_type) noexcept {
  return trim_ows(content_type.substr(0, content_type.find(';')));
}

std::string media_type(std::string_view content_type) {
  std::string out(media_type_as_written(content_type));
  for (char& c : out) c = lower(c);
  return out;
}

bool is_json_media(std::string_view media) {
  const auto slash = media.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view subtype = media.substr(slash + 1);
  return subtype == "json" || (subtype.size() > 5 && subtype.substr(subtype.size() - 5) == "+json");
}

Result<void> check_event(const CloudEvent& e) {
  if (e.specversion.empty()) return bad("missing required attribute 'specversion'");
  if (e.specversion != "1.0") {
    return bad("unknown specversion " + quoted(e.specversion) + "; this receiver speaks CloudEvents 1.0");
  }
  auto check_text = [](std::string_view name, std::string_view value) -> Result<void> {
    if (std::string why = text_problem(value); !why.empty()) {
      return bad("attribute '" + std::string(name) + "' " + why);
    }
    return {};
  };
  for (auto [name, value] : {std::pair<const char*, const std::string*>{"id", &e.id},
                             {"source", &e.source},
                             {"type", &e.type}}) {
    if (value->empty()) return bad(std::string("missing required attribute '") + name + "'");
    if (auto r = check_text(name, *value); !r.ok()) return r;
  }
  for (auto [name, value] : {std::pair<const char*, const std::optional<std::string>*>{"subject", &e.subject},
                             {"dataschema", &e.dataschema},
                             {"datacontenttype", &e.datacontenttype},
                             {"time", &e.time}}) {
    if (!value->has_value()) continue;
    if ((*value)->empty()) return bad(std::string("attribute '") + name + "' is empty; leave it out instead");
    if (auto r = check_text(name, **value); !r.ok()) return r;
  }
  if (e.datacontenttype) {
    // Case does not matter to this check: the media type as written.
    const std::string_view media = media_type_as_written(*e.datacontenttype);
    const auto slash = media.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == media.size() ||
        media.find_first_of(" \t") != std::string_view::npos) {
      return bad("datacontenttype " + quoted(*e.datacontenttype) + " is not a media type (type/subtype)");
    }
  }
  if (e.time && !is_rfc3339(*e.time)) {
    return bad("attribute 'time' " + quoted(*e.time) + " is not an RFC 3339 timestamp");
  }
  for (const auto& [name, value] : e.extensions) {
    if (!is_attribute_name(name)) {
      return bad("attribute name " + quoted(name) + " is not lower-case ASCII letters and digits");
    }
    if (name == "data") return bad("'data' is not an attribute name (the spec reserves it)");
    if (auto r = check_text(name, value.text); !r.ok()) return r;
    if (value.kind == AttributeKind::integer) {
      errno = 0;
      char* end = nullptr;
      const long long n = std::strtoll(value.text.c_str(), &end, 10);
      if (value.text.empty() || *end != '\0' || errno != 0 || n < INT32_MIN || n > INT32_MAX) {
        return bad("integer attribute '" + name + "' " + quoted(value.text) + " is not a 32-bit integer");
      }
    }
    if (value.kind == AttributeKind::boolean && value.text != "true" && value.text != "false") {
      return bad("boolean attribute '" + name + "' is " + quoted(value.text) + ", not true or false");
    }
  }
  return {};
}

std::string percent_encode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if (!kClasses.plain[b]) {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::string> decode_header_value(std::string_view value) {
  // The common case: printable ASCII, nothing quoted or escaped, so the
  // value is itself (spaces and UTF-8 take the check below).
  if (is_plain_header_text(value)) return std::string(value);
  if (value.find_first_of("\"%") == std::string_view::npos) {
    if (!wire::is_valid_utf8(value)) {
      return bad("header value " + quoted(value) + " is not valid UTF-8 once percent-decoded");
    }
    return std::string(value);
  }
  std::string unquoted;
  if (!value.empty() && value.front() == '"') {
    std::size_t i = 1;
    bool closed = false;
    for (; i < value.size(); ++i) {
      if (value[i] == '\\') {
        if (++i == value.size()) break;
        unquoted.push_back(value[i]);
      } else if (value[i] == '"') {
        closed = true;
        ++i;
        break;
      } else {
        unquoted.push_back(value[i]);
      }
    }
    if (!closed) return bad("header value " + quoted(value) + " has an unterminated quoted string");
    if (!trim_ows(value.substr(i)).empty()) {
      return bad("header value " + quoted(value) + " has text after its quoted string");
    }
    value = unquoted;
  }
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out.push_back(value[i]);
      continue;
    }
    const int hi = i + 2 < value.size() ? hex_value(value[i + 1]) : -1;
    const int lo = i + 2 < value.size() ? hex_value(value[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return bad("header value " + quoted(value) + " has a '%' without two hex digits after it");
    }
    out.push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  if (!wire::is_valid_utf8(out)) {
    return bad("header value " + quoted(value) + " is not valid UTF-8 once percent-decoded");
  }
  return out;
}

Result<CloudEvent> from_binary(const HeaderViews& headers, std::string_view body) {
  CloudEvent event;
  event.specversion.clear();
  unsigned seen = 0;  // core_attribute_bit()s; extensions are checked in the event
  for (const auto& [raw_name, raw_value] : headers) {
    if (starts_with_ci(raw_name, "content-type")) {
      if (raw_name.size() == 12) {
        const std::string_view v = trim_ows(raw_value);
        if (!v.empty()) event.datacontenttype = std::string(v);
      }
      continue;
    }
    if (!starts_with_ci(raw_name, "ce-")) continue;
    std::string name(raw_name.substr(3));
    for (char& c : name) c = lower(c);
    if (!is_attribute_name(name)) {
      return bad("header " + quoted(raw_name) +
                 ": CloudEvents attribute names are lower-case ASCII letters and digits");
    }
    if (name == "datacontenttype") {
      return bad("binary mode carries datacontenttype in Content-Type; a ce-datacontenttype header is not allowed");
    }
    const unsigned bit = core_attribute_bit(name);
    if (bit != 0 ? (seen & bit) != 0 : event.extensions.count(name) != 0) {
      return bad("header ce-" + name + " appears more than once");
    }
    seen |= bit;
    auto decoded = decode_header_value(trim_ows(raw_value));
    if (!decoded.ok()) return std::move(decoded).error().with_context("header ce-" + name);
    // A core attribute goes to its field by its bit, without set_attribute
    // comparing the name again.
    switch (bit) {
      case 1u << 0: event.specversion = std::move(*decoded); break;
      case 1u << 1: event.id = std::move(*decoded); break;
      case 1u << 2: event.source = std::move(*decoded); break;
      case 1u << 3: event.type = std::move(*decoded); break;
      case 1u << 4: event.dataschema = std::move(*decoded); break;
      case 1u << 5: event.subject = std::move(*decoded); break;
      case 1u << 6: event.time = std::move(*decoded); break;
      default: event.set_attribute(name, std::move(*decoded)); break;
    }
  }
  if (!body.empty()) event.data = std::string(body);
  if (auto checked = check_event(event); !checked.ok()) return std::move(checked).error();
  return event;
}

namespace {

// `value` percent-encoded, reusing its buffer when nothing needs encoding
// (the usual case: a reply's UUID, source and type are plain ASCII).
std::string percent_encoded(std::string&& value) {
  if (!is_plain_header_text(value)) return percent_encode(value);
  return std::move(value);
}

}  // namespace

HeaderLines binary_headers(CloudEvent&& e) {
  HeaderLines out;
  out.reserve(6 + e.extensions.size());
  if (e.datacontenttype) out.emplace_back("Content-Type", std::move(*e.datacontenttype));
  out.emplace_back("ce-specversion", percent_encoded(std::move(e.specversion)));
  out.emplace_back("ce-id", percent_encoded(std::move(e.id)));
  out.emplace_back("ce-source", percent_encoded(std::move(e.source)));
  out.emplace_back("ce-type", percent_encoded(std::move(e.type)));
  if (e.subject) out.emplace_back("ce-subject", percent_encoded(std::move(*e.subject)));
  if (e.dataschema) out.emplace_back("ce-dataschema", percent_encoded(std::move(*e.dataschema)));
  if (e.time) out.emplace_back("ce-time", percent_encoded(std::move(*e.time)));
  for (auto& [name, value] : e.extensions) out.emplace_back("ce-" + name, percent_encoded(std::move(value.text)));
  return out;
}

HeaderLines binary_headers(const CloudEvent& e) {
  HeaderLines out;
  out.reserve(6 + e.extensions.size());
  if (e.datacontenttype) out.emplace_back("Content-Type", *e.datacontenttype);
  out.emplace_back("ce-specversion", percent_encode(e.specversion));
  out.emplace_back("ce-id", percent_encode(e.id));
  out.emplace_back("ce-source", percent_encode(e.source));
  out.emplace_back("ce-type", percent_encode(e.type));
  if (e.subject) out.emplace_back("ce-subject", percent_encode(*e.subject));
  if (e.dataschema) out.emplace_back("ce-dataschema", percent_encode(*e.dataschema));
  if (e.time) out.emplace_back("ce-time", percent_encode(*e.time));
  for (const auto& [name, value] : e.extensions) out.emplace_back("ce-" + name, percent_encode(value.text));
  return out;
}

}  // namespace dispatch::events
