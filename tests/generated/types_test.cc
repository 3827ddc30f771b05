// Round trips of every mapped type through generated code: over the
// in-process transport (client encoder -> server decoder -> user function ->
// server encoder -> client decoder) and through the public codecs, with edge
// values: integer limits, NaN/inf/-0.0, empty and large strings, unicode, all
// byte values, empty containers inside containers, present-but-zero optionals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "dispatch/wire/wire_io.h"
#include "eager_task.h"
#include "types/api.dispatch.h"

namespace {

using namespace std::chrono_literals;
namespace remote = types::remote;
namespace wire = types::api_wire;

template <typename T>
T codec_trip(const T& v) {
  T out;
  auto r = wire::decode(wire::encode(v), &out);
  EXPECT_TRUE(r.ok()) << r.error().what();
  return out;
}

class Types : public ::testing::Test {
 protected:
  dispatch::DispatchTable table_{&remote::api_service()};
  dispatch::InProcessClient client_{table_};
};

types::Scalars max_scalars() {
  types::Scalars v{};
  v.b = true;
  v.i8 = INT8_MAX;
  v.i16 = INT16_MAX;
  v.i32 = INT32_MAX;
  v.i64 = INT64_MAX;
  v.u8 = UINT8_MAX;
  v.u16 = UINT16_MAX;
  v.u32 = UINT32_MAX;
  v.u64 = UINT64_MAX;
  v.f = std::numeric_limits<float>::max();
  v.d = std::numeric_limits<double>::infinity();
  v.s = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";
  for (int i = 0; i < 256; ++i) v.raw.push_back(static_cast<std::byte>(i));
  v.raw8 = {0, 255, 0};
  v.color = types::blue;
  v.level = types::Level::high;
  v.ll = LLONG_MAX;
  v.us = USHRT_MAX;
  return v;
}

types::Scalars min_scalars() {
  types::Scalars v{};
  v.i8 = INT8_MIN;
  v.i16 = INT16_MIN;
  v.i32 = INT32_MIN;
  v.i64 = INT64_MIN;
  v.f = std::numeric_limits<float>::lowest();
  v.d = -std::numeric_limits<double>::denorm_min();
  v.color = types::red;
  v.level = types::Level::low;
  v.ll = LLONG_MIN;
  return v;
}

TEST_F(Types, ScalarsAtTheirLimits) {
  for (const types::Scalars& v : {types::Scalars{}, max_scalars(), min_scalars()}) {
    EXPECT_EQ(remote::echo_scalars(client_, v), v);
    EXPECT_EQ(codec_trip(v), v);
  }
}

TEST_F(Types, DefaultsAreNotWritten) {
  EXPECT_EQ(wire::encode(types::Scalars{}), "");
  // -0.0 is not the default (protobuf compares bits): it is written and kept.
  types::Scalars v{};
  v.d = -0.0;
  EXPECT_EQ(wire::encode(v).size(), 9u);
  EXPECT_TRUE(std::signbit(remote::echo_scalars(client_, v).d));
}

TEST_F(Types, NotANumber) {
  types::Scalars v{};
  v.f = std::numeric_limits<float>::quiet_NaN();
  v.d = -std::numeric_limits<double>::quiet_NaN();
  types::Scalars out = remote::echo_scalars(client_, v);
  EXPECT_TRUE(std::isnan(out.f));
  EXPECT_TRUE(std::isnan(out.d));
}

TEST_F(Types, LargeStringsAndBytes) {
  types::Scalars v{};
  v.s.assign(5u << 20, 'x');
  v.raw.assign(3u << 20, std::byte{0x80});
  EXPECT_EQ(remote::echo_scalars(client_, v), v);
  std::vector<std::byte> bytes(1u << 20, std::byte{7});
  EXPECT_EQ(remote::echo_bytes(client_, bytes), bytes);
  EXPECT_EQ(remote::echo_bytes(client_, {}), std::vector<std::byte>{});
}

TEST_F(Types, OpenEnumsKeepUnknownValues) {
  types::Scalars v{};
  v.color = static_cast<types::Color>(7);
  v.level = static_cast<types::Level>(-123456);
  EXPECT_EQ(remote::echo_scalars(client_, v), v);
}

types::Containers full_containers() {
  types::Containers v;
  v.ints = {0, -1, INT32_MIN, INT32_MAX};
  v.u64s = {UINT64_MAX, 0, 1};
  v.flags = {true, false, true};
  v.doubles = {0.0, -1.5, 1e300};
  v.floats = {1.25f, -0.0f};
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
  return v;
}

TEST_F(Types, AnEnumWithoutAZeroEnumeratorTravelsAsZeroWhereverItIsValueInitialized) {
  types::Colors v{};
  v.list = {types::Color{}, types::red, types::Color{}};
  v.by_name = {{"none", types::Color{}}, {"blue", types::blue}};
  v.maybe = types::Color{};
  v.sparse = {types::Color{}, std::nullopt};
  EXPECT_EQ(codec_trip(v), v);
  EXPECT_EQ(codec_trip(codec_trip(v)), v);
  EXPECT_EQ(remote::echo_colors(client_, v), v);
  // An explicit 0 on the wire, as protobuf peers write the placeholder
  // (COLOR_UNSPECIFIED): the value-initialized enum, as an absent field is.
  types::Scalars s;
  ASSERT_TRUE(wire::decode(std::string("\x78\x00", 2), &s).ok());
  EXPECT_EQ(s.color, types::Color{});
}

TEST_F(Types, ContainersNested) {
  types::Containers v = full_containers();
  EXPECT_EQ(remote::echo_containers(client_, v), v);
  EXPECT_EQ(codec_trip(v), v);
  EXPECT_EQ(remote::echo_containers(client_, types::Containers{}), types::Containers{});
}

// An unordered_map's iteration order depends on how it was filled; its
// encoding must not: maps with the same entries encode to the same bytes,
// entries in ascending key order (as std::map's are), and a decoded value
// encodes as it did before the trip.
TEST_F(Types, UnorderedMapEncodesInKeyOrder) {
  std::vector<std::uint64_t> keys;
  for (std::uint64_t k = 0; k < 40; ++k) keys.push_back(k * 7919 % 101);
  keys.push_back(UINT64_MAX);
  std::string expected;  // one single-entry encoding per key, keys ascending
  std::vector<std::uint64_t> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint64_t k : sorted) {
    types::Containers one;
    one.by_u64[k] = std::to_string(k);
    expected += wire::encode(one);
  }

  types::Containers forward, backward;
  for (std::uint64_t k : keys) forward.by_u64[k] = std::to_string(k);
  backward.by_u64.reserve(1000);  // another bucket count, another iteration order
  for (auto k = keys.rbegin(); k != keys.rend(); ++k) backward.by_u64[*k] = std::to_string(*k);
  ASSERT_EQ(forward, backward);
  EXPECT_EQ(wire::encode(forward), expected);
  EXPECT_EQ(wire::encode(backward), expected);
  EXPECT_EQ(wire::encode(codec_trip(backward)), expected);
}

types::Sets full_sets() {
  types::Sets s;
  s.ints = {INT32_MIN, -1, 0, 7, INT32_MAX};
  s.names = {"", "b", "a", "\xE2\x82\xAC"};
  s.levels = {types::Level::high, types::Level::low};
  s.ids = {UINT64_MAX, 0, 12345};
  s.flags = {true, false};
  s.groups = {{}, {3, 1, 2}, {0}};
  s.maybe_tags = std::unordered_set<std::string>{};
  s.levels_by_name = {{"x", {types::Level::normal}}, {"none", {}}};
  return s;
}

TEST_F(Types, SetsRoundTrip) {
  types::Sets s = full_sets();
  EXPECT_EQ(codec_trip(s), s);
  EXPECT_EQ(remote::echo_sets(client_, s), s);
  EXPECT_EQ(codec_trip(types::Sets{}), types::Sets{});
  types::Sets absent = s;
  absent.maybe_tags.reset();
  EXPECT_EQ(codec_trip(absent), absent);
}

// Sets encode as their ascending sequence, so an unordered set's encoding
// does not depend on how it was filled; and a value the wire repeats (a
// vector's peer may send one) is kept once.
TEST_F(Types, SetsEncodeAscendingAndKeepRepeatsOnce) {
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) names.push_back(std::to_string(i * 7919 % 101));
  types::Sets forward, backward;
  for (const std::string& n : names) forward.names.insert(n);
  backward.names.reserve(1000);  // another bucket count, another iteration order
  for (auto n = names.rbegin(); n != names.rend(); ++n) backward.names.insert(*n);
  ASSERT_EQ(forward, backward);
  std::vector<std::string> sorted(forward.names.begin(), forward.names.end());
  std::sort(sorted.begin(), sorted.end());
  std::string expected;
  for (const std::string& n : sorted) {
    types::Sets one;
    one.names.insert(n);
    expected += wire::encode(one);
  }
  EXPECT_EQ(wire::encode(forward), expected);
  EXPECT_EQ(wire::encode(backward), expected);

  types::Sets ids;
  ids.ids = {5, 1, 3};
  types::Sets from_list;
  // ints = 1: packed [3, 3, 1], then a lone 3; ids = 4: packed [5, 1, 3].
  ASSERT_TRUE(wire::decode(std::string("\x0a\x03\x03\x03\x01\x08\x03\x22\x03\x05\x01\x03", 12), &from_list).ok());
  EXPECT_EQ(from_list.ints, (std::set<std::int32_t>{1, 3}));
  EXPECT_EQ(from_list.ids, ids.ids);
  EXPECT_EQ(wire::encode(ids), std::string("\x22\x03\x01\x03\x05", 5));
}

TEST_F(Types, OptionalsTellAbsentFromZero) {
  EXPECT_EQ(remote::maybe(client_, true), std::optional<std::int64_t>(0));
  EXPECT_EQ(remote::maybe(client_, false), std::nullopt);
  types::Containers v;
  v.maybe_list = std::vector<std::int32_t>{};
  EXPECT_TRUE(codec_trip(v).maybe_list.has_value());
  EXPECT_FALSE(codec_trip(types::Containers{}).maybe_list.has_value());
}

TEST_F(Types, MapOfVectorsResult) {
  auto groups = remote::group(client_, {{1, "a"}, {2, "b"}, {3, "a"}});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups["a"], (std::vector<types::Inner>{{1, "a"}, {3, "a"}}));
  EXPECT_EQ(groups["b"], (std::vector<types::Inner>{{2, "b"}}));
  remote::ping(client_);
}

TEST_F(Types, DurationsAndTimePoints) {
  types::Times t{};
  t.ms = -1500ms;
  t.ns = std::chrono::nanoseconds(INT64_MIN + 1);
  t.s = 315576000000s;
  t.mins = -3min;
  t.fsec = std::chrono::duration<double>(-0.25);
  t.at = std::chrono::system_clock::time_point(std::chrono::nanoseconds(-1));  // before the epoch
  t.maybe_hours = 0h;
  t.laps = {1us, -1us, 0us};
  EXPECT_EQ(remote::echo_times(client_, t), t);
  EXPECT_EQ(codec_trip(t), t);
  EXPECT_EQ(codec_trip(types::Times{}), types::Times{});
}

TEST_F(Types, DurationBeyondProtoRangeIsAnEncodeError) {
  types::Times t{};
  t.maybe_hours = std::chrono::hours(100'000'000);  // ~11400 years
  auto r = remote::echo_times.try_call(client_, t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::out_of_range);
  EXPECT_EQ(r.error().message(), "Times.maybe_hours: duration outside google.protobuf.Duration's range");
  EXPECT_THROW(wire::encode(t), dispatch::Error);
}

TEST_F(Types, UnknownFieldsAreSkipped) {
  types::Scalars v = max_scalars();
  // A newer peer's fields 90 (varint), 91 (len), 92 (fixed32), 93 (fixed64).
  std::string extra("\xD0\x05\x01\xDA\x05\x02hi\xE5\x05\x01\x02\x03\x04\xE9\x05\x01\x02\x03\x04\x05\x06\x07\x08", 24);
  types::Scalars out;
  ASSERT_TRUE(wire::decode(wire::encode(v) + extra, &out).ok());
  EXPECT_EQ(out, v);
  ASSERT_TRUE(wire::decode(extra + wire::encode(v), &out).ok());
  EXPECT_EQ(out, v);
}

TEST_F(Types, RepeatedScalarsPackedOrNot) {
  // Containers.ints = 1: unpacked as three varint fields, then one packed run.
  std::string bytes("\x08\x01\x08\x02\x0A\x02\x03\x04\x08\x05", 10);
  types::Containers out;
  ASSERT_TRUE(wire::decode(bytes, &out).ok());
  EXPECT_EQ(out.ints, (std::vector<std::int32_t>{1, 2, 3, 4, 5}));
}

TEST_F(Types, LastScalarWinsAndMessagesMerge) {
  // Inner.x twice: the last value wins, as in protobuf.
  types::Inner inner;
  ASSERT_TRUE(wire::decode(std::string("\x08\x01\x08\x02", 4), &inner).ok());
  EXPECT_EQ(inner.x, 2);
  // Containers.maybe_inner (12) twice: {x=1} then {label="a"} merge.
  types::Containers c;
  ASSERT_TRUE(wire::decode(std::string("\x62\x02\x08\x01\x62\x03\x12\x01\x61", 9), &c).ok());
  EXPECT_EQ(c.maybe_inner, (types::Inner{1, "a"}));
}

TEST_F(Types, DecodeResetsTheTarget) {
  types::Containers v = full_containers();
  ASSERT_TRUE(wire::decode("", &v).ok());
  EXPECT_EQ(v, types::Containers{});
}

// Every field at proto's default, against initializers that say otherwise.
types::Defaults zeroed() {
  types::Defaults d;
  d.n = 0;
  d.s.clear();
  d.b = false;
  d.o.reset();
  d.v.clear();
  d.level = types::Level::normal;  // 0
  d.inner = types::Inner{};
  return d;
}

TEST_F(Types, DefaultMemberInitializersDoNotReplaceWhatWasSent) {
  types::Defaults decoded;
  ASSERT_TRUE(wire::decode("", &decoded).ok());
  EXPECT_EQ(decoded, zeroed());
  EXPECT_EQ(codec_trip(zeroed()), zeroed());
  types::HoldsDefaults h;
  h.many = {zeroed(), types::Defaults{}, zeroed()};
  h.maybe = zeroed();
  h.by_name = {{"zero", zeroed()}, {"initialized", types::Defaults{}}};
  EXPECT_EQ(codec_trip(h), h);
  EXPECT_EQ(remote::echo_defaults(client_, h), h);
  // A value that keeps its initializers travels as such.
  EXPECT_EQ(codec_trip(types::Defaults{}), types::Defaults{});
}

// View parameters: callers pass what they have (std::string, a literal, a
// vector, a C array, a span of part of a buffer); the function sees the same
// values; the request on the wire is the one the owning types make.
types::Shapes full_shapes() {
  types::Shapes s;
  s.pick = types::Inner{4, "four"};
  s.struct_first = -0.5;
  s.list = {std::int64_t{INT64_MIN}, std::string(), std::int64_t{0}, std::string("x")};
  s.maybe = types::Level::low;
  s.by_name = {{"n", std::int32_t{0}}, {"l", std::vector<std::string>{}}, {"m", std::vector<std::string>{"a", ""}}};
  s.nested = std::variant<std::int32_t, std::string>(std::string("deep"));
  return s;
}

TEST_F(Types, VariantsRoundTripEveryAlternative) {
  types::Shapes s = full_shapes();
  EXPECT_EQ(remote::echo_shapes(client_, s), s);
  EXPECT_EQ(codec_trip(s), s);
  // The first alternative at its default is still that alternative, and an
  // optional variant tells absent from present.
  types::Shapes zero;
  zero.struct_first = zeroed();
  zero.maybe = false;
  types::Shapes out = codec_trip(zero);
  EXPECT_EQ(out, zero);
  EXPECT_EQ(out.pick.index(), 0u);
  ASSERT_TRUE(out.maybe.has_value());
  EXPECT_EQ(out.maybe->index(), 0u);
  zero.maybe.reset();
  EXPECT_FALSE(codec_trip(zero).maybe.has_value());
  s.nested = 2.5;
  EXPECT_EQ(codec_trip(s), s);
  // A variant as parameter and result.
  EXPECT_EQ(remote::flip(client_, std::int32_t{-12}), (std::variant<std::int32_t, std::string>("-12")));
  EXPECT_EQ(remote::flip(client_, std::string("abc")), (std::variant<std::int32_t, std::string>(3)));
}

TEST_F(Types, VariantLastAlternativeWinsAndTheSameOneMerges) {
  // Shapes.pick (1): int32_value 7, then string_value "s": the string wins.
  types::Shapes out;
  ASSERT_TRUE(wire::decode(std::string("\x0A\x02\x08\x07\x0A\x03\x12\x01s", 9), &out).ok());
  EXPECT_EQ(out.pick, (std::variant<std::int32_t, std::string, types::Inner>(std::string("s"))));
  // inner_value {x: 1}, then inner_value {label: "a"}: merged.
  ASSERT_TRUE(wire::decode(std::string("\x0A\x04\x1A\x02\x08\x01\x0A\x05\x1A\x03\x12\x01\x61", 13), &out).ok());
  EXPECT_EQ(out.pick, (std::variant<std::int32_t, std::string, types::Inner>(types::Inner{1, "a"})));
  // Within one message too: int32_value 7 then inner_value {} leaves an Inner.
  ASSERT_TRUE(wire::decode(std::string("\x0A\x04\x08\x07\x1A\x00", 6), &out).ok());
  EXPECT_EQ(out.pick, (std::variant<std::int32_t, std::string, types::Inner>(types::Inner{})));
}

TEST_F(Types, VariantWithNoAlternativeReadsAsTheFirstOnesProtoDefault) {
  // struct_first (2) present but empty, and absent: Defaults at proto's
  // defaults, not at its member initializers.
  types::Shapes out;
  ASSERT_TRUE(wire::decode(std::string("\x12\x00", 2), &out).ok());
  ASSERT_EQ(out.struct_first.index(), 0u);
  EXPECT_EQ(std::get<0>(out.struct_first), zeroed());
  ASSERT_TRUE(wire::decode("", &out).ok());
  EXPECT_EQ(std::get<0>(out.struct_first), zeroed());
  EXPECT_EQ(out.pick, (std::variant<std::int32_t, std::string, types::Inner>(0)));
  // The same where the reader creates the variant: Shapes.defaults_list (7),
  // .maybe_defaults (8) and .defaults_by_id (9) {key 1, value {}}, each
  // present with no alternative.
  ASSERT_TRUE(wire::decode(std::string("\x3A\x00\x42\x00\x4A\x04\x08\x01\x12\x00", 10), &out).ok());
  ASSERT_EQ(out.defaults_list.size(), 1u);
  EXPECT_EQ(std::get<0>(out.defaults_list[0]), zeroed());
  ASSERT_TRUE(out.maybe_defaults.has_value());
  EXPECT_EQ(std::get<0>(*out.maybe_defaults), zeroed());
  ASSERT_EQ(out.defaults_by_id.count(1), 1u);
  EXPECT_EQ(std::get<0>(std::get<0>(out.defaults_by_id.at(1))), zeroed());
  // An alternative number the variant does not have (a newer peer's) is skipped.
  ASSERT_TRUE(wire::decode(std::string("\x0A\x04\x20\x05\x08\x09", 6), &out).ok());
  EXPECT_EQ(out.pick, (std::variant<std::int32_t, std::string, types::Inner>(9)));
}

TEST_F(Types, ViewParametersTakeWhatCallersHave) {
  const std::string text = "h\xC3\xA9llo";
  const std::vector<std::int64_t> numbers = {-1, 0, INT64_MAX};
  const std::byte raw[] = {std::byte{0}, std::byte{255}, std::byte{7}};
  const std::vector<types::Inner> inners = {{1, "one"}, {2, "two"}, {3, "three"}};
  const std::vector<std::string> names = {"a", "", "c"};
  const types::Seen want{text, numbers, {raw, raw + 3}, inners, names, "!"};
  EXPECT_EQ(remote::see_views(client_, text, numbers, raw, inners, names), want);

  // Literals, empty views, a sub-span, an explicit suffix.
  const types::Seen empty{"lit", {}, {}, {inners[1]}, {}, "?"};
  EXPECT_EQ(remote::see_views(client_, "lit", {}, {}, std::span(inners).subspan(1, 1), {}, "?"), empty);
  EXPECT_EQ(remote::see_views.try_call(client_, "lit", {}, {}, std::span(inners).subspan(1, 1), {}, "?").value(),
            empty);
  EXPECT_EQ(remote::see_views.async(client_, text, numbers, raw, inners, names).get(), want);

  // The stub's encoding equals the owning request's.
  remote::SeeViewsRequest owning{text, numbers, {raw, raw + 3}, inners, names, "!"};
  EXPECT_EQ(remote::see_views.encode_request(text, numbers, raw, inners, names).value(), wire::encode(owning));

  // co(): the views are read before the first suspension.
  types::Seen seen;
  [](dispatch::Client& client, const std::string& t, types::Seen* out) -> dispatch::test::EagerTask {
    *out = co_await remote::see_views.co(client, t, {}, {}, {}, {});
  }(client_, text, &seen);
  EXPECT_EQ(seen, (types::Seen{text, {}, {}, {}, {}, "!"}));

  // Text that is not UTF-8 is refused like a std::string's would be.
  dispatch::Result<types::Seen> bad = remote::see_views.try_call(client_, "\xFF", {}, {}, {}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), dispatch::Code::invalid_argument);
}

// A chain of `depth` nodes: root, its only child, ...
types::Tree chain(int depth) {
  types::Tree t{"leaf", {}};
  for (int i = 1; i < depth; ++i) t = types::Tree{"n" + std::to_string(i), {std::move(t)}};
  return t;
}

TEST_F(Types, RecursiveTypesRoundTrip) {
  types::Tree t{"root", {{"a", {}}, {"b", {{"b1", {}}, {"b2", {{"b2x", {}}}}}}, {"", {}}}};
  EXPECT_EQ(remote::echo_tree(client_, t), t);
  EXPECT_EQ(codec_trip(t), t);
  types::Doc d{{{"intro", {}}, {"nested", {types::Doc{{{"inner", {types::Doc{}}}}}, types::Doc{}}}}};
  EXPECT_EQ(remote::echo_doc(client_, d), d);
  EXPECT_EQ(codec_trip(d), d);
}

// Nesting counts against the wire's recursion limit (100, as protobuf's):
// in a request, the tree parameter is one level, each child one more.
TEST_F(Types, DeepRecursionIsRefusedNotAStackOverflow) {
  const int limit = dispatch::wire::kRecursionLimit;
  EXPECT_EQ(remote::echo_tree(client_, chain(limit)), chain(limit));
  for (int depth : {limit + 1, 1000}) {
    auto r = remote::echo_tree.try_call(client_, chain(depth));
    ASSERT_FALSE(r.ok()) << depth;
    EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument) << depth;
    EXPECT_NE(std::string(r.error().what()).find("Tree.children: messages nested too deeply"), std::string::npos)
        << r.error().what();
  }
}

}  // namespace
