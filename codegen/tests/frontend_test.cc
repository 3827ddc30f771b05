// Acceptance tests of the front end (with the naming pass): every supported
// type form, attribute form and namespace form lands in the model as
// model.h describes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace dispatch::gen::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Model parse_ok(const TempDir& dir, const std::string& body, const std::string& name = "api.h",
               const std::vector<std::string>& clang_args = {}) {
  Parsed p = parse(dir, body, name, clang_args);
  EXPECT_THAT(formatted(p.errors), IsEmpty());
  return p.model;
}

const Function& function(const Model& m, const std::string& name) {
  for (const Function& f : m.functions)
    if (f.name == name) return f;
  throw std::runtime_error("no function " + name);
}

const StructDecl& find_struct(const Model& m, const std::string& proto_name) {
  for (const StructDecl& s : m.structs)
    if (s.proto_name == proto_name) return s;
  throw std::runtime_error("no struct " + proto_name);
}

TEST(Frontend, ShopExampleHeader) {
  TempDir dir;
  Parsed p = parse(dir,
                   "namespace shop {\n"
                   "enum class Status { pending, paid, shipped };\n"
                   "struct Item { std::string sku; int32_t qty; double price; };\n"
                   "struct Order { std::string id; int64_t customer; std::vector<Item> items;\n"
                   "               std::optional<std::string> note; Status status;\n"
                   "               std::vector<int64_t> tags; };\n"
                   "[[dispatch::function]] int64_t add(int64_t a, int64_t b);\n"
                   "[[dispatch::function]] Order place_order(const std::vector<Item>& items, std::string customer);\n"
                   "[[dispatch::function(\"charge_v2\")]] void charge(const Order& order);\n"
                   "}\n",
                   "shop/api.h");
  ASSERT_THAT(formatted(p.errors), IsEmpty());
  const Model& m = p.model;
  EXPECT_EQ(m.input, p.path);
  EXPECT_EQ(m.include_name, "api.h");
  EXPECT_EQ(m.stem, "api");
  EXPECT_EQ(m.package, "shop");
  EXPECT_EQ(m.service, "ApiService");
  EXPECT_EQ(m.cpp_namespace, "shop");
  EXPECT_EQ(m.proto_file, "api.proto");
  ASSERT_EQ(m.functions.size(), 3u);

  const Function& add = m.functions[0];
  EXPECT_EQ(add.cpp, "::shop::add");
  EXPECT_EQ(add.cpp_namespace, "shop");
  EXPECT_EQ(add.remote_name, "add");
  EXPECT_EQ(add.request_message, "AddRequest");
  EXPECT_EQ(add.response_message, "AddResponse");
  EXPECT_EQ(add.loc.line, kPreludeLines + 7);
  EXPECT_EQ(add.loc.column, 32u);
  ASSERT_EQ(add.params.size(), 2u);
  EXPECT_EQ(add.params[0].name, "a");
  EXPECT_EQ(add.params[0].type.kind, TypeKind::kInt);
  EXPECT_EQ(add.params[0].type.cpp, "std::int64_t");
  EXPECT_EQ(add.params[0].type.bits, 64u);
  EXPECT_TRUE(add.params[0].type.is_signed);
  EXPECT_FALSE(add.params[0].by_const_ref);
  EXPECT_EQ(add.result.kind, TypeKind::kInt);

  const Function& place = m.functions[1];
  EXPECT_EQ(place.request_message, "PlaceOrderRequest");
  EXPECT_TRUE(place.params[0].by_const_ref);
  EXPECT_EQ(place.params[0].type.kind, TypeKind::kVector);
  EXPECT_EQ(place.params[0].type.cpp, "std::vector<::shop::Item>");
  EXPECT_EQ(place.params[1].type.kind, TypeKind::kString);
  EXPECT_EQ(place.result.kind, TypeKind::kStruct);
  EXPECT_EQ(m.structs.at(place.result.decl).cpp, "::shop::Order");

  const Function& charge = m.functions[2];
  EXPECT_EQ(charge.name, "charge");
  EXPECT_EQ(charge.remote_name, "charge_v2");
  EXPECT_EQ(charge.request_message, "ChargeV2Request");
  EXPECT_EQ(charge.result.kind, TypeKind::kVoid);

  // Dependencies before dependents.
  ASSERT_EQ(m.structs.size(), 2u);
  EXPECT_EQ(m.structs[0].proto_name, "Item");
  EXPECT_EQ(m.structs[1].proto_name, "Order");
  const StructDecl& order = m.structs[1];
  ASSERT_EQ(order.fields.size(), 6u);
  EXPECT_EQ(order.fields[2].name, "items");
  EXPECT_EQ(order.fields[2].number, 3u);
  EXPECT_EQ(order.fields[2].type.args.at(0).decl, 0u);
  EXPECT_EQ(order.fields[3].type.kind, TypeKind::kOptional);
  EXPECT_EQ(order.fields[3].type.cpp, "std::optional<std::string>");
  EXPECT_EQ(order.fields[4].type.kind, TypeKind::kEnum);

  ASSERT_EQ(m.enums.size(), 1u);
  const EnumDecl& status = m.enums[0];
  EXPECT_EQ(status.cpp, "::shop::Status");
  EXPECT_TRUE(status.scoped);
  EXPECT_FALSE(status.synthetic_zero);
  ASSERT_EQ(status.values.size(), 3u);
  EXPECT_EQ(status.values[1].name, "paid");
  EXPECT_EQ(status.values[1].proto_name, "STATUS_PAID");
  EXPECT_EQ(status.values[1].value, 1);
  EXPECT_EQ(status.underlying.cpp, "std::int32_t");

  EXPECT_THAT(m.headers_read, ::testing::Contains(p.path));
  EXPECT_THAT(m.headers_read, ::testing::Contains(::testing::EndsWith("/vector")));
}

TEST(Frontend, IntegersByCanonicalType) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "using Id = std::uint32_t;\n"
                     "typedef Id Alias;\n"
                     "[[dispatch::function]] void f(char c, signed char sc, unsigned char uc, short s,\n"
                     "    unsigned short us, int i, unsigned u, long l, unsigned long ul, long long ll,\n"
                     "    unsigned long long ull, std::int8_t i8, std::uint16_t u16, Alias id, std::size_t n);\n");
  const Function& f = function(m, "f");
  struct Want {
    const char* cpp;
    unsigned bits;
    bool is_signed;
  };
  std::vector<Want> want = {{"char", 8, true},           {"std::int8_t", 8, true},   {"std::uint8_t", 8, false},
                            {"std::int16_t", 16, true},  {"std::uint16_t", 16, false}, {"std::int32_t", 32, true},
                            {"std::uint32_t", 32, false}, {"std::int64_t", 64, true},  {"std::uint64_t", 64, false},
                            {"long long", 64, true},     {"unsigned long long", 64, false},
                            {"std::int8_t", 8, true},    {"std::uint16_t", 16, false}, {"std::uint32_t", 32, false},
                            {"std::uint64_t", 64, false}};
  ASSERT_EQ(f.params.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(f.params[i].name);
    EXPECT_EQ(f.params[i].type.kind, TypeKind::kInt);
    EXPECT_EQ(f.params[i].type.cpp, want[i].cpp);
    EXPECT_EQ(f.params[i].type.bits, want[i].bits);
    EXPECT_EQ(f.params[i].type.is_signed, want[i].is_signed);
  }
}

TEST(Frontend, ScalarsAndStrings) {
  TempDir dir;
  Model m = parse_ok(dir, "[[dispatch::function]] double f(bool b, float x, const std::string& s);\n");
  const Function& f = function(m, "f");
  EXPECT_EQ(f.params[0].type.kind, TypeKind::kBool);
  EXPECT_EQ(f.params[1].type.kind, TypeKind::kFloat);
  EXPECT_EQ(f.params[2].type.kind, TypeKind::kString);
  EXPECT_EQ(f.params[2].type.cpp, "std::string");
  EXPECT_TRUE(f.params[2].by_const_ref);
  EXPECT_EQ(f.result.kind, TypeKind::kDouble);
}

TEST(Frontend, Bytes) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "[[dispatch::function]] std::vector<std::byte> f(std::vector<std::uint8_t> a,\n"
                     "    std::vector<unsigned char> b, std::vector<std::int8_t> c);\n");
  const Function& f = function(m, "f");
  EXPECT_EQ(f.result.kind, TypeKind::kBytes);
  EXPECT_TRUE(f.result.std_byte);
  EXPECT_EQ(f.result.cpp, "std::vector<std::byte>");
  EXPECT_EQ(f.params[0].type.kind, TypeKind::kBytes);
  EXPECT_FALSE(f.params[0].type.std_byte);
  EXPECT_EQ(f.params[0].type.cpp, "std::vector<std::uint8_t>");
  EXPECT_EQ(f.params[1].type.kind, TypeKind::kBytes);
  // Signed bytes are numbers, not bytes.
  EXPECT_EQ(f.params[2].type.kind, TypeKind::kVector);
}

TEST(Frontend, FaasProxiesAreNeitherFunctionsNorInTheService) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "namespace dispatch { template <typename T> class Result {}; }\n"
                     "namespace math {\n"
                     "struct FibRequest { std::int32_t n; };\n"
                     "struct FibReply { std::int64_t value; };\n"
                     "[[dispatch::faas(\"fibonacci.openfaas-fn\")]] FibReply fibonacci(const FibRequest& r);\n"
                     "[[dispatch::faas(\"figlet\")]] dispatch::Result<std::string> render(std::string_view);\n"
                     "[[dispatch::faas(\"nodeinfo\")]] void ping();\n"
                     "}\n");
  EXPECT_THAT(m.functions, IsEmpty());
  ASSERT_EQ(m.faas.size(), 3u);
  EXPECT_EQ(m.package, "math");  // proxies count for the package, as functions do
  const FaasFunction& fib = m.faas[0];
  EXPECT_EQ(fib.cpp, "::math::fibonacci");
  EXPECT_EQ(fib.cpp_namespace, "math");
  EXPECT_EQ(fib.faas_name, "fibonacci.openfaas-fn");
  ASSERT_EQ(fib.params.size(), 1u);
  EXPECT_EQ(fib.params[0].type.kind, TypeKind::kStruct);
  EXPECT_EQ(fib.result.kind, TypeKind::kStruct);
  EXPECT_EQ(find_struct(m, "FibReply").cpp, "::math::FibReply");  // a message of the .proto
  const FaasFunction& render = m.faas[1];
  EXPECT_EQ(render.result.kind, TypeKind::kString);  // dispatch::Result<T> unwrapped
  ASSERT_EQ(render.params.size(), 1u);
  EXPECT_EQ(render.params[0].name, "input");  // unnamed: a name for the proxy
  EXPECT_EQ(render.params[0].view_cpp, "std::string_view");
  EXPECT_TRUE(m.faas[2].params.empty());
  EXPECT_EQ(m.faas[2].result.kind, TypeKind::kVoid);
}

TEST(Frontend, NestedContainers) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "struct Item { int x; };\n"
                     "[[dispatch::function]] void f(std::vector<std::vector<int>> grid,\n"
                     "    std::optional<Item> maybe, std::map<std::string, std::vector<long>> index,\n"
                     "    std::unordered_map<std::int64_t, Item> by_id, std::vector<std::optional<double>> holes,\n"
                     "    std::map<std::uint32_t, std::map<std::string, bool>> nested);\n");
  const Function& f = function(m, "f");
  EXPECT_EQ(f.params[0].type.cpp, "std::vector<std::vector<std::int32_t>>");
  EXPECT_EQ(f.params[0].type.args.at(0).kind, TypeKind::kVector);
  EXPECT_EQ(f.params[1].type.kind, TypeKind::kOptional);
  EXPECT_EQ(f.params[1].type.args.at(0).kind, TypeKind::kStruct);
  EXPECT_EQ(f.params[2].type.kind, TypeKind::kMap);
  EXPECT_FALSE(f.params[2].type.unordered);
  EXPECT_EQ(f.params[2].type.cpp, "std::map<std::string, std::vector<std::int64_t>>");
  EXPECT_EQ(f.params[3].type.kind, TypeKind::kMap);
  EXPECT_TRUE(f.params[3].type.unordered);
  EXPECT_EQ(f.params[3].type.cpp, "std::unordered_map<std::int64_t, ::Item>");
  EXPECT_EQ(f.params[4].type.args.at(0).kind, TypeKind::kOptional);
  EXPECT_EQ(f.params[5].type.args.at(1).kind, TypeKind::kMap);
}

TEST(Frontend, EnumsScopedAndUnscopedKeepValues) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "enum Color : std::uint8_t { kRed = 1, kGreen = 4, kBlue = 9 };\n"
                     "enum class Level : short { low = -1, zero = 0, high = 7 };\n"
                     "[[dispatch::function]] Color f(Level level);\n");
  ASSERT_EQ(m.enums.size(), 2u);
  const EnumDecl& level = m.enums[0];
  EXPECT_EQ(level.cpp, "::Level");
  EXPECT_TRUE(level.scoped);
  EXPECT_EQ(level.underlying.cpp, "std::int16_t");
  EXPECT_FALSE(level.synthetic_zero);
  EXPECT_EQ(level.values[0].value, -1);
  EXPECT_EQ(level.values[0].proto_name, "LEVEL_LOW");
  const EnumDecl& color = m.enums[1];
  EXPECT_FALSE(color.scoped);
  EXPECT_EQ(color.underlying.cpp, "std::uint8_t");
  EXPECT_TRUE(color.synthetic_zero);  // no enumerator is 0
  ASSERT_EQ(color.values.size(), 3u);
  EXPECT_EQ(color.values[2].value, 9);
  EXPECT_EQ(color.values[2].proto_name, "COLOR_K_BLUE");
}

TEST(Frontend, ChronoDurationsAndTimePoints) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "[[dispatch::function]] std::chrono::system_clock::time_point f(\n"
                     "    std::chrono::milliseconds timeout, std::chrono::duration<double> seconds,\n"
                     "    std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds> at);\n");
  const Function& f = function(m, "f");
  const TypeRef& ms = f.params[0].type;
  EXPECT_EQ(ms.kind, TypeKind::kDuration);
  EXPECT_EQ(ms.ratio_num, 1);
  EXPECT_EQ(ms.ratio_den, 1000);
  EXPECT_EQ(ms.args.at(0).cpp, "std::int64_t");
  EXPECT_EQ(ms.cpp, "std::chrono::duration<std::int64_t, std::ratio<1, 1000>>");
  const TypeRef& secs = f.params[1].type;
  EXPECT_EQ(secs.args.at(0).kind, TypeKind::kDouble);
  EXPECT_EQ(secs.ratio_den, 1);
  const TypeRef& at = f.params[2].type;
  EXPECT_EQ(at.kind, TypeKind::kTimestamp);
  EXPECT_EQ(at.args.at(0).ratio_num, 1);
  EXPECT_EQ(at.args.at(0).ratio_den, 1);
  EXPECT_EQ(at.cpp,
            "std::chrono::time_point<std::chrono::system_clock, std::chrono::duration<std::int64_t, std::ratio<1, 1>>>");
  EXPECT_EQ(f.result.kind, TypeKind::kTimestamp);
  EXPECT_EQ(f.result.args.at(0).ratio_den, 1000000000);  // libstdc++'s system_clock ticks in ns
}

TEST(Frontend, StructsFromOtherHeadersNestedAndRecursive) {
  TempDir dir;
  dir.write("types/point.h", "#pragma once\nnamespace geo { struct Point { double x, y; }; }\n");
  Model m = parse_ok(dir,
                     "#include \"types/point.h\"\n"
                     "namespace geo {\n"
                     "struct Shape {\n"
                     "  struct Style { std::string color; };\n"
                     "  enum class Kind { polygon, circle };\n"
                     "  std::vector<Point> points;\n"
                     "  Style style;\n"
                     "  Kind kind;\n"
                     "  std::vector<Shape> children;\n"
                     "  static constexpr int kMax = 4;\n"
                     "  double area() const { return 0; }\n"
                     "};\n"
                     "[[dispatch::function]] Shape make(Point origin);\n"
                     "}\n");
  const StructDecl& shape = find_struct(m, "Shape");
  EXPECT_EQ(shape.cpp, "::geo::Shape");
  ASSERT_EQ(shape.fields.size(), 4u);  // static members and methods are not data
  EXPECT_EQ(shape.fields[3].type.args.at(0).kind, TypeKind::kStruct);
  EXPECT_EQ(&m.structs.at(shape.fields[3].type.args.at(0).decl), &shape);
  const StructDecl& style = find_struct(m, "Shape_Style");
  EXPECT_EQ(style.cpp, "::geo::Shape::Style");
  const StructDecl& point = find_struct(m, "Point");
  EXPECT_THAT(point.loc.file, ::testing::EndsWith("types/point.h"));
  ASSERT_EQ(m.enums.size(), 1u);
  EXPECT_EQ(m.enums[0].proto_name, "Shape_Kind");
  EXPECT_EQ(m.enums[0].values[0].proto_name, "SHAPE_KIND_POLYGON");
  // Every struct comes after the structs it holds by value.
  auto index = [&](const std::string& n) { return &find_struct(m, n) - m.structs.data(); };
  EXPECT_LT(index("Point"), index("Shape"));
  EXPECT_LT(index("Shape_Style"), index("Shape"));
  EXPECT_THAT(m.headers_read, ::testing::Contains(::testing::EndsWith("types/point.h")));
}

TEST(Frontend, Namespaces) {
  TempDir dir;
  Model global = parse_ok(dir, "[[dispatch::function]] void ping();\n", "global.h");
  EXPECT_EQ(global.functions.at(0).cpp, "::ping");
  EXPECT_EQ(global.package, "");
  EXPECT_EQ(global.cpp_namespace, "");

  Model nested = parse_ok(dir,
                          "namespace a::b {\n"
                          "[[dispatch::function]] void one();\n"
                          "inline namespace v1 { [[dispatch::function]] void two(); }\n"
                          "}\n",
                          "nested.h");
  EXPECT_EQ(nested.package, "a.b");  // inline namespaces are not part of it
  EXPECT_EQ(nested.cpp_namespace, "a::b");
  EXPECT_EQ(function(nested, "two").cpp, "::a::b::v1::two");
  EXPECT_EQ(function(nested, "two").cpp_namespace, "a::b");

  Parsed common = parse(dir,
                        "namespace a { namespace b { [[dispatch::function]] void one(); } }\n"
                        "namespace a { namespace c { [[dispatch::function]] void two(); } }\n",
                        "common.h", {}, NamingOptions{std::string("a"), std::nullopt});
  EXPECT_THAT(formatted(common.errors), IsEmpty());
  EXPECT_EQ(common.model.cpp_namespace, "a");  // the innermost one enclosing both
}

TEST(Frontend, AttributeForms) {
  TempDir dir;
  dir.write("other.h", "#pragma once\n[[dispatch::function]] void from_include();\n");
  Model m = parse_ok(dir,
                     "#include \"other.h\"\n"
                     "[[dispatch::function]] void plain();\n"
                     "[[dispatch::function(\"renamed\")]] void named();\n"
                     "[[nodiscard, dispatch::function]] int in_list();\n"
                     "[[dispatch::function(\"first\"), maybe_unused]] void first_in_list();\n"
                     "[[ dispatch :: function ]] void spaced();\n"
                     "[[using dispatch: function]] void using_prefix();\n"
                     "[[dispatch::function]] [[nodiscard]] inline int two_lists() { return 1; }\n"
                     "extern \"C\" { [[dispatch::function]] void c_linkage(); }\n"
                     "#if 0\n"
                     "[[dispatch::function]] void skipped();\n"
                     "#endif\n"
                     "// [[dispatch::function]] void in_a_comment();\n"
                     "void not_annotated(int* p);\n");
  std::vector<std::string> remote;
  for (const Function& f : m.functions) remote.push_back(f.remote_name);
  EXPECT_THAT(remote, ElementsAre("plain", "renamed", "in_list", "first", "spaced", "using_prefix", "two_lists",
                                  "c_linkage"));
}

TEST(Frontend, OneAnnotationForSeveralDeclarators) {
  TempDir dir;
  Model m = parse_ok(dir, "[[dispatch::function]] void f(int a), g(double b);\nvoid h(int* p);\n");
  ASSERT_EQ(m.functions.size(), 2u);
  EXPECT_EQ(m.functions[0].name, "f");
  EXPECT_EQ(m.functions[1].name, "g");
}

TEST(Frontend, RedeclarationAnnotatedTwiceIsOneFunction) {
  TempDir dir;
  Model m = parse_ok(dir, "[[dispatch::function]] void f(int a);\n[[dispatch::function]] void f(int a);\n");
  EXPECT_EQ(m.functions.size(), 1u);
}

TEST(Frontend, ClangArgumentsPassThrough) {
  TempDir dir;
  dir.write("inc/dep.h", "#pragma once\nstruct Dep { int v; };\n");
  Parsed without = parse(dir, "#include \"dep.h\"\n[[dispatch::function]] void f(Dep d);\n");
  EXPECT_FALSE(without.errors.empty());
  Model m = parse_ok(dir,
                     "#include \"dep.h\"\n"
                     "#ifdef WITH_G\n[[dispatch::function]] void g(Dep d);\n#endif\n",
                     "api.h", {"-I" + (dir.path() / "inc").string(), "-DWITH_G=1", "-std=c++20"});
  ASSERT_EQ(m.functions.size(), 1u);
  EXPECT_EQ(m.functions[0].name, "g");
}

// Headers are read as C++20 unless the clang arguments say otherwise: a
// struct with defaulted comparisons and a concept beside it parse as is.
TEST(Frontend, HeadersAreCxx20ByDefault) {
  TempDir dir;
  const std::string body =
      "#include <compare>\n"
      "template <typename T> concept Small = sizeof(T) < 8;\n"
      "struct P {\n"
      "  std::string name;\n"
      "  int n = 3;\n"
      "  auto operator<=>(const P&) const = default;\n"
      "  bool operator==(const P&) const = default;\n"
      "};\n"
      "[[dispatch::function]] P f(P p);\n";
  Model m = parse_ok(dir, body);
  ASSERT_EQ(m.structs.size(), 1u);
  EXPECT_EQ(m.structs[0].fields.size(), 2u);
  EXPECT_FALSE(parse(dir, body, "api17.h", {"-std=c++17"}).errors.empty());
}

// Default arguments are kept as their tokens after '=': through macros,
// braces and commas inside template arguments, and only up to the
// parameter's end.
TEST(Frontend, DefaultArguments) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "#define LIMIT 10\n"
                     "constexpr int kBase = 3;\n"
                     "struct S { int x; std::string s; };\n"
                     "[[dispatch::function]] void f(int a, int b=2, std::string s = \"x, y\",\n"
                     "    const std::vector<int>& v = {}, S st = {1, \"a\"}, int n = LIMIT * kBase,\n"
                     "    std::map<int, int> m = std::map<int, int>{{1, 2}}, int l = LIMIT);\n");
  ASSERT_EQ(m.functions.size(), 1u);
  std::vector<std::string> defaults;
  for (const Parameter& p : m.functions[0].params) defaults.push_back(p.default_arg);
  EXPECT_EQ(defaults, (std::vector<std::string>{"", "2", "\"x, y\"", "{ }", "{ 1 , \"a\" }", "LIMIT * kBase",
                                                "std :: map < int , int > { { 1 , 2 } }", "LIMIT"}));
}

// A view parameter: the stub takes the view, the model's type is what the
// wire carries and the request holds.
TEST(Frontend, ViewParameters) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "struct Item { int n; };\n"
                     "using Text = std::string_view;\n"
                     "[[dispatch::function]] int f(std::string_view a, const Text& b,\n"
                     "    std::span<const std::int64_t> c, std::span<const std::byte> d,\n"
                     "    std::span<const unsigned char> e, const std::span<const Item>& g,\n"
                     "    std::span<const std::vector<std::string>> h, std::string s);\n");
  const Function& f = function(m, "f");
  ASSERT_EQ(f.params.size(), 8u);
  std::vector<std::string> views, owning;
  for (const Parameter& p : f.params) {
    views.push_back(p.view_cpp);
    owning.push_back(p.type.cpp);
  }
  EXPECT_EQ(views, (std::vector<std::string>{"std::string_view", "std::string_view", "std::span<const std::int64_t>",
                                             "std::span<const std::byte>", "std::span<const std::uint8_t>",
                                             "std::span<const ::Item>",
                                             "std::span<const std::vector<std::string>>", ""}));
  EXPECT_EQ(owning, (std::vector<std::string>{"std::string", "std::string", "std::vector<std::int64_t>",
                                              "std::vector<std::byte>", "std::vector<std::uint8_t>",
                                              "std::vector<::Item>", "std::vector<std::vector<std::string>>",
                                              "std::string"}));
  EXPECT_EQ(f.params[0].type.kind, TypeKind::kString);
  EXPECT_EQ(f.params[2].type.kind, TypeKind::kVector);
  EXPECT_EQ(f.params[3].type.kind, TypeKind::kBytes);
  EXPECT_TRUE(f.params[3].type.std_byte);
  EXPECT_EQ(f.params[4].type.kind, TypeKind::kBytes);
  EXPECT_FALSE(f.params[4].type.std_byte);
  EXPECT_EQ(f.params[5].type.args.at(0).kind, TypeKind::kStruct);
}

TEST(Frontend, Sets) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "#include <unordered_set>\n"
                     "enum class E { a, b };\n"
                     "[[dispatch::function]] std::set<E> f(std::set<int> a, const std::unordered_set<std::string>& b,\n"
                     "    std::vector<std::set<bool>> c);\n");
  const Function& f = function(m, "f");
  EXPECT_EQ(f.params[0].type.kind, TypeKind::kVector);
  EXPECT_TRUE(f.params[0].type.set);
  EXPECT_FALSE(f.params[0].type.unordered);
  EXPECT_EQ(f.params[0].type.cpp, "std::set<std::int32_t>");
  EXPECT_TRUE(f.params[1].type.set);
  EXPECT_TRUE(f.params[1].type.unordered);
  EXPECT_EQ(f.params[1].type.cpp, "std::unordered_set<std::string>");
  EXPECT_FALSE(f.params[2].type.set);
  EXPECT_TRUE(f.params[2].type.args.at(0).set);
  EXPECT_EQ(f.result.cpp, "std::set<::E>");
}

TEST(Frontend, Deprecation) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "struct S { int a; [[deprecated(\"use a\")]] int b; [[deprecated]] int c; };\n"
                     "[[dispatch::function]] [[deprecated(\"use g\")]] void f(S s);\n"
                     "[[deprecated]] int g(int x);\n"
                     "[[dispatch::function]] int g(int x);\n"
                     "[[dispatch::function]] int h(int x);\n");
  const Function& f = function(m, "f");
  EXPECT_TRUE(f.deprecated);
  EXPECT_EQ(f.deprecated_message, "use g");
  // Deprecated on an earlier declaration: still deprecated, without a message.
  EXPECT_TRUE(function(m, "g").deprecated);
  EXPECT_EQ(function(m, "g").deprecated_message, "");
  EXPECT_FALSE(function(m, "h").deprecated);
  ASSERT_EQ(m.structs.size(), 1u);
  std::vector<bool> fields;
  for (const Field& field : m.structs[0].fields) fields.push_back(field.deprecated);
  EXPECT_EQ(fields, (std::vector<bool>{false, true, true}));
}

// A function declared as returning dispatch::Workflow<T> is a workflow
// whose result is T (the real header, as users include it).
TEST(Frontend, Workflows) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "#include \"dispatch/workflow/workflow.h\"\n"
                     "struct Receipt { std::string id; std::vector<std::int64_t> lines; };\n"
                     "using Checkout = dispatch::Workflow<Receipt>;\n"
                     "[[dispatch::function]] dispatch::Workflow<Receipt> checkout(const std::string& order);\n"
                     "[[dispatch::function]] Checkout again(std::string_view order);\n"
                     "[[dispatch::function]] dispatch::Workflow<void> tick();\n"
                     "[[dispatch::function]] dispatch::Workflow<std::optional<int>> maybe(int x);\n"
                     "[[dispatch::function]] Receipt plain(int x);\n",
                     "api.h", {"-I" DISPATCH_TEST_RUNTIME_INCLUDE});
  const Function& checkout = function(m, "checkout");
  EXPECT_TRUE(checkout.workflow);
  EXPECT_EQ(checkout.result.kind, TypeKind::kStruct);
  EXPECT_EQ(checkout.result.cpp, "::Receipt");
  ASSERT_EQ(checkout.params.size(), 1u);
  EXPECT_EQ(checkout.params[0].type.kind, TypeKind::kString);
  // Through an alias, and with a view parameter.
  EXPECT_TRUE(function(m, "again").workflow);
  EXPECT_EQ(function(m, "again").result.cpp, "::Receipt");
  EXPECT_EQ(function(m, "again").params[0].view_cpp, "std::string_view");
  EXPECT_TRUE(function(m, "tick").workflow);
  EXPECT_EQ(function(m, "tick").result.kind, TypeKind::kVoid);
  EXPECT_EQ(function(m, "tick").result.cpp, "void");
  EXPECT_EQ(function(m, "maybe").result.cpp, "std::optional<std::int32_t>");
  EXPECT_FALSE(function(m, "plain").workflow);
  EXPECT_EQ(function(m, "plain").result.cpp, "::Receipt");
  // The result's struct is mapped as any result's is.
  ASSERT_EQ(m.structs.size(), 1u);
  EXPECT_EQ(m.structs[0].cpp, "::Receipt");
}

// version = "..." pins a workflow's version: the model carries it as
// written; without it the version is left to the back end (empty).
TEST(Frontend, APinnedWorkflowVersion) {
  TempDir dir;
  Model m = parse_ok(dir,
                     "#include \"dispatch/workflow/workflow.h\"\n"
                     "[[dispatch::function(\"checkout_v2\", version = \"3\")]] dispatch::Workflow<int> checkout();\n"
                     "[[dispatch::function(version = \"2026-12.1\")]] dispatch::Workflow<void> tick();\n"
                     "[[dispatch::function]] dispatch::Workflow<int> unpinned();\n",
                     "api.h", {"-I" DISPATCH_TEST_RUNTIME_INCLUDE});
  EXPECT_EQ(function(m, "checkout").version, "3");
  EXPECT_EQ(function(m, "checkout").remote_name, "checkout_v2");
  EXPECT_EQ(function(m, "tick").version, "2026-12.1");
  EXPECT_EQ(function(m, "tick").remote_name, "tick");
  EXPECT_EQ(function(m, "unpinned").version, "");
}

TEST(Frontend, NoAnnotationsIsAnEmptyService) {
  TempDir dir;
  Model m = parse_ok(dir, "int helper(int* p);\n");
  EXPECT_THAT(m.functions, IsEmpty());
  EXPECT_EQ(m.service, "ApiService");
}

}  // namespace
}  // namespace dispatch::gen::testing
