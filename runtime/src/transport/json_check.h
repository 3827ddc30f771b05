// What protobuf 3.21's JSON parser would take but a proto3 JSON request must
// not be, checked before that parser runs (the Connect codec's slow path):
// text that is not JSON by RFC 8259 (a trailing comma, unquoted or
// single-quoted names), and values of the wrong shape for their field by
// the proto3 JSON mapping, as protojson (connect-go) and protobuf-es
// (connect-es) refuse them: an object or a scalar where a list or a map
// belongs, null inside a list, integers and floats in strings that are not
// JSON numbers ("01", "+1", " 7", "0x10"); and nesting deeper than 100,
// where protobuf's parser takes time that grows with the depth's square.
//
// Not for: anything protobuf's parser already refuses (types, ranges,
// enum names, well-known types' own forms: those subtrees are left to it),
// or JSON that is not a request to decode.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace google::protobuf {
class Descriptor;
}  // namespace google::protobuf

namespace dispatch::connect::detail {

// What is wrong with `json` as a `type` message (nlohmann's words with line
// and column for syntax; the field's name for a shape), or nullopt. One SAX
// pass: nothing is built.
std::optional<std::string> json_request_problem(std::string_view json, const google::protobuf::Descriptor& type);

}  // namespace dispatch::connect::detail
