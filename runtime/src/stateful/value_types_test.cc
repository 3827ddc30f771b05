// The built-in value types: the bytes every StateFun SDK writes (field 1,
// sfixed32 for int, sfixed64 for long), round trips, refusals, and the text
// operators see.
#include "dispatch/stateful/value_types.h"

#include <gtest/gtest.h>

namespace dispatch::stateful {
namespace {

TEST(ValueTypes, EncodeAsTheWrapperMessagesDo) {
  // Tag 1 with the wire type of each wrapper's field.
  EXPECT_EQ(encode_int(1), std::string("\x0d\x01\x00\x00\x00", 5));             // sfixed32
  EXPECT_EQ(encode_long(-1), std::string("\x09\xff\xff\xff\xff\xff\xff\xff\xff", 9));  // sfixed64
  EXPECT_EQ(encode_bool(true), std::string("\x08\x01", 2));
  EXPECT_EQ(encode_string("hi"), std::string("\x0a\x02hi", 4));
  EXPECT_EQ(encode_double(0.5), std::string("\x09\x00\x00\x00\x00\x00\x00\xe0\x3f", 9));
  EXPECT_EQ(encode_float(0.5f), std::string("\x0d\x00\x00\x00\x3f", 5));
  // proto3: a default value is not written at all.
  EXPECT_EQ(encode_int(0), "");
  EXPECT_EQ(encode_string(""), "");
}

TEST(ValueTypes, DecodeWhatTheyEncodeAndRefuseOtherBytes) {
  EXPECT_EQ(decode_int(encode_int(-123456)).value(), -123456);
  EXPECT_EQ(decode_long(encode_long(INT64_MIN)).value(), INT64_MIN);
  EXPECT_EQ(decode_bool(encode_bool(true)).value(), true);
  EXPECT_EQ(decode_string(encode_string(std::string("a\0b", 3))).value(), std::string("a\0b", 3));
  EXPECT_EQ(decode_double(encode_double(2.25)).value(), 2.25);
  EXPECT_EQ(decode_float(encode_float(-1.5f)).value(), -1.5f);
  EXPECT_EQ(decode_int("").value(), 0);
  auto bad = decode_int(std::string("\x0d\x01", 2));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::invalid_argument);
  EXPECT_NE(bad.error().message().find("io.statefun.types/int"), std::string::npos);
}

TEST(ValueTypes, DescribeBuiltInsForPeople) {
  EXPECT_EQ(describe_builtin(kIntType, encode_int(42)).value(), "42");
  EXPECT_EQ(describe_builtin(kBoolType, encode_bool(false)).value(), "false");
  EXPECT_EQ(describe_builtin(kStringType, encode_string("say \"hi\"\n")).value(), "\"say \\\"hi\\\"\\x0a\"");
  EXPECT_EQ(describe_builtin(kDoubleType, encode_double(2.5)).value(), "2.5");
  EXPECT_FALSE(describe_builtin("type.googleapis.com/shop.Cart", "x").has_value());
  EXPECT_FALSE(describe_builtin(kIntType, std::string("\x0d", 1)).has_value());
}

}  // namespace
}  // namespace dispatch::stateful
