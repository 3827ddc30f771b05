// The fast path of connect::JsonCodec: proto3 JSON <-> protobuf wire bytes
// for the plain message types of one descriptor pool, from plans compiled
// once (per field: both JSON names, number, kind, packing, map key/value,
// nested plan, enum names, oneof). JSON is parsed by simdjson and its
// values visited in order, writing wire bytes directly; wire bytes are
// walked and printed the way protobuf 3.21's BinaryToJsonString prints them.
//
// The fast path only ever answers exactly as protobuf's JSON utilities do.
// Whatever it does not copy exactly, it declines (nullopt) and the caller
// runs protobuf's path, which also makes every error and its text:
// well-known types (Any, Duration, Struct, wrappers...), proto2 files,
// unknown JSON keys, null, duplicate keys, numbers as strings (except the
// int64 and NaN/Infinity spellings protobuf prints), undeclared enum names, integer
// fields given fractions or exponents, unknown or repeated-out-of-run wire
// fields, malformed wire bytes, invalid UTF-8.
//
// Not for: errors (a decline carries no reason; protobuf says what was
// wrong), or descriptor pools other than the one it was compiled from.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace google::protobuf {
class Descriptor;
class DescriptorPool;
class FileDescriptor;
}  // namespace google::protobuf

namespace dispatch::connect::detail {

struct MessagePlan;

class JsonFast {
 public:
  // Compiles a plan for every message type of `file` (nested ones too);
  // the pool must outlive this object.
  explicit JsonFast(const google::protobuf::FileDescriptor& file);
  ~JsonFast();
  JsonFast(const JsonFast&) = delete;
  JsonFast& operator=(const JsonFast&) = delete;

  // Whether `type` has a plan the fast path can use at all.
  bool covers(std::string_view type) const;

  // Wire bytes for `json`, or nullopt: declined (protobuf decides).
  std::optional<std::string> to_binary(std::string_view type, std::string_view json) const;
  // JSON for `binary`, byte for byte what BinaryToJsonString prints (with
  // always_print_primitive_fields = print_defaults), or nullopt: declined.
  std::optional<std::string> to_json(std::string_view type, std::string_view binary, bool print_defaults) const;

 private:
  const MessagePlan* find(std::string_view type) const;
  std::map<std::string, std::unique_ptr<MessagePlan>, std::less<>> plans_;
};

}  // namespace dispatch::connect::detail
