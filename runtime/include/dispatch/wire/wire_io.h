// The per-field primitives of generated encoders and decoders, inline over
// libprotobuf's io layer (CodedOutputStream's ...ToArray writers and
// CodedInputStream). Generated `.dispatch.cc` files include this; it stays out
// of generated headers so users' translation units do not pay for protobuf's
// headers.
//
// Not for: users' code (use the generated `<namespace>::<stem>_wire`
// functions), nor anything message-specific (that is generated).
// Compiles as C++17 and C++20.
#pragma once

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "dispatch/core/result.h"
#include "dispatch/wire/wire.h"

namespace dispatch {
struct CloudEvent;  // dispatch/core/cloud_event.h
}  // namespace dispatch

namespace dispatch::wire {

using Stream = google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

// Wire types (the low three bits of a tag).
enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// Nesting deeper than this is rejected rather than risking the stack.
inline constexpr int kRecursionLimit = 100;

// ---- encoding: sizes ----

inline std::size_t varint_size(std::uint64_t v) { return CodedOutputStream::VarintSize64(v); }
// A length prefix plus the bytes it announces.
inline std::size_t len_size(std::size_t n) {
  return CodedOutputStream::VarintSize32(static_cast<std::uint32_t>(n)) + n;
}

// The varint a scalar is written as: signed integers and enums sign-extended
// to 64 bits (as protobuf writes int32 and enums), bool as 0/1.
template <typename T>
inline std::uint64_t varint_bits(T v) {
  if constexpr (std::is_enum_v<T>) {
    return varint_bits(static_cast<std::underlying_type_t<T>>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? 1 : 0;
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
  } else {
    return static_cast<std::uint64_t>(v);
  }
}

// proto3 leaves default values out. Floats compare by bits, as protobuf does,
// so -0.0 is written.
template <typename T>
inline bool is_default(T v) {
  if constexpr (std::is_same_v<T, float>) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    return bits == 0;
  } else if constexpr (std::is_same_v<T, double>) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    return bits == 0;
  } else {
    return varint_bits(v) == 0;
  }
}

// ---- encoding: writes into a buffer sized by the size pass ----

inline std::uint8_t* put_varint(std::uint64_t v, std::uint8_t* p) {
  return CodedOutputStream::WriteVarint64ToArray(v, p);
}
inline std::uint8_t* put_len(std::size_t n, std::uint8_t* p) {
  return CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(n), p);
}
inline std::uint8_t* put_float(float v, std::uint8_t* p) {
  return google::protobuf::internal::WireFormatLite::WriteFloatNoTagToArray(v, p);
}
inline std::uint8_t* put_double(double v, std::uint8_t* p) {
  return google::protobuf::internal::WireFormatLite::WriteDoubleNoTagToArray(v, p);
}
inline std::uint8_t* put_raw(const void* data, std::size_t n, std::uint8_t* p) {
  if (n != 0) std::memcpy(p, data, n);
  return p + n;
}

// A std::unordered_map's entries in ascending key order (a
// std::unordered_set's elements in ascending order), for encoding: the same
// value then always encodes to the same bytes (as std::map's and std::set's
// do), and the size pass and the write pass, which each iterate it, agree.
// Keys are integers, bool, enums or strings (strings compare bytewise, as
// protobuf's deterministic serialization orders them). Holds pointers to the
// entries: the container must outlive the range and not change while it is
// iterated. `Key` projects an entry to what it is ordered by.
template <typename Container, typename Key>
class InOrder {
 public:
  using Entry = typename Container::value_type;

  class iterator {
   public:
    explicit iterator(const Entry* const* at) : at_(at) {}
    const Entry& operator*() const { return **at_; }
    iterator& operator++() {
      ++at_;
      return *this;
    }
    bool operator!=(const iterator& other) const { return at_ != other.at_; }

   private:
    const Entry* const* at_;
  };

  explicit InOrder(const Container& container) {
    entries_.reserve(container.size());
    for (const Entry& e : container) entries_.push_back(&e);
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry* a, const Entry* b) { return Key{}(*a) < Key{}(*b); });
  }
  iterator begin() const { return iterator(entries_.data()); }
  iterator end() const { return iterator(entries_.data() + entries_.size()); }

 private:
  std::vector<const Entry*> entries_;
};

struct EntryKey {
  template <typename Entry>
  const auto& operator()(const Entry& e) const {
    return e.first;
  }
};
struct Itself {
  template <typename Entry>
  const Entry& operator()(const Entry& e) const {
    return e;
  }
};

template <typename Map>
inline InOrder<Map, EntryKey> in_key_order(const Map& map) {
  return InOrder<Map, EntryKey>(map);
}
template <typename Set>
inline InOrder<Set, Itself> in_order(const Set& set) {
  return InOrder<Set, Itself>(set);
}

// ---- decoding ----

// Bytes left before the current limit. Decoders always run over one flat
// buffer (decode_buffer), where CodedInputStream's buffer ends exactly at the
// current limit, so this is inline arithmetic rather than BytesUntilLimit().
inline int remaining(Stream& in) {
  const void* data;
  int size;
  in.GetDirectBufferPointerInline(&data, &size);
  return size;
}

// The next tag, or 0 at the end of the current message. A tag that is not
// one (field number 0, a truncated varint) is an error.
inline std::uint32_t next_tag(Stream& in, const char* message) {
  if (in.ExpectAtEnd()) return 0;
  std::uint32_t tag = in.ReadTagNoLastTag();
  if ((tag >> 3) == 0) fail(message, "", "malformed field tag (field number 0 or truncated)");
  return tag;
}

[[noreturn]] void fail_wire_type(const char* message, const char* field, std::uint32_t tag,
                                 WireType expected);

inline void expect(std::uint32_t tag, WireType expected, const char* message, const char* field) {
  if ((tag & 7) != expected) fail_wire_type(message, field, tag, expected);
}

// Skips a field this decoder does not know (a newer peer's), as proto3 asks.
void skip(Stream& in, std::uint32_t tag, const char* message);

inline std::uint64_t read_varint(Stream& in, const char* message, const char* field) {
  std::uint64_t v;
  if (!in.ReadVarint64(&v)) fail(message, field, "truncated or overlong varint");
  return v;
}

[[noreturn]] void fail_range(const char* message, const char* field, std::uint64_t bits,
                             bool is_signed, const char* type);

// An integer of C++ type T (any width, signed or not); values that do not fit
// T are errors, not truncated.
template <typename T>
inline T read_int(Stream& in, const char* message, const char* field, const char* type) {
  std::uint64_t bits = read_varint(in, message, field);
  if constexpr (std::is_signed_v<T>) {
    auto v = static_cast<std::int64_t>(bits);
    if constexpr (sizeof(T) < 8) {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
        fail_range(message, field, bits, true, type);
    }
    return static_cast<T>(v);
  } else {
    if constexpr (sizeof(T) < 8) {
      if (bits > std::numeric_limits<T>::max()) fail_range(message, field, bits, false, type);
    }
    return static_cast<T>(bits);
  }
}

inline bool read_bool(Stream& in, const char* message, const char* field) {
  return read_varint(in, message, field) != 0;
}

// An open enum (proto3): any value of the underlying type is accepted. 0 is
// the value-initialized enum (`E{}`) also when no enumerator is 0 (the .proto
// has a placeholder zero then): the encoder writes it wherever a value is
// always written (a map value, a vector element, an engaged optional), so
// the decoder must take it back.
template <typename E>
inline E read_enum(Stream& in, const char* message, const char* field, const char* type) {
  return static_cast<E>(read_int<std::underlying_type_t<E>>(in, message, field, type));
}

inline float read_float(Stream& in, const char* message, const char* field) {
  std::uint32_t bits;
  if (!in.ReadLittleEndian32(&bits)) fail(message, field, "truncated fixed32");
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

inline double read_double(Stream& in, const char* message, const char* field) {
  std::uint64_t bits;
  if (!in.ReadLittleEndian64(&bits)) fail(message, field, "truncated fixed64");
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// A length prefix that the current message can hold.
inline int read_len(Stream& in, const char* message, const char* field) {
  std::uint32_t n;
  if (!in.ReadVarint32(&n)) fail(message, field, "truncated length");
  if (n > static_cast<std::uint32_t>(remaining(in))) {
    fail(message, field, "length " + std::to_string(n) + " runs past the end of the message");
  }
  return static_cast<int>(n);
}

void read_string(Stream& in, std::string* out, const char* message, const char* field);

template <typename B>
inline void read_bytes(Stream& in, std::vector<B>* out, const char* message, const char* field) {
  static_assert(sizeof(B) == 1, "bytes are std::vector<std::byte> or std::vector<std::uint8_t>");
  int n = read_len(in, message, field);
  out->resize(static_cast<std::size_t>(n));
  if (n != 0 && !in.ReadRaw(out->data(), n)) fail(message, field, "truncated bytes");
}

// Entering a nested message: its length becomes the stream's limit, and the
// depth is counted against kRecursionLimit.
inline Stream::Limit enter(Stream& in, const char* message, const char* field) {
  int n = read_len(in, message, field);
  auto [limit, budget] = in.IncrementRecursionDepthAndPushLimit(n);
  if (budget < 0) fail(message, field, "messages nested too deeply");
  return limit;
}
inline void leave(Stream& in, Stream::Limit limit) { in.DecrementRecursionDepthAndPopLimit(limit); }

// Packed repeated scalars: a length-delimited run without a recursion level.
inline Stream::Limit enter_packed(Stream& in, const char* message, const char* field) {
  return in.PushLimit(read_len(in, message, field));
}
inline bool more(Stream& in) { return !in.ExpectAtEnd(); }
// How many values the packed run just entered holds, so a vector grows
// once: its byte count over `width` for fixed32/fixed64 (width 4 or 8), its
// bytes without a continuation bit for varints (width 0). Bounded by the
// bytes actually present, so a hostile length cannot force a huge reserve.
inline std::size_t packed_count(Stream& in, int width) {
  const void* data;
  int size;
  in.GetDirectBufferPointerInline(&data, &size);
  if (width != 0) return static_cast<std::size_t>(size / width);
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::size_t n = 0;
  for (int i = 0; i < size; ++i) n += p[i] < 0x80;
  return n;
}
inline void leave_packed(Stream& in, Stream::Limit limit) { in.PopLimit(limit); }

// Reads a google.protobuf.Duration or Timestamp message body (the length
// prefix included).
Timespan read_timespan(Stream& in, const char* message, const char* field, bool timestamp);

// Chrono conversions, for any rep the model allows.
template <typename Rep>
inline Timespan duration_to_proto(Rep ticks, std::int64_t num, std::int64_t den,
                                  const char* message, const char* field) {
  Timespan t;
  bool ok;
  if constexpr (std::is_floating_point_v<Rep>) {
    ok = ticks_to_duration(static_cast<double>(ticks), num, den, &t);
  } else if constexpr (std::is_signed_v<Rep>) {
    ok = ticks_to_duration(static_cast<std::int64_t>(ticks), num, den, &t);
  } else {
    ok = ticks_to_duration(static_cast<std::uint64_t>(ticks), num, den, &t);
  }
  if (!ok) fail_encode(message, field, "duration outside google.protobuf.Duration's range");
  return t;
}

template <typename Rep>
inline Timespan timestamp_to_proto(Rep ticks, std::int64_t num, std::int64_t den,
                                   const char* message, const char* field) {
  Timespan t;
  bool ok;
  if constexpr (std::is_floating_point_v<Rep>) {
    ok = ticks_to_timestamp(static_cast<double>(ticks), num, den, &t);
  } else if constexpr (std::is_signed_v<Rep>) {
    ok = ticks_to_timestamp(static_cast<std::int64_t>(ticks), num, den, &t);
  } else {
    ok = ticks_to_timestamp(static_cast<std::uint64_t>(ticks), num, den, &t);
  }
  if (!ok) fail_encode(message, field, "time point outside google.protobuf.Timestamp's range");
  return t;
}

template <typename Rep>
inline Rep proto_to_ticks(const Timespan& t, std::int64_t num, std::int64_t den,
                          const char* message, const char* field) {
  std::string why;
  if constexpr (std::is_floating_point_v<Rep>) {
    double v;
    if (!timespan_to_ticks(t, num, den, &v, &why)) fail(message, field, why);
    // Rounding to Rep is to nearest, so one step back toward zero undoes a
    // carry into the next whole second; a few bound the loop.
    auto r = static_cast<Rep>(v);
    for (int i = 0; i < 4 && rounds_past_whole_seconds(static_cast<double>(r), num, den, t); ++i) {
      r = std::nextafter(r, Rep{0});
    }
    return r;
  } else if constexpr (std::is_signed_v<Rep>) {
    std::int64_t v;
    if (!timespan_to_ticks(t, num, den, std::numeric_limits<Rep>::min(),
                           std::numeric_limits<Rep>::max(), &v, &why)) {
      fail(message, field, why);
    }
    return static_cast<Rep>(v);
  } else {
    std::uint64_t v;
    if (!timespan_to_ticks(t, num, den, std::numeric_limits<Rep>::max(), &v, &why)) {
      fail(message, field, why);
    }
    return static_cast<Rep>(v);
  }
}

// The size of a Duration/Timestamp message body, and its writer.
inline std::size_t timespan_size(const Timespan& t) {
  std::size_t n = 0;
  if (t.seconds != 0) n += 1 + varint_size(varint_bits(t.seconds));
  if (t.nanos != 0) n += 1 + varint_size(varint_bits(t.nanos));
  return n;
}
inline std::uint8_t* put_timespan(const Timespan& t, std::uint8_t* p) {
  if (t.seconds != 0) {
    *p++ = 0x08;
    p = put_varint(varint_bits(t.seconds), p);
  }
  if (t.nanos != 0) {
    *p++ = 0x10;
    p = put_varint(varint_bits(t.nanos), p);
  }
  return p;
}

// The two passes of an encoder: `size(cache)` measures, `write(cache, p)`
// prints into a string of exactly that size.
template <typename SizeFn, typename WriteFn>
inline std::string encode_message(SizeFn&& size, WriteFn&& write) {
  SizeCache cache;
  std::size_t n = size(cache);
  std::string out(n, '\0');
  auto* begin = reinterpret_cast<std::uint8_t*>(out.data());
  [[maybe_unused]] std::uint8_t* end = write(cache, begin);
  assert(end == begin + n && "size and write passes disagree");
  return out;
}

// Runs a message decoder over a whole buffer: the top-level limit makes
// "end of message" uniform at every depth.
template <typename F>
inline void decode_buffer(std::string_view bytes, const char* message, F&& read) {
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    fail(message, "", "message larger than 2 GiB");
  }
  Stream in(reinterpret_cast<const std::uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  in.SetRecursionLimit(kRecursionLimit);
  Stream::Limit limit = in.PushLimit(static_cast<int>(bytes.size()));
  read(in);
  in.PopLimit(limit);
}

// ---- whole messages, out of line ----
// A generated message's passes, over its address. Generated encode(),
// decode() and encode_request() hand them to the functions below, so that
// each message's code is one call, not its own copy of the buffer handling,
// the stream setup and the error plumbing (which made a header with many
// functions slow to compile). Costs one indirect call per pass per message.
using SizePass = std::size_t (*)(const void* value, SizeCache& cache);
using WritePass = std::uint8_t* (*)(const void* value, SizeCache& cache, std::uint8_t* out);
using ReadPass = void (*)(Stream& in, void* value);

// encode_message() over the passes: measures, allocates once, writes.
// Throws what the passes throw: dispatch::Error (out_of_range) for a value
// proto cannot carry.
std::string encode_erased(const void* value, SizePass size, WritePass write);
// The same, with that error as a value.
Result<std::string> try_encode_erased(const void* value, SizePass size, WritePass write);
// decode_buffer() over `read`: malformed input is the invalid_argument error
// the reader throws, as a value. Does not reset *value first.
Result<void> decode_erased(std::string_view bytes, const char* message, ReadPass read, void* value);

// ---- a whole CloudEvent as a field ----
// A `dispatch::CloudEvent` parameter or result of an event function travels
// as a `bytes` field holding the CloudEvents protobuf format
// (dispatch/wire/cloud_event.h); generated codecs size, write and read it
// with these. Defined in cloud_event.cc.
std::size_t cloud_event_size(const CloudEvent& event);
// Writes cloud_event_size(event) bytes at p; returns the end.
std::uint8_t* put_cloud_event(const CloudEvent& event, std::uint8_t* p);
// Reads the field's bytes (its tag is read) as an event; bytes that are not
// one fail as any malformed field does.
void read_cloud_event(Stream& in, CloudEvent* event, const char* message, const char* field);

}  // namespace dispatch::wire
