// One test per construct the front end (and naming pass) rejects: each checks
// the message and the line:column it points at. Snippets follow the
// standard-header prelude of test_util.h, so line 1 is the snippet's first.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace dispatch::gen::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Expects, among the errors for `body`, exactly "<path>:<line>:<col>: error: <message>".
void expect_error(const std::string& body, unsigned line, unsigned col, const std::string& message) {
  TempDir dir;
  Parsed p = parse(dir, body);
  std::string want = p.path + ":" + std::to_string(kPreludeLines + line) + ":" + std::to_string(col) +
                     ": error: " + message;
  EXPECT_THAT(formatted(p.errors), Contains(want));
}

// Expects no error for `body`.
void expect_accepted(const std::string& body) {
  TempDir dir;
  EXPECT_THAT(formatted(parse(dir, body).errors), IsEmpty());
}

TEST(FrontendReject, FunctionPointerParameter) {
  expect_error("[[dispatch::function]] void f(void (*cb)(int));\n", 1, 38,
               "parameter 'cb' has type 'void (*)(int)'; function pointers cannot cross a process boundary");
}

TEST(FrontendReject, PointerParameter) {
  expect_error("[[dispatch::function]] void f(int* p);\n", 1, 36,
               "parameter 'p' has type 'int *'; pointers cannot cross a process boundary; pass the value itself");
}

TEST(FrontendReject, NonConstReference) {
  expect_error("[[dispatch::function]] void f(int& r);\n", 1, 36,
               "parameter 'r' has type 'int &'; non-const references cannot cross a process boundary "
               "(take it by value or const&, and return results)");
}

TEST(FrontendReject, RvalueReference) {
  expect_error("[[dispatch::function]] void f(std::string&& s);\n", 1, 45,
               "parameter 's' has type 'std::string &&'; rvalue references are not supported, take it by "
               "value or const&");
}

TEST(FrontendReject, ReferenceResult) {
  expect_error("[[dispatch::function]] const int& f();\n", 1, 35,
               "result of 'f' has type 'const int &'; references cannot cross a process boundary, return by value");
}

TEST(FrontendReject, UnnamedParameter) {
  expect_error("[[dispatch::function]] void f(int a, double);\n", 1, 44,
               "parameter 2 of 'f' (type 'double') has no name; name it, the name becomes the wire field name");
}

TEST(FrontendReject, DeletedFunction) {
  expect_error("[[dispatch::function]] int d(int a) = delete;\n", 1, 28,
               "function 'd' is deleted (= delete); the server would have nothing to call, so remove "
               "[[dispatch::function]] or the function");
}

TEST(FrontendReject, ConstevalFunction) {
  expect_error("[[dispatch::function]] consteval int ce(int a) { return a; }\n", 1, 38,
               "function 'ce' is consteval, so it cannot be called at run time as the server calls it; make it "
               "constexpr or a plain function");
}

TEST(FrontendReject, OverloadsStubNamedLikeAnotherFunction) {
  TempDir dir;
  Parsed p = parse(dir,
                   "[[dispatch::function(\"p\")]] int o(int a);\n"
                   "[[dispatch::function(\"q\")]] int o(double a);\n"
                   "[[dispatch::function(\"r\")]] int p(int a);\n");
  EXPECT_THAT(formatted(p.errors),
              Contains(p.path + ":15:33: error: function 'p': its stub would be 'remote::p', already the stub of 'o' "
                       "at " + p.path + ":13:33 (an overloaded function's stubs take its remote names); rename one "
                       "of them or give the overload another remote name"));
}

TEST(FrontendReject, UnscopedEnumeratorNamedLikeTheStubsNamespace) {
  expect_error("namespace e {\nenum Where { remote, local };\n[[dispatch::function]] Where f(Where w);\n}\n", 2, 6,
               "enumerator 'remote' of unscoped enum 'e::Where' collides with namespace 'e::remote', which the "
               "generated code declares for the stubs; rename it");
}

TEST(FrontendReject, DefaultArgumentUsingAMacroTheHeaderUndefines) {
  expect_error("#define DEF_LEVEL 3\n"
               "[[dispatch::function]] int f(int a = DEF_LEVEL, int b = 2);\n"
               "#undef DEF_LEVEL\n",
               2, 34,
               "the default argument of parameter 'a' uses macro 'DEF_LEVEL', which the header #undefs at line " +
                   std::to_string(kPreludeLines + 3) +
                   "; the stub's default is evaluated where the macro is gone, so write the value or use a "
                   "constant (inline constexpr) instead");
}

TEST(FrontendReject, DefaultArgumentUsingAMacroStillDefinedIsFine) {
  expect_accepted(
      "#define DEF_LEVEL 3\n"
      "#undef OTHER\n"
      "[[dispatch::function]] int f(int a = DEF_LEVEL);\n");
}

TEST(FrontendReject, Operator) {
  expect_error("struct S { int a; };\n[[dispatch::function]] S operator+(S a, S b);\n", 2, 26,
               "function 'operator+' is an operator, and a remote function needs a name (its stub is an object "
               "named after it); annotate a named function that calls it instead, e.g. [[dispatch::function]] T "
               "plus(const T& a, const T& b) { return a + b; }");
}

TEST(FrontendReject, VariantAlternativesWhoseOneofFieldNamesClash) {
  expect_error("#include <variant>\n"
               "struct Foo { struct Bar { int a; }; };\n"
               "struct FooBar { int c; };\n"
               "[[dispatch::function]] void f(std::variant<Foo::Bar, FooBar> x);\n",
               4, 62,
               "parameter 'x': in 'std::variant<::Foo::Bar, ::FooBar>', alternatives '::Foo::Bar' and '::FooBar' "
               "would both be the oneof field 'foo_bar_value' (their proto names, 'Foo_Bar' and 'FooBar', are alike "
               "in lower snake case); rename one of the types");
}

TEST(FrontendReject, Variadic) {
  expect_error("[[dispatch::function]] void f(int a, ...);\n", 1, 29,
               "function 'f' is variadic; variadic arguments cannot cross a process boundary");
}

TEST(FrontendReject, FunctionTemplate) {
  expect_error("template <class T> [[dispatch::function]] T f(T t);\n", 1, 22,
               "function template 'f' cannot be a dispatch function; only non-template functions have one "
               "wire form");
}

TEST(FrontendReject, MemberFunction) {
  expect_error("struct S {\n  [[dispatch::function]] void m();\n};\n", 2, 5,
               "member function 'm' cannot be a dispatch function; annotate a free function (namespace scope)");
}

TEST(FrontendReject, NotAFunction) {
  expect_error("[[dispatch::function]] extern int counter;\n", 1, 3,
               "[[dispatch::function]] must precede a free function declaration, not 'VarDecl' 'counter'");
}

TEST(FrontendReject, AttributeAfterDeclarator) {
  expect_error("void f [[dispatch::function]] (int a);\n", 1, 10,
               "put [[dispatch::function]] before the declaration of 'f'");
}

TEST(FrontendReject, StaticFunction) {
  expect_error("[[dispatch::function]] static void f() {}\n", 1, 36,
               "function 'f' has internal linkage (static or in an anonymous namespace); a dispatch function "
               "must be callable from the generated server code");
}

TEST(FrontendReject, AnonymousNamespaceFunction) {
  expect_error("namespace {\n[[dispatch::function]] void f();\n}\n", 2, 29,
               "function 'f' has internal linkage (static or in an anonymous namespace); a dispatch function "
               "must be callable from the generated server code");
}

TEST(FrontendReject, RemoteNameNotAnIdentifier) {
  expect_error("[[dispatch::function(\"charge-v2\")]] void f();\n", 1, 22,
               "remote name 'charge-v2' is not an identifier; use letters, digits and '_', not starting with a "
               "digit");
}

TEST(FrontendReject, RemoteNameStartsWithDigit) {
  expect_error("[[dispatch::function(\"2fast\")]] void f();\n", 1, 22,
               "remote name '2fast' is not an identifier; use letters, digits and '_', not starting with a "
               "digit");
}

TEST(FrontendReject, AttributeArgumentNotAString) {
  expect_error("[[dispatch::function(charge)]] void f();\n", 1, 22,
               "[[dispatch::function]] takes a string literal naming the remote function, then keyword arguments: "
               "version = \"...\" pinning a workflow's version, idempotency = \"no_side_effects\" or "
               "\"idempotent\"; e.g. [[dispatch::function(\"charge_v2\")]], "
               "[[dispatch::function(\"checkout\", version = \"3\")]]");
}

TEST(FrontendReject, EventFunctionWithTwoDataParameters) {
  expect_error("[[dispatch::event(\"t\")]] void f(int a, int b);\n", 1, 31,
               "event function 'f' has 2 parameters (2 of data, 0 dispatch::CloudEvent); it takes at most one of "
               "each: the event's data and the whole event (const dispatch::CloudEvent&)");
}

// A stand-in for dispatch/core/cloud_event.h: the walker knows the type by
// its qualified name.
constexpr const char* kCloudEvent = "namespace dispatch { struct CloudEvent { int x; }; }\n";

TEST(FrontendReject, EventFunctionWithTwoWholeEvents) {
  expect_error(std::string(kCloudEvent) +
                   "[[dispatch::event]] void f(const dispatch::CloudEvent& a, const dispatch::CloudEvent& b);\n",
               2, 26,
               "event function 'f' has 2 parameters (0 of data, 2 dispatch::CloudEvent); it takes at most one of "
               "each: the event's data and the whole event (const dispatch::CloudEvent&)");
}

TEST(FrontendReject, WholeEventByNonConstReference) {
  expect_error(std::string(kCloudEvent) + "[[dispatch::event]] void f(dispatch::CloudEvent& e);\n", 2, 50,
               "parameter 'e' has type 'dispatch::CloudEvent &'; the event is the caller's, take it as const "
               "dispatch::CloudEvent& (a reply is returned)");
}

TEST(FrontendReject, WholeEventOutsideAnEventFunction) {
  expect_error(std::string(kCloudEvent) + "[[dispatch::function]] int f(const dispatch::CloudEvent& e);\n", 2, 58,
               "parameter 'e' has type 'const dispatch::CloudEvent &'; a whole CloudEvent is taken (const "
               "dispatch::CloudEvent&) or returned (dispatch::CloudEvent, std::optional<dispatch::CloudEvent>) "
               "only by a [[dispatch::event]] function; anywhere else pass what the event carries as a struct");
}

TEST(FrontendReject, WholeEventsInAContainer) {
  expect_error(std::string(kCloudEvent) + "#include <vector>\n"
                   "[[dispatch::event]] std::vector<dispatch::CloudEvent> f(const dispatch::CloudEvent& e);\n",
               3, 55,
               "result of 'f' has type 'std::vector<dispatch::CloudEvent>'; a whole CloudEvent is taken (const "
               "dispatch::CloudEvent&) or returned (dispatch::CloudEvent, std::optional<dispatch::CloudEvent>) "
               "only by a [[dispatch::event]] function; anywhere else pass what the event carries as a struct");
}

TEST(FrontendReject, FaasProxyOfAScalar) {
  expect_error("[[dispatch::faas(\"fibonacci\")]] long fibonacci(long n);\n", 1, 53,
               "parameter 'n' of FaaS proxy 'fibonacci' has type 'long'; the request body is a std::string (sent "
               "as text/plain), bytes (application/octet-stream) or a struct (application/json): put the value in "
               "a struct");
}

TEST(FrontendReject, FaasProxyWithTwoParameters) {
  expect_error("[[dispatch::faas(\"add\")]] std::string add(std::string a, std::string b);\n", 1, 39,
               "FaaS proxy 'add' has 2 parameters; an OpenFaaS function takes one request body: take one parameter "
               "(a struct holding the values, sent as JSON)");
}

TEST(FrontendReject, FaasProxyReturningAScalar) {
  expect_error("[[dispatch::faas(\"count\")]] int count(const std::string& s);\n", 1, 33,
               "result of FaaS proxy 'count' has type 'int'; the output is read as a std::string (any content "
               "type), bytes, a struct (JSON) or nothing (void): put the value in a struct");
}

TEST(FrontendReject, FaasProxyTakingANonConstReference) {
  expect_error("[[dispatch::faas(\"echo\")]] std::string echo(std::string& s);\n", 1, 58,
               "parameter 's' of FaaS proxy 'echo' has type 'std::string &'; take the request body by value or "
               "const&");
}

TEST(FrontendReject, FaasProxyWithADefaultArgument) {
  expect_error("[[dispatch::faas(\"echo\")]] std::string echo(std::string s = \"x\");\n", 1, 57,
               "parameter 's' of FaaS proxy 'echo' has a default argument; a proxy takes its body explicitly, "
               "leave it out");
}

TEST(FrontendReject, FaasProxyOfAStructWithAPointer) {
  expect_error("struct In { int* p; };\n"
               "[[dispatch::faas(\"f\")]] std::string f(const In& in);\n",
               1, 18, "field 'p' of 'In' has type 'int *'; pointers cannot cross a process boundary; pass the "
                      "value itself");
}

TEST(FrontendReject, FaasProxyAnnotatedAgainWithAnotherFunction) {
  TempDir dir;
  Parsed p = parse(dir,
                   "[[dispatch::faas(\"a\")]] std::string f(const std::string& s);\n"
                   "[[dispatch::faas(\"b\")]] std::string f(const std::string& s);\n");
  EXPECT_THAT(formatted(p.errors),
              Contains(HasSubstr(":" + std::to_string(kPreludeLines + 2) +
                                 ":3: error: FaaS proxy 'f' is annotated again with FaaS function 'b'; it was 'a' "
                                 "at ")));
}

TEST(FrontendReject, FaasProxyOverloaded) {
  TempDir dir;
  Parsed p = parse(dir,
                   "[[dispatch::faas(\"a\")]] std::string f(const std::string& s);\n"
                   "[[dispatch::faas(\"b\")]] std::string f(const std::vector<std::byte>& s);\n");
  EXPECT_THAT(formatted(p.errors),
              Contains(HasSubstr(":" + std::to_string(kPreludeLines + 2) +
                                 ":37: error: FaaS proxy 'f' overloads the proxy at ")));
}

TEST(FrontendReject, FaasProxyNamespaceTaken) {
  expect_error("namespace m {\n"
               "[[dispatch::faas(\"x\")]] std::string f(const std::string& s);\n"
               "[[dispatch::function]] int faas(int a);\n"
               "}\n",
               3, 28,
               "function 'faas' collides with namespace 'm::faas', which the generated code declares for the FaaS "
               "proxies; rename it");
}

TEST(FrontendReject, MisspelledAttribute) {
  expect_error("[[dispatch::functon]] void f();\n", 1, 13,
               "unknown attribute 'dispatch::functon'; did you mean 'dispatch::function'?");
}

TEST(FrontendReject, AttributeInAMacro) {
  // Not silently applied to whatever follows the #define.
  TempDir dir;
  Parsed p = parse(dir,
                   "#define REMOTE \\\n  [[dispatch::function]]\n"
                   "void helper(int* p);\n"
                   "REMOTE void f();\n");
  EXPECT_EQ(formatted(p.errors),
            std::vector<std::string>{p.path + ":" + std::to_string(kPreludeLines + 2) +
                                     ":5: error: [[dispatch::function]] inside a macro is not recognised "
                                     "(dispatch-gen reads the header's own tokens); write the attribute out "
                                     "before each function"});
}

TEST(FrontendReject, TwoFunctionsOneRemoteName) {
  TempDir dir;
  Parsed p = parse(dir,
                   "[[dispatch::function(\"pay\")]] void f();\n"
                   "[[dispatch::function(\"pay\")]] void g();\n");
  std::string first = p.path + ":" + std::to_string(kPreludeLines + 1) + ":36";
  EXPECT_THAT(formatted(p.errors),
              Contains(p.path + ":" + std::to_string(kPreludeLines + 2) +
                       ":36: error: remote name 'pay' of 'g' is already used by 'f' at " + first +
                       "; two functions cannot share one remote name"));
}

TEST(FrontendReject, OverloadsWithoutRemoteNames) {
  TempDir dir;
  Parsed p = parse(dir,
                   "[[dispatch::function]] void f(int a);\n"
                   "[[dispatch::function]] void f(double a);\n");
  EXPECT_THAT(formatted(p.errors),
              Contains(p.path + ":" + std::to_string(kPreludeLines + 2) + ":29: error: 'f' is overloaded (other at " +
                       p.path + ":" + std::to_string(kPreludeLines + 1) +
                       ":29); give each overload its own remote name with [[dispatch::function(\"name\")]]"));
}

TEST(FrontendReject, OverloadsWithOwnRemoteNamesAreFine) {
  TempDir dir;
  Parsed p = parse(dir,
                   "[[dispatch::function(\"f_int\")]] void f(int a);\n"
                   "[[dispatch::function(\"f_double\")]] void f(double a);\n");
  EXPECT_THAT(formatted(p.errors), IsEmpty());
  ASSERT_EQ(p.model.functions.size(), 2u);
}

TEST(FrontendReject, Union) {
  expect_error("union U { int a; float b; };\n[[dispatch::function]] void f(U u);\n", 2, 33,
               "parameter 'u' has type 'U'; unions cannot cross a process boundary; use a struct");
}

TEST(FrontendReject, PrivateMember) {
  expect_error("class Account { public: int id; private: long secret; };\n"
               "[[dispatch::function]] void f(Account a);\n",
               1, 47,
               "field 'secret' of 'Account' is private; only aggregates with public data members can cross a "
               "process boundary");
}

TEST(FrontendReject, ProtectedMember) {
  expect_error("struct Account { protected: int secret; };\n[[dispatch::function]] void f(Account a);\n", 1, 33,
               "field 'secret' of 'Account' is protected; only aggregates with public data members can cross a "
               "process boundary");
}

TEST(FrontendReject, BaseClass) {
  expect_error("struct Base { int a; };\nstruct Derived : Base { int b; };\n"
               "[[dispatch::function]] void f(Derived d);\n",
               2, 18,
               "struct 'Derived' has base class 'Base'; only structs without bases can cross a process boundary "
               "(make it a member)");
}

TEST(FrontendReject, UserConstructor) {
  expect_error("struct P {\n  P(int x) : x(x) {}\n  int x;\n};\n[[dispatch::function]] void f(P p);\n", 2, 3,
               "struct 'P' declares a constructor; only aggregates with public data members can cross a process "
               "boundary");
}

TEST(FrontendReject, VirtualFunction) {
  expect_error("struct P {\n  virtual void g();\n  int x;\n};\n[[dispatch::function]] void f(P p);\n", 2, 16,
               "struct 'P' has virtual function 'g'; only aggregates with public data members can cross a "
               "process boundary");
}

TEST(FrontendReject, ClassTemplateSpecialization) {
  expect_error("template <class T> struct Box { T v; };\n[[dispatch::function]] void f(Box<int> b);\n", 2, 40,
               "parameter 'b' has type 'Box<int>'; 'Box<int>' is a class template specialization; only plain "
               "structs are supported");
}

TEST(FrontendReject, IncompleteType) {
  expect_error("struct Later;\n[[dispatch::function]] void f(const Later& l);\n", 2, 44,
               "parameter 'l' has type 'const Later &'; 'Later' is an incomplete type; include its definition");
}

TEST(FrontendReject, MapKeyNotIntegerOrString) {
  expect_error("[[dispatch::function]] void f(std::map<double, int> m);\n", 1, 53,
               "parameter 'm' has type 'std::map<double, int>'; map keys must be integers, bool or std::string, "
               "as proto's (key type 'double')");
}

TEST(FrontendReject, MapWithCustomComparator) {
  expect_error("[[dispatch::function]] void f(std::map<std::string, int, std::less<>> m);\n", 1, 71,
               "parameter 'm' has type 'std::map<std::string, int, std::less<>>'; 'std::map' with a custom "
               "comparator or allocator is not supported; generated code uses the default one");
}

TEST(FrontendReject, UnorderedMapWithCustomHash) {
  expect_error("struct H { size_t operator()(int) const; };\n"
               "[[dispatch::function]] void f(std::unordered_map<int, int, H> m);\n",
               2, 63,
               "parameter 'm' has type 'std::unordered_map<int, int, H>'; 'std::unordered_map' with a custom "
               "hash, equality or allocator is not supported; generated code uses the default one");
}

TEST(FrontendReject, NestedOptional) {
  expect_error("[[dispatch::function]] void f(std::optional<std::optional<int>> o);\n", 1, 65,
               "parameter 'o' has type 'std::optional<std::optional<int>>'; std::optional<std::optional<T>> has "
               "no distinct wire form; use one std::optional");
}

TEST(FrontendReject, UnsupportedStandardType) {
  expect_error("[[dispatch::function]] void f(std::multiset<int> s);\n", 1, 50,
               "parameter 's' has type 'std::multiset<int>'; 'std::multiset' is not supported (see "
               "docs/annotations.md for the supported types)");
}

TEST(FrontendReject, SetOfStructsOrFloats) {
  expect_error("struct P { int x; };\nbool operator<(const P&, const P&);\n"
               "[[dispatch::function]] void f(std::set<P> s);\n",
               3, 43,
               "parameter 's' has type 'std::set<P>'; set elements must be integers, bool, enums or std::string "
               "(element type '::P'); use a std::vector");
  expect_error("[[dispatch::function]] void f(std::set<double> s);\n", 1, 48,
               "parameter 's' has type 'std::set<double>'; set elements must be integers, bool, enums or "
               "std::string (element type 'double'); use a std::vector");
}

TEST(FrontendReject, VariantWithMonostate) {
  expect_error("#include <variant>\n[[dispatch::function]] void f(std::variant<std::monostate, int> v);\n", 2, 65,
               "parameter 'v' has type 'std::variant<std::monostate, int>'; std::monostate has no wire form; for "
               "a value that may be absent use std::optional<std::variant<...>>");
}

TEST(FrontendReject, VariantAlternativesOfOneWireType) {
  expect_error("#include <variant>\n"
               "struct S { std::variant<std::vector<std::byte>, std::vector<std::uint8_t>> blob; };\n"
               "[[dispatch::function]] void f(S s);\n",
               2, 76,
               "field 'blob' of 'S': in 'std::variant<std::vector<std::byte>, std::vector<std::uint8_t>>', "
               "alternatives 'std::vector<std::byte>' and 'std::vector<std::uint8_t>' have one wire type (Bytes), "
               "so a decoded value could not say which it holds; keep one of them");
}

// Two different types whose wrapper messages would have one name: the error
// points at the second use, names both types and where the first is used,
// and says which user type to rename.
void expect_wrapper_clash(const std::string& body, unsigned line, unsigned col, const std::string& before,
                          unsigned other_line, unsigned other_col, const std::string& after) {
  TempDir dir;
  Parsed p = parse(dir, body);
  auto at = [&](unsigned l, unsigned c) {
    return p.path + ":" + std::to_string(kPreludeLines + l) + ":" + std::to_string(c);
  };
  EXPECT_THAT(formatted(p.errors), Contains(at(line, col) + ": error: " + before + " (" + at(other_line, other_col) +
                                            "), a different type; wrapper messages are named after the types they "
                                            "hold (docs/annotations.md, \"Wrapper messages\"): " + after));
}

TEST(FrontendReject, UserStructNamedLikeABuiltInInAWrapperName) {
  expect_wrapper_clash("struct Timestamp { std::int64_t millis; };\n"
                       "struct Log { std::vector<std::optional<Timestamp>> mine;\n"
                       "             std::vector<std::optional<std::chrono::system_clock::time_point>> theirs; };\n"
                       "[[dispatch::function]] void f(Log l);\n",
                       3, 80,
                       "field 'theirs' of 'Log' needs the wrapper message 'OptionalTimestamp' for "
                       "'std::optional<std::chrono::time_point<std::chrono::system_clock, "
                       "std::chrono::duration<std::int64_t, std::ratio<1, 1000000000>>>>', but that is also the "
                       "wrapper message's name for 'std::optional<::Timestamp>'",
                       2, 52, "rename struct 'Timestamp' so the two names differ");
}

TEST(FrontendReject, UserEnumNamedLikeABuiltInInAWrapperName) {
  expect_wrapper_clash(
      "enum class Bool { no, yes };\n"
      "[[dispatch::function]] void f(std::vector<std::vector<Bool>> a, std::vector<std::vector<bool>> b);\n",
      2, 96,
      "parameter 'b' of 'f' needs the wrapper message 'ListBool' for 'std::vector<bool>', but that is also the "
      "wrapper message's name for 'std::vector<::Bool>'",
      2, 62, "rename enum 'Bool' so the two names differ");
}

TEST(FrontendReject, UserStructNamedLikeAVariantsAlternatives) {
  expect_wrapper_clash(
      "#include <variant>\n"
      "struct Int32String { int r; };\n"
      "[[dispatch::function]] void f(std::variant<Int32String> a, std::variant<int, std::string> b);\n",
      3, 91,
      "parameter 'b' of 'f' needs the wrapper message 'VariantInt32String' for 'std::variant<std::int32_t, "
      "std::string>', but that is also the wrapper message's name for 'std::variant<::Int32String>'",
      3, 57, "rename struct 'Int32String' so the two names differ");
}

TEST(FrontendReject, TypesOfOneWireFormShareAWrapperMessage) {
  expect_accepted(
      "[[dispatch::function]] void f(std::vector<std::vector<std::int8_t>> a, "
      "std::vector<std::set<int>> b, std::vector<std::optional<std::chrono::seconds>> c, "
      "std::vector<std::optional<std::chrono::milliseconds>> d);\n");
}

TEST(FrontendReject, SetWithCustomComparator) {
  expect_error("[[dispatch::function]] void f(std::set<int, std::greater<int>> s);\n", 1, 64,
               "parameter 's' has type 'std::set<int, std::greater<int>>'; 'std::set' with a custom comparator "
               "or allocator is not supported; generated code uses the default one");
}

// Views are parameters only; everything that holds a value must own it.
TEST(FrontendReject, ViewField) {
  expect_error("struct S { std::string_view name; };\n[[dispatch::function]] void f(S s);\n", 1, 29,
               "field 'name' of 'S' has type 'std::string_view'; a view is accepted only as a parameter's own "
               "type (the function gets a view of the decoded value); a field, a result or an element must own "
               "its data: use std::string");
}

TEST(FrontendReject, ViewResult) {
  expect_error("[[dispatch::function]] std::span<const int> f(int a);\n", 1, 45,
               "result of 'f' has type 'std::span<const int>'; a view is accepted only as a parameter's own "
               "type (the function gets a view of the decoded value); a field, a result or an element must own "
               "its data: use std::vector");
}

TEST(FrontendReject, ViewElement) {
  expect_error("[[dispatch::function]] void f(std::optional<std::string_view> s);\n", 1, 63,
               "parameter 's' has type 'std::optional<std::string_view>'; a view is accepted only as a "
               "parameter's own type (the function gets a view of the decoded value); a field, a result or an "
               "element must own its data: use std::string");
}

TEST(FrontendReject, SpanOfMutableElements) {
  expect_error("[[dispatch::function]] void f(std::span<int> out);\n", 1, 46,
               "parameter 'out' has type 'std::span<int>'; a std::span of non-const elements is an "
               "out-parameter, and results do not travel back through parameters; take std::span<const T>");
}

TEST(FrontendReject, SpanWithFixedExtent) {
  expect_error("[[dispatch::function]] void f(std::span<const int, 3> xyz);\n", 1, 55,
               "parameter 'xyz' has type 'std::span<const int, 3>'; a std::span with a fixed extent is not "
               "supported (a decoded list has any length); take std::span<const T>");
}

TEST(FrontendReject, SpanOfBool) {
  expect_error("[[dispatch::function]] void f(std::span<const bool> bits);\n", 1, 53,
               "parameter 'bits' has type 'std::span<const bool>'; std::span<const bool> cannot view the "
               "std::vector<bool> the server decodes into; take const std::vector<bool>&");
}

TEST(FrontendReject, SpanOfPointers) {
  expect_error("[[dispatch::function]] void f(std::span<const int*> ps);\n", 1, 53,
               "parameter 'ps' has type 'std::span<const int *>'; pointers cannot cross a process boundary; "
               "pass the value itself");
}

TEST(FrontendReject, WideStringView) {
  expect_error("[[dispatch::function]] void f(std::wstring_view w);\n", 1, 49,
               "parameter 'w' has type 'std::wstring_view'; only std::string_view is supported among the string "
               "views");
}

TEST(FrontendReject, StdByteAlone) {
  expect_error("[[dispatch::function]] void f(std::byte b);\n", 1, 41,
               "parameter 'b' has type 'std::byte'; std::byte alone is not supported; use std::uint8_t");
}

TEST(FrontendReject, LongDouble) {
  expect_error("[[dispatch::function]] void f(long double d);\n", 1, 43,
               "parameter 'd' has type 'long double'; long double has no wire form, use double");
}

TEST(FrontendReject, WideCharacter) {
  expect_error("[[dispatch::function]] void f(wchar_t c);\n", 1, 39,
               "parameter 'c' has type 'wchar_t'; wide character types have no wire form; use an integer type or "
               "std::string");
}

TEST(FrontendReject, CArrayField) {
  expect_error("struct S { int xs[4]; };\n[[dispatch::function]] void f(S s);\n", 1, 16,
               "field 'xs' of 'S' has type 'int[4]'; C arrays are not supported; use std::vector");
}

TEST(FrontendReject, PointerField) {
  expect_error("struct S { const char* name; };\n[[dispatch::function]] S f();\n", 1, 24,
               "field 'name' of 'S' has type 'const char *'; pointers cannot cross a process boundary; pass the "
               "value itself");
}

TEST(FrontendReject, ConstField) {
  expect_error("struct S { const int x; };\n[[dispatch::function]] void f(S s);\n", 1, 22,
               "field 'x' of 'S' has type 'const int'; const fields cannot be decoded into; drop the const");
}

TEST(FrontendReject, BitField) {
  expect_error("struct S { int x : 3; };\n[[dispatch::function]] void f(S s);\n", 1, 16,
               "field 'x' of 'S' has type 'int'; bit-fields are not supported; use a whole integer");
}

TEST(FrontendReject, AnonymousUnionMember) {
  expect_error("struct S { union { int a; float b; }; };\n[[dispatch::function]] void f(S s);\n", 1, 12,
               "struct 'S' has an anonymous union member; name the member and its type");
}

TEST(FrontendReject, TypeInAnonymousNamespace) {
  expect_error("namespace { struct Hidden { int x; }; }\n[[dispatch::function]] void f(Hidden h);\n", 2, 38,
               "parameter 'h' has type '(anonymous namespace)::Hidden'; struct 'Hidden' is in an anonymous "
               "namespace, which generated code cannot name");
}

TEST(FrontendReject, PrivateNestedType) {
  expect_error("class Outer { struct In { int x; }; public: using T = In; };\n"
               "[[dispatch::function]] void f(Outer::T t);\n",
               2, 40,
               "parameter 't' has type 'Outer::T'; struct 'Outer::In' is a non-public nested type, which "
               "generated code cannot name");
}

TEST(FrontendReject, EnumValueTooLarge) {
  expect_error("enum class Big : long { huge = 5000000000 };\n[[dispatch::function]] void f(Big b);\n", 1, 25,
               "enumerator 'huge' of 'Big' does not fit in 32 bits signed, the range of proto enums");
}

TEST(FrontendReject, TimePointOfAnotherClock) {
  expect_error("[[dispatch::function]] void f(std::chrono::steady_clock::time_point t);\n", 1, 69,
               "parameter 't' has type 'std::chrono::steady_clock::time_point'; only std::chrono::system_clock "
               "time points have a wire form (google.protobuf.Timestamp)");
}

TEST(FrontendReject, NegativeDurationPeriod) {
  expect_error("[[dispatch::function]] void f(std::chrono::duration<int, std::ratio<-1, 2>> d);\n", 1, 77,
               "parameter 'd' has type 'std::chrono::duration<int, std::ratio<-1, 2>>'; a duration's period must be "
               "positive");
}

TEST(FrontendReject, ClangErrorIsReportedAsClangSaysIt) {
  expect_error("[[dispatch::function]] void f(Undeclared u);\n", 1, 31, "unknown type name 'Undeclared'");
}

TEST(FrontendReject, MissingHeaderFile) {
  FrontendResult r = parse_header("/nonexistent/dir/api.h", {});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(format_diagnostic(r.errors[0]),
            "dispatch-gen: error: cannot read header '/nonexistent/dir/api.h': no such file");
}

TEST(FrontendReject, ClangArgumentsClangRejects) {
  TempDir dir;
  std::string path = dir.write("api.h", "[[dispatch::function]] void f();\n");
  FrontendResult unknown = parse_header(path, {"-fno-such-flag"});
  EXPECT_THAT(formatted(unknown.errors),
              ::testing::ElementsAre("dispatch-gen: error: unknown argument: '-fno-such-flag'"));
  // No translation unit at all: the arguments are shown.
  FrontendResult r = parse_header(path, {"-std=c++99"});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(format_diagnostic(r.errors[0]), ::testing::StartsWith("dispatch-gen: error: clang could not parse '" +
                                                                     path + "'"));
  EXPECT_THAT(format_diagnostic(r.errors[0]), ::testing::EndsWith(" -std=c++99"));
}

TEST(FrontendReject, EveryErrorIsReported) {
  TempDir dir;
  Parsed p = parse(dir,
                   "struct S { int* p; };\n"
                   "[[dispatch::function]] void f(int* a, S s);\n"
                   "[[dispatch::function]] void g(float& b);\n");
  std::vector<std::string> errors = formatted(p.errors);
  EXPECT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
  EXPECT_THAT(errors, Contains(HasSubstr("field 'p' of 'S'")));
  EXPECT_THAT(errors, Contains(HasSubstr("parameter 'a'")));
  EXPECT_THAT(errors, Contains(HasSubstr("parameter 'b'")));
}

TEST(FrontendReject, FunctionsInDifferentNamespacesNeedPackage) {
  TempDir dir;
  Parsed p = parse(dir,
                   "namespace a { [[dispatch::function]] void f(); }\n"
                   "namespace b { [[dispatch::function]] void g(); }\n");
  EXPECT_THAT(formatted(p.errors),
              Contains(p.path + ":" + std::to_string(kPreludeLines + 2) +
                       ":43: error: function 'g' is in namespace 'b' but 'f' (" + p.path + ":" +
                       std::to_string(kPreludeLines + 1) +
                       ":43) is in 'a'; one header is one proto package: pass --package (PACKAGE in "
                       "dispatch_generate) or move them into one namespace"));
  Parsed with_package = parse(dir,
                              "namespace a { [[dispatch::function]] void f(); }\n"
                              "namespace b { [[dispatch::function]] void g(); }\n",
                              "api2.h", {}, NamingOptions{std::string("ab.v1"), std::nullopt});
  EXPECT_THAT(formatted(with_package.errors), IsEmpty());
  EXPECT_EQ(with_package.model.package, "ab.v1");
  EXPECT_EQ(with_package.model.cpp_namespace, "");
}

TEST(FrontendReject, StructNameCollidesWithRequestMessage) {
  TempDir dir;
  Parsed p = parse(dir,
                   "struct AddRequest { int x; };\n"
                   "[[dispatch::function]] void add(AddRequest r);\n");
  EXPECT_THAT(formatted(p.errors),
              Contains(p.path + ":" + std::to_string(kPreludeLines + 2) +
                       ":29: error: proto name 'AddRequest' of the request of 'add' collides with struct "
                       "'AddRequest'; rename one of them"));
}

// The generated C++ declares shop::remote, shop::api_wire and
// shop::remote::api_service(); user names that would take them are refused
// with the name, not left to fail in the generated code.
TEST(FrontendReject, NamesTheGeneratedCodeDeclares) {
  TempDir dir;
  Parsed p = parse(dir,
                   "namespace shop {\n"
                   "enum class remote { a };\n"
                   "[[dispatch::function]] void api_service(remote r);\n"
                   "[[dispatch::function]] void api_wire();\n"
                   "}\n");
  auto at = [&](unsigned line) { return p.path + ":" + std::to_string(kPreludeLines + line); };
  EXPECT_THAT(formatted(p.errors),
              Contains(at(2) + ":12: error: enum 'shop::remote' collides with namespace 'shop::remote', which the "
                       "generated code declares for the stubs; rename it"));
  EXPECT_THAT(formatted(p.errors),
              Contains(at(3) + ":29: error: function 'api_service': its stub would be 'shop::remote::api_service', "
                       "already the name of the function that lists the server half of " + p.path +
                       "; rename the function"));
  EXPECT_THAT(formatted(p.errors),
              Contains(at(4) + ":29: error: function 'api_wire' collides with namespace 'shop::api_wire', which the "
                       "generated code declares for the codecs; rename it"));
}

// A workflow's result T is checked as any result is, and said to be the
// workflow's; a Workflow anywhere but as the declared result has no wire form.
void expect_workflow_error(const std::string& body, unsigned line, unsigned col, const std::string& message) {
  TempDir dir;
  Parsed p = parse(dir, "#include \"dispatch/workflow/workflow.h\"\n" + body, "api.h",
                   {"-I" DISPATCH_TEST_RUNTIME_INCLUDE});
  std::string want = p.path + ":" + std::to_string(kPreludeLines + 1 + line) + ":" + std::to_string(col) +
                     ": error: " + message;
  EXPECT_THAT(formatted(p.errors), Contains(want));
}

// A pinned version is a workflow's only: on any other function it is an
// error at the version, saying what the function returns.
TEST(FrontendReject, AVersionOnAFunctionThatIsNotAWorkflow) {
  expect_workflow_error("[[dispatch::function(version = \"3\")]] int f();\n", 1, 32,
                        "function 'f' is not a workflow (it returns 'int'); version = \"3\" pins a workflow's "
                        "version (docs/workflows.md), leave it out");
  expect_workflow_error("[[dispatch::function(\"g2\", version = \"3\")]] void g();\n", 1, 38,
                        "function 'g' is not a workflow (it returns 'void'); version = \"3\" pins a workflow's "
                        "version (docs/workflows.md), leave it out");
}

// An idempotency is a plain function's: a workflow runs only through a
// scheduler, a stateful function's calls change its state.
TEST(FrontendReject, AnIdempotencyOnAWorkflow) {
  expect_workflow_error("[[dispatch::function(idempotency = \"no_side_effects\")]] dispatch::Workflow<int> f();\n",
                        1, 36,
                        "function 'f' is a workflow, which runs only through a scheduler; idempotency is for plain "
                        "functions, leave it out");
}

TEST(FrontendReject, AWorkflowAnnotatedAgainWithAnotherVersion) {
  TempDir dir;
  Parsed p = parse(dir,
                   "#include \"dispatch/workflow/workflow.h\"\n"
                   "[[dispatch::function(version = \"3\")]] dispatch::Workflow<int> f();\n"
                   "[[dispatch::function(version = \"4\")]] dispatch::Workflow<int> f();\n",
                   "api.h", {"-I" DISPATCH_TEST_RUNTIME_INCLUDE});
  EXPECT_THAT(formatted(p.errors),
              Contains(p.path + ":" + std::to_string(kPreludeLines + 3) +
                       ":32: error: function 'f' is annotated again with version \"4\"; it was version \"3\" at " +
                       p.path + ":" + std::to_string(kPreludeLines + 2)));
}

TEST(FrontendReject, WorkflowOfAPointer) {
  expect_workflow_error("[[dispatch::function]] dispatch::Workflow<int*> f();\n", 1, 49,
                        "result of workflow 'f' has type 'int *'; pointers cannot cross a process boundary; pass "
                        "the value itself");
}

TEST(FrontendReject, WorkflowOfAReference) {
  expect_workflow_error("[[dispatch::function]] dispatch::Workflow<const int&> f();\n", 1, 55,
                        "result of workflow 'f' has type 'const int &'; references cannot cross a process "
                        "boundary, return by value");
}

TEST(FrontendReject, WorkflowOfAWorkflow) {
  expect_workflow_error("[[dispatch::function]] dispatch::Workflow<dispatch::Workflow<int>> f();\n", 1, 68,
                        "result of workflow 'f' has type 'dispatch::Workflow<int>'; a dispatch::Workflow has no "
                        "wire form; it is only ever a function's declared result, which makes the function a "
                        "workflow (docs/workflows.md)");
}

TEST(FrontendReject, WorkflowParameter) {
  expect_workflow_error("[[dispatch::function]] void f(dispatch::Workflow<int> w);\n", 1, 55,
                        "parameter 'w' has type 'dispatch::Workflow<int>'; a dispatch::Workflow has no wire "
                        "form; it is only ever a function's declared result, which makes the function a "
                        "workflow (docs/workflows.md)");
}

// A workflow needs C++20: a header declaring one, read as C++17 (a C++17
// target's dispatch_generate()), says so.
TEST(FrontendReject, WorkflowUnderCxx17) {
  TempDir dir;
  Parsed p = parse(dir,
                   "#include \"dispatch/workflow/workflow.h\"\n"
                   "[[dispatch::function]] dispatch::Workflow<int> f();\n",
                   "api.h", {"-std=c++17", "-I" DISPATCH_TEST_RUNTIME_INCLUDE});
  EXPECT_THAT(formatted(p.errors),
              Contains(HasSubstr("dispatch/workflow/workflow.h needs C++20 (coroutines): compile the target that "
                                 "declares workflows with -std=c++20")));
  EXPECT_THAT(p.model.functions, IsEmpty());
}

TEST(FrontendReject, EventWorkflow) {
  expect_workflow_error("[[dispatch::event(\"order.placed\")]] dispatch::Workflow<int> f(int n);\n", 1, 61,
                        "event function 'f' is a workflow (it returns 'dispatch::Workflow<int>'); an event is "
                        "delivered to its function directly, and a workflow runs only through a scheduler: let "
                        "the event function dispatch the workflow");
}

}  // namespace
}  // namespace dispatch::gen::testing

namespace dispatch::gen::testing {
namespace {

// A stateful function's header includes dispatch/stateful/context.h; the
// error is the one at `line` (of `body`) that ends with `message`.
void expect_stateful_error(const std::string& body, unsigned line, const std::string& message) {
  TempDir dir;
  Parsed p = parse(dir, "#include \"dispatch/stateful/context.h\"\n" + body, "api.h",
                   {"-I" DISPATCH_TEST_RUNTIME_INCLUDE});
  const std::string at = p.path + ":" + std::to_string(kPreludeLines + 1 + line) + ":";
  bool found = false;
  for (const std::string& e : formatted(p.errors)) {
    found = found || (e.rfind(at, 0) == 0 && e.size() >= message.size() &&
                      e.compare(e.size() - message.size(), message.size(), message) == 0);
  }
  EXPECT_TRUE(found) << "no error at " << at << " ending with: " << message << "\ngot:\n"
                     << ::testing::PrintToString(formatted(p.errors));
}

TEST(FrontendReject, StateFieldOfAnOptionalOptional) {
  expect_stateful_error("namespace g {\nstruct S {\n  std::optional<std::optional<int>> maybe;\n};\n"
                        "[[dispatch::function]] void f(dispatch::Context<S>& ctx, std::int32_t n);\n}\n",
                        3,
                        "error: state field 'maybe' of 'g::S' has type 'std::optional<std::optional<int>>'; "
                        "std::optional<std::optional<T>> has no distinct wire form; use one std::optional");
}

TEST(FrontendReject, AStateWrapperNamedLikeAStruct) {
  // S::tags is persisted as the message S_tags, which a struct has already.
  expect_stateful_error("namespace g {\nstruct S_tags { int n; };\nstruct S {\n  std::vector<int> tags;\n"
                        "  std::optional<S_tags> other;\n};\n"
                        "[[dispatch::function]] void f(dispatch::Context<S>& ctx, std::int32_t n);\n}\n",
                        2,
                        "error: proto name 'S_tags' of struct 'g::S_tags' collides with the message state field "
                        "'g::S::tags' is persisted as (docs/stateful.md); rename one of them");
}

TEST(FrontendReject, AnIdempotencyOnAStatefulFunction) {
  expect_stateful_error("namespace g {\nstruct S { int n; };\n"
                        "[[dispatch::function(idempotency = \"idempotent\")]] void f(dispatch::Context<S>& ctx, "
                        "std::int32_t n);\n}\n",
                        3,
                        "error: function 'f' is a stateful function, whose calls change its state; idempotency is "
                        "for plain functions, leave it out");
}

TEST(FrontendReject, ContextNotFirst) {
  expect_stateful_error("namespace g {\nstruct S { int n; };\n"
                        "[[dispatch::function]] void f(std::int32_t n, dispatch::Context<S>& ctx);\n}\n",
                        3,
                        "error: parameter 'ctx' of 'f' is a dispatch::Context; a stateful function takes it first: "
                        "void f(dispatch::Context<State>& ctx, const Message& message)");
}

TEST(FrontendReject, ContextOfANonStruct) {
  expect_stateful_error("namespace g {\n"
                        "[[dispatch::function]] void f(dispatch::Context<int>& ctx, std::int32_t n);\n}\n",
                        2,
                        "error: parameter 'ctx' of stateful function 'f' has type 'dispatch::Context<int> &'; the "
                        "state 'int' is not a struct: declare a struct whose fields are the persisted values");
  expect_stateful_error("namespace g {\n"
                        "[[dispatch::function]] void f(dispatch::Context<std::string>& ctx, std::int32_t n);\n}\n",
                        2, "is not a struct: declare a struct whose fields are the persisted values");
}

TEST(FrontendReject, PrivateStateField) {
  expect_stateful_error("namespace g {\nclass S {\n  int n;\n};\n"
                        "[[dispatch::function]] void f(dispatch::Context<S>& ctx, int m);\n}\n",
                        3,
                        "error: state field 'n' of 'g::S' is not public; the generated code reads and writes each "
                        "field of the state");
}

TEST(FrontendReject, ContextByValue) {
  expect_stateful_error("namespace g {\nstruct S { int n; };\n"
                        "[[dispatch::function]] void f(const dispatch::Context<S>& ctx, std::int32_t n);\n}\n",
                        3,
                        "error: parameter 'ctx' of stateful function 'f' has type 'const dispatch::Context<S> &'; "
                        "take the context as dispatch::Context<State>& (a non-const reference)");
}

TEST(FrontendReject, StatefulMessageOfAnUnsupportedType) {
  expect_stateful_error("namespace g {\nstruct S { int n; };\n"
                        "[[dispatch::function]] void f(dispatch::Context<S>& ctx, std::vector<int> v);\n}\n",
                        3,
                        "error: message parameter 'v' of stateful function 'f' has type 'std::vector<int>'; a "
                        "stateful function takes a struct (a protobuf message), bool, std::int32_t, std::int64_t, "
                        "float, double, std::string, or a std::variant of these (one per message type)");
  expect_stateful_error("namespace g {\nstruct S { int n; };\n"
                        "[[dispatch::function]] void f(dispatch::Context<S>& ctx);\n}\n",
                        3,
                        "error: stateful function 'f' has only the context; it takes the context and one message: "
                        "void f(dispatch::Context<State>& ctx, const Message& message)");
}

TEST(FrontendReject, StatefulFunctionReturningAValue) {
  expect_stateful_error("namespace g {\nstruct S { int n; };\n"
                        "[[dispatch::function]] int f(dispatch::Context<S>& ctx, int m);\n}\n",
                        3, "error: stateful function 'f' returns 'int'; it answers with ctx.reply(): return void");
}

TEST(FrontendReject, ExpirationsThatDoNotRead) {
  expect_stateful_error("namespace g {\nstruct S {\n  [[dispatch::expire_after_write(\"10 minutes\")]] int n;\n};\n"
                        "[[dispatch::function]] void f(dispatch::Context<S>& ctx, int m);\n}\n",
                        3,
                        "error: [[dispatch::expire_after_write]] takes one string literal, a positive whole number "
                        "and a unit (ms, s, m, h, d), e.g. [[dispatch::expire_after_write(\"10m\")]]");
  expect_stateful_error("namespace g {\nstruct T {\n  [[dispatch::expire_after_invoke(\"1h\")]] int n;\n};\n"
                        "[[dispatch::function]] void f(const T& t);\n}\n",
                        3,
                        "error: [[dispatch::expire_after_invoke]] applies to a field of a stateful function's state "
                        "struct; 'n' is not one");
}

TEST(FrontendReject, StatefulFunctionWithoutANamespaceOrAType) {
  expect_stateful_error("struct S { int n; };\n"
                        "[[dispatch::function]] void f(dispatch::Context<S>& ctx, int m);\n",
                        2,
                        "error: stateful function 'f' has no namespace for its function type (namespace/name); put "
                        "it in a namespace, pass --package, or name its type with "
                        "[[dispatch::function(\"example/f\")]]");
  expect_stateful_error("namespace g {\n[[dispatch::function(\"a/b\")]] void f(int m);\n}\n", 2,
                        "error: 'a/b' is a stateful function's type (namespace/name), but 'f' takes no "
                        "dispatch::Context<State>&; give it a plain remote name");
}

}  // namespace
}  // namespace dispatch::gen::testing
