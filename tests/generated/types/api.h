// Every type dispatch-gen maps, nested, for the round-trip, malformed-input
// and cross-check tests. Structs compare with == under C++20 so tests can
// check whole values.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#if __cplusplus >= 202002L
#define TYPES_EQ(T) bool operator==(const T&) const = default;
#else
#define TYPES_EQ(T)
#endif

namespace types {

// Unscoped, narrow underlying type, no zero value (the .proto gets a
// synthetic one, which decodes as Color{}).
enum Color : std::uint8_t { red = 1, green = 2, blue = 200 };
// Scoped, negative values.
enum class Level : std::int32_t { low = -5, normal = 0, high = 1000000 };

struct Inner {
  std::int32_t x;
  std::string label;
  TYPES_EQ(Inner)
};

struct Scalars {
  bool b;
  std::int8_t i8;
  std::int16_t i16;
  std::int32_t i32;
  std::int64_t i64;
  std::uint8_t u8;
  std::uint16_t u16;
  std::uint32_t u32;
  std::uint64_t u64;
  float f;
  double d;
  std::string s;
  std::vector<std::byte> raw;
  std::vector<std::uint8_t> raw8;
  Color color;
  Level level;
  long long ll;
  unsigned short us;
  TYPES_EQ(Scalars)
};

struct Containers {
  std::vector<std::int32_t> ints;
  std::vector<std::uint64_t> u64s;
  std::vector<bool> flags;
  std::vector<double> doubles;
  std::vector<float> floats;
  std::vector<std::string> strings;
  std::vector<std::vector<std::uint8_t>> blobs;
  std::vector<Inner> inners;
  std::vector<Level> levels;
  std::optional<std::int32_t> maybe_int;
  std::optional<std::string> maybe_string;
  std::optional<Inner> maybe_inner;
  std::optional<bool> maybe_bool;
  std::optional<double> maybe_double;
  std::optional<Color> maybe_color;
  std::map<std::string, std::int64_t> by_name;
  std::map<std::int32_t, Inner> by_id;
  std::unordered_map<std::uint64_t, std::string> by_u64;
  std::map<std::int64_t, Level> level_of;
  std::vector<std::vector<std::int32_t>> matrix;
  std::vector<std::optional<std::string>> sparse;
  std::optional<std::vector<std::int32_t>> maybe_list;
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::map<std::string, std::int32_t>> list_of_maps;
  // A map read inside its wrapper's loop: the generated reader once shadowed
  // the loop's tag (-Wshadow, which this target builds with).
  std::optional<std::map<std::string, std::int32_t>> maybe_map;
  // bool keys, which proto allows too (false sorts first).
  std::map<bool, std::string> by_flag;
  std::unordered_map<bool, std::vector<std::int32_t>> lists_by_flag;
  TYPES_EQ(Containers)
};

struct Times {
  std::chrono::milliseconds ms;
  std::chrono::nanoseconds ns;
  std::chrono::seconds s;
  std::chrono::minutes mins;
  std::chrono::duration<double> fsec;
  std::chrono::system_clock::time_point at;
  std::optional<std::chrono::hours> maybe_hours;
  std::vector<std::chrono::microseconds> laps;
  TYPES_EQ(Times)
};

// Recursive types: a tree that holds itself through std::vector, and two
// structs that hold each other. Decoding counts nesting against the wire
// recursion limit, so a hostile deep tree is refused, not a stack overflow.
struct Tree {
  std::string label;
  std::vector<Tree> children;
  TYPES_EQ(Tree)
};
struct Doc;
struct Section {
  std::string title;
  std::vector<Doc> docs;
  TYPES_EQ(Section)
};
struct Doc {
  std::vector<Section> sections;
  TYPES_EQ(Doc)
};

// Default member initializers. A field that held proto's default (0,
// empty, absent) is not on the wire, so it must decode as that default, not
// as the initializer: these once came back as 3, "x", true, 5, {1, 2}.
struct Defaults {
  std::int32_t n = 3;
  std::string s = "x";
  bool b = true;
  std::optional<std::int32_t> o = 5;
  std::vector<std::int32_t> v = {1, 2};
  Level level = Level::high;
  Inner inner = {7, "seven"};
  TYPES_EQ(Defaults)
};
// The same structs where the reader creates them: vector elements, an
// optional's content, map values.
struct HoldsDefaults {
  std::vector<Defaults> many;
  std::optional<Defaults> maybe;
  std::map<std::string, Defaults> by_name;
  TYPES_EQ(HoldsDefaults)
};

[[dispatch::function]] Scalars echo_scalars(const Scalars& v);
[[dispatch::function]] Containers echo_containers(Containers v);
[[dispatch::function]] Times echo_times(const Times& t);
[[dispatch::function]] std::vector<std::byte> echo_bytes(const std::vector<std::byte>& b);
[[dispatch::function]] std::optional<std::int64_t> maybe(bool give);
[[dispatch::function]] std::map<std::string, std::vector<Inner>> group(const std::vector<Inner>& items);
[[dispatch::function]] void ping();
[[dispatch::function]] Tree echo_tree(const Tree& t);
[[dispatch::function]] Doc echo_doc(Doc d);
[[dispatch::function]] HoldsDefaults echo_defaults(const HoldsDefaults& h);
// Sets travel as repeated fields, in ascending order (unordered sets
// sorted); a value repeated on the wire is kept once.
struct Sets {
  std::set<std::int32_t> ints;
  std::unordered_set<std::string> names;
  std::set<Level> levels;
  std::unordered_set<std::uint64_t> ids;
  std::set<bool> flags;
  std::vector<std::set<std::int32_t>> groups;
  std::optional<std::unordered_set<std::string>> maybe_tags;
  std::map<std::string, std::set<Level>> levels_by_name;
  TYPES_EQ(Sets)
};
[[dispatch::function]] Sets echo_sets(const Sets& s);

// An enum with no zero enumerator, value-initialized (0) where the encoder
// always writes a value: a map value, an element, an engaged optional.
struct Colors {
  Color plain;
  std::vector<Color> list;
  std::map<std::string, Color> by_name;
  std::optional<Color> maybe;
  std::vector<std::optional<Color>> sparse;
  TYPES_EQ(Colors)
};
[[dispatch::function]] Colors echo_colors(const Colors& c);

// View parameters: the stub takes the view, the wire carries the string,
// list or bytes, and the function gets a view of what the server decoded.
// Returns what it saw, so the test can compare.
struct Seen {
  std::string text;
  std::vector<std::int64_t> numbers;
  std::vector<std::byte> data;
  std::vector<Inner> inners;
  std::vector<std::string> names;
  std::string suffix;
  TYPES_EQ(Seen)
};
[[dispatch::function]] Seen see_views(std::string_view text, std::span<const std::int64_t> numbers,
                                      std::span<const std::byte> data, const std::span<const Inner>& inners,
                                      std::span<const std::string> names, std::string_view suffix = "!");

// std::variant wherever a type can be: each is a message with one oneof
// (naming.h), the alternative's index + 1 its field number.
struct Shapes {
  std::variant<std::int32_t, std::string, Inner> pick;
  // A struct first: a variant sent with no alternative reads as that
  // struct's proto defaults, not its member initializers.
  std::variant<Defaults, double> struct_first;
  std::vector<std::variant<std::int64_t, std::string>> list;
  std::optional<std::variant<bool, Level>> maybe;
  // An alternative proto cannot hold in a oneof goes through its wrapper.
  std::map<std::string, std::variant<std::int32_t, std::vector<std::string>>> by_name;
  std::variant<std::variant<std::int32_t, std::string>, double> nested;
  // Where the reader creates a variant holding a struct first, it starts
  // at proto's defaults too.
  std::vector<std::variant<Defaults, std::int32_t>> defaults_list;
  std::optional<std::variant<Defaults, std::int32_t>> maybe_defaults;
  std::map<std::int32_t, std::variant<std::variant<Defaults, double>, std::string>> defaults_by_id;
  TYPES_EQ(Shapes)
};
[[dispatch::function]] Shapes echo_shapes(const Shapes& s);
[[dispatch::function]] std::variant<std::int32_t, std::string> flip(const std::variant<std::int32_t, std::string>& v);

}  // namespace types
