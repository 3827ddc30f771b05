// The CloudEvents protobuf format over libprotobuf's coded streams (see the
// header). Field numbers are those of io.cloudevents.v1.CloudEvent.
#include "dispatch/wire/cloud_event.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/strutil.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <cassert>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <functional>
#include <map>
#include <vector>

#include "dispatch/wire/wire_io.h"

namespace dispatch::wire {
namespace {

namespace pb = google::protobuf;
using pb::io::StringOutputStream;

constexpr const char* kEvent = "io.cloudevents.v1.CloudEvent";
constexpr const char* kValue = "io.cloudevents.v1.CloudEvent.CloudEventAttributeValue";

// CloudEvent fields.
enum : int { kId = 1, kSource = 2, kSpecVersion = 3, kType = 4, kAttributes = 5, kBinaryData = 6,
             kTextData = 7, kProtoData = 8 };
// CloudEventAttributeValue fields.
enum : int { kBoolean = 1, kInteger = 2, kString = 3, kBytes = 4, kUri = 5, kUriRef = 6, kTimestamp = 7 };

void put_len_field(CodedOutputStream& out, int number, std::string_view bytes) {
  out.WriteTag(static_cast<std::uint32_t>(number << 3 | kLen));
  out.WriteVarint32(static_cast<std::uint32_t>(bytes.size()));
  out.WriteRaw(bytes.data(), static_cast<int>(bytes.size()));
}

std::string encode_with(const std::function<void(CodedOutputStream&)>& write) {
  std::string bytes;
  {
    StringOutputStream stream(&bytes);
    CodedOutputStream out(&stream);
    write(out);
  }
  return bytes;
}

// One attribute value message: the oneof case for `value`'s kind and name.
std::string attribute_value(std::string_view name, const ExtensionValue& value) {
  return encode_with([&](CodedOutputStream& out) {
    if (value.kind == AttributeKind::boolean && (value.text == "true" || value.text == "false")) {
      out.WriteTag(kBoolean << 3 | kVarint);
      out.WriteVarint32(value.text == "true" ? 1 : 0);
      return;
    }
    if (value.kind == AttributeKind::integer) {
      errno = 0;
      char* end = nullptr;
      const long long n = std::strtoll(value.text.c_str(), &end, 10);
      if (errno == 0 && !value.text.empty() && *end == '\0' && n >= INT32_MIN && n <= INT32_MAX) {
        out.WriteTag(kInteger << 3 | kVarint);
        out.WriteVarint64(static_cast<std::uint64_t>(n));  // int32 is sign-extended on the wire
        return;
      }
    }
    if (name == "time") {
      pb::Timestamp t;
      if (pb::util::TimeUtil::FromString(value.text, &t)) {
        const std::string ts = encode_with([&](CodedOutputStream& o) {
          if (t.seconds() != 0) {
            o.WriteTag(1 << 3 | kVarint);
            o.WriteVarint64(static_cast<std::uint64_t>(t.seconds()));
          }
          if (t.nanos() != 0) {
            o.WriteTag(2 << 3 | kVarint);
            o.WriteVarint64(static_cast<std::uint64_t>(static_cast<std::int64_t>(t.nanos())));
          }
        });
        put_len_field(out, kTimestamp, ts);
        return;
      }
    }
    put_len_field(out, name == "dataschema" ? kUri : kString, value.text);
  });
}

std::string read_len_bytes(Stream& in, const char* message, const char* field) {
  const int n = read_len(in, message, field);
  std::string out;
  if (n != 0 && !in.ReadString(&out, n)) fail(message, field, "truncated bytes");
  return out;
}

std::string read_utf8(Stream& in, const char* message, const char* field) {
  std::string out;
  read_string(in, &out, message, field);
  return out;
}

ExtensionValue read_attribute_value(Stream& in, const char* field) {
  Stream::Limit limit = enter(in, kEvent, field);
  ExtensionValue value;
  bool seen = false;
  while (std::uint32_t tag = next_tag(in, kValue)) {
    seen = true;
    switch (tag >> 3) {
      case kBoolean:
        expect(tag, kVarint, kValue, "ce_boolean");
        value = {read_varint(in, kValue, "ce_boolean") != 0 ? "true" : "false", AttributeKind::boolean};
        break;
      case kInteger:
        expect(tag, kVarint, kValue, "ce_integer");
        value = {std::to_string(read_int<std::int32_t>(in, kValue, "ce_integer", "int32")),
                 AttributeKind::integer};
        break;
      case kString:
      case kUri:
      case kUriRef:
        expect(tag, kLen, kValue, "ce_string");
        value = {read_utf8(in, kValue, "ce_string"), AttributeKind::string};
        break;
      case kBytes: {
        expect(tag, kLen, kValue, "ce_bytes");
        std::string encoded;
        const std::string raw = read_len_bytes(in, kValue, "ce_bytes");
        pb::Base64Escape(reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()),
                         &encoded, /*do_padding=*/true);
        value = {std::move(encoded), AttributeKind::string};
        break;
      }
      case kTimestamp: {
        expect(tag, kLen, kValue, "ce_timestamp");
        const Timespan t = read_timespan(in, kValue, "ce_timestamp", /*timestamp=*/true);
        pb::Timestamp ts;
        ts.set_seconds(t.seconds);
        ts.set_nanos(t.nanos);
        value = {pb::util::TimeUtil::ToString(ts), AttributeKind::string};
        break;
      }
      default:
        skip(in, tag, kValue);
    }
  }
  leave(in, limit);
  if (!seen) fail(kEvent, field, "attribute value has none of its oneof fields set");
  return value;
}

// One entry of the attributes map: key = 1, value = 2.
void read_attribute(Stream& in, CloudEvent* event) {
  Stream::Limit limit = enter(in, kEvent, "attributes");
  std::string name;
  ExtensionValue value;
  while (std::uint32_t tag = next_tag(in, "io.cloudevents.v1.CloudEvent.AttributesEntry")) {
    switch (tag >> 3) {
      case 1:
        expect(tag, kLen, kEvent, "attributes.key");
        name = read_utf8(in, kEvent, "attributes.key");
        break;
      case 2:
        expect(tag, kLen, kEvent, "attributes.value");
        value = read_attribute_value(in, "attributes.value");
        break;
      default:
        skip(in, tag, kEvent);
    }
  }
  leave(in, limit);
  event->set_attribute(name, std::move(value.text), value.kind);
}

// google.protobuf.Any: type_url = 1, value = 2.
void read_proto_data(Stream& in, CloudEvent* event) {
  Stream::Limit limit = enter(in, kEvent, "proto_data");
  std::string type_url, value;
  while (std::uint32_t tag = next_tag(in, "google.protobuf.Any")) {
    switch (tag >> 3) {
      case 1:
        expect(tag, kLen, "google.protobuf.Any", "type_url");
        type_url = read_utf8(in, "google.protobuf.Any", "type_url");
        break;
      case 2:
        expect(tag, kLen, "google.protobuf.Any", "value");
        value = read_len_bytes(in, "google.protobuf.Any", "value");
        break;
      default:
        skip(in, tag, "google.protobuf.Any");
    }
  }
  leave(in, limit);
  event->data = std::move(value);
  // The format says the type URL SHOULD be in dataschema; keep it reachable.
  if (!event->dataschema && !type_url.empty()) event->dataschema = std::move(type_url);
  if (!event->datacontenttype) event->datacontenttype = "application/protobuf";
}

}  // namespace

namespace {

// The attributes map's entries, each an encoded AttributesEntry, in name
// order so that one event always encodes alike. Small (attribute values),
// so the size pass and the write pass each make them rather than share them.
std::vector<std::string> attribute_entries(const CloudEvent& event) {
  std::map<std::string_view, ExtensionValue> optional;
  if (event.datacontenttype) optional.emplace("datacontenttype", ExtensionValue{*event.datacontenttype});
  if (event.dataschema) optional.emplace("dataschema", ExtensionValue{*event.dataschema});
  if (event.subject) optional.emplace("subject", ExtensionValue{*event.subject});
  if (event.time) optional.emplace("time", ExtensionValue{*event.time});
  for (const auto& [name, value] : event.extensions) optional.emplace(name, value);
  std::vector<std::string> entries;
  entries.reserve(optional.size());
  // An iterator, not a structured binding: clang 14 cannot capture a
  // binding in a lambda (C++20 allows it; the fuzz build uses clang 14).
  for (const auto& entry : optional) {
    entries.push_back(encode_with([&](CodedOutputStream& o) {
      put_len_field(o, 1, entry.first);
      put_len_field(o, 2, attribute_value(entry.first, entry.second));
    }));
  }
  return entries;
}

// Every field of CloudEvent is length-delimited with a number below 16: a
// one-byte tag.
std::uint8_t* put_field(int number, std::string_view bytes, std::uint8_t* p) {
  *p++ = static_cast<std::uint8_t>(number << 3 | kLen);
  p = put_len(bytes.size(), p);
  return put_raw(bytes.data(), bytes.size(), p);
}

}  // namespace

std::size_t cloud_event_size(const CloudEvent& event) {
  std::size_t n = 0;
  auto field = [&n](std::string_view bytes) { n += 1 + len_size(bytes.size()); };
  if (!event.id.empty()) field(event.id);
  if (!event.source.empty()) field(event.source);
  if (!event.specversion.empty()) field(event.specversion);
  if (!event.type.empty()) field(event.type);
  for (const std::string& entry : attribute_entries(event)) field(entry);
  if (event.data) field(*event.data);
  return n;
}

std::uint8_t* put_cloud_event(const CloudEvent& event, std::uint8_t* p) {
  if (!event.id.empty()) p = put_field(kId, event.id, p);
  if (!event.source.empty()) p = put_field(kSource, event.source, p);
  if (!event.specversion.empty()) p = put_field(kSpecVersion, event.specversion, p);
  if (!event.type.empty()) p = put_field(kType, event.type, p);
  for (const std::string& entry : attribute_entries(event)) p = put_field(kAttributes, entry, p);
  if (event.data) p = put_field(kBinaryData, *event.data, p);
  return p;
}

void read_cloud_event(Stream& in, CloudEvent* event, const char* message, const char* field) {
  const std::string bytes = read_len_bytes(in, message, field);
  auto decoded = decode_cloud_event(bytes);
  if (!decoded.ok()) fail(message, field, "not a CloudEvent: " + decoded.error().message());
  *event = std::move(*decoded);
}

std::string encode_cloud_event(const CloudEvent& event) {
  std::string out(cloud_event_size(event), '\0');
  [[maybe_unused]] std::uint8_t* end = put_cloud_event(event, reinterpret_cast<std::uint8_t*>(out.data()));
  assert(end == reinterpret_cast<std::uint8_t*>(out.data()) + out.size() && "size and write passes disagree");
  return out;
}

Result<CloudEvent> decode_cloud_event(std::string_view bytes) {
  CloudEvent event;
  event.specversion.clear();
  try {
    decode_buffer(bytes, kEvent, [&](Stream& in) {
      while (std::uint32_t tag = next_tag(in, kEvent)) {
        switch (tag >> 3) {
          case kId:
            expect(tag, kLen, kEvent, "id");
            event.id = read_utf8(in, kEvent, "id");
            break;
          case kSource:
            expect(tag, kLen, kEvent, "source");
            event.source = read_utf8(in, kEvent, "source");
            break;
          case kSpecVersion:
            expect(tag, kLen, kEvent, "spec_version");
            event.specversion = read_utf8(in, kEvent, "spec_version");
            break;
          case kType:
            expect(tag, kLen, kEvent, "type");
            event.type = read_utf8(in, kEvent, "type");
            break;
          case kAttributes:
            expect(tag, kLen, kEvent, "attributes");
            read_attribute(in, &event);
            break;
          case kBinaryData:
            expect(tag, kLen, kEvent, "binary_data");
            event.data = read_len_bytes(in, kEvent, "binary_data");
            break;
          case kTextData:
            expect(tag, kLen, kEvent, "text_data");
            event.data = read_utf8(in, kEvent, "text_data");
            break;
          case kProtoData:
            expect(tag, kLen, kEvent, "proto_data");
            read_proto_data(in, &event);
            break;
          default:
            skip(in, tag, kEvent);
        }
      }
    });
  } catch (const Error& e) {
    return e;
  }
  return event;
}

}  // namespace dispatch::wire
