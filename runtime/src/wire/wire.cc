// The out-of-line half of dispatch/wire/wire.h and dispatch/wire/wire_io.h: error
// construction, UTF-8 validation, skipping unknown fields, whole-message
// encoding and decoding over generated passes, and exact chrono <->
// Duration/Timestamp arithmetic (in 128 bits, so no tick count overflows
// silently). Not for: anything message-specific; that is generated.
#include "dispatch/wire/wire.h"

#include <cmath>
#include <cstring>
#include <string>

#include "dispatch/core/error.h"
#include "dispatch/wire/wire_io.h"

namespace dispatch::wire {
namespace {

using i128 = __int128;

constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
// google/protobuf/duration.proto and timestamp.proto.
constexpr std::int64_t kMaxDurationSeconds = 315'576'000'000;
constexpr std::int64_t kMinTimestampSeconds = -62'135'596'800;  // 0001-01-01T00:00:00Z
constexpr std::int64_t kMaxTimestampSeconds = 253'402'300'799;  // 9999-12-31T23:59:59Z
// A bound on |seconds| that holds every Duration and every Timestamp, so a
// split never overflows and the type's own range check decides. (It used to
// be twice the Timestamp range on each side, which cut off Durations below
// -124271193600 s that decode fine: a fuzzer found one that could not be
// encoded back.)
constexpr std::int64_t kSplitBoundSeconds = 2 * kMaxTimestampSeconds;
static_assert(kSplitBoundSeconds > kMaxDurationSeconds && kSplitBoundSeconds > -kMinTimestampSeconds);

std::string where(std::string_view message, std::string_view field) {
  std::string s(message);
  if (!field.empty()) {
    s += '.';
    s += field;
  }
  return s;
}

const char* wire_type_name(std::uint32_t t) {
  switch (t) {
    case 0: return "varint";
    case 1: return "fixed64";
    case 2: return "length-delimited";
    case 3: return "start-group";
    case 4: return "end-group";
    case 5: return "fixed32";
    default: return "invalid";
  }
}

// Ticks (as a 128-bit count) of num/den seconds -> seconds and nanos, both
// truncated toward zero.
bool split_ticks(i128 ticks, std::int64_t num, std::int64_t den, Timespan* out) {
  if (num <= 0 || den <= 0) return false;
  i128 scaled;
  if (__builtin_mul_overflow(ticks, static_cast<i128>(num), &scaled)) return false;
  i128 seconds = scaled / den;
  i128 nanos = (scaled % den) * kNanosPerSecond / den;
  if (seconds > kSplitBoundSeconds || seconds < -kSplitBoundSeconds) return false;
  out->seconds = static_cast<std::int64_t>(seconds);
  out->nanos = static_cast<std::int32_t>(nanos);
  return true;
}

bool in_duration_range(const Timespan& t) {
  return t.seconds >= -kMaxDurationSeconds && t.seconds <= kMaxDurationSeconds;
}

// Floors a truncated split into a Timestamp's normal form (nanos >= 0).
bool to_timestamp(Timespan t, Timespan* out) {
  if (t.nanos < 0) {
    t.seconds -= 1;
    t.nanos += kNanosPerSecond;
  }
  if (t.seconds < kMinTimestampSeconds || t.seconds > kMaxTimestampSeconds) return false;
  *out = t;
  return true;
}

bool split_double(double ticks, std::int64_t num, std::int64_t den, Timespan* out) {
  if (!std::isfinite(ticks) || num <= 0 || den <= 0) return false;
  long double seconds = static_cast<long double>(ticks) * num / den;
  if (seconds > kSplitBoundSeconds || seconds < -kSplitBoundSeconds) return false;
  long double whole = std::trunc(seconds);
  auto nanos = static_cast<std::int64_t>(std::llround((seconds - whole) * kNanosPerSecond));
  auto secs = static_cast<std::int64_t>(whole);
  if (nanos >= kNanosPerSecond) {
    secs += 1;
    nanos -= kNanosPerSecond;
  } else if (nanos <= -kNanosPerSecond) {
    secs -= 1;
    nanos += kNanosPerSecond;
  }
  out->seconds = secs;
  out->nanos = static_cast<std::int32_t>(nanos);
  return true;
}

std::string describe(const Timespan& t) {
  return std::to_string(t.seconds) + " s " + std::to_string(t.nanos) + " ns";
}

// seconds+nanos -> the tick of num/den seconds that encodes to exactly it
// (split_ticks), or false with why.
bool join_ticks(const Timespan& t, std::int64_t num, std::int64_t den, i128* ticks,
                std::string* why) {
  if (num <= 0 || den <= 0) {
    *why = "invalid tick ratio";
    return false;
  }
  const i128 total = static_cast<i128>(t.seconds) * kNanosPerSecond + t.nanos;
  i128 scaled;
  if (__builtin_mul_overflow(total, static_cast<i128>(den), &scaled)) {
    *why = "value out of range of the C++ duration";
    return false;
  }
  const i128 unit = static_cast<i128>(num) * kNanosPerSecond;
  const i128 whole = scaled / unit, rest = scaled % unit;
  // The tick that encodes to exactly this value: split_ticks writes a tick
  // that is no whole number of nanoseconds (1/3 s) truncated toward zero,
  // so it may be the next one away from zero. None: the value is finer
  // than the C++ type holds (1.5 ms into milliseconds), and dropping the
  // rest would be silent truncation.
  const i128 candidates[] = {whole, rest > 0 ? whole + 1 : rest < 0 ? whole - 1 : whole};
  for (i128 tick : candidates) {
    i128 back;
    if (__builtin_mul_overflow(tick, unit, &back)) continue;
    if (back / den == total) {
      *ticks = tick;
      return true;
    }
  }
  *why = describe(t) + " is not a whole number of the C++ duration's ticks of " + std::to_string(num) + "/" +
         std::to_string(den) + " s: it would lose precision";
  return false;
}

}  // namespace

void fail(std::string_view message, std::string_view field, std::string_view what) {
  throw Error(Code::invalid_argument, where(message, field) + ": " + std::string(what));
}

void fail_encode(std::string_view message, std::string_view field, std::string_view what) {
  throw Error(Code::out_of_range, where(message, field) + ": " + std::string(what));
}

void fail_wire_type(const char* message, const char* field, std::uint32_t tag, WireType expected) {
  fail(message, field,
       std::string("wire type ") + wire_type_name(tag & 7) + " where " + wire_type_name(expected) +
           " was expected");
}

void fail_range(const char* message, const char* field, std::uint64_t bits, bool is_signed,
                const char* type) {
  std::string value = is_signed ? std::to_string(static_cast<std::int64_t>(bits)) : std::to_string(bits);
  fail(message, field, "value " + value + " does not fit in " + type);
}

std::string encode_erased(const void* value, SizePass size, WritePass write) {
  return encode_message([&](SizeCache& cache) { return size(value, cache); },
                        [&](SizeCache& cache, std::uint8_t* out) { return write(value, cache, out); });
}

Result<std::string> try_encode_erased(const void* value, SizePass size, WritePass write) {
  try {
    return encode_erased(value, size, write);
  } catch (const Error& e) {
    return e;
  }
}

Result<void> decode_erased(std::string_view bytes, const char* message, ReadPass read, void* value) {
  try {
    decode_buffer(bytes, message, [&](Stream& in) { read(in, value); });
  } catch (const Error& e) {
    return e;
  }
  return {};
}

void skip(Stream& in, std::uint32_t tag, const char* message) {
  if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
    fail(message, "",
         "malformed unknown field " + std::to_string(tag >> 3) + " (" + wire_type_name(tag & 7) +
             ")");
  }
}

void read_string(Stream& in, std::string* out, const char* message, const char* field) {
  int n = read_len(in, message, field);
  // Straight from the flat buffer (read_len checked the length): validate,
  // then copy once, without ReadString's zero-filling resize.
  const void* data;
  int size;
  in.GetDirectBufferPointerInline(&data, &size);
  std::string_view s(static_cast<const char*>(data), static_cast<std::size_t>(n));
  if (!is_valid_utf8(s)) fail(message, field, "string is not valid UTF-8 (use bytes for binary data)");
  out->assign(s.data(), s.size());
  in.Skip(n);
}

Timespan read_timespan(Stream& in, const char* message, const char* field, bool timestamp) {
  const char* type = timestamp ? "google.protobuf.Timestamp" : "google.protobuf.Duration";
  Stream::Limit limit = enter(in, message, field);
  Timespan t;
  while (std::uint32_t tag = next_tag(in, type)) {
    switch (tag >> 3) {
      case 1:
        expect(tag, kVarint, type, "seconds");
        t.seconds = read_int<std::int64_t>(in, type, "seconds", "int64");
        break;
      case 2:
        expect(tag, kVarint, type, "nanos");
        t.nanos = read_int<std::int32_t>(in, type, "nanos", "int32");
        break;
      default:
        skip(in, tag, type);
    }
  }
  leave(in, limit);
  std::string why;
  if (!(timestamp ? timestamp_is_valid(t, &why) : duration_is_valid(t, &why))) {
    fail(message, field, why);
  }
  return t;
}

bool is_valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // ASCII, eight bytes at a time: the common case for names and text.
    while (end - p >= 8) {
      std::uint64_t chunk;
      std::memcpy(&chunk, p, sizeof chunk);
      if (chunk & 0x8080808080808080ULL) break;
      p += 8;
    }
    if (p == end) break;
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < n) return false;
    for (std::size_t i = 1; i < n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n;
  }
  return true;
}

bool ticks_to_duration(std::int64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept {
  return split_ticks(ticks, num, den, out) && in_duration_range(*out);
}
bool ticks_to_duration(std::uint64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept {
  return split_ticks(ticks, num, den, out) && in_duration_range(*out);
}
bool ticks_to_duration(double ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept {
  return split_double(ticks, num, den, out) && in_duration_range(*out);
}
bool ticks_to_timestamp(std::int64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept {
  Timespan t;
  return split_ticks(ticks, num, den, &t) && to_timestamp(t, out);
}
bool ticks_to_timestamp(std::uint64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept {
  Timespan t;
  return split_ticks(ticks, num, den, &t) && to_timestamp(t, out);
}
bool ticks_to_timestamp(double ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept {
  Timespan t;
  return split_double(ticks, num, den, &t) && to_timestamp(t, out);
}

bool duration_is_valid(const Timespan& t, std::string* why) {
  if (!in_duration_range(t)) {
    *why = "duration of " + describe(t) + " is outside +-315576000000 s";
    return false;
  }
  if (t.nanos <= -kNanosPerSecond || t.nanos >= kNanosPerSecond) {
    *why = "duration nanos " + std::to_string(t.nanos) + " is not within +-999999999";
    return false;
  }
  if ((t.seconds > 0 && t.nanos < 0) || (t.seconds < 0 && t.nanos > 0)) {
    *why = "duration of " + describe(t) + " has seconds and nanos of different signs";
    return false;
  }
  return true;
}

bool timestamp_is_valid(const Timespan& t, std::string* why) {
  if (t.seconds < kMinTimestampSeconds || t.seconds > kMaxTimestampSeconds) {
    *why = "timestamp " + describe(t) + " is outside 0001-01-01..9999-12-31";
    return false;
  }
  if (t.nanos < 0 || t.nanos >= kNanosPerSecond) {
    *why = "timestamp nanos " + std::to_string(t.nanos) + " is not within 0..999999999";
    return false;
  }
  return true;
}

bool timespan_to_ticks(const Timespan& t, std::int64_t num, std::int64_t den, std::int64_t min,
                       std::int64_t max, std::int64_t* ticks, std::string* why) {
  i128 v;
  if (!join_ticks(t, num, den, &v, why)) return false;
  if (v < min || v > max) {
    *why = describe(t) + " does not fit the C++ duration's representation";
    return false;
  }
  *ticks = static_cast<std::int64_t>(v);
  return true;
}

bool timespan_to_ticks(const Timespan& t, std::int64_t num, std::int64_t den, std::uint64_t max,
                       std::uint64_t* ticks, std::string* why) {
  i128 v;
  if (!join_ticks(t, num, den, &v, why)) return false;
  if (v < 0 || v > static_cast<i128>(max)) {
    *why = describe(t) + " does not fit the C++ duration's representation";
    return false;
  }
  *ticks = static_cast<std::uint64_t>(v);
  return true;
}

bool timespan_to_ticks(const Timespan& t, std::int64_t num, std::int64_t den, double* ticks,
                       std::string* why) {
  if (num <= 0 || den <= 0) {
    *why = "invalid tick ratio";
    return false;
  }
  long double seconds = static_cast<long double>(t.seconds) + static_cast<long double>(t.nanos) / kNanosPerSecond;
  *ticks = static_cast<double>(seconds * den / num);
  return true;
}

bool rounds_past_whole_seconds(double ticks, std::int64_t num, std::int64_t den,
                               const Timespan& exact) noexcept {
  if (!std::isfinite(ticks) || num <= 0 || den <= 0) return false;
  // exact's whole seconds, truncated toward zero like split_double does.
  std::int64_t whole = exact.seconds;
  if (exact.seconds < 0 && exact.nanos > 0) whole += 1;
  if (exact.seconds > 0 && exact.nanos < 0) whole -= 1;
  const long double got = std::trunc(static_cast<long double>(ticks) * num / den);
  return got > 0 ? got > whole : got < whole;
}

}  // namespace dispatch::wire
