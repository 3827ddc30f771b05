// Test support for JsonFast's differential checks (json_fast_test.cc and
// tests/fuzz/fuzz_json_fast.cc): a descriptor with every field kind the
// generator emits and then some, and protobuf's own JSON path to compare to.
//
// Not for: production code.
#pragma once

#include "transport/connect.h"
#include "transport/json_fast.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace dispatch::connect::testing {

// jf.All: scalars of every kind, enums, nested and recursive messages,
// packed and unpacked lists, maps with int/bool/string keys, proto3
// optional, a oneof, a snake_case name; jf.Tick as the events benchmark's;
// jf.WithTime holds a well-known type (never fast).
inline constexpr const char* kJsonFastProto = R"pb(
  name: "jf.proto" package: "jf" syntax: "proto3"
  dependency: "google/protobuf/timestamp.proto"
  enum_type { name: "Color" value { name: "COLOR_UNSPECIFIED" number: 0 } value { name: "RED" number: 1 }
              value { name: "GREEN" number: 2 } }
  message_type { name: "Tick" field { name: "n" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "n" }
                 field { name: "note" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "note" } }
  message_type { name: "Tally" field { name: "n" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "n" } }
  message_type { name: "WithTime"
                 field { name: "at" number: 1 type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" label: LABEL_OPTIONAL json_name: "at" } }
  message_type {
    name: "Child"
    field { name: "n" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "n" }
    field { name: "note" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "note" }
    field { name: "next" number: 3 type: TYPE_MESSAGE type_name: ".jf.Child" label: LABEL_OPTIONAL json_name: "next" }
    field { name: "tags" number: 4 type: TYPE_STRING label: LABEL_REPEATED json_name: "tags" }
  }
  message_type {
    name: "All"
    field { name: "i32" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "i32" }
    field { name: "i64" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "i64" }
    field { name: "u32" number: 3 type: TYPE_UINT32 label: LABEL_OPTIONAL json_name: "u32" }
    field { name: "u64" number: 4 type: TYPE_UINT64 label: LABEL_OPTIONAL json_name: "u64" }
    field { name: "s32" number: 5 type: TYPE_SINT32 label: LABEL_OPTIONAL json_name: "s32" }
    field { name: "s64" number: 6 type: TYPE_SINT64 label: LABEL_OPTIONAL json_name: "s64" }
    field { name: "f32" number: 7 type: TYPE_FIXED32 label: LABEL_OPTIONAL json_name: "f32" }
    field { name: "f64" number: 8 type: TYPE_FIXED64 label: LABEL_OPTIONAL json_name: "f64" }
    field { name: "sf32" number: 9 type: TYPE_SFIXED32 label: LABEL_OPTIONAL json_name: "sf32" }
    field { name: "sf64" number: 10 type: TYPE_SFIXED64 label: LABEL_OPTIONAL json_name: "sf64" }
    field { name: "b" number: 11 type: TYPE_BOOL label: LABEL_OPTIONAL json_name: "b" }
    field { name: "fl" number: 12 type: TYPE_FLOAT label: LABEL_OPTIONAL json_name: "fl" }
    field { name: "db" number: 13 type: TYPE_DOUBLE label: LABEL_OPTIONAL json_name: "db" }
    field { name: "str" number: 14 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "str" }
    field { name: "by" number: 15 type: TYPE_BYTES label: LABEL_OPTIONAL json_name: "by" }
    field { name: "color" number: 16 type: TYPE_ENUM type_name: ".jf.Color" label: LABEL_OPTIONAL json_name: "color" }
    field { name: "child" number: 17 type: TYPE_MESSAGE type_name: ".jf.Child" label: LABEL_OPTIONAL json_name: "child" }
    field { name: "r_i32" number: 20 type: TYPE_INT32 label: LABEL_REPEATED json_name: "rI32" }
    field { name: "r_i64" number: 21 type: TYPE_INT64 label: LABEL_REPEATED json_name: "rI64" }
    field { name: "r_u64" number: 22 type: TYPE_UINT64 label: LABEL_REPEATED json_name: "rU64" }
    field { name: "r_s32" number: 23 type: TYPE_SINT32 label: LABEL_REPEATED json_name: "rS32" }
    field { name: "r_fl" number: 24 type: TYPE_FLOAT label: LABEL_REPEATED json_name: "rFl" }
    field { name: "r_db" number: 25 type: TYPE_DOUBLE label: LABEL_REPEATED json_name: "rDb" }
    field { name: "r_b" number: 26 type: TYPE_BOOL label: LABEL_REPEATED json_name: "rB" }
    field { name: "r_str" number: 27 type: TYPE_STRING label: LABEL_REPEATED json_name: "rStr" }
    field { name: "r_by" number: 28 type: TYPE_BYTES label: LABEL_REPEATED json_name: "rBy" }
    field { name: "r_color" number: 29 type: TYPE_ENUM type_name: ".jf.Color" label: LABEL_REPEATED json_name: "rColor" }
    field { name: "r_child" number: 30 type: TYPE_MESSAGE type_name: ".jf.Child" label: LABEL_REPEATED json_name: "rChild" }
    field { name: "r_f64" number: 31 type: TYPE_FIXED64 label: LABEL_REPEATED json_name: "rF64" }
    field { name: "r_unpacked" number: 32 type: TYPE_INT32 label: LABEL_REPEATED json_name: "rUnpacked" options { packed: false } }
    field { name: "m_str" number: 40 type: TYPE_MESSAGE type_name: ".jf.All.MStrEntry" label: LABEL_REPEATED json_name: "mStr" }
    field { name: "m_i32" number: 41 type: TYPE_MESSAGE type_name: ".jf.All.MI32Entry" label: LABEL_REPEATED json_name: "mI32" }
    field { name: "m_i64" number: 42 type: TYPE_MESSAGE type_name: ".jf.All.MI64Entry" label: LABEL_REPEATED json_name: "mI64" }
    field { name: "m_b" number: 43 type: TYPE_MESSAGE type_name: ".jf.All.MBEntry" label: LABEL_REPEATED json_name: "mB" }
    field { name: "m_u32" number: 44 type: TYPE_MESSAGE type_name: ".jf.All.MU32Entry" label: LABEL_REPEATED json_name: "mU32" }
    field { name: "m_s64" number: 45 type: TYPE_MESSAGE type_name: ".jf.All.MS64Entry" label: LABEL_REPEATED json_name: "mS64" }
    field { name: "opt_i32" number: 50 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "optI32" proto3_optional: true oneof_index: 1 }
    field { name: "opt_str" number: 51 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "optStr" proto3_optional: true oneof_index: 2 }
    field { name: "opt_child" number: 52 type: TYPE_MESSAGE type_name: ".jf.Child" label: LABEL_OPTIONAL json_name: "optChild" proto3_optional: true oneof_index: 3 }
    field { name: "o_str" number: 60 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "oStr" oneof_index: 0 }
    field { name: "o_i64" number: 61 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "oI64" oneof_index: 0 }
    field { name: "o_child" number: 62 type: TYPE_MESSAGE type_name: ".jf.Child" label: LABEL_OPTIONAL json_name: "oChild" oneof_index: 0 }
    field { name: "o_color" number: 63 type: TYPE_ENUM type_name: ".jf.Color" label: LABEL_OPTIONAL json_name: "oColor" oneof_index: 0 }
    field { name: "snake_case_name" number: 70 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "snakeCaseName" }
    nested_type { name: "MStrEntry" options { map_entry: true }
      field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "key" }
      field { name: "value" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "value" } }
    nested_type { name: "MI32Entry" options { map_entry: true }
      field { name: "key" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "key" }
      field { name: "value" number: 2 type: TYPE_MESSAGE type_name: ".jf.Child" label: LABEL_OPTIONAL json_name: "value" } }
    nested_type { name: "MI64Entry" options { map_entry: true }
      field { name: "key" number: 1 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "key" }
      field { name: "value" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "value" } }
    nested_type { name: "MBEntry" options { map_entry: true }
      field { name: "key" number: 1 type: TYPE_BOOL label: LABEL_OPTIONAL json_name: "key" }
      field { name: "value" number: 2 type: TYPE_DOUBLE label: LABEL_OPTIONAL json_name: "value" } }
    nested_type { name: "MU32Entry" options { map_entry: true }
      field { name: "key" number: 1 type: TYPE_UINT32 label: LABEL_OPTIONAL json_name: "key" }
      field { name: "value" number: 2 type: TYPE_ENUM type_name: ".jf.Color" label: LABEL_OPTIONAL json_name: "value" } }
    nested_type { name: "MS64Entry" options { map_entry: true }
      field { name: "key" number: 1 type: TYPE_SINT64 label: LABEL_OPTIONAL json_name: "key" }
      field { name: "value" number: 2 type: TYPE_BYTES label: LABEL_OPTIONAL json_name: "value" } }
    oneof_decl { name: "choice" }
    oneof_decl { name: "_opt_i32" } oneof_decl { name: "_opt_str" } oneof_decl { name: "_opt_child" }
  }
)pb";

// The codec built from kJsonFastProto, the fast path over its pool, and
// protobuf's own JSON conversions over the same pool.
class JsonFastRig {
 public:
  JsonFastRig() {
    google::protobuf::FileDescriptorProto file;
    if (!google::protobuf::TextFormat::ParseFromString(kJsonFastProto, &file)) {
      throw std::runtime_error("kJsonFastProto does not parse");
    }
    auto codec = JsonCodec::create(file.SerializeAsString());
    if (!codec.ok()) throw std::runtime_error(codec.error().message());
    codec_ = std::move(*codec);
    fast_ = std::make_unique<detail::JsonFast>(*pool().FindFileByName("jf.proto"));
    resolver_.reset(google::protobuf::util::NewTypeResolverForDescriptorPool("type.googleapis.com", &pool()));
  }

  const google::protobuf::DescriptorPool& pool() const { return codec_->pool(); }
  const JsonCodec& codec() const { return *codec_; }
  const detail::JsonFast& fast() const { return *fast_; }
  const google::protobuf::Descriptor* type(const std::string& name) const {
    return pool().FindMessageTypeByName(name);
  }
  std::unique_ptr<google::protobuf::Message> make(const google::protobuf::Descriptor* d) const {
    return std::unique_ptr<google::protobuf::Message>(factory_.GetPrototype(d)->New());
  }

  // protobuf's answers, exactly as JsonCodec's slow path asks for them.
  std::optional<std::string> protobuf_to_json(const std::string& type, const std::string& binary, bool defaults) const {
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = defaults;
    std::string json;
    if (!google::protobuf::util::BinaryToJsonString(resolver_.get(), "type.googleapis.com/" + type, binary, &json,
                                                    options)
             .ok()) {
      return std::nullopt;
    }
    return json;
  }
  std::optional<std::string> protobuf_to_binary(const std::string& type, const std::string& json) const {
    google::protobuf::util::JsonParseOptions options;
    std::string binary;
    if (!google::protobuf::util::JsonToBinaryString(resolver_.get(), "type.googleapis.com/" + type, json, &binary,
                                                    options)
             .ok()) {
      return std::nullopt;
    }
    return binary;
  }

  // Whether two wire encodings hold the same message: MessageDifferencer
  // (NaN equal to NaN) and the same deterministic bytes (-0 is not 0).
  bool same_message(const std::string& type, const std::string& a, const std::string& b) const {
    auto ma = make(this->type(type));
    auto mb = make(this->type(type));
    if (!ma->ParseFromString(a) || !mb->ParseFromString(b)) return false;
    google::protobuf::util::DefaultFieldComparator comparator;
    comparator.set_treat_nan_as_equal(true);
    google::protobuf::util::MessageDifferencer differencer;
    differencer.set_field_comparator(&comparator);
    if (!differencer.Compare(*ma, *mb)) return false;
    return deterministic(*ma) == deterministic(*mb);
  }

  static std::string deterministic(const google::protobuf::Message& m) {
    std::string out;
    {
      google::protobuf::io::StringOutputStream stream(&out);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      m.SerializeToCodedStream(&coded);
    }
    return out;
  }

 private:
  std::unique_ptr<JsonCodec> codec_;
  std::unique_ptr<detail::JsonFast> fast_;
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
  mutable google::protobuf::DynamicMessageFactory factory_;
};

}  // namespace dispatch::connect::testing
