// libFuzzer target: the wire layer's decoding primitives (dispatch/wire/wire_io.h)
// under a hand-written decoder shaped like generated code: every scalar kind,
// strings (UTF-8 checked), bytes, packed and unpacked repeated integers,
// Duration/Timestamp converted to std::chrono ticks, recursive messages and
// unknown fields. Bad bytes must end in dispatch::Error(invalid_argument),
// never a crash; what decodes must round-trip: decode -> encode -> decode
// gives the same value, and encoding that value again gives the same bytes.
//
// Not for: the generated decoders themselves (fuzz_decoders does those once
// dispatch_generate() is available); this pins the primitives they share.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/error.h"
#include "dispatch/wire/wire_io.h"

namespace {

namespace w = dispatch::wire;

// message Sample {
//   int32 i32 = 1; uint64 u64 = 2; bool flag = 3; double d = 4; float f = 5;
//   string text = 6; bytes blob = 7; repeated sint64 packed = 8 [packed];
//   google.protobuf.Duration dur = 9 (as milliseconds);
//   google.protobuf.Timestamp ts = 10 (as microseconds since the epoch);
//   repeated Sample children = 11;
// }
struct Sample {
  std::int32_t i32 = 0;
  std::uint64_t u64 = 0;
  bool flag = false;
  double d = 0;
  float f = 0;
  std::string text;
  std::vector<std::uint8_t> blob;
  std::vector<std::int64_t> packed;
  std::int64_t dur_ms = 0;
  std::int64_t ts_us = 0;
  std::vector<Sample> children;
};

bool same(const Sample& a, const Sample& b) {
  // Floating point compares by bits: NaN payloads and -0.0 must survive.
  if (std::memcmp(&a.d, &b.d, sizeof a.d) != 0 || std::memcmp(&a.f, &b.f, sizeof a.f) != 0) return false;
  if (a.i32 != b.i32 || a.u64 != b.u64 || a.flag != b.flag || a.text != b.text || a.blob != b.blob ||
      a.packed != b.packed || a.dur_ms != b.dur_ms || a.ts_us != b.ts_us ||
      a.children.size() != b.children.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.children.size(); ++i) {
    if (!same(a.children[i], b.children[i])) return false;
  }
  return true;
}

constexpr const char* kName = "fuzz.Sample";

std::int64_t zigzag_decode(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}
std::uint64_t zigzag_encode(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

void read_sample(w::Stream& in, Sample* out) {
  while (std::uint32_t tag = w::next_tag(in, kName)) {
    switch (tag >> 3) {
      case 1:
        w::expect(tag, w::kVarint, kName, "i32");
        out->i32 = w::read_int<std::int32_t>(in, kName, "i32", "int32");
        break;
      case 2:
        w::expect(tag, w::kVarint, kName, "u64");
        out->u64 = w::read_int<std::uint64_t>(in, kName, "u64", "uint64");
        break;
      case 3:
        w::expect(tag, w::kVarint, kName, "flag");
        out->flag = w::read_bool(in, kName, "flag");
        break;
      case 4:
        w::expect(tag, w::kFixed64, kName, "d");
        out->d = w::read_double(in, kName, "d");
        break;
      case 5:
        w::expect(tag, w::kFixed32, kName, "f");
        out->f = w::read_float(in, kName, "f");
        break;
      case 6:
        w::expect(tag, w::kLen, kName, "text");
        w::read_string(in, &out->text, kName, "text");
        break;
      case 7:
        w::expect(tag, w::kLen, kName, "blob");
        w::read_bytes(in, &out->blob, kName, "blob");
        break;
      case 8:
        if ((tag & 7) == w::kLen) {
          auto limit = w::enter_packed(in, kName, "packed");
          while (w::more(in)) out->packed.push_back(zigzag_decode(w::read_varint(in, kName, "packed")));
          w::leave_packed(in, limit);
        } else {
          w::expect(tag, w::kVarint, kName, "packed");
          out->packed.push_back(zigzag_decode(w::read_varint(in, kName, "packed")));
        }
        break;
      case 9:
        w::expect(tag, w::kLen, kName, "dur");
        out->dur_ms = w::proto_to_ticks<std::int64_t>(w::read_timespan(in, kName, "dur", false), 1, 1000,
                                                      kName, "dur");
        break;
      case 10:
        w::expect(tag, w::kLen, kName, "ts");
        out->ts_us = w::proto_to_ticks<std::int64_t>(w::read_timespan(in, kName, "ts", true), 1, 1'000'000,
                                                     kName, "ts");
        break;
      case 11: {
        w::expect(tag, w::kLen, kName, "children");
        auto limit = w::enter(in, kName, "children");
        read_sample(in, &out->children.emplace_back());
        w::leave(in, limit);
        break;
      }
      default:
        w::skip(in, tag, kName);
    }
  }
}

Sample decode(std::string_view bytes) {
  Sample s;
  w::decode_buffer(bytes, kName, [&](w::Stream& in) { read_sample(in, &s); });
  return s;
}

std::size_t packed_body(const Sample& s) {
  std::size_t n = 0;
  for (auto v : s.packed) n += w::varint_size(zigzag_encode(v));
  return n;
}

std::size_t size_of(const Sample& s, w::SizeCache& cache) {
  std::size_t n = 0;
  if (s.i32 != 0) n += 1 + w::varint_size(w::varint_bits(s.i32));
  if (s.u64 != 0) n += 1 + w::varint_size(s.u64);
  if (s.flag) n += 2;
  if (!w::is_default(s.d)) n += 9;
  if (!w::is_default(s.f)) n += 5;
  if (!s.text.empty()) n += 1 + w::len_size(s.text.size());
  if (!s.blob.empty()) n += 1 + w::len_size(s.blob.size());
  if (!s.packed.empty()) n += 1 + w::len_size(packed_body(s));
  if (s.dur_ms != 0) n += 1 + w::len_size(w::timespan_size(w::duration_to_proto(s.dur_ms, 1, 1000, kName, "dur")));
  if (s.ts_us != 0) {
    n += 1 + w::len_size(w::timespan_size(w::timestamp_to_proto(s.ts_us, 1, 1'000'000, kName, "ts")));
  }
  for (const Sample& c : s.children) {
    const std::size_t slot = cache.reserve();
    const std::size_t child = size_of(c, cache);
    cache.set(slot, child);
    n += 1 + w::len_size(child);
  }
  return n;
}

std::uint8_t* write(const Sample& s, w::SizeCache& cache, std::uint8_t* p) {
  if (s.i32 != 0) { *p++ = 0x08; p = w::put_varint(w::varint_bits(s.i32), p); }
  if (s.u64 != 0) { *p++ = 0x10; p = w::put_varint(s.u64, p); }
  if (s.flag) { *p++ = 0x18; *p++ = 1; }
  if (!w::is_default(s.d)) { *p++ = 0x21; p = w::put_double(s.d, p); }
  if (!w::is_default(s.f)) { *p++ = 0x2d; p = w::put_float(s.f, p); }
  if (!s.text.empty()) { *p++ = 0x32; p = w::put_len(s.text.size(), p); p = w::put_raw(s.text.data(), s.text.size(), p); }
  if (!s.blob.empty()) { *p++ = 0x3a; p = w::put_len(s.blob.size(), p); p = w::put_raw(s.blob.data(), s.blob.size(), p); }
  if (!s.packed.empty()) {
    *p++ = 0x42;
    p = w::put_len(packed_body(s), p);
    for (auto v : s.packed) p = w::put_varint(zigzag_encode(v), p);
  }
  if (s.dur_ms != 0) {
    const auto t = w::duration_to_proto(s.dur_ms, 1, 1000, kName, "dur");
    *p++ = 0x4a; p = w::put_len(w::timespan_size(t), p); p = w::put_timespan(t, p);
  }
  if (s.ts_us != 0) {
    const auto t = w::timestamp_to_proto(s.ts_us, 1, 1'000'000, kName, "ts");
    *p++ = 0x52; p = w::put_len(w::timespan_size(t), p); p = w::put_timespan(t, p);
  }
  for (const Sample& c : s.children) {
    *p++ = 0x5a;
    p = w::put_len(cache.next(), p);
    p = write(c, cache, p);
  }
  return p;
}

std::string encode(const Sample& s) {
  return w::encode_message([&](w::SizeCache& cache) { return size_of(s, cache); },
                           [&](w::SizeCache& cache, std::uint8_t* p) { return write(s, cache, p); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Sample first;
  try {
    first = decode(bytes);
  } catch (const dispatch::Error& e) {
    // The one documented failure: invalid_argument naming what was wrong.
    if (e.code() != dispatch::Code::invalid_argument || e.message().empty()) std::abort();
    return 0;
  }
  // A value that decoded is representable: encoding it must not fail, and
  // what it encodes to must decode to the same value and re-encode the same.
  const std::string encoded = encode(first);
  const Sample second = decode(encoded);
  if (!same(first, second)) std::abort();
  if (encode(second) != encoded) std::abort();
  return 0;
}
