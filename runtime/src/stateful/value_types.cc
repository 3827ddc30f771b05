// The built-in value types through the wrappers protoc generated from
// runtime/proto/io/statefun/sdk/types/types.proto, so their encoding is
// protobuf's, not ours.
#include "dispatch/stateful/value_types.h"

#include <cstdio>
#include <type_traits>

#include "io/statefun/sdk/types/types.pb.h"

namespace dispatch::stateful {
namespace {

namespace pb = ::io::statefun::sdk::types;

template <typename Wrapper, typename T>
std::string encode(T value) {
  Wrapper w;
  w.set_value(value);
  return w.SerializeAsString();
}

template <typename Wrapper>
auto decode(std::string_view bytes, std::string_view type_name) -> Result<std::decay_t<decltype(Wrapper().value())>> {
  Wrapper w;
  if (!w.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Error(Code::invalid_argument,
                 "the value is not a " + std::string(type_name) + " (" + w.GetTypeName() + ")");
  }
  return w.value();
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string encode_bool(bool value) { return encode<pb::BooleanWrapper>(value); }
std::string encode_int(int32_t value) { return encode<pb::IntWrapper>(value); }
std::string encode_long(int64_t value) { return encode<pb::LongWrapper>(value); }
std::string encode_float(float value) { return encode<pb::FloatWrapper>(value); }
std::string encode_double(double value) { return encode<pb::DoubleWrapper>(value); }
std::string encode_string(std::string_view value) { return encode<pb::StringWrapper>(std::string(value)); }

Result<bool> decode_bool(std::string_view bytes) { return decode<pb::BooleanWrapper>(bytes, kBoolType); }
Result<int32_t> decode_int(std::string_view bytes) { return decode<pb::IntWrapper>(bytes, kIntType); }
Result<int64_t> decode_long(std::string_view bytes) { return decode<pb::LongWrapper>(bytes, kLongType); }
Result<float> decode_float(std::string_view bytes) { return decode<pb::FloatWrapper>(bytes, kFloatType); }
Result<double> decode_double(std::string_view bytes) { return decode<pb::DoubleWrapper>(bytes, kDoubleType); }
Result<std::string> decode_string(std::string_view bytes) {
  return decode<pb::StringWrapper>(bytes, kStringType);
}

std::optional<std::string> describe_builtin(std::string_view type_name, std::string_view bytes) {
  auto text = [](auto r, auto format) -> std::optional<std::string> {
    if (!r.ok()) return std::nullopt;
    return format(*r);
  };
  if (type_name == kBoolType) return text(decode_bool(bytes), [](bool v) { return std::string(v ? "true" : "false"); });
  if (type_name == kIntType) return text(decode_int(bytes), [](int32_t v) { return std::to_string(v); });
  if (type_name == kLongType) return text(decode_long(bytes), [](int64_t v) { return std::to_string(v); });
  auto real = [](double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  if (type_name == kFloatType) return text(decode_float(bytes), [&](float v) { return real(v); });
  if (type_name == kDoubleType) return text(decode_double(bytes), real);
  if (type_name == kStringType) return text(decode_string(bytes), [](const std::string& v) { return quoted(v); });
  return std::nullopt;
}

}  // namespace dispatch::stateful
