// Malformed input to generated decoders: each kind of bad bytes is rejected
// with invalid_argument and a message naming the message and field, never a
// crash; and over the in-process transport the caller sees the same.
#include <gtest/gtest.h>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "types/api.dispatch.h"

namespace {

namespace wire = types::api_wire;

template <typename T>
std::string error_of(const std::string& bytes) {
  T out;
  auto r = wire::decode(bytes, &out);
  if (r.ok()) return "(decoded)";
  EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument);
  return r.error().message();
}

std::string b(std::initializer_list<int> bytes) {
  std::string s;
  for (int c : bytes) s += static_cast<char>(c);
  return s;
}

TEST(Malformed, Varints) {
  // Scalars.i64 = 5: a varint cut short, and one of eleven bytes.
  EXPECT_EQ(error_of<types::Scalars>(b({0x28, 0x80})), "Scalars.i64: truncated or overlong varint");
  EXPECT_EQ(error_of<types::Scalars>(b({0x28, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})),
            "Scalars.i64: truncated or overlong varint");
  // A tag cut short.
  EXPECT_EQ(error_of<types::Scalars>(b({0x80})), "Scalars: malformed field tag (field number 0 or truncated)");
  EXPECT_EQ(error_of<types::Scalars>(b({0x00})), "Scalars: malformed field tag (field number 0 or truncated)");
}

TEST(Malformed, WrongWireType) {
  // Scalars.s = 12 sent as a varint.
  EXPECT_EQ(error_of<types::Scalars>(b({0x60, 0x01})),
            "Scalars.s: wire type varint where length-delimited was expected");
  // Scalars.d = 11 sent as fixed32.
  EXPECT_EQ(error_of<types::Scalars>(b({0x5D, 0, 0, 0, 0})),
            "Scalars.d: wire type fixed32 where fixed64 was expected");
  // Containers.inners = 8 sent as a varint.
  EXPECT_EQ(error_of<types::Containers>(b({0x40, 0x01})),
            "Containers.inners: wire type varint where length-delimited was expected");
}

TEST(Malformed, VariantOfTheWrongWireType) {
  // Shapes.pick = 1 (a oneof message) sent as a varint, and its
  // string_value = 2 inside it sent as a varint.
  EXPECT_EQ(error_of<types::Shapes>(b({0x08, 0x01})), "Shapes.pick: wire type varint where length-delimited was expected");
  EXPECT_EQ(error_of<types::Shapes>(b({0x0A, 0x02, 0x10, 0x01})),
            "Shapes.pick: wire type varint where length-delimited was expected");
  // The alternative's length runs past the variant's own.
  EXPECT_EQ(error_of<types::Shapes>(b({0x0A, 0x02, 0x12, 0x05, 'a'})),
            "Shapes.pick: length 5 runs past the end of the message");
}

TEST(Malformed, LengthsPastTheEnd) {
  EXPECT_EQ(error_of<types::Scalars>(b({0x62, 0x05, 'a'})), "Scalars.s: length 5 runs past the end of the message");
  // Inner message claims more than its parent holds.
  EXPECT_EQ(error_of<types::Containers>(b({0x42, 0x04, 0x12, 0x09, 'a', 'b'})),
            "Inner.label: length 9 runs past the end of the message");
  // A packed fixed64 run of three bytes.
  EXPECT_EQ(error_of<types::Containers>(b({0x22, 0x03, 1, 2, 3})), "Containers.doubles: truncated fixed64");
  // Unknown length-delimited field 50 running past the end.
  EXPECT_EQ(error_of<types::Scalars>(b({0x92, 0x03, 0x10})), "Scalars: malformed unknown field 50 (length-delimited)");
}

TEST(Malformed, InvalidUtf8) {
  EXPECT_EQ(error_of<types::Scalars>(b({0x62, 0x02, 0xC3, 0x28})),
            "Scalars.s: string is not valid UTF-8 (use bytes for binary data)");
  // Map keys are strings too (Containers.by_name = 16, key = 1).
  EXPECT_EQ(error_of<types::Containers>(b({0x82, 0x01, 0x03, 0x0A, 0x01, 0xFF})),
            "Containers.by_name: string is not valid UTF-8 (use bytes for binary data)");
  // bytes fields take anything.
  EXPECT_EQ(error_of<types::Scalars>(b({0x6A, 0x02, 0xC3, 0x28})), "(decoded)");
}

TEST(Malformed, IntegersOutOfRange) {
  EXPECT_EQ(error_of<types::Scalars>(b({0x10, 0xAC, 0x02})), "Scalars.i8: value 300 does not fit in std::int8_t");
  EXPECT_EQ(error_of<types::Scalars>(b({0x30, 0x80, 0x02})), "Scalars.u8: value 256 does not fit in std::uint8_t");
  // -1 (ten bytes) into an unsigned 32-bit field.
  EXPECT_EQ(error_of<types::Scalars>(b({0x40, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})),
            "Scalars.u32: value 18446744073709551615 does not fit in std::uint32_t");
  // 2^31 into int32.
  EXPECT_EQ(error_of<types::Scalars>(b({0x20, 0x80, 0x80, 0x80, 0x80, 0x08})),
            "Scalars.i32: value 2147483648 does not fit in std::int32_t");
  // Color's underlying type is uint8_t.
  EXPECT_EQ(error_of<types::Scalars>(b({0x78, 0x80, 0x02})), "Scalars.color: value 256 does not fit in ::types::Color");
}

TEST(Malformed, DurationsAndTimestamps) {
  // Times.s = 3: Duration{seconds = 315576000001}.
  EXPECT_EQ(error_of<types::Times>(b({0x1A, 0x07, 0x08, 0x81, 0xBC, 0xAE, 0xCE, 0x97, 0x09})),
            "Times.s: duration of 315576000001 s 0 ns is outside +-315576000000 s");
  // Times.ms = 1: seconds 1, nanos -1: signs differ.
  EXPECT_EQ(error_of<types::Times>(b({0x0A, 0x0D, 0x08, 0x01, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                      0xFF, 0x01})),
            "Times.ms: duration of 1 s -1 ns has seconds and nanos of different signs");
  // Times.ns = 2: 10^11 s does not fit int64 nanoseconds.
  EXPECT_EQ(error_of<types::Times>(b({0x12, 0x07, 0x08, 0x80, 0xD0, 0xDB, 0xC3, 0xF4, 0x02})),
            "Times.ns: 100000000000 s 0 ns does not fit the C++ duration's representation");
  // Times.at = 6: Timestamp with negative nanos.
  EXPECT_EQ(error_of<types::Times>(b({0x32, 0x0B, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})),
            "Times.at: timestamp nanos -1 is not within 0..999999999");
}

TEST(Malformed, OverTheTransportIsInvalidArgument) {
  dispatch::DispatchTable table{&types::remote::api_service()};
  dispatch::InProcessClient client(table);
  auto r = client.call(types::remote::echo_scalars.path, b({0x0A, 0x02, 0x10, 0xAC}), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument);
  EXPECT_EQ(r.error().message(), "Scalars.i8: truncated or overlong varint");
}

TEST(Malformed, RandomBytesNeverCrash) {
  // Not a fuzzer (tests/fuzz has those): a quick sweep of short inputs.
  std::uint32_t state = 12345;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    int n = static_cast<int>(state % 24);
    for (int k = 0; k < n; ++k) {
      state = state * 1664525u + 1013904223u;
      bytes += static_cast<char>(state >> 24);
    }
    state = state * 1664525u + 1013904223u;
    types::Containers c;
    types::Times t;
    (void)wire::decode(bytes, &c);
    (void)wire::decode(bytes, &t);
  }
}

}  // namespace
