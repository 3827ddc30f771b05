// Our bytes against protobuf's own implementation: protoc compiles the
// emitted types/api.proto into a descriptor set (at build time), protobuf's
// DynamicMessage parses what our encoder wrote and is compared field by field
// (MessageDifferencer) with the same value written in text format; and
// DynamicMessage's encoding of that text is what our decoder must read back.
// Also: the descriptor embedded in generated code is the .proto's.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "types/api.dispatch.h"

namespace {

namespace pb = google::protobuf;
using namespace std::chrono_literals;

class CrossCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(TYPES_DESCRIPTOR_SET, std::ios::binary);
    ASSERT_TRUE(in) << "cannot read " << TYPES_DESCRIPTOR_SET;
    std::stringstream bytes;
    bytes << in.rdbuf();
    ASSERT_TRUE(set_.ParseFromString(bytes.str()));
    for (const pb::FileDescriptorProto& file : set_.file()) ASSERT_NE(pool_.BuildFile(file), nullptr) << file.name();
  }

  std::unique_ptr<pb::Message> message(const std::string& name) {
    const pb::Descriptor* d = pool_.FindMessageTypeByName("types." + name);
    EXPECT_NE(d, nullptr) << name;
    return std::unique_ptr<pb::Message>(factory_.GetPrototype(d)->New());
  }

  // Ours -> protobuf, and protobuf -> ours, for one value and its text form.
  template <typename T>
  void check(const std::string& name, const T& value, const std::string& text) {
    auto expected = message(name);
    ASSERT_TRUE(pb::TextFormat::ParseFromString(text, expected.get())) << text;

    auto parsed = message(name);
    ASSERT_TRUE(parsed->ParseFromString(types::api_wire::encode(value)));
    pb::util::MessageDifferencer differ;
    std::string report;
    differ.ReportDifferencesToString(&report);
    EXPECT_TRUE(differ.Compare(*expected, *parsed)) << report;

    T decoded;
    auto r = types::api_wire::decode(expected->SerializeAsString(), &decoded);
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(decoded, value);
  }

  pb::FileDescriptorSet set_;
  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_{&pool_};
};

TEST_F(CrossCheck, Scalars) {
  types::Scalars s{};
  s.b = true;
  s.i8 = -128;
  s.i16 = 32767;
  s.i32 = INT32_MIN;
  s.i64 = INT64_MAX;
  s.u8 = 255;
  s.u16 = 1;
  s.u32 = UINT32_MAX;
  s.u64 = UINT64_MAX;
  s.f = 1.5f;
  s.d = -2.25;
  s.s = "h\xC3\xA9";
  s.raw = {std::byte{0}, std::byte{0xFF}};
  s.raw8 = {1};
  s.color = types::blue;
  s.level = types::Level::low;
  s.ll = -1;
  s.us = 7;
  check("Scalars", s,
        R"(b: true i8: -128 i16: 32767 i32: -2147483648 i64: 9223372036854775807 u8: 255 u16: 1
           u32: 4294967295 u64: 18446744073709551615 f: 1.5 d: -2.25 s: "h\303\251" raw: "\000\377"
           raw8: "\001" color: COLOR_BLUE level: LEVEL_LOW ll: -1 us: 7)");
  check("Scalars", types::Scalars{}, "");
}

TEST_F(CrossCheck, Containers) {
  types::Containers v;
  v.ints = {0, -1, INT32_MIN, INT32_MAX};
  v.u64s = {UINT64_MAX, 0, 1};
  v.flags = {true, false, true};
  v.doubles = {0.0, -1.5, 1e300};
  v.floats = {1.25f, 0.0f};
  v.strings = {"", "a", "\xE2\x82\xAC"};
  v.blobs = {{}, {1, 2, 3}};
  v.inners = {{}, {1, "one"}, {-2, ""}};
  v.levels = {types::Level::normal, types::Level::low};
  v.maybe_int = 0;
  v.maybe_string = "";
  v.maybe_inner = types::Inner{};
  v.maybe_bool = false;
  v.maybe_double = 0.0;
  v.maybe_color = types::green;
  v.by_name = {{"", 0}, {"a", -1}, {"b", INT64_MAX}};
  v.by_id = {{0, {}}, {-7, {7, "seven"}}};
  v.by_u64 = {{UINT64_MAX, "max"}, {0, ""}};
  v.level_of = {{1, types::Level::high}, {2, types::Level::normal}};
  v.matrix = {{}, {1}, {2, 3}};
  v.sparse = {std::nullopt, "", "x", std::nullopt};
  v.maybe_list = std::vector<std::int32_t>{};
  v.groups = {{"empty", {}}, {"two", {"a", ""}}};
  v.list_of_maps = {{}, {{"k", 0}, {"j", 1}}};
  v.maybe_map = std::map<std::string, std::int32_t>{{"m", 2}, {"", 0}};
  v.by_flag = {{true, "yes"}, {false, ""}};
  v.lists_by_flag = {{true, {1, 2}}, {false, {}}};
  check("Containers", v, R"(
    ints: [0, -1, -2147483648, 2147483647] u64s: [18446744073709551615, 0, 1]
    flags: [true, false, true] doubles: [0, -1.5, 1e300] floats: [1.25, 0]
    strings: ["", "a", "\342\202\254"] blobs: ["", "\001\002\003"]
    inners {} inners { x: 1 label: "one" } inners { x: -2 }
    levels: [LEVEL_NORMAL, LEVEL_LOW]
    maybe_int: 0 maybe_string: "" maybe_inner {} maybe_bool: false maybe_double: 0
    maybe_color: COLOR_GREEN
    by_name { key: "" value: 0 } by_name { key: "a" value: -1 }
    by_name { key: "b" value: 9223372036854775807 }
    by_id { key: 0 value {} } by_id { key: -7 value { x: 7 label: "seven" } }
    by_u64 { key: 18446744073709551615 value: "max" } by_u64 { key: 0 value: "" }
    level_of { key: 1 value: LEVEL_HIGH } level_of { key: 2 value: LEVEL_NORMAL }
    matrix {} matrix { value: 1 } matrix { value: [2, 3] }
    sparse {} sparse { value: "" } sparse { value: "x" } sparse {}
    maybe_list {}
    groups { key: "empty" value {} } groups { key: "two" value { value: ["a", ""] } }
    list_of_maps {} list_of_maps { value { key: "k" value: 0 } value { key: "j" value: 1 } }
    maybe_map { value { key: "" value: 0 } value { key: "m" value: 2 } }
    by_flag { key: false value: "" } by_flag { key: true value: "yes" }
    lists_by_flag { key: false value {} } lists_by_flag { key: true value { value: [1, 2] } }
  )");
}

TEST_F(CrossCheck, Times) {
  types::Times t{};
  t.ms = -1500ms;
  t.ns = std::chrono::nanoseconds(INT64_MIN + 1);
  t.s = 315576000000s;
  t.mins = -3min;
  t.fsec = std::chrono::duration<double>(-0.25);
  t.at = std::chrono::system_clock::time_point(std::chrono::nanoseconds(-1));
  t.maybe_hours = 0h;
  t.laps = {1us, -1us, 0us};
  check("Times", t, R"(
    ms { seconds: -1 nanos: -500000000 } ns { seconds: -9223372036 nanos: -854775807 }
    s { seconds: 315576000000 } mins { seconds: -180 } fsec { nanos: -250000000 }
    at { seconds: -1 nanos: 999999999 } maybe_hours {}
    laps { nanos: 1000 } laps { nanos: -1000 } laps {}
  )");
}

// protoc records json_name on every field; the generator leaves it to the
// default (lowerCamel of the name), which means the same. Compare without it.
void clear_json_names(pb::DescriptorProto* m) {
  for (auto& f : *m->mutable_field()) f.clear_json_name();
  for (auto& nested : *m->mutable_nested_type()) clear_json_names(&nested);
}

TEST_F(CrossCheck, Sets) {
  types::Sets s;
  s.ints = {7, -1};
  s.names = {"b", "", "a"};
  s.levels = {types::Level::high, types::Level::low};
  s.ids = {UINT64_MAX, 0};
  s.flags = {true};
  s.groups = {{}, {2, 1}};
  s.maybe_tags = std::unordered_set<std::string>{"t"};
  s.levels_by_name = {{"x", {types::Level::normal}}};
  check("Sets", s, R"(
    ints: [-1, 7] names: ["", "a", "b"] levels: [LEVEL_LOW, LEVEL_HIGH] ids: [0, 18446744073709551615]
    flags: [true] groups {} groups { value: [1, 2] } maybe_tags { value: "t" }
    levels_by_name { key: "x" value { value: [LEVEL_NORMAL] } }
  )");
  check("Sets", types::Sets{}, "");
}

TEST_F(CrossCheck, VariantsAreOneofs) {
  types::Shapes s;
  s.pick = std::string("p");
  s.struct_first = 1.0;
  s.list = {std::int64_t{-1}, std::string("two")};
  s.maybe = types::Level::high;
  s.by_name = {{"k", std::vector<std::string>{"a", "b"}}, {"z", std::int32_t{0}}};
  s.nested = std::variant<std::int32_t, std::string>(7);
  check("Shapes", s, R"(
    pick { string_value: "p" } struct_first { double_value: 1 }
    list { int64_value: -1 } list { string_value: "two" } maybe { level_value: LEVEL_HIGH }
    by_name { key: "k" value { list_string_value { value: ["a", "b"] } } }
    by_name { key: "z" value { int32_value: 0 } }
    nested { variant_int32_string_value { int32_value: 7 } }
  )");
  // A variant always holds an alternative, so it is always written, even
  // at its first alternative's default.
  types::Shapes zero;
  zero.struct_first = types::Defaults{0, "", false, std::nullopt, {}, types::Level::normal, types::Inner{}};
  check("Shapes", zero, R"(
    pick { int32_value: 0 } struct_first { defaults_value { inner {} } }
    nested { variant_int32_string_value { int32_value: 0 } }
  )");
}

// A stub taking views encodes what protobuf reads as the .proto's string,
// repeated and bytes fields.
TEST_F(CrossCheck, ViewParametersEncodeAsTheirOwningTypes) {
  const std::byte raw[] = {std::byte{1}, std::byte{0xFF}};
  const std::vector<std::int64_t> numbers = {-1, 5};
  const std::vector<types::Inner> inners = {{1, "one"}, {}};
  const std::vector<std::string> names = {"a", ""};
  auto bytes = types::remote::see_views.encode_request("h\xC3\xA9", numbers, raw, inners, names, "?");
  ASSERT_TRUE(bytes.ok());
  auto expected = message("SeeViewsRequest");
  ASSERT_TRUE(pb::TextFormat::ParseFromString(
      R"(text: "h\303\251" numbers: [-1, 5] data: "\001\377" inners { x: 1 label: "one" } inners {}
         names: "a" names: "" suffix: "?")",
      expected.get()));
  auto parsed = message("SeeViewsRequest");
  ASSERT_TRUE(parsed->ParseFromString(*bytes));
  pb::util::MessageDifferencer differ;
  std::string report;
  differ.ReportDifferencesToString(&report);
  EXPECT_TRUE(differ.Compare(*expected, *parsed)) << report;
}

TEST_F(CrossCheck, EmbeddedDescriptorIsTheProtos) {
  pb::FileDescriptorProto embedded;
  ASSERT_TRUE(embedded.ParseFromString(std::string(types::remote::api_file_descriptor())));
  const pb::FileDescriptor* from_proto = pool_.FindFileByName(embedded.name());
  ASSERT_NE(from_proto, nullptr) << embedded.name();
  // Built in a pool of its own (with the well-known types it imports).
  pb::DescriptorPool pool;
  for (const pb::FileDescriptorProto& file : set_.file()) {
    if (file.name() != embedded.name()) {
      ASSERT_NE(pool.BuildFile(file), nullptr);
    }
  }
  const pb::FileDescriptor* built = pool.BuildFile(embedded);
  ASSERT_NE(built, nullptr);
  pb::FileDescriptorProto a, b;
  built->CopyTo(&a);
  from_proto->CopyTo(&b);
  for (auto& m : *a.mutable_message_type()) clear_json_names(&m);
  for (auto& m : *b.mutable_message_type()) clear_json_names(&m);
  EXPECT_EQ(a.DebugString(), b.DebugString());
}

}  // namespace
