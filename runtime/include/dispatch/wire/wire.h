// dispatch::wire: the small, I/O-free pieces generated encoders and decoders
// share: the size cache of the two-pass encoder, decoding errors, UTF-8
// validation, and the exact conversions between std::chrono values and
// google.protobuf.Duration / Timestamp.
//
// Not for: the per-field hot paths over protobuf's streams (those are inline in
// dispatch/wire/wire_io.h, which only generated .cc files include), nor for users'
// code: users encode through the generated `<namespace>::<stem>_wire`
// functions. Public header: compiles as C++17 and C++20, includes nothing heavy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dispatch::wire {

// Nested message sizes measured by the encoder's size pass, in pre-order, so
// the write pass can prefix each nested message with its length without
// measuring it again at every depth. Small messages stay off the heap.
class SizeCache {
 public:
  SizeCache() = default;
  SizeCache(const SizeCache&) = delete;
  SizeCache& operator=(const SizeCache&) = delete;

  // Size pass: reserves the next slot (before measuring the children).
  std::size_t reserve() {
    if (size_ < kInline) return size_++;
    heap_.push_back(0);
    return size_++;
  }
  void set(std::size_t slot, std::size_t size) {
    at(slot) = static_cast<std::uint32_t>(size);
  }
  // Write pass: the sizes again, in the order they were reserved.
  std::size_t next() { return at(read_++); }

 private:
  static constexpr std::size_t kInline = 32;
  std::uint32_t& at(std::size_t i) { return i < kInline ? inline_[i] : heap_[i - kInline]; }
  std::uint32_t inline_[kInline];
  std::vector<std::uint32_t> heap_;
  std::size_t size_ = 0;
  std::size_t read_ = 0;
};

// Throws dispatch::Error(invalid_argument, "<message>.<field>: <what>")
// (or "<message>: <what>" when field is empty). Decoders report bad bytes
// this way; the public decode() functions turn it into a Result.
[[noreturn]] void fail(std::string_view message, std::string_view field, std::string_view what);
// Throws dispatch::Error(out_of_range, ...): a C++ value proto cannot carry
// (a duration beyond google.protobuf.Duration's range, say).
[[noreturn]] void fail_encode(std::string_view message, std::string_view field,
                              std::string_view what);

// Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF),
// as proto3 requires of string fields.
bool is_valid_utf8(std::string_view s) noexcept;

// google.protobuf.Duration / Timestamp: seconds and nanos.
struct Timespan {
  std::int64_t seconds = 0;
  std::int32_t nanos = 0;
};

// C++ ticks of num/den seconds -> a normalized Duration (seconds and nanos
// with the same sign, |nanos| < 1e9; finer than 1 ns truncates toward zero)
// or Timestamp (nanos in [0, 1e9), flooring). Return false when the value is
// outside the proto type's range (Duration: +-315576000000 s; Timestamp:
// 0001-01-01 to 9999-12-31) or not finite.
bool ticks_to_duration(std::int64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept;
bool ticks_to_duration(std::uint64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept;
bool ticks_to_duration(double ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept;
bool ticks_to_timestamp(std::int64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept;
bool ticks_to_timestamp(std::uint64_t ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept;
bool ticks_to_timestamp(double ticks, std::int64_t num, std::int64_t den, Timespan* out) noexcept;

// The inverse, for decoders: checks the Duration/Timestamp invariants and
// that the result fits [min, max] of the C++ rep (integer ticks must hold
// it exactly). On failure returns false and says why in *why.
bool duration_is_valid(const Timespan& t, std::string* why);
bool timestamp_is_valid(const Timespan& t, std::string* why);
bool timespan_to_ticks(const Timespan& t, std::int64_t num, std::int64_t den, std::int64_t min,
                       std::int64_t max, std::int64_t* ticks, std::string* why);
bool timespan_to_ticks(const Timespan& t, std::int64_t num, std::int64_t den, std::uint64_t max,
                       std::uint64_t* ticks, std::string* why);
bool timespan_to_ticks(const Timespan& t, std::int64_t num, std::int64_t den, double* ticks,
                       std::string* why);

// True when floating `ticks`, the rounded form of `exact`, has a whole-second
// part farther from zero than exact's (x.999999999 s rounded up to x+1). A
// decoder steps such a value back toward zero: at the ends of the proto
// range the rounded value would not encode again.
bool rounds_past_whole_seconds(double ticks, std::int64_t num, std::int64_t den,
                               const Timespan& exact) noexcept;

}  // namespace dispatch::wire
