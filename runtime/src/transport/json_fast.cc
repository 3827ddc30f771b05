// The fast path of connect::JsonCodec (see json_fast.h for what it covers
// and what it declines). Every choice here copies what protobuf 3.21's
// JSON utilities do; json_fast_test.cc and tests/fuzz/fuzz_json_fast.cc
// hold it to that, differentially.
//
// Not for: error messages (declined input goes to protobuf, which words them).
#include "transport/json_fast.h"

#include "dispatch/wire/wire.h"
#include "security/base64.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/stubs/strutil.h>
#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

namespace dispatch::connect::detail {
namespace {

namespace pb = google::protobuf;

// Deeper JSON or wire nesting is declined (protobuf has limits of its own).
constexpr int kMaxDepth = 32;

enum class Kind : std::uint8_t {
  kInt32, kInt64, kUint32, kUint64, kSint32, kSint64, kFixed32, kFixed64, kSfixed32, kSfixed64,
  kBool, kFloat, kDouble, kString, kBytes, kEnum, kMessage,
};

enum WireType : std::uint32_t { kVarint = 0, kI64 = 1, kLen = 2, kI32 = 5 };

WireType wire_type_of(Kind kind) {
  switch (kind) {
    case Kind::kFixed64: case Kind::kSfixed64: case Kind::kDouble: return kI64;
    case Kind::kFixed32: case Kind::kSfixed32: case Kind::kFloat: return kI32;
    case Kind::kString: case Kind::kBytes: case Kind::kMessage: return kLen;
    default: return kVarint;
  }
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::string tag_bytes(std::uint32_t number, WireType wt) {
  std::string out;
  put_varint(out, (static_cast<std::uint64_t>(number) << 3) | wt);
  return out;
}

struct EnumPlan {
  std::vector<std::pair<std::int32_t, std::string>> values;  // declaration order
  std::map<std::string, std::int32_t, std::less<>> by_name;
};

}  // namespace

struct FieldPlan {
  std::string name;
  std::string json_name;
  std::string key;  // "jsonName": as printed
  std::uint32_t number = 0;
  Kind kind = Kind::kInt32;
  bool repeated = false;
  bool packable = false;  // packed on the wire when written (proto3 default)
  bool map = false;
  int oneof = -1;  // index of the containing oneof, synthetic ones too
  std::string tag;         // the element's own wire type
  std::string packed_tag;  // length-delimited, for packable fields
  const MessagePlan* message = nullptr;  // message fields; the entry of a map
  std::shared_ptr<const EnumPlan> enumeration;
};

struct MessagePlan {
  bool usable = true;
  std::vector<FieldPlan> fields;  // declaration order
  int oneof_count = 0;
  std::unordered_map<std::uint32_t, int> by_number;
  std::unordered_map<std::string_view, int> by_name;  // both JSON names; views into fields
  const FieldPlan* map_key = nullptr;  // map entries only
  const FieldPlan* map_value = nullptr;

  const FieldPlan* field(std::uint32_t number) const {
    auto it = by_number.find(number);
    return it == by_number.end() ? nullptr : &fields[static_cast<std::size_t>(it->second)];
  }
};

namespace {

Kind kind_of(const pb::FieldDescriptor& f) {
  switch (f.type()) {
    case pb::FieldDescriptor::TYPE_INT32: return Kind::kInt32;
    case pb::FieldDescriptor::TYPE_INT64: return Kind::kInt64;
    case pb::FieldDescriptor::TYPE_UINT32: return Kind::kUint32;
    case pb::FieldDescriptor::TYPE_UINT64: return Kind::kUint64;
    case pb::FieldDescriptor::TYPE_SINT32: return Kind::kSint32;
    case pb::FieldDescriptor::TYPE_SINT64: return Kind::kSint64;
    case pb::FieldDescriptor::TYPE_FIXED32: return Kind::kFixed32;
    case pb::FieldDescriptor::TYPE_FIXED64: return Kind::kFixed64;
    case pb::FieldDescriptor::TYPE_SFIXED32: return Kind::kSfixed32;
    case pb::FieldDescriptor::TYPE_SFIXED64: return Kind::kSfixed64;
    case pb::FieldDescriptor::TYPE_BOOL: return Kind::kBool;
    case pb::FieldDescriptor::TYPE_FLOAT: return Kind::kFloat;
    case pb::FieldDescriptor::TYPE_DOUBLE: return Kind::kDouble;
    case pb::FieldDescriptor::TYPE_STRING: return Kind::kString;
    case pb::FieldDescriptor::TYPE_BYTES: return Kind::kBytes;
    case pb::FieldDescriptor::TYPE_ENUM: return Kind::kEnum;
    default: return Kind::kMessage;  // groups are refused before this
  }
}

void collect(const pb::Descriptor& d, std::vector<const pb::Descriptor*>& all) {
  all.push_back(&d);
  for (int i = 0; i < d.nested_type_count(); ++i) collect(*d.nested_type(i), all);
}

// ---- JSON text, as protobuf's JsonObjectWriter writes it ----

constexpr char kHex[] = "0123456789abcdef";

void put_u_escape(std::string& out, std::uint32_t unit) {
  const char e[6] = {'\\', 'u', kHex[(unit >> 12) & 0xf], kHex[(unit >> 8) & 0xf], kHex[(unit >> 4) & 0xf],
                     kHex[unit & 0xf]};
  out.append(e, 6);
}

// Code points protobuf's JSON escaping writes as \u escapes beyond ASCII:
// the C1 controls and the invisible or direction-changing ones.
bool escaped_beyond_ascii(std::uint32_t cp) {
  if (cp < 0xa0) return true;
  switch (cp) {
    case 0xad: case 0x6dd: case 0x70f: case 0x17b4: case 0x17b5:
    case 0xfeff: case 0xfff9: case 0xfffa: case 0xfffb:
      return true;
    default:
      break;
  }
  return (cp >= 0x600 && cp <= 0x603) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206a && cp <= 0x206f) || cp == 0xe0001 ||
         (cp >= 0x1d173 && cp <= 0x1d17a) || (cp >= 0xe0020 && cp <= 0xe007f);
}

// `s` is valid UTF-8 (checked by the caller).
void put_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* plain = p;  // start of the run copied as it is
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != 0x7f) {
        ++p;
        continue;
      }
      out.append(reinterpret_cast<const char*>(plain), static_cast<std::size_t>(p - plain));
      switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\b': out.append("\\b"); break;
        case '\t': out.append("\\t"); break;
        case '\n': out.append("\\n"); break;
        case '\f': out.append("\\f"); break;
        case '\r': out.append("\\r"); break;
        default: put_u_escape(out, c); break;
      }
      plain = ++p;
      continue;
    }
    std::uint32_t cp;
    int n;
    if (c < 0xe0) {
      cp = c & 0x1fu;
      n = 2;
    } else if (c < 0xf0) {
      cp = c & 0x0fu;
      n = 3;
    } else {
      cp = c & 0x07u;
      n = 4;
    }
    for (int i = 1; i < n; ++i) cp = (cp << 6) | (p[i] & 0x3fu);
    if (escaped_beyond_ascii(cp)) {
      out.append(reinterpret_cast<const char*>(plain), static_cast<std::size_t>(p - plain));
      if (cp >= 0x10000) {
        put_u_escape(out, 0xd800 + ((cp - 0x10000) >> 10));
        put_u_escape(out, 0xdc00 + ((cp - 0x10000) & 0x3ff));
      } else {
        put_u_escape(out, cp);
      }
      p += n;
      plain = p;
    } else {
      p += n;
    }
  }
  out.append(reinterpret_cast<const char*>(plain), static_cast<std::size_t>(p - plain));
  out.push_back('"');
}

template <typename T>
void put_int(std::string& out, T v) {
  char buffer[24];
  auto r = std::to_chars(buffer, buffer + sizeof buffer, v);
  out.append(buffer, r.ptr);
}

template <typename T>
void put_quoted_int(std::string& out, T v) {
  out.push_back('"');
  put_int(out, v);
  out.push_back('"');
}

void put_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("\"NaN\"");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buffer[pb::kDoubleToBufferSize];
    out.append(pb::DoubleToBuffer(v, buffer));
  }
}

void put_float(std::string& out, float v) {
  if (std::isnan(v)) {
    out.append("\"NaN\"");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buffer[pb::kFloatToBufferSize];
    out.append(pb::FloatToBuffer(v, buffer));
  }
}

// ---- wire bytes -> JSON ----

struct Reader {
  const char* p;
  const char* end;

  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p == end) return false;
      const auto b = static_cast<unsigned char>(*p++);
      if (shift == 63 && b > 1) return false;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return true;
    }
    return false;
  }
  bool fixed32(std::uint32_t& v) {
    if (end - p < 4) return false;
    std::memcpy(&v, p, 4);
    p += 4;
    return true;
  }
  bool fixed64(std::uint64_t& v) {
    if (end - p < 8) return false;
    std::memcpy(&v, p, 8);
    p += 8;
    return true;
  }
  bool len(std::string_view& s) {
    std::uint64_t n;
    if (!varint(n) || n > static_cast<std::uint64_t>(end - p)) return false;
    s = std::string_view(p, static_cast<std::size_t>(n));
    p += n;
    return true;
  }
  // A tag: field number >= 1, a wire type protobuf's JSON printer reads.
  bool tag(std::uint32_t& t) {
    std::uint64_t v;
    if (!varint(v) || v > 0xffffffffu || (v >> 3) == 0) return false;
    t = static_cast<std::uint32_t>(v);
    return true;
  }
  bool skip(std::uint32_t wt) {
    std::uint64_t v;
    std::uint32_t w;
    std::string_view s;
    switch (wt) {
      case kVarint: return varint(v);
      case kI64: return fixed64(v);
      case kI32: return fixed32(w);
      case kLen: return len(s);
      default: return false;
    }
  }
};

// The field for `tag` in `plan` and whether it is a packed run, or null
// when protobuf's printer would skip it as unknown (declined).
const FieldPlan* field_for_tag(const MessagePlan& plan, std::uint32_t tag, bool& packed) {
  const FieldPlan* f = plan.field(tag >> 3);
  if (f == nullptr) return nullptr;
  const std::uint32_t wt = tag & 7;
  packed = false;
  if (f->map) return wt == kLen ? f : nullptr;
  if (wt == wire_type_of(f->kind)) return f;
  if (f->repeated && f->packable && wt == kLen) {
    packed = true;
    return f;
  }
  return nullptr;
}

class Printer {
 public:
  Printer(bool defaults, std::string& out) : defaults_(defaults), out_(out) {}

  bool message(const MessagePlan& plan, std::string_view bytes, int depth) {
    if (depth > kMaxDepth) return false;
    return defaults_ ? message_with_defaults(plan, bytes, depth) : message_as_is(plan, bytes, depth);
  }

 private:
  // Fields in wire order, each run of a field once (protobuf's printer
  // writes a key per run; a field in two runs is declined).
  bool message_as_is(const MessagePlan& plan, std::string_view bytes, int depth) {
    Reader r{bytes.data(), bytes.data() + bytes.size()};
    std::vector<bool> done(plan.fields.size());
    out_.push_back('{');
    bool first = true;
    while (r.p < r.end) {
      std::uint32_t tag;
      bool packed;
      if (!r.tag(tag)) return false;
      const FieldPlan* f = field_for_tag(plan, tag, packed);
      if (f == nullptr) return false;
      const auto index = static_cast<std::size_t>(f - plan.fields.data());
      if (done[index]) return false;
      done[index] = true;
      if (!first) out_.push_back(',');
      first = false;
      if (!run(*f, tag, packed, r, depth)) return false;
    }
    out_.push_back('}');
    return true;
  }

  // protobuf's DefaultValueObjectWriter: every field in declaration order,
  // absent scalars at their default, absent lists [] and maps {}, absent
  // messages left out; scalar members of a oneof (proto3 optional ones too)
  // only when present, after the rest, in wire order.
  bool message_with_defaults(const MessagePlan& plan, std::string_view bytes, int depth) {
    std::vector<const char*> starts(plan.fields.size(), nullptr);  // a run's first tag
    Reader r{bytes.data(), bytes.data() + bytes.size()};
    std::uint32_t last_tag = 0;
    const FieldPlan* last = nullptr;
    while (r.p < r.end) {
      const char* at = r.p;
      std::uint32_t tag;
      bool packed;
      if (!r.tag(tag)) return false;
      const FieldPlan* f = field_for_tag(plan, tag, packed);
      if (f == nullptr) return false;
      if (f == last) {
        // One run: repeated unpacked elements under the same tag.
        if (tag != last_tag || packed || !f->repeated) return false;
      } else {
        const auto index = static_cast<std::size_t>(f - plan.fields.data());
        if (starts[index] != nullptr) return false;
        starts[index] = at;
      }
      last = f;
      last_tag = tag;
      if (!r.skip(tag & 7)) return false;
    }
    out_.push_back('{');
    bool first = true;
    auto comma = [&] {
      if (!first) out_.push_back(',');
      first = false;
    };
    std::vector<std::size_t> late;
    for (std::size_t i = 0; i < plan.fields.size(); ++i) {
      const FieldPlan& f = plan.fields[i];
      if (f.oneof >= 0 && f.kind != Kind::kMessage) {
        if (starts[i] != nullptr) late.push_back(i);
        continue;
      }
      if (starts[i] != nullptr) {
        comma();
        if (!run_at(plan, starts[i], bytes, depth)) return false;
        continue;
      }
      if (f.kind == Kind::kMessage && !f.map && !f.repeated) continue;
      comma();
      out_.append(f.key);
      if (f.map) {
        out_.append("{}");
      } else if (f.repeated) {
        out_.append("[]");
      } else {
        put_default(f);
      }
    }
    std::sort(late.begin(), late.end(), [&](std::size_t a, std::size_t b) { return starts[a] < starts[b]; });
    for (std::size_t i : late) {
      comma();
      if (!run_at(plan, starts[i], bytes, depth)) return false;
    }
    out_.push_back('}');
    return true;
  }

  bool run_at(const MessagePlan& plan, const char* at, std::string_view bytes, int depth) {
    Reader r{at, bytes.data() + bytes.size()};
    std::uint32_t tag;
    bool packed;
    if (!r.tag(tag)) return false;
    const FieldPlan* f = field_for_tag(plan, tag, packed);
    return f != nullptr && run(*f, tag, packed, r, depth);
  }

  void put_default(const FieldPlan& f) {
    switch (f.kind) {
      case Kind::kInt64: case Kind::kUint64: case Kind::kSint64: case Kind::kFixed64: case Kind::kSfixed64:
        out_.append("\"0\"");
        break;
      case Kind::kBool: out_.append("false"); break;
      case Kind::kString: case Kind::kBytes: out_.append("\"\""); break;
      case Kind::kEnum: put_json_string(out_, f.enumeration->values.front().second); break;
      default: out_.push_back('0'); break;
    }
  }

  // Peeks: is the next tag `tag`? Consumes it if so.
  static bool next_is(Reader& r, std::uint32_t tag) {
    Reader peek = r;
    std::uint32_t next;
    if (r.p == r.end || !peek.tag(next) || next != tag) return false;
    r = peek;
    return true;
  }

  // The key and the value(s) of one run; `r` is just past its first tag.
  bool run(const FieldPlan& f, std::uint32_t tag, bool packed, Reader& r, int depth) {
    out_.append(f.key);
    if (f.map) {
      out_.push_back('{');
      bool first = true;
      do {
        std::string_view entry;
        if (!r.len(entry)) return false;
        if (!first) out_.push_back(',');
        first = false;
        if (!map_entry(*f.message, entry, depth)) return false;
      } while (next_is(r, tag));
      out_.push_back('}');
      return true;
    }
    if (!f.repeated) return value(f, r, depth);
    out_.push_back('[');
    if (packed) {
      std::string_view chunk;
      if (!r.len(chunk)) return false;
      Reader c{chunk.data(), chunk.data() + chunk.size()};
      bool first = true;
      while (c.p < c.end) {
        if (!first) out_.push_back(',');
        first = false;
        if (!value(f, c, depth)) return false;
      }
    } else {
      bool first = true;
      do {
        if (!first) out_.push_back(',');
        first = false;
        if (!value(f, r, depth)) return false;
      } while (next_is(r, tag));
    }
    out_.push_back(']');
    return true;
  }

  // A map entry as `"key":value`: the key's tag, then the value's, nothing else.
  bool map_entry(const MessagePlan& entry, std::string_view bytes, int depth) {
    Reader r{bytes.data(), bytes.data() + bytes.size()};
    std::uint32_t tag;
    bool packed;
    if (!r.tag(tag) || field_for_tag(entry, tag, packed) != entry.map_key) return false;
    const std::size_t at = out_.size();
    if (!value(*entry.map_key, r, depth)) return false;
    // The key as printed: quote strings and numbers alike.
    if (out_[at] != '"') {
      out_.insert(at, 1, '"');
      out_.push_back('"');
    }
    out_.push_back(':');
    if (!r.tag(tag) || field_for_tag(entry, tag, packed) != entry.map_value) return false;
    if (!value(*entry.map_value, r, depth)) return false;
    return r.p == r.end;
  }

  bool value(const FieldPlan& f, Reader& r, int depth) {
    std::uint64_t v;
    std::uint32_t w;
    std::string_view s;
    switch (f.kind) {
      case Kind::kInt32: case Kind::kEnum: {
        if (!r.varint(v)) return false;
        const auto i = static_cast<std::int64_t>(v);
        if (i < std::numeric_limits<std::int32_t>::min() || i > std::numeric_limits<std::int32_t>::max()) return false;
        const auto n = static_cast<std::int32_t>(i);
        if (f.kind == Kind::kEnum) {
          for (const auto& [number, name] : f.enumeration->values) {
            if (number == n) {
              put_json_string(out_, name);
              return true;
            }
          }
        }
        put_int(out_, n);
        return true;
      }
      case Kind::kInt64:
        if (!r.varint(v)) return false;
        put_quoted_int(out_, static_cast<std::int64_t>(v));
        return true;
      case Kind::kUint32:
        if (!r.varint(v) || v > 0xffffffffu) return false;
        put_int(out_, v);
        return true;
      case Kind::kUint64:
        if (!r.varint(v)) return false;
        put_quoted_int(out_, v);
        return true;
      case Kind::kSint32: {
        if (!r.varint(v) || v > 0xffffffffu) return false;
        const auto u = static_cast<std::uint32_t>(v);
        put_int(out_, static_cast<std::int32_t>((u >> 1) ^ (~(u & 1) + 1)));
        return true;
      }
      case Kind::kSint64:
        if (!r.varint(v)) return false;
        put_quoted_int(out_, static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1)));
        return true;
      case Kind::kFixed32:
        if (!r.fixed32(w)) return false;
        put_int(out_, w);
        return true;
      case Kind::kSfixed32:
        if (!r.fixed32(w)) return false;
        put_int(out_, static_cast<std::int32_t>(w));
        return true;
      case Kind::kFixed64:
        if (!r.fixed64(v)) return false;
        put_quoted_int(out_, v);
        return true;
      case Kind::kSfixed64:
        if (!r.fixed64(v)) return false;
        put_quoted_int(out_, static_cast<std::int64_t>(v));
        return true;
      case Kind::kBool:
        if (!r.varint(v) || v > 1) return false;
        out_.append(v ? "true" : "false");
        return true;
      case Kind::kFloat:
        if (!r.fixed32(w)) return false;
        put_float(out_, std::bit_cast<float>(w));
        return true;
      case Kind::kDouble:
        if (!r.fixed64(v)) return false;
        put_double(out_, std::bit_cast<double>(v));
        return true;
      case Kind::kString:
        if (!r.len(s) || !wire::is_valid_utf8(s)) return false;
        put_json_string(out_, s);
        return true;
      case Kind::kBytes: {
        if (!r.len(s)) return false;
        std::string encoded;
        pb::Base64Escape(pb::StringPiece(s.data(), s.size()), &encoded);
        out_.push_back('"');
        out_.append(encoded);
        out_.push_back('"');
        return true;
      }
      case Kind::kMessage:
        return r.len(s) && message(*f.message, s, depth + 1);
    }
    return false;
  }

  bool defaults_;
  std::string& out_;
};

// ---- JSON -> wire bytes ----

// A canonical decimal integer ("0", "-12"), as protobuf prints 64-bit ones.
template <typename T>
bool parse_canonical_int(std::string_view s, T& v) {
  if (s.empty() || s.size() > 20) return false;
  const std::size_t digits = s[0] == '-' ? 1 : 0;
  if (digits == s.size() || (s[digits] == '0' && s.size() > digits + 1)) return false;
  if (s == "-0") return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Wire bytes written as the JSON's values are visited in document order
// (walk() below). Each call answers false to decline: the visit stops.
class Writer {
 public:
  Writer(const MessagePlan& root, std::string& out) : root_(root), out_(out) {}
  bool finished() const { return finished_; }

  bool null_value() { return false; }
  bool boolean(bool b) { return scalar(Value{Value::kBool, b, 0, 0, 0, {}}); }
  bool int64(std::int64_t v) { return scalar(Value{Value::kInt, false, v, 0, 0, {}}); }
  bool uint64(std::uint64_t v) { return scalar(Value{Value::kUint, false, 0, v, 0, {}}); }
  // Out of range is refused by protobuf (and by simdjson); underflow and
  // subnormals come out correctly rounded, as strtod gives them.
  bool real(double v) {
    if (!std::isfinite(v)) return false;
    return scalar(Value{Value::kDouble, false, 0, 0, v, {}});
  }
  // Valid UTF-8 already: simdjson checks the whole input's UTF-8 before
  // the walk and refuses lone surrogate escapes (json_fast_test holds it to
  // both, as protobuf refuses them).
  bool string(std::string_view s) { return scalar(Value{Value::kString, false, 0, 0, 0, s}); }
  bool start_object() {
    if (finished_ || static_cast<int>(stack_.size()) >= kMaxDepth) return false;
    if (stack_.empty()) return push_message(root_, std::string::npos);
    Frame& top = stack_.back();
    if (top.type == Frame::kMessage) {
      const FieldPlan* f = take_pending();
      if (f == nullptr || f->kind != Kind::kMessage) return false;
      if (f->map) {
        stack_.emplace_back(Frame::kMap, nullptr, f, std::string::npos);
        return true;
      }
      if (f->repeated) return false;
      out_.append(f->tag);
      return push_message(*f->message, out_.size());
    }
    if (top.type == Frame::kList) {
      if (top.field->kind != Kind::kMessage) return false;
      out_.append(top.field->tag);
      return push_message(*top.field->message, out_.size());
    }
    // A map's message value: the entry, its key, then the value's tag.
    const FieldPlan& map = *top.field;
    if (!top.has_key || map.message->map_value->kind != Kind::kMessage) return false;
    top.has_key = false;
    out_.append(map.tag);
    const std::size_t entry_start = out_.size();
    if (!put_map_key(*map.message->map_key, top.key)) return false;
    stack_.emplace_back(Frame::kEntry, nullptr, &map, entry_start);
    out_.append(map.message->map_value->tag);
    return push_message(*map.message->map_value->message, out_.size());
  }

  bool key(std::string_view k) {
    Frame& top = stack_.back();
    if (top.type == Frame::kMap) {
      if (!top.keys.emplace(k).second) return false;  // duplicate key
      top.key = k;
      top.has_key = true;
      return true;
    }
    const MessagePlan& plan = *top.plan;
    auto it = plan.by_name.find(k);
    if (it == plan.by_name.end()) return false;
    const FieldPlan& f = plan.fields[static_cast<std::size_t>(it->second)];
    auto seen = seen_.begin() + static_cast<std::ptrdiff_t>(top.seen);
    if (seen[it->second]) return false;  // the same field twice, by either name
    seen[it->second] = true;
    if (f.oneof >= 0) {
      auto oneof_seen = seen + static_cast<std::ptrdiff_t>(plan.fields.size()) + f.oneof;
      if (*oneof_seen) return false;  // two members of one oneof
      *oneof_seen = true;
    }
    pending_ = &f;
    return true;
  }

  bool end_object() {
    Frame top = std::move(stack_.back());
    stack_.pop_back();
    if (top.type == Frame::kMap) return true;
    if (top.type != Frame::kMessage) return false;
    seen_.resize(top.seen);
    if (top.start != std::string::npos) close_length(top.start);
    if (!stack_.empty() && stack_.back().type == Frame::kEntry) {
      close_length(stack_.back().start);
      stack_.pop_back();
    }
    if (stack_.empty()) finished_ = true;
    return true;
  }

  bool start_array() {
    if (stack_.empty() || stack_.back().type != Frame::kMessage) return false;
    const FieldPlan* f = take_pending();
    if (f == nullptr || !f->repeated || f->map) return false;
    std::size_t start = std::string::npos;
    if (f->packable) {
      out_.append(f->packed_tag);
      start = out_.size();
    }
    stack_.emplace_back(Frame::kList, nullptr, f, start);
    return true;
  }

  bool end_array() {
    const Frame& top = stack_.back();
    if (top.start != std::string::npos) {
      if (out_.size() == top.start) {
        out_.resize(top.start - top.field->packed_tag.size());  // an empty list writes nothing
      } else {
        close_length(top.start);
      }
    }
    stack_.pop_back();
    return true;
  }

 private:
  struct Value {
    enum Type { kBool, kInt, kUint, kDouble, kString } type;
    bool b;
    std::int64_t i;
    std::uint64_t u;
    double d;
    std::string_view s;
  };

  struct Frame {
    enum Type { kMessage, kList, kMap, kEntry };
    Frame(Type t, const MessagePlan* p, const FieldPlan* f, std::size_t s, std::size_t flags = 0)
        : type(t), plan(p), field(f), start(s), seen(flags) {}
    Type type;
    const MessagePlan* plan;   // kMessage
    const FieldPlan* field;    // kList, kMap, kEntry
    std::size_t start;         // where the length-prefixed bytes begin; npos: none
    std::size_t seen;          // kMessage: offset of its flags in seen_
    std::string key;           // kMap: the pending key
    bool has_key = false;
    std::unordered_set<std::string> keys;
  };

  bool push_message(const MessagePlan& plan, std::size_t start) {
    if (!plan.usable) return false;
    stack_.emplace_back(Frame::kMessage, &plan, nullptr, start, seen_.size());
    seen_.resize(seen_.size() + plan.fields.size() + static_cast<std::size_t>(plan.oneof_count), false);
    return true;
  }

  const FieldPlan* take_pending() {
    const FieldPlan* f = pending_;
    pending_ = nullptr;
    return f;
  }

  void close_length(std::size_t start) {
    std::string length;
    put_varint(length, out_.size() - start);
    out_.insert(start, length);
  }

  bool scalar(const Value& v) {
    if (stack_.empty()) return false;
    Frame& top = stack_.back();
    if (top.type == Frame::kMessage) {
      const FieldPlan* f = take_pending();
      if (f == nullptr || f->repeated || f->kind == Kind::kMessage) return false;
      out_.append(f->tag);
      return put_value(*f, v);
    }
    if (top.type == Frame::kList) {
      const FieldPlan& f = *top.field;
      if (f.kind == Kind::kMessage) return false;
      if (!f.packable) out_.append(f.tag);
      return put_value(f, v);
    }
    if (top.type != Frame::kMap || !top.has_key) return false;
    top.has_key = false;
    const FieldPlan& map = *top.field;
    const FieldPlan& value = *map.message->map_value;
    if (value.kind == Kind::kMessage) return false;
    out_.append(map.tag);
    const std::size_t start = out_.size();
    if (!put_map_key(*map.message->map_key, top.key)) return false;
    out_.append(value.tag);
    if (!put_value(value, v)) return false;
    close_length(start);
    return true;
  }

  bool put_map_key(const FieldPlan& key, const std::string& text) {
    out_.append(key.tag);
    switch (key.kind) {
      case Kind::kString:
        put_varint(out_, text.size());
        out_.append(text);
        return true;
      case Kind::kBool:
        if (text != "true" && text != "false") return false;
        out_.push_back(text == "true" ? 1 : 0);
        return true;
      case Kind::kUint32: case Kind::kFixed32: case Kind::kUint64: case Kind::kFixed64: {
        std::uint64_t u;
        if (!parse_canonical_int(text, u)) return false;
        return put_value(key, Value{Value::kUint, false, 0, u, 0, {}});
      }
      default: {
        std::int64_t i;
        if (!parse_canonical_int(text, i)) return false;
        return put_value(key, Value{Value::kInt, false, i, 0, 0, {}});
      }
    }
  }

  // The value's signed or unsigned integer, within [lo, hi].
  static bool integer(const Value& v, std::int64_t lo, std::uint64_t hi, std::int64_t& i, std::uint64_t& u) {
    if (v.type == Value::kInt) {
      if (v.i < lo || (v.i >= 0 && static_cast<std::uint64_t>(v.i) > hi)) return false;
      i = v.i;
      u = static_cast<std::uint64_t>(v.i);
      return true;
    }
    if (v.type == Value::kUint) {
      if (v.u > hi) return false;
      i = static_cast<std::int64_t>(v.u);
      u = v.u;
      return true;
    }
    return false;
  }

  bool put_value(const FieldPlan& f, const Value& v) {
    std::int64_t i = 0;
    std::uint64_t u = 0;
    constexpr auto kInt32Min = std::numeric_limits<std::int32_t>::min();
    constexpr std::uint64_t kInt32Max = std::numeric_limits<std::int32_t>::max();
    constexpr auto kInt64Min = std::numeric_limits<std::int64_t>::min();
    constexpr std::uint64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
    constexpr std::uint64_t kUint32Max = std::numeric_limits<std::uint32_t>::max();
    constexpr std::uint64_t kUint64Max = std::numeric_limits<std::uint64_t>::max();
    // 64-bit integers also come as canonical decimal strings (protobuf prints them so).
    Value from_string = v;
    if (v.type == Value::kString) {
      switch (f.kind) {
        case Kind::kInt64: case Kind::kSint64: case Kind::kSfixed64:
          if (!parse_canonical_int(v.s, from_string.i)) return false;
          from_string.type = Value::kInt;
          break;
        case Kind::kUint64: case Kind::kFixed64:
          if (!parse_canonical_int(v.s, from_string.u)) return false;
          from_string.type = Value::kUint;
          break;
        default:
          break;
      }
    }
    const Value& n = from_string;
    switch (f.kind) {
      case Kind::kInt32:
        if (!integer(n, kInt32Min, kInt32Max, i, u)) return false;
        put_varint(out_, static_cast<std::uint64_t>(i));
        return true;
      case Kind::kSint32: {
        if (!integer(n, kInt32Min, kInt32Max, i, u)) return false;
        const auto s = static_cast<std::int32_t>(i);
        put_varint(out_, (static_cast<std::uint32_t>(s) << 1) ^ static_cast<std::uint32_t>(s >> 31));
        return true;
      }
      case Kind::kSfixed32: {
        if (!integer(n, kInt32Min, kInt32Max, i, u)) return false;
        const auto w = static_cast<std::uint32_t>(static_cast<std::int32_t>(i));
        out_.append(reinterpret_cast<const char*>(&w), 4);
        return true;
      }
      case Kind::kUint32:
        if (!integer(n, 0, kUint32Max, i, u)) return false;
        put_varint(out_, u);
        return true;
      case Kind::kFixed32: {
        if (!integer(n, 0, kUint32Max, i, u)) return false;
        const auto w = static_cast<std::uint32_t>(u);
        out_.append(reinterpret_cast<const char*>(&w), 4);
        return true;
      }
      case Kind::kInt64:
        if (!integer(n, kInt64Min, kInt64Max, i, u)) return false;
        put_varint(out_, u);
        return true;
      case Kind::kSint64:
        if (!integer(n, kInt64Min, kInt64Max, i, u)) return false;
        put_varint(out_, (u << 1) ^ static_cast<std::uint64_t>(i >> 63));
        return true;
      case Kind::kSfixed64:
        if (!integer(n, kInt64Min, kInt64Max, i, u)) return false;
        out_.append(reinterpret_cast<const char*>(&u), 8);
        return true;
      case Kind::kUint64:
        if (!integer(n, 0, kUint64Max, i, u)) return false;
        put_varint(out_, u);
        return true;
      case Kind::kFixed64:
        if (!integer(n, 0, kUint64Max, i, u)) return false;
        out_.append(reinterpret_cast<const char*>(&u), 8);
        return true;
      case Kind::kBool:
        if (n.type != Value::kBool) return false;
        out_.push_back(n.b ? 1 : 0);
        return true;
      case Kind::kFloat: {
        float fl;
        if (!floating(n, fl)) return false;
        out_.append(reinterpret_cast<const char*>(&fl), 4);
        return true;
      }
      case Kind::kDouble: {
        double d;
        if (!floating(n, d)) return false;
        out_.append(reinterpret_cast<const char*>(&d), 8);
        return true;
      }
      case Kind::kString:
        if (n.type != Value::kString) return false;
        put_varint(out_, n.s.size());
        out_.append(n.s);
        return true;
      case Kind::kBytes: {
        // Canonical padded standard base64 only; anything else is protobuf's to judge.
        if (n.type != Value::kString || n.s.size() % 4 != 0) return false;
        auto decoded = security::detail::base64_decode(n.s);
        if (!decoded) return false;
        put_varint(out_, decoded->size());
        out_.append(*decoded);
        return true;
      }
      case Kind::kEnum: {
        // A number: any int32 (proto3 enums are open), as protobuf takes it.
        if (integer(n, kInt32Min, kInt32Max, i, u)) {
          put_varint(out_, static_cast<std::uint64_t>(i));
          return true;
        }
        if (n.type != Value::kString) return false;
        auto it = f.enumeration->by_name.find(n.s);
        if (it == f.enumeration->by_name.end()) return false;
        put_varint(out_, static_cast<std::uint64_t>(static_cast<std::int64_t>(it->second)));
        return true;
      }
      case Kind::kMessage:
        return false;
    }
    return false;
  }

  // A float or double field's value: a JSON number or "NaN"/"Infinity"/
  // "-Infinity". Integers convert straight to T (one rounding), as
  // protobuf's DataPiece does; a double beyond float's range is refused
  // there, so declined here.
  template <typename T>
  static bool floating(const Value& v, T& out) {
    switch (v.type) {
      case Value::kDouble:
        if constexpr (std::is_same_v<T, float>) {
          if (std::fabs(v.d) > std::numeric_limits<float>::max()) return false;
        }
        out = static_cast<T>(v.d);
        return true;
      case Value::kInt: out = static_cast<T>(v.i); return true;
      case Value::kUint: out = static_cast<T>(v.u); return true;
      case Value::kString:
        if (v.s == "NaN") {
          out = std::numeric_limits<T>::quiet_NaN();
        } else if (v.s == "Infinity") {
          out = std::numeric_limits<T>::infinity();
        } else if (v.s == "-Infinity") {
          out = -std::numeric_limits<T>::infinity();
        } else {
          return false;
        }
        return true;
      default:
        return false;
    }
  }

  const MessagePlan& root_;
  std::string& out_;
  std::vector<Frame> stack_;
  std::vector<bool> seen_;  // per open message: its fields', then its oneofs' flags
  const FieldPlan* pending_ = nullptr;
  bool finished_ = false;
};

// Visits a parsed document in document order, as a SAX parser would call
// its handler; false as soon as the writer declines (or a value does not
// read as its own type, which simdjson's DOM does not produce).
bool walk(const simdjson::dom::element& e, Writer& w) {
  using Type = simdjson::dom::element_type;
  switch (e.type()) {
    case Type::OBJECT: {
      simdjson::dom::object object;
      if (e.get_object().get(object) != simdjson::SUCCESS || !w.start_object()) return false;
      for (const simdjson::dom::key_value_pair field : object) {
        if (!w.key(field.key) || !walk(field.value, w)) return false;
      }
      return w.end_object();
    }
    case Type::ARRAY: {
      simdjson::dom::array array;
      if (e.get_array().get(array) != simdjson::SUCCESS || !w.start_array()) return false;
      for (const simdjson::dom::element item : array) {
        if (!walk(item, w)) return false;
      }
      return w.end_array();
    }
    case Type::STRING: {
      std::string_view s;
      return e.get_string().get(s) == simdjson::SUCCESS && w.string(s);
    }
    case Type::INT64: {
      std::int64_t v;
      return e.get_int64().get(v) == simdjson::SUCCESS && w.int64(v);
    }
    case Type::UINT64: {
      std::uint64_t v;
      return e.get_uint64().get(v) == simdjson::SUCCESS && w.uint64(v);
    }
    case Type::DOUBLE: {
      double v;
      return e.get_double().get(v) == simdjson::SUCCESS && w.real(v);
    }
    case Type::BOOL: {
      bool v;
      return e.get_bool().get(v) == simdjson::SUCCESS && w.boolean(v);
    }
    case Type::NULL_VALUE:
      return w.null_value();
  }
  return false;
}

// Input larger than this gets a parser of its own, freed after it: a
// thread's parser keeps the capacity of the largest input it has seen.
constexpr std::size_t kKeptParserBytes = 64 * 1024;

}  // namespace

JsonFast::JsonFast(const pb::FileDescriptor& file) {
  std::vector<const pb::Descriptor*> all;
  for (int i = 0; i < file.message_type_count(); ++i) collect(*file.message_type(i), all);
  for (const pb::Descriptor* d : all) plans_.emplace(d->full_name(), std::make_unique<MessagePlan>());
  std::map<const pb::EnumDescriptor*, std::shared_ptr<const EnumPlan>> enums;
  const bool proto3 = file.syntax() == pb::FileDescriptor::SYNTAX_PROTO3;
  for (const pb::Descriptor* d : all) {
    MessagePlan& plan = *plans_.find(d->full_name())->second;
    plan.usable = proto3 && d->extension_range_count() == 0;
    plan.oneof_count = d->oneof_decl_count();
    plan.fields.resize(static_cast<std::size_t>(d->field_count()));
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor& fd = *d->field(i);
      FieldPlan& f = plan.fields[static_cast<std::size_t>(i)];
      f.name = fd.name();
      f.json_name = fd.json_name();
      f.key = "\"" + f.json_name + "\":";
      f.number = static_cast<std::uint32_t>(fd.number());
      f.repeated = fd.is_repeated();
      f.map = fd.is_map();
      if (fd.type() == pb::FieldDescriptor::TYPE_GROUP) plan.usable = false;
      f.kind = kind_of(fd);
      f.packable = f.repeated && fd.is_packable() && fd.is_packed();
      if (fd.containing_oneof() != nullptr) f.oneof = fd.containing_oneof()->index();
      f.tag = tag_bytes(f.number, wire_type_of(f.kind));
      f.packed_tag = tag_bytes(f.number, kLen);
      if (f.kind == Kind::kMessage) {
        auto it = plans_.find(fd.message_type()->full_name());
        if (it == plans_.end()) {
          plan.usable = false;  // a well-known type: protobuf's own rendering
        } else {
          f.message = it->second.get();
        }
      }
      if (f.kind == Kind::kEnum) {
        const pb::EnumDescriptor* e = fd.enum_type();
        auto& cached = enums[e];
        if (!cached) {
          auto made = std::make_shared<EnumPlan>();
          for (int v = 0; v < e->value_count(); ++v) {
            made->values.emplace_back(e->value(v)->number(), e->value(v)->name());
            made->by_name.emplace(e->value(v)->name(), e->value(v)->number());
          }
          cached = std::move(made);
        }
        f.enumeration = cached;
        // google.protobuf.NullValue prints as null: protobuf's path.
        if (e->full_name() == "google.protobuf.NullValue" || e->value_count() == 0) plan.usable = false;
      }
      // Names outside [A-Za-z0-9_] would need escaping in keys.
      for (char c : f.json_name) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) plan.usable = false;
      }
    }
    for (std::size_t i = 0; i < plan.fields.size(); ++i) {
      const FieldPlan& f = plan.fields[i];
      plan.by_number.emplace(f.number, static_cast<int>(i));
      // A name that is another field's JSON name is protobuf's to resolve.
      auto a = plan.by_name.emplace(f.json_name, static_cast<int>(i));
      if (!a.second && a.first->second != static_cast<int>(i)) plan.usable = false;
      auto b = plan.by_name.emplace(f.name, static_cast<int>(i));
      if (!b.second && b.first->second != static_cast<int>(i)) plan.usable = false;
    }
    if (d->options().map_entry()) {
      plan.map_key = plan.field(1);
      plan.map_value = plan.field(2);
      if (plan.map_key == nullptr || plan.map_value == nullptr) plan.usable = false;
    }
  }
  // A type is usable only when every message it holds is.
  for (bool changed = true; changed;) {
    changed = false;
    for (auto& [name, plan] : plans_) {
      if (!plan->usable) continue;
      for (const FieldPlan& f : plan->fields) {
        if (f.message != nullptr && !f.message->usable) {
          plan->usable = false;
          changed = true;
          break;
        }
      }
    }
  }
}

JsonFast::~JsonFast() = default;

const MessagePlan* JsonFast::find(std::string_view type) const {
  auto it = plans_.find(type);
  if (it == plans_.end() || !it->second->usable) return nullptr;
  return it->second.get();
}

bool JsonFast::covers(std::string_view type) const { return find(type) != nullptr; }

std::optional<std::string> JsonFast::to_binary(std::string_view type, std::string_view json) const {
  const MessagePlan* plan = find(type);
  // A NUL byte is refused by protobuf; simdjson would refuse it too, but
  // the fast path never has to reason about it.
  if (plan == nullptr || json.find('\0') != std::string_view::npos) return std::nullopt;
  // One parser per thread: its buffers are kept between parses. simdjson
  // checks the whole input (strict JSON, UTF-8, one value) before the walk.
  thread_local simdjson::dom::parser kept;
  std::optional<simdjson::dom::parser> own;
  simdjson::dom::parser& parser = json.size() <= kKeptParserBytes ? kept : own.emplace();
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  std::string out;
  out.reserve(json.size());
  Writer writer(*plan, out);
  const bool ok = walk(doc, writer);
  if (!ok || !writer.finished()) return std::nullopt;
  return out;
}

std::optional<std::string> JsonFast::to_json(std::string_view type, std::string_view binary,
                                             bool print_defaults) const {
  const MessagePlan* plan = find(type);
  if (plan == nullptr) return std::nullopt;
  std::string out;
  out.reserve(binary.size() * 2 + 16);
  Printer printer(print_defaults, out);
  if (!printer.message(*plan, binary, 0)) return std::nullopt;
  return out;
}

}  // namespace dispatch::connect::detail
