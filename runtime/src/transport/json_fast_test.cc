// JsonFast against protobuf's own JSON utilities, differentially: random
// messages printed both ways must match byte for byte (or the fast path
// declines), random and reshaped JSON must parse to the same message (or
// the fast path declines), and whatever protobuf refuses the fast path
// declines. The counts printed show the fast path is taken on ordinary input.
#include "transport/json_check.h"
#include "transport/json_fast_test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>

namespace dispatch::connect {
namespace {

namespace pb = google::protobuf;
using testing::JsonFastRig;

class Random {
 public:
  explicit Random(std::uint64_t seed) : rng_(seed) {}
  std::uint64_t bits() { return rng_(); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int below(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }

  std::int64_t integer() {
    static const std::int64_t kEdges[] = {0, 1, -1, 127, 128, -128, 300, std::numeric_limits<std::int32_t>::max(),
                                          std::numeric_limits<std::int32_t>::min(),
                                          std::numeric_limits<std::int64_t>::max(),
                                          std::numeric_limits<std::int64_t>::min(), 1LL << 53, (1LL << 53) + 1};
    switch (below(3)) {
      case 0: return kEdges[below(sizeof kEdges / sizeof kEdges[0])];
      case 1: return below(1000) - 500;
      default: return static_cast<std::int64_t>(bits());
    }
  }

  double floating() {
    static const double kEdges[] = {0.0, -0.0, 1.0, -1.5, 0.1, 1e300, -1e-300, 5e-324, 2.2250738585072014e-308,
                                    std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                    std::numeric_limits<double>::quiet_NaN(), 3.4028234663852886e38, 1e-45, 123456789.0,
                                    0.30000000000000004};
    switch (below(3)) {
      case 0: return kEdges[below(sizeof kEdges / sizeof kEdges[0])];
      case 1: return (below(2000000) - 1000000) / 1000.0;
      default: {
        const std::uint64_t b = bits();
        double d;
        std::memcpy(&d, &b, sizeof d);
        return d;
      }
    }
  }

  float single() {
    switch (below(3)) {
      case 0: return static_cast<float>(floating());
      case 1: return static_cast<float>(below(2000000) - 1000000) / 1000.0f;
      default: {
        const auto b = static_cast<std::uint32_t>(bits());
        float f;
        std::memcpy(&f, &b, sizeof f);
        return f;
      }
    }
  }

  // Valid UTF-8 with what JSON escaping cares about.
  std::string text() {
    static const char* kPieces[] = {"a", "Z", " ", "\"", "\\", "/", "<", ">", "&", "'", "\n", "\t", "\r", "\b",
                                    "\f", "", "\x01", "\x1f", "\x7f", "\xC2\x80",
                                    "\xC2\x9F", "\xC2\xA0", "\xC2\xAD", "\xC3\xA9", "\xD8\x80", "\xDB\x9D",
                                    "\xE2\x80\x8B", "\xE2\x80\xA8", "\xE2\x80\xAF", "\xE2\x81\xA0", "\xE2\x82\xAC",
                                    "\xEF\xBB\xBF", "\xEF\xBF\xBB", "\xEF\xBF\xBD", "\xF0\x9F\x98\x80",
                                    "\xF0\x9D\x85\xB3", "\xF3\xA0\x80\x81", "\xF3\xA0\x81\xBF", "\xF4\x8F\xBF\xBF",
                                    "note", "12", "RED"};
    std::string s;
    const int n = below(8);
    for (int i = 0; i < n; ++i) {
      const int k = below(sizeof kPieces / sizeof kPieces[0]);
      if (k == 15) {
        s.push_back('\0');
      } else {
        s += kPieces[k];
      }
    }
    return s;
  }

  std::string blob() {
    std::string s;
    const int n = below(7);
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(bits()));
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

void fill(const pb::Reflection& r, pb::Message& m, Random& rnd, int depth);

void set_one(const pb::Reflection& r, pb::Message& m, const pb::FieldDescriptor* f, Random& rnd, int depth) {
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      auto v = static_cast<std::int32_t>(rnd.integer());
      rep ? r.AddInt32(&m, f, v) : r.SetInt32(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      auto v = rnd.integer();
      rep ? r.AddInt64(&m, f, v) : r.SetInt64(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      auto v = static_cast<std::uint32_t>(rnd.integer());
      rep ? r.AddUInt32(&m, f, v) : r.SetUInt32(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      auto v = static_cast<std::uint64_t>(rnd.integer());
      rep ? r.AddUInt64(&m, f, v) : r.SetUInt64(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      bool v = rnd.chance(0.5);
      rep ? r.AddBool(&m, f, v) : r.SetBool(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      float v = rnd.single();
      rep ? r.AddFloat(&m, f, v) : r.SetFloat(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v = rnd.floating();
      rep ? r.AddDouble(&m, f, v) : r.SetDouble(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string v = f->type() == pb::FieldDescriptor::TYPE_BYTES ? rnd.blob() : rnd.text();
      rep ? r.AddString(&m, f, v) : r.SetString(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      // Mostly known values; sometimes a number the enum does not name.
      int v = rnd.chance(0.9) ? rnd.below(3) : static_cast<int>(rnd.integer() % 1000);
      rep ? r.AddEnumValue(&m, f, v) : r.SetEnumValue(&m, f, v);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      pb::Message* child = rep ? r.AddMessage(&m, f) : r.MutableMessage(&m, f);
      fill(*child->GetReflection(), *child, rnd, depth + 1);
      break;
    }
  }
}

void fill(const pb::Reflection& r, pb::Message& m, Random& rnd, int depth) {
  const pb::Descriptor* d = m.GetDescriptor();
  const bool entry = d->options().map_entry();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (!entry && !rnd.chance(depth == 0 ? 0.5 : 0.3)) continue;
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !f->is_map() && depth >= 3) continue;
    if (f->is_repeated()) {
      const int n = rnd.below(4);
      for (int k = 0; k < n; ++k) set_one(r, m, f, rnd, depth);
    } else {
      set_one(r, m, f, rnd, depth);
    }
  }
}

std::string random_wire(const JsonFastRig& rig, const std::string& type, Random& rnd) {
  auto m = rig.make(rig.type(type));
  fill(*m->GetReflection(), *m, rnd, 0);
  return m->SerializeAsString();
}

// ---- reshaping JSON: other spellings protobuf accepts, and some it does not ----

std::string snake(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c >= 'A' && c <= 'Z') {
      out.push_back('_');
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void put_ws(std::string& out, Random& rnd) {
  static const char* kSpace[] = {" ", "\n", "\t", "\r\n  "};
  if (rnd.chance(0.15)) out += kSpace[rnd.below(4)];
}

void put_string(std::string& out, const std::string& s, Random& rnd) {
  if (!rnd.chance(0.3)) {
    out += nlohmann::json(s).dump();
    return;
  }
  // Escape some characters the long way (\u00XX, \/), keep the rest.
  std::string plain = nlohmann::json(s).dump();
  out.push_back('"');
  for (std::size_t i = 1; i + 1 < plain.size(); ++i) {
    const char c = plain[i];
    if (c == '\\') {  // already an escape: copy it
      out.push_back(c);
      out.push_back(plain[++i]);
      continue;
    }
    if (c == '/' && rnd.chance(0.5)) {
      out += "\\/";
    } else if (static_cast<unsigned char>(c) < 0x80 && rnd.chance(0.3)) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04X", static_cast<unsigned char>(c));
      out += buffer;
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void reshape(const nlohmann::json& v, std::string& out, Random& rnd, double noise);

void put_number_or_noise(const nlohmann::json& v, std::string& out, Random& rnd, double noise) {
  static const char* kOdd[] = {"2147483648", "-2147483649", "4294967296", "9223372036854775808",
                               "18446744073709551616", "1e400", "-1e400", "1e-400", "-0", "0.5", "1.0",
                               "1e2", "1E+2", "3.4028235e38", "3.5e38", "-3.5e38", "9007199254740993",
                               "16777217", "0.0", "-0.0", "1e-320"};
  if (rnd.chance(noise)) {
    out += kOdd[rnd.below(sizeof kOdd / sizeof kOdd[0])];
    return;
  }
  if (v.is_number_float()) {
    out += v.dump();
    return;
  }
  // Integers: sometimes as strings, as fractions or in exponent form.
  if (rnd.chance(noise)) {
    out += "\"" + v.dump() + "\"";
  } else if (rnd.chance(noise)) {
    out += v.dump() + ".0";
  } else {
    out += v.dump();
  }
}

void reshape(const nlohmann::json& v, std::string& out, Random& rnd, double noise) {
  put_ws(out, rnd);
  if (rnd.chance(noise / 4)) {
    static const char* kOdd[] = {"null", "true", "\"\"", "[]", "{}", "\"RED\"", "\"12\"", "\"NaN\"", "\"AAE=\"",
                                 "\"AAE\"", "\"-_8=\"", "1"};
    out += kOdd[rnd.below(sizeof kOdd / sizeof kOdd[0])];
    return;
  }
  if (v.is_object()) {
    out.push_back('{');
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const int times = rnd.chance(noise / 4) ? 2 : 1;  // a duplicated key
      for (int t = 0; t < times; ++t) {
        if (!first) out.push_back(',');
        first = false;
        put_ws(out, rnd);
        std::string key = it.key();
        if (rnd.chance(0.3)) key = snake(key);
        if (rnd.chance(noise / 4)) key += "x";  // unknown
        put_string(out, key, rnd);
        put_ws(out, rnd);
        out.push_back(':');
        reshape(it.value(), out, rnd, noise);
      }
    }
    put_ws(out, rnd);
    out.push_back('}');
  } else if (v.is_array()) {
    out.push_back('[');
    bool first = true;
    for (const auto& e : v) {
      if (!first) out.push_back(',');
      first = false;
      reshape(e, out, rnd, noise);
    }
    out.push_back(']');
  } else if (v.is_string()) {
    std::string s = v.get<std::string>();
    // int64 as a bare number, or an odd string in its place
    if (!s.empty() && s.find_first_not_of("-0123456789") == std::string::npos && rnd.chance(0.3)) {
      out += s;
    } else {
      put_string(out, s, rnd);
    }
  } else if (v.is_number()) {
    put_number_or_noise(v, out, rnd, noise);
  } else {
    out += v.dump();
  }
  put_ws(out, rnd);
}

struct Counts {
  int cases = 0;
  int fast = 0;
  int declined = 0;
  int protobuf_refused = 0;
};

void print(const char* what, const Counts& c) {
  std::cout << what << ": " << c.cases << " cases, " << c.fast << " fast, " << c.declined << " declined, "
            << c.protobuf_refused << " refused by protobuf\n";
}

// Set to print the cases it counts where protobuf accepts and the fast path declines.
Counts* show_declines = nullptr;

// One JSON text through both parsers.
void check_to_binary(const JsonFastRig& rig, const std::string& type, const std::string& json, Counts& counts) {
  ++counts.cases;
  const auto expected = rig.protobuf_to_binary(type, json);
  const auto fast = rig.fast().to_binary(type, json);
  if (!expected) ++counts.protobuf_refused;
  if (!fast) {
    ++counts.declined;
    if (expected && &counts == show_declines) std::cout << "declined: " << json << "\n";
    return;
  }
  ++counts.fast;
  ASSERT_TRUE(expected.has_value()) << "fast path accepted what protobuf refuses: " << json;
  // Either path, one answer: the slow path's check takes all the fast one does.
  const auto problem = detail::json_request_problem(json, *rig.type(type));
  ASSERT_FALSE(problem.has_value()) << "the fast path takes what json_check refuses (" << *problem << "): " << json;
  ASSERT_TRUE(rig.same_message(type, *fast, *expected)) << "different message for " << json;
}

TEST(JsonFast, PrintsWhatProtobufPrintsByteForByteOrDeclines) {
  JsonFastRig rig;
  Random rnd(20261205);
  Counts plain, defaults, mutated;
  for (int i = 0; i < 4000; ++i) {
    const std::string wire = random_wire(rig, "jf.All", rnd);
    for (bool d : {false, true}) {
      Counts& counts = d ? defaults : plain;
      ++counts.cases;
      const auto expected = rig.protobuf_to_json("jf.All", wire, d);
      const auto fast = rig.fast().to_json("jf.All", wire, d);
      if (!fast) {
        ++counts.declined;
        continue;
      }
      ++counts.fast;
      ASSERT_TRUE(expected.has_value());
      ASSERT_EQ(*fast, *expected) << "print_defaults=" << d;
    }
    // The same bytes damaged: a flipped, dropped or inserted byte.
    std::string bad = wire;
    if (!bad.empty()) {
      const auto at = static_cast<std::size_t>(rnd.below(static_cast<int>(bad.size())));
      switch (rnd.below(3)) {
        case 0: bad[at] = static_cast<char>(bad[at] ^ (1 << rnd.below(8))); break;
        case 1: bad.erase(at, 1); break;
        default: bad.insert(at, 1, static_cast<char>(rnd.bits())); break;
      }
    }
    // protobuf's printer only sees bytes the fast path accepted: on some
    // damaged bytes (a packed list cut short) it never returns.
    const bool d = rnd.chance(0.5);
    ++mutated.cases;
    const auto fast = rig.fast().to_json("jf.All", bad, d);
    if (!fast) {
      ++mutated.declined;
      continue;
    }
    ++mutated.fast;
    const auto expected = rig.protobuf_to_json("jf.All", bad, d);
    ASSERT_TRUE(expected.has_value());
    ASSERT_EQ(*fast, *expected) << "print_defaults=" << d;
  }
  print("to_json", plain);
  print("to_json print_defaults", defaults);
  print("to_json damaged wire", mutated);
  // Well-formed messages are all printed by the fast path.
  EXPECT_EQ(plain.fast, plain.cases);
  EXPECT_EQ(defaults.fast, defaults.cases);
}

TEST(JsonFast, ParsesToWhatProtobufParsesOrDeclines) {
  JsonFastRig rig;
  Random rnd(5121);
  Counts canonical, reshaped, noisy;
  if (std::getenv("JSON_FAST_SHOW_DECLINES") != nullptr) show_declines = &canonical;
  for (int i = 0; i < 3000; ++i) {
    const std::string wire = random_wire(rig, "jf.All", rnd);
    const auto printed = rig.protobuf_to_json("jf.All", wire, rnd.chance(0.5));
    ASSERT_TRUE(printed.has_value());
    check_to_binary(rig, "jf.All", *printed, canonical);
    const nlohmann::json dom = nlohmann::json::parse(*printed);
    std::string text;
    reshape(dom, text, rnd, 0.0);
    check_to_binary(rig, "jf.All", text, reshaped);
    text.clear();
    reshape(dom, text, rnd, 0.05);
    check_to_binary(rig, "jf.All", text, noisy);
    if (::testing::Test::HasFatalFailure()) return;
  }
  print("to_binary canonical", canonical);
  print("to_binary other spellings", reshaped);
  print("to_binary with noise", noisy);
  // Canonical JSON protobuf takes back goes the fast way but for floats
  // printed just past float's limit (3.40282347e+38). protobuf refuses its
  // own text when a map holds a key twice (random map fields here can:
  // both printers write the key twice), and the fast path declines it.
  EXPECT_GE(canonical.fast, (canonical.cases - canonical.protobuf_refused) * 98 / 100);
  EXPECT_GE(reshaped.fast, (reshaped.cases - reshaped.protobuf_refused) * 95 / 100);
  EXPECT_GT(noisy.protobuf_refused, 0);
}

TEST(JsonFast, TakesTheFastPathForTheBenchmarksMessages) {
  JsonFastRig rig;
  // A surrogate pair, escaped, is one code point, as protobuf reads it.
  const std::string pair = R"({"note":"\ud83d\ude00 \u00e9\u0000"})";
  ASSERT_TRUE(rig.protobuf_to_binary("jf.Tick", pair));
  EXPECT_EQ(rig.fast().to_binary("jf.Tick", pair), rig.protobuf_to_binary("jf.Tick", pair));
  const auto wire = rig.fast().to_binary("jf.Tick", R"({"n": 21, "note": "a tick"})");
  ASSERT_TRUE(wire.has_value());
  EXPECT_EQ(rig.fast().to_json("jf.Tick", *wire, true), rig.protobuf_to_json("jf.Tick", *wire, true));
  EXPECT_EQ(rig.fast().to_json("jf.Tally", std::string("\x08\x16", 2), true), R"({"n":22})");
  EXPECT_EQ(rig.fast().to_json("jf.Tally", "", true), R"({"n":0})");
  EXPECT_EQ(rig.fast().to_json("jf.Tally", "", false), "{}");
}

TEST(JsonFast, DeclinesWhatItDoesNotCopyExactly) {
  JsonFastRig rig;
  EXPECT_FALSE(rig.fast().covers("jf.WithTime"));
  EXPECT_FALSE(rig.fast().to_binary("jf.WithTime", R"({"at":"2026-01-01T00:00:00Z"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":null})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":1,"n":2})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":1,"x":2})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":"1"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":1e0})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", "\xEF\xBB\xBF{}"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", std::string("{}\n\0x", 5)));
  // What JSON parsers let through or can be asked to (a lone surrogate,
  // comments, trailing commas, NaN literals, a second value), and what
  // protobuf refuses; a number that needs the careful path to round, or
  // is zero with a huge exponent.
  EXPECT_FALSE(rig.protobuf_to_binary("jf.Tick", R"({"note":"\udc00"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"note":"\udc00"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"note":"\ud800"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"note":"\ud800x"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", "{\"note\":\"a\xff\"}"));      // raw bytes, not UTF-8
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", "{\"note\":\"\xED\xA0\x80\"}"));  // a surrogate, encoded
  EXPECT_FALSE(rig.fast().to_binary("jf.All", "{\"mStr\":{\"k\xC3\":\"v\"}}"));  // in a map's key
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":1,})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":1/* c */})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.All", R"({"db":NaN})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.All", R"({"db":1e400})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":1} {})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.Tick", R"({"n":123456789012345678901234})"));
  // Bytes outside base64's alphabet (libsodium alone would take these).
  EXPECT_FALSE(rig.fast().to_binary("jf.All", "{\"by\":\"Infin\xd1\x9eN\"}"));
  for (const char* number : {"0e-45", "0e999999", "-0.0", "2.2250738585072011e-308", "4.9406564584124654e-324",
                             "9007199254740993", "1e-400", "0.1e1", "123456789012345678901234"}) {
    const std::string json = std::string(R"({"db":)") + number + "}";
    const auto fast = rig.fast().to_binary("jf.All", json);
    const auto expected = rig.protobuf_to_binary("jf.All", json);
    if (fast) {
      ASSERT_TRUE(expected) << number;
      EXPECT_TRUE(rig.same_message("jf.All", *fast, *expected)) << number;
    }
  }
  EXPECT_FALSE(rig.fast().to_binary("jf.All", R"({"oStr":"a","oI64":"1"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.All", R"({"color":"1"})"));
  EXPECT_FALSE(rig.fast().to_binary("jf.All", R"({"fl":3.5e38})"));
  EXPECT_FALSE(rig.fast().to_json("jf.Tick", std::string("\x08\x01\x10\x02", 4), false));  // unknown field 2 as varint
  EXPECT_FALSE(rig.fast().to_json("jf.Tick", std::string("\x08\x01\x08\x02", 4), false));  // a field twice
  EXPECT_FALSE(rig.fast().to_json("jf.Tick", std::string("\x12\x01\xff", 3), false));      // invalid UTF-8
  EXPECT_FALSE(rig.fast().to_json("jf.Tick", std::string("\x08", 1), false));              // truncated
  EXPECT_FALSE(rig.fast().to_json("jf.Nope", "", false));
}

// JsonCodec answers as before: errors still come from protobuf, words and all.
TEST(JsonFast, CodecErrorsStillComeFromProtobuf) {
  JsonFastRig rig;
  auto bad = rig.codec().to_binary("jf.Tick", R"({"n":"x"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("request body is not valid JSON for jf.Tick"), std::string::npos);
  auto ok = rig.codec().to_binary("jf.Tick", R"({"n":3})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, std::string("\x08\x03", 2));
  auto unknown = rig.codec().to_json("jf.Nope", "", false);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::internal);
}

}  // namespace
}  // namespace dispatch::connect
