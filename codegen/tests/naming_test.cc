// The naming pass over hand-built models: case conversion, package and
// service rules, enum value names, and every collision it must report.
#include "naming.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace dispatch::gen::testing {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;

TEST(Naming, PascalCase) {
  EXPECT_EQ(pascal_case("place_order"), "PlaceOrder");
  EXPECT_EQ(pascal_case("api"), "Api");
  EXPECT_EQ(pascal_case("charge_v2"), "ChargeV2");
  EXPECT_EQ(pascal_case("shop-api.v2"), "ShopApiV2");
  EXPECT_EQ(pascal_case("getHTTP"), "GetHTTP");
}

TEST(Naming, UpperSnake) {
  EXPECT_EQ(upper_snake("Status"), "STATUS");
  EXPECT_EQ(upper_snake("OrderStatus"), "ORDER_STATUS");
  EXPECT_EQ(upper_snake("HTTPCode"), "HTTP_CODE");
  EXPECT_EQ(upper_snake("pending"), "PENDING");
  EXPECT_EQ(upper_snake("kRed"), "K_RED");
  EXPECT_EQ(upper_snake("Outer_Inner"), "OUTER_INNER");
  EXPECT_EQ(upper_snake("v2Thing"), "V2_THING");
  EXPECT_EQ(upper_snake("ALREADY_UPPER"), "ALREADY_UPPER");
}

Function fn(const std::string& name, const std::string& ns, unsigned line) {
  Function f;
  f.name = f.remote_name = name;
  f.cpp_namespace = ns;
  f.cpp = "::" + (ns.empty() ? "" : ns + "::") + name;
  f.result.kind = TypeKind::kVoid;
  f.loc = SourceLocation{"api.h", line, 6};
  return f;
}

Model model(std::vector<Function> functions, const std::string& stem = "api") {
  Model m;
  m.input = stem + ".h";
  m.include_name = stem + ".h";
  m.stem = stem;
  m.proto_file = stem + ".proto";
  m.functions = std::move(functions);
  return m;
}

TEST(Naming, PackageServiceMessagesAndNamespace) {
  Model m = model({fn("place_order", "shop::v1", 3), fn("add", "shop::v1", 4)}, "shop_api");
  ASSERT_THAT(assign_names(m, {}), IsEmpty());
  EXPECT_EQ(m.package, "shop.v1");
  EXPECT_EQ(m.service, "ShopApiService");
  EXPECT_EQ(m.cpp_namespace, "shop::v1");
  EXPECT_EQ(m.functions[0].request_message, "PlaceOrderRequest");
  EXPECT_EQ(m.functions[0].response_message, "PlaceOrderResponse");
  EXPECT_EQ(m.include_name, "shop_api.h");
}

TEST(Naming, PackageAndIncludeNameOptions) {
  Model m = model({fn("f", "a::b", 3), fn("g", "a::c", 4)});
  ASSERT_THAT(assign_names(m, NamingOptions{std::string("acme.api"), std::string("acme/api.h")}), IsEmpty());
  EXPECT_EQ(m.package, "acme.api");
  EXPECT_EQ(m.include_name, "acme/api.h");
  EXPECT_EQ(m.cpp_namespace, "a");
}

TEST(Naming, InvalidPackageOption) {
  for (std::string bad : {"", "a..b", "1a", "a-b", ".a"}) {
    Model m = model({fn("f", "", 3)});
    EXPECT_THAT(formatted(assign_names(m, NamingOptions{bad, std::nullopt})),
                Contains("dispatch-gen: error: --package '" + bad +
                         "' is not a proto package name (identifiers joined with '.', e.g. shop.v1)"))
        << bad;
  }
}

TEST(Naming, ServiceNameMustBeAnIdentifier) {
  Model m = model({fn("f", "", 3)}, "3d");
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("dispatch-gen: error: cannot derive a service name from '3d.h' (got '3dService'); rename the "
                       "header so its name starts with a letter"));
}

TEST(Naming, GlobalAndNamespacedFunctionsNeedPackage) {
  Model m = model({fn("f", "", 3), fn("g", "shop", 7)});
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("api.h:7:6: error: function 'g' is in namespace 'shop' but 'f' (api.h:3:6) is in the global "
                       "namespace; one header is one proto package: pass --package (PACKAGE in dispatch_generate) "
                       "or move them into one namespace"));
}

TEST(Naming, RequestNamesCollideAcrossCase) {
  Model m = model({fn("add", "", 3), fn("Add", "", 4)});
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("api.h:4:6: error: proto name 'AddRequest' of the request of 'Add' collides with the request "
                       "of 'add'; rename one of them"));
}

TEST(Naming, EnumValuesArePrefixedAndZeroIsSynthesized) {
  Model m = model({fn("f", "", 3)});
  EnumDecl e;
  e.cpp = "::OrderState";
  e.proto_name = "OrderState";
  e.values = {{"Open", "", 1}, {"closedForGood", "", 2}};
  m.enums.push_back(e);
  ASSERT_THAT(assign_names(m, {}), IsEmpty());
  EXPECT_EQ(m.enums[0].values[0].proto_name, "ORDER_STATE_OPEN");
  EXPECT_EQ(m.enums[0].values[1].proto_name, "ORDER_STATE_CLOSED_FOR_GOOD");
  EXPECT_TRUE(m.enums[0].synthetic_zero);
}

TEST(Naming, EnumValueNamesCollideAcrossEnums) {
  // proto scopes enum values beside their enum, so A_B::C and A::B_C clash.
  Model m = model({fn("f", "", 3)});
  EnumDecl e1;
  e1.cpp = "::A_B";
  e1.proto_name = "A_B";
  e1.values = {{"C", "", 0}};
  e1.loc = {"api.h", 1, 6};
  EnumDecl e2;
  e2.cpp = "::A";
  e2.proto_name = "A";
  e2.values = {{"B_C", "", 0}};
  e2.loc = {"api.h", 2, 6};
  m.enums = {e1, e2};
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("api.h:2:6: error: proto name 'A_B_C' of enumerator 'A::B_C' collides with enumerator "
                       "'A_B::C'; rename one of them"));
}

TEST(Naming, SyntheticZeroCollidesWithAnEnumerator) {
  Model m = model({fn("f", "", 3)});
  EnumDecl e;
  e.cpp = "::E";
  e.proto_name = "E";
  e.values = {{"unspecified", "", 1}};
  e.loc = {"api.h", 1, 6};
  m.enums.push_back(e);
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("api.h:1:6: error: proto name 'E_UNSPECIFIED' of the zero value proto3 needs in 'E' collides "
                       "with enumerator 'E::unspecified'; rename one of them"));
}

TEST(Naming, StructCollidesWithAWrapperMessage) {
  Model m = model({fn("f", "", 3)});
  StructDecl s;
  s.cpp = "::ListInt32";
  s.proto_name = "ListInt32";
  s.loc = {"api.h", 1, 8};
  m.structs.push_back(s);
  Parameter p;
  p.name = "grid";
  p.type.kind = TypeKind::kVector;
  p.type.cpp = "std::vector<std::vector<int>>";
  TypeRef inner;
  inner.kind = TypeKind::kVector;
  inner.cpp = "std::vector<int>";
  TypeRef i32;
  i32.kind = TypeKind::kInt;
  i32.bits = 32;
  i32.is_signed = true;
  inner.args.push_back(i32);
  p.type.args.push_back(inner);
  m.functions[0].params.push_back(p);
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("dispatch-gen: error: proto name 'ListInt32' of the wrapper message for 'std::vector<int>' "
                       "(see docs/annotations.md) collides with struct 'ListInt32'; rename one of them"));
}

TEST(Naming, StructCollidesWithService) {
  Model m = model({fn("f", "", 3)});
  StructDecl s;
  s.cpp = "::ApiService";
  s.proto_name = "ApiService";
  s.loc = {"api.h", 1, 8};
  m.structs.push_back(s);
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("api.h:1:8: error: proto name 'ApiService' of struct 'ApiService' collides with the service "
                       "of api.h; rename one of them"));
}

// The generated C++ puts the stubs in <ns>::remote, named after the
// functions, beside the message structs and <stem>_service() /
// <stem>_file_descriptor(); a function with one of those names would make
// the generated code fail to compile.
TEST(Naming, StubCollidesWithTheGeneratedFunctionsOfTheHeader) {
  Model m = model({fn("api_service", "shop", 3), fn("api_file_descriptor", "shop", 4), fn("shop_service", "shop", 5)});
  std::vector<std::string> errors = formatted(assign_names(m, {}));
  EXPECT_THAT(errors, Contains("api.h:3:6: error: function 'api_service': its stub would be "
                               "'shop::remote::api_service', already the name of the function that lists the "
                               "server half of api.h; rename the function"));
  EXPECT_THAT(errors, Contains("api.h:4:6: error: function 'api_file_descriptor': its stub would be "
                               "'shop::remote::api_file_descriptor', already the name of the function that returns "
                               "the descriptor of api.h; rename the function"));
  EXPECT_EQ(errors.size(), 2u);  // shop_service is not the name of anything generated
}

TEST(Naming, StubCollidesWithAMessageStruct) {
  Model m = model({fn("add", "", 3), fn("AddResponse", "", 4)});
  EXPECT_THAT(formatted(assign_names(m, {})),
              Contains("api.h:4:6: error: function 'AddResponse': its stub would be 'remote::AddResponse', already "
                       "the name of the response struct of 'add'; rename the function"));
}

TEST(Naming, OverloadStubIsNamedByRemoteName) {
  Function a = fn("add", "", 3), b = fn("add", "", 4), c = fn("sub", "", 5);
  a.remote_name = "add_i";
  b.remote_name = "SubRequest";
  Model m = model({a, b, c});
  std::vector<std::string> errors = formatted(assign_names(m, {}));
  EXPECT_THAT(errors, Contains("api.h:4:6: error: function 'add': its stub would be 'remote::SubRequest', already "
                               "the name of the request struct of 'sub'; rename the function's remote name"));
  EXPECT_EQ(errors.size(), 1u);
  EXPECT_EQ(stub_name(m, m.functions[0]), "add_i");
  EXPECT_EQ(stub_name(m, m.functions[2]), "sub");
}

TEST(Naming, NamesOfTheGeneratedNamespaces) {
  Model m = model({fn("remote", "shop", 3), fn("api_wire", "shop", 4), fn("f", "shop", 5)});
  StructDecl s;
  s.cpp = "::shop::remote";
  s.proto_name = "Remote";
  s.loc = {"api.h", 1, 8};
  m.structs.push_back(s);
  EnumDecl e;
  e.cpp = "::shop::api_wire";
  e.proto_name = "ApiWire";
  e.values = {{"a", "", 0}};
  e.loc = {"api.h", 2, 12};
  m.enums.push_back(e);
  StructDecl nested;  // in another namespace: no collision
  nested.cpp = "::shop::f::remote";
  nested.proto_name = "F_Remote";
  m.structs.push_back(nested);
  std::vector<std::string> errors = formatted(assign_names(m, {}));
  EXPECT_THAT(errors, Contains("api.h:3:6: error: function 'remote' collides with namespace 'shop::remote', which "
                               "the generated code declares for the stubs; rename it"));
  EXPECT_THAT(errors, Contains("api.h:4:6: error: function 'api_wire' collides with namespace 'shop::api_wire', "
                               "which the generated code declares for the codecs; rename it"));
  EXPECT_THAT(errors, Contains("api.h:1:8: error: struct 'shop::remote' collides with namespace 'shop::remote', "
                               "which the generated code declares for the stubs; rename it"));
  EXPECT_THAT(errors, Contains("api.h:2:12: error: enum 'shop::api_wire' collides with namespace "
                               "'shop::api_wire', which the generated code declares for the codecs; rename it"));
  EXPECT_EQ(errors.size(), 4u);
}

TEST(Naming, GeneratedNamespacesInTheGlobalNamespaceAndOddStems) {
  Model m = model({fn("remote", "", 3), fn("shop_api_v2_wire", "", 4), fn("shop_api_v2_service", "", 5)},
                  "shop-api.v2");
  std::vector<std::string> errors = formatted(assign_names(m, {}));
  EXPECT_THAT(errors, Contains("api.h:3:6: error: function 'remote' collides with namespace 'remote', which the "
                               "generated code declares for the stubs; rename it"));
  EXPECT_THAT(errors, Contains("api.h:4:6: error: function 'shop_api_v2_wire' collides with namespace "
                               "'shop_api_v2_wire', which the generated code declares for the codecs; rename it"));
  EXPECT_THAT(errors, Contains("api.h:5:6: error: function 'shop_api_v2_service': its stub would be "
                               "'remote::shop_api_v2_service', already the name of the function that lists the "
                               "server half of shop-api.v2.h; rename the function"));
  EXPECT_EQ(cpp_stem("shop-api.v2"), "shop_api_v2");
  EXPECT_EQ(cpp_stem("2fa"), "_2fa");
}

TEST(Naming, WrapperNames) {
  Model m;
  TypeRef s;
  s.kind = TypeKind::kString;
  TypeRef u64;
  u64.kind = TypeKind::kInt;
  u64.bits = 64;
  TypeRef vec;
  vec.kind = TypeKind::kVector;
  vec.args = {u64};
  TypeRef opt;
  opt.kind = TypeKind::kOptional;
  opt.args = {vec};
  TypeRef map;
  map.kind = TypeKind::kMap;
  map.args = {s, opt};
  EXPECT_EQ(type_name(m, vec), "ListUint64");
  EXPECT_EQ(type_name(m, opt), "OptionalListUint64");
  EXPECT_EQ(type_name(m, map), "MapStringOptionalListUint64");
  EXPECT_TRUE(needs_wrapper(opt));
  EXPECT_FALSE(needs_wrapper(s));
}

TEST(IncludeSpelling, IncludeDirsInTheOrderAQuotedIncludeSearchesThem) {
  std::vector<std::string> args = {"-std=c++20", "-I/a", "-isystem", "/s", "-DX=1", "-I", "/b",
                                   "-iquote/q", "-isysroot", "/root", "-I/c"};
  EXPECT_EQ(include_dirs(args), (std::vector<std::string>{"/q", "/a", "/b", "/c", "/s"}));
  EXPECT_EQ(include_dirs({"-I"}), std::vector<std::string>{});  // a flag missing its value names nothing
}

TEST(IncludeSpelling, TheDeepestDirectoryThatHoldsTheHeaderWins) {
  TempDir dir;
  std::string header = dir.write("lib/api/acme/x.h", "#pragma once\n");
  std::string lib = (dir.path() / "lib").string(), api = (dir.path() / "lib" / "api").string();
  for (const auto& dirs : {std::vector<std::string>{lib, api}, std::vector<std::string>{api, lib}}) {
    std::optional<IncludeSpelling> s = include_spelling(header, dirs);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->name, "acme/x.h");
    EXPECT_EQ(s->dir, api);
  }
  EXPECT_EQ(include_spelling(header, {lib})->name, "api/acme/x.h");
  // A directory whose name is a string prefix of the header's does not hold it.
  dir.write("lib/ap/other.h", "");
  EXPECT_FALSE(include_spelling(header, {(dir.path() / "lib" / "ap").string()}));
  EXPECT_FALSE(include_spelling(header, {(dir.path() / "lib" / "api" / "acme" / "x.h").string()}));
  EXPECT_FALSE(include_spelling(header, {}));
  // Spelled alike however the directory is written: "..", a trailing slash, a symlink.
  EXPECT_EQ(include_spelling(header, {(dir.path() / "lib" / ".." / "lib" / "api").string()})->name, "acme/x.h");
  EXPECT_EQ(include_spelling(header, {api + "/"})->name, "acme/x.h");
  std::filesystem::create_directory_symlink(dir.path() / "lib" / "api", dir.path() / "link");
  EXPECT_EQ(include_spelling(header, {(dir.path() / "link").string()})->name, "acme/x.h");
  EXPECT_EQ(include_spelling((dir.path() / "link" / "acme" / "x.h").string(), {api})->name, "acme/x.h");
}

TEST(IncludeSpelling, LookupSearchesTheDirectoriesInOrder) {
  TempDir dir;
  std::string first = dir.write("one/acme/x.h", ""), second = dir.write("two/acme/x.h", "");
  std::string one = (dir.path() / "one").string(), two = (dir.path() / "two").string();
  EXPECT_EQ(include_lookup("acme/x.h", {one, two}), first);
  EXPECT_EQ(include_lookup("acme/x.h", {two, one}), second);
  EXPECT_FALSE(include_lookup("acme/y.h", {one, two}));
  EXPECT_FALSE(include_lookup("acme", {one}));  // a directory is not a header
}

}  // namespace
}  // namespace dispatch::gen::testing
