// Tests of the wire primitives: UTF-8 validation, chrono <-> Duration and
// Timestamp arithmetic, integer range checks, tags and skipping, and whole
// messages through generated passes.
#include "dispatch/wire/wire.h"

#include <gtest/gtest.h>

#include <string>

#include "dispatch/core/error.h"
#include "dispatch/wire/wire_io.h"

namespace dispatch::wire {
namespace {

TEST(Utf8, AcceptsValidRejectsInvalid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("a\x80"));
}

TEST(Duration, SplitsTicksExactly) {
  Timespan t;
  ASSERT_TRUE(ticks_to_duration(std::int64_t{1500}, 1, 1000, &t));  // 1500 ms
  EXPECT_EQ(t.seconds, 1);
  EXPECT_EQ(t.nanos, 500'000'000);
  ASSERT_TRUE(ticks_to_duration(std::int64_t{-1500}, 1, 1000, &t));
  EXPECT_EQ(t.seconds, -1);
  EXPECT_EQ(t.nanos, -500'000'000);
  ASSERT_TRUE(ticks_to_duration(std::int64_t{3}, 60, 1, &t));  // 3 minutes
  EXPECT_EQ(t.seconds, 180);
  EXPECT_EQ(t.nanos, 0);
  ASSERT_TRUE(ticks_to_duration(1.25, 1, 1, &t));
  EXPECT_EQ(t.seconds, 1);
  EXPECT_EQ(t.nanos, 250'000'000);
}

TEST(Duration, CoversTheWholeProtoRangeOnBothSides) {
  // google.protobuf.Duration spans +-315576000000 s; both ends and their
  // neighbours, in integer and floating ticks.
  constexpr std::int64_t kMax = 315'576'000'000;
  for (std::int64_t sign : {1, -1}) {
    Timespan t;
    ASSERT_TRUE(ticks_to_duration(std::int64_t{sign * kMax}, 1, 1, &t)) << sign;
    EXPECT_EQ(t.seconds, sign * kMax);
    ASSERT_TRUE(ticks_to_duration(std::int64_t{sign * kMax * 1000}, 1, 1000, &t)) << sign;
    EXPECT_EQ(t.seconds, sign * kMax);
    ASSERT_TRUE(ticks_to_duration(static_cast<double>(sign * kMax), 1, 1, &t)) << sign;
    EXPECT_EQ(t.seconds, sign * kMax);
    EXPECT_FALSE(ticks_to_duration(std::int64_t{sign * (kMax + 1)}, 1, 1, &t)) << sign;
    // The value the fuzzer found: it decodes, so it must encode.
    ASSERT_TRUE(ticks_to_duration(std::int64_t{sign * 274'877'906'949'000}, 1, 1000, &t)) << sign;
    EXPECT_EQ(t.seconds, sign * 274'877'906'949);
  }
}

TEST(Duration, RejectsOutOfRange) {
  Timespan t;
  // INT64_MAX hours is far beyond +-10000 years.
  EXPECT_FALSE(ticks_to_duration(std::int64_t{INT64_MAX}, 3600, 1, &t));
  EXPECT_FALSE(ticks_to_duration(std::numeric_limits<double>::quiet_NaN(), 1, 1, &t));
  EXPECT_FALSE(ticks_to_duration(std::numeric_limits<double>::infinity(), 1, 1, &t));
  std::string why;
  EXPECT_FALSE(duration_is_valid({1, -5}, &why));
  EXPECT_NE(why.find("different signs"), std::string::npos);
  EXPECT_FALSE(duration_is_valid({0, 1'000'000'000}, &why));
  EXPECT_TRUE(duration_is_valid({-3, -7}, &why));
}

TEST(Duration, JoinsBackIntoTicks) {
  std::int64_t ticks = 0;
  std::string why;
  ASSERT_TRUE(timespan_to_ticks({1, 500'000'000}, 1, 1000, INT64_MIN, INT64_MAX, &ticks, &why));
  EXPECT_EQ(ticks, 1500);
  // 1.5 s in whole seconds would lose precision: an error, not truncation
  // (docs/types.md, Evolution), in either sign.
  EXPECT_FALSE(timespan_to_ticks({-1, -500'000'000}, 1, 1, INT64_MIN, INT64_MAX, &ticks, &why));
  EXPECT_NE(why.find("not a whole number of the C++ duration's ticks of 1/1 s"), std::string::npos) << why;
  EXPECT_FALSE(timespan_to_ticks({0, 1'500'000}, 1, 1000, INT64_MIN, INT64_MAX, &ticks, &why));  // 1.5 ms
  ASSERT_TRUE(timespan_to_ticks({-2, 0}, 1, 1, INT64_MIN, INT64_MAX, &ticks, &why));
  EXPECT_EQ(ticks, -2);
  // 100 s of nanoseconds does not fit an int32 rep.
  EXPECT_FALSE(timespan_to_ticks({100, 0}, 1, 1'000'000'000, INT32_MIN, INT32_MAX, &ticks, &why));
  EXPECT_NE(why.find("does not fit"), std::string::npos);
  std::uint64_t u = 0;
  EXPECT_FALSE(timespan_to_ticks({-1, 0}, 1, 1, UINT64_MAX, &u, &why));
}

// A tick that is no whole number of nanoseconds (1/3 s, 1/60 s) encodes
// truncated to the nanosecond, and decodes to itself again; what the
// fuzzer or another language sends between two such ticks is refused.
TEST(Duration, TicksOfNoWholeNanosecondsComeBackAsThemselves) {
  for (const auto& [num, den] : {std::pair<std::int64_t, std::int64_t>{1, 3}, {1, 60}, {7, 3}, {1, 7}, {1, 1'000'000'000'000}}) {
    for (std::int64_t tick : {std::int64_t{1}, std::int64_t{-1}, std::int64_t{-7}, std::int64_t{5}, std::int64_t{1'000'003},
                              std::int64_t{-999'999'999}}) {
      Timespan t;
      ASSERT_TRUE(ticks_to_duration(tick, num, den, &t)) << tick << " of " << num << "/" << den;
      std::int64_t back = 0;
      std::string why;
      ASSERT_TRUE(timespan_to_ticks(t, num, den, INT64_MIN, INT64_MAX, &back, &why)) << why;
      if (den <= 1'000'000'000) {  // finer than 1 ns: truncated
        EXPECT_EQ(back, tick) << num << "/" << den;
      }
      Timespan ts;
      ASSERT_TRUE(ticks_to_timestamp(tick, num, den, &ts));
      ASSERT_TRUE(timespan_to_ticks(ts, num, den, INT64_MIN, INT64_MAX, &back, &why)) << why;
      if (den <= 1'000'000'000) {
        EXPECT_EQ(back, tick) << "timestamp " << num << "/" << den;
      }
    }
  }
  std::int64_t ticks = 0;
  std::string why;
  EXPECT_FALSE(timespan_to_ticks({0, 200'000'000}, 1, 3, INT64_MIN, INT64_MAX, &ticks, &why));  // 0.6 of a tick
}

TEST(Timestamp, FloorsNegativeTimes) {
  Timespan t;
  ASSERT_TRUE(ticks_to_timestamp(std::int64_t{-1}, 1, 1'000'000'000, &t));  // 1 ns before epoch
  EXPECT_EQ(t.seconds, -1);
  EXPECT_EQ(t.nanos, 999'999'999);
  EXPECT_FALSE(ticks_to_timestamp(std::int64_t{253'402'300'800}, 1, 1, &t));
  // Both ends of 0001-01-01..9999-12-31 are representable.
  ASSERT_TRUE(ticks_to_timestamp(std::int64_t{-62'135'596'800}, 1, 1, &t));
  EXPECT_EQ(t.seconds, -62'135'596'800);
  EXPECT_FALSE(ticks_to_timestamp(std::int64_t{-62'135'596'801}, 1, 1, &t));
  ASSERT_TRUE(ticks_to_timestamp(std::int64_t{253'402'300'799}, 1, 1, &t));
  std::string why;
  EXPECT_FALSE(timestamp_is_valid({0, -1}, &why));
}

TEST(FloatingTicks, ValuesAtTheRangeEndsDecodeToValuesThatEncode) {
  // x.999999999 s rounds up to x+1 in a double (and much further in a
  // float); the decoder steps back so the value still encodes.
  const Timespan max_duration{315'576'000'000, 999'999'999};
  const Timespan min_duration{-315'576'000'000, -999'999'999};
  for (const Timespan& t : {max_duration, min_duration}) {
    const auto d = proto_to_ticks<double>(t, 1, 1, "M", "d");
    EXPECT_NO_THROW(duration_to_proto(d, 1, 1, "M", "d")) << t.seconds;
    EXPECT_EQ(duration_to_proto(d, 1, 1, "M", "d").seconds, t.seconds);
    const auto ms = proto_to_ticks<double>(t, 1, 1000, "M", "d");
    EXPECT_EQ(duration_to_proto(ms, 1, 1000, "M", "d").seconds, t.seconds);
    const auto f = proto_to_ticks<float>(t, 1, 1, "M", "d");
    EXPECT_NO_THROW(duration_to_proto(f, 1, 1, "M", "d")) << t.seconds;
  }
  const Timespan max_time{253'402'300'799, 999'999'999};
  const Timespan min_time{-62'135'596'800, 300'000'000};
  for (const Timespan& t : {max_time, min_time}) {
    const auto d = proto_to_ticks<double>(t, 1, 1, "M", "t");
    EXPECT_EQ(timestamp_to_proto(d, 1, 1, "M", "t").seconds, t.seconds);
    const auto f = proto_to_ticks<float>(t, 1, 1, "M", "t");
    EXPECT_NO_THROW(timestamp_to_proto(f, 1, 1, "M", "t")) << t.seconds;
  }
  // Values away from the ends are untouched: 1.5 s stays exactly 1.5 s.
  EXPECT_EQ(proto_to_ticks<double>({1, 500'000'000}, 1, 1, "M", "d"), 1.5);
  EXPECT_EQ(proto_to_ticks<double>({-2, -999'999'999}, 1, 1'000'000'000, "M", "d"), -2'999'999'999.0);
}

// Decodes `bytes` with `read` and returns the error message, or "" on success.
template <typename F>
std::string decode_error(std::string_view bytes, F read) {
  try {
    decode_buffer(bytes, "M", read);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::invalid_argument);
    return e.message();
  }
  return "";
}

TEST(Ints, RangeCheckedAgainstTheCppType) {
  // 300 as a varint.
  const std::string v300("\xAC\x02", 2);
  EXPECT_EQ(decode_error(v300, [](Stream& in) { read_int<std::int8_t>(in, "M", "f", "std::int8_t"); }),
            "M.f: value 300 does not fit in std::int8_t");
  EXPECT_EQ(decode_error(v300, [](Stream& in) { EXPECT_EQ(read_int<std::uint16_t>(in, "M", "f", "u16"), 300); }),
            "");
  // -1 as int32 is sign-extended to ten bytes.
  const std::string minus1("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x01", 10);
  EXPECT_EQ(decode_error(minus1, [](Stream& in) { EXPECT_EQ(read_int<std::int32_t>(in, "M", "f", "i32"), -1); }),
            "");
  EXPECT_EQ(decode_error(minus1, [](Stream& in) { read_int<std::uint32_t>(in, "M", "f", "std::uint32_t"); }),
            "M.f: value 18446744073709551615 does not fit in std::uint32_t");
  EXPECT_EQ(decode_error(std::string("\xFF", 1), [](Stream& in) { read_varint(in, "M", "f"); }),
            "M.f: truncated or overlong varint");
}

TEST(Tags, RejectsFieldZeroAndSkipsUnknown) {
  EXPECT_EQ(decode_error(std::string("\x00", 1), [](Stream& in) { next_tag(in, "M"); }),
            "M: malformed field tag (field number 0 or truncated)");
  // field 7 varint 5, then field 8 length 2 "hi": both skipped.
  const std::string unknown("\x38\x05\x42\x02hi", 6);
  EXPECT_EQ(decode_error(unknown,
                         [](Stream& in) {
                           int n = 0;
                           while (std::uint32_t tag = next_tag(in, "M")) {
                             skip(in, tag, "M");
                             ++n;
                           }
                           EXPECT_EQ(n, 2);
                         }),
            "");
  // field 8 claims 9 bytes but 2 remain.
  EXPECT_EQ(decode_error(std::string("\x42\x09hi", 4),
                         [](Stream& in) {
                           std::uint32_t tag = next_tag(in, "M");
                           skip(in, tag, "M");
                         }),
            "M: malformed unknown field 8 (length-delimited)");
}

TEST(Strings, LengthAndUtf8Checked) {
  std::string out;
  EXPECT_EQ(decode_error(std::string("\x05" "ab", 3), [&](Stream& in) { read_string(in, &out, "M", "s"); }),
            "M.s: length 5 runs past the end of the message");
  EXPECT_EQ(decode_error(std::string("\x01\xFF", 2), [&](Stream& in) { read_string(in, &out, "M", "s"); }),
            "M.s: string is not valid UTF-8 (use bytes for binary data)");
  EXPECT_EQ(decode_error(std::string("\x02ok", 3), [&](Stream& in) { read_string(in, &out, "M", "s"); }), "");
  EXPECT_EQ(out, "ok");
}

TEST(Nesting, DepthLimited) {
  // 101 nested empty-length-prefixed messages: each level is "field 1, LEN, rest".
  std::string bytes;
  for (int i = 0; i <= kRecursionLimit; ++i) {
    std::uint8_t len[10];
    std::uint8_t* end = put_len(bytes.size(), len);
    bytes = "\x0A" + std::string(reinterpret_cast<char*>(len), end - len) + bytes;
  }
  std::function<void(Stream&)> read_nested = [&](Stream& in) {
    while (std::uint32_t tag = next_tag(in, "M")) {
      expect(tag, kLen, "M", "child");
      Stream::Limit l = enter(in, "M", "child");
      read_nested(in);
      leave(in, l);
    }
  };
  // The innermost 50 levels are fine.
  EXPECT_EQ(decode_error(bytes.substr(bytes.size() - 100), read_nested), "");
  EXPECT_EQ(decode_error(bytes, read_nested), "M.child: messages nested too deeply");
}

TEST(SizeCache, PreOrderBeyondInlineStorage) {
  SizeCache c;
  for (std::size_t i = 0; i < 100; ++i) c.set(c.reserve(), i * 3);
  for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ(c.next(), i * 3);
}


// A message as generated code writes one, for the whole-message helpers:
// field 1 a varint, field 2 a string; a negative `a` stands for a value
// proto cannot carry.
struct Pair {
  std::int64_t a = 0;
  std::string s;
};
std::size_t pair_size(const void* value, SizeCache&) {
  const auto& v = *static_cast<const Pair*>(value);
  if (v.a < 0) fail_encode("Pair", "a", "negative");
  return 1 + varint_size(varint_bits(v.a)) + 1 + len_size(v.s.size());
}
std::uint8_t* pair_write(const void* value, SizeCache&, std::uint8_t* p) {
  const auto& v = *static_cast<const Pair*>(value);
  *p++ = 0x08;
  p = put_varint(varint_bits(v.a), p);
  *p++ = 0x12;
  p = put_len(v.s.size(), p);
  return put_raw(v.s.data(), v.s.size(), p);
}
void pair_read(Stream& in, void* value) {
  auto* v = static_cast<Pair*>(value);
  while (std::uint32_t tag = next_tag(in, "Pair")) {
    if (tag == 0x08) {
      v->a = read_int<std::int64_t>(in, "Pair", "a", "std::int64_t");
    } else if (tag == 0x12) {
      read_string(in, &v->s, "Pair", "s");
    } else {
      skip(in, tag, "Pair");
    }
  }
}

TEST(WholeMessages, EncodeThroughThePasses) {
  const Pair pair{300, "hi"};
  EXPECT_EQ(encode_erased(&pair, &pair_size, &pair_write), std::string("\x08\xAC\x02\x12\x02hi", 7));
  Result<std::string> bytes = try_encode_erased(&pair, &pair_size, &pair_write);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->size(), 7u);
}

TEST(WholeMessages, AnUnencodableValueIsAnErrorValue) {
  const Pair pair{-1, ""};
  EXPECT_THROW(encode_erased(&pair, &pair_size, &pair_write), Error);
  Result<std::string> bytes = try_encode_erased(&pair, &pair_size, &pair_write);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().code(), Code::out_of_range);
  EXPECT_EQ(bytes.error().message(), "Pair.a: negative");
}

TEST(WholeMessages, DecodeThroughTheReader) {
  Pair pair;
  ASSERT_TRUE(decode_erased(std::string("\x08\xAC\x02\x12\x02hi", 7), "Pair", &pair_read, &pair).ok());
  EXPECT_EQ(pair.a, 300);
  EXPECT_EQ(pair.s, "hi");
}

TEST(WholeMessages, MalformedInputIsAnErrorValue) {
  Pair pair;
  Result<void> r = decode_erased(std::string("\x12\x05hi", 4), "Pair", &pair_read, &pair);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::invalid_argument);
  EXPECT_EQ(r.error().message(), "Pair.s: length 5 runs past the end of the message");
}

}  // namespace
}  // namespace dispatch::wire
