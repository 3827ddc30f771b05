// StateFun's built-in value types: the typenames io.statefun.types/bool,
// /int, /long, /float, /double and /string, each a one-field protobuf
// message (field `value` = 1; int is sfixed32, long sfixed64), as every
// StateFun SDK writes them. A stateful function's bool, int32, int64, float,
// double and string state fields are persisted as these, so a function in
// another language reads our state and we read theirs. Other types are
// named type.googleapis.com/<package>.<Message> and encoded by the
// generated codecs.
//
// Not for: messages of the protocol itself (the endpoint's). Public header:
// compiles as C++17 and C++20.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dispatch/core/result.h"

namespace dispatch::stateful {

inline constexpr std::string_view kBoolType = "io.statefun.types/bool";
inline constexpr std::string_view kIntType = "io.statefun.types/int";
inline constexpr std::string_view kLongType = "io.statefun.types/long";
inline constexpr std::string_view kFloatType = "io.statefun.types/float";
inline constexpr std::string_view kDoubleType = "io.statefun.types/double";
inline constexpr std::string_view kStringType = "io.statefun.types/string";
// The prefix of a protobuf message's typename, as the SDKs spell it.
inline constexpr std::string_view kProtobufTypePrefix = "type.googleapis.com/";

std::string encode_bool(bool value);
std::string encode_int(int32_t value);
std::string encode_long(int64_t value);
std::string encode_float(float value);
std::string encode_double(double value);
std::string encode_string(std::string_view value);

// invalid_argument naming the type when the bytes are not its wrapper.
Result<bool> decode_bool(std::string_view bytes);
Result<int32_t> decode_int(std::string_view bytes);
Result<int64_t> decode_long(std::string_view bytes);
Result<float> decode_float(std::string_view bytes);
Result<double> decode_double(std::string_view bytes);
Result<std::string> decode_string(std::string_view bytes);

// A built-in value as text for people ("true", "42", "2.5", "\"alice\"");
// nullopt when `type_name` is not built in or the bytes do not decode.
std::optional<std::string> describe_builtin(std::string_view type_name, std::string_view bytes);

}  // namespace dispatch::stateful
