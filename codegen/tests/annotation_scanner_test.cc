// The annotation scanner on its own, fed header text as a string: every
// attribute form it reads, text that is not code, and each malformed
// annotation with its diagnostic and line:column. Matching annotations to
// declarations is frontend_test's and frontend_reject_test's.
#include "annotation_scanner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dispatch::gen {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// "line:col" of each annotation, with "=name" for a remote name.
std::vector<std::string> found(const AnnotationScan& scan) {
  std::vector<std::string> out;
  for (const Annotation& a : scan.annotations) {
    std::string s = std::to_string(a.loc.line) + ":" + std::to_string(a.loc.column);
    if (a.remote_name) s += "=" + *a.remote_name;
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> errors(const AnnotationScan& scan) {
  std::vector<std::string> out;
  for (const Diagnostic& d : scan.errors) out.push_back(format_diagnostic(d));
  return out;
}

AnnotationScan scan(const std::string& text, const std::vector<std::string>& clang_args = {}) {
  return scan_annotations_in_text(text, "api.h", clang_args);
}

TEST(AnnotationScanner, FindsTheAttributeAndWhereItsListStartsAndEnds) {
  AnnotationScan s = scan("int x;\n[[dispatch::function]] void f();\n");
  EXPECT_THAT(errors(s), IsEmpty());
  ASSERT_EQ(s.annotations.size(), 1u);
  const Annotation& a = s.annotations[0];
  EXPECT_EQ(a.loc.file, "api.h");
  EXPECT_EQ(a.loc.line, 2u);
  EXPECT_EQ(a.loc.column, 3u);  // the attribute's name
  EXPECT_EQ(a.begin, 7u);       // the first '['
  EXPECT_EQ(a.end, 7u + 22u);   // just past the last ']'
  EXPECT_FALSE(a.remote_name.has_value());
}

TEST(AnnotationScanner, ReadsTheRemoteName) {
  AnnotationScan s = scan("[[dispatch::function(\"charge_v2\")]] void charge();\n");
  EXPECT_THAT(errors(s), IsEmpty());
  EXPECT_THAT(found(s), ElementsAre("1:3=charge_v2"));
}

TEST(AnnotationScanner, EveryAttributeListForm) {
  AnnotationScan s = scan(
      "[[nodiscard, dispatch::function]] int in_list();\n"
      "[[dispatch::function(\"first\"), maybe_unused]] void first();\n"
      "[[ dispatch :: function ]] void spaced();\n"
      "[[using dispatch: function(\"u\")]] void using_prefix();\n"
      "[[dispatch::function]] [[nodiscard]] int two_lists();\n"
      "[[gnu::always_inline, deprecated(\"x\"), other::function]] inline void not_ours() {}\n"
      "[[dispatch::function,\n"
      "  deprecated]] void across_lines();\n");
  EXPECT_THAT(errors(s), IsEmpty());
  EXPECT_THAT(found(s), ElementsAre("1:14", "2:3=first", "3:4", "4:19=u", "5:3", "7:3"));
}

TEST(AnnotationScanner, AnAnnotationSpansItsWholeAttributeList) {
  const std::string text = "[[nodiscard, dispatch::function(\"x\"), maybe_unused]] int f();\n";
  AnnotationScan s = scan(text);
  ASSERT_EQ(s.annotations.size(), 1u);
  EXPECT_EQ(s.annotations[0].begin, 0u);
  EXPECT_EQ(s.annotations[0].end, text.find("]]") + 2);
}

TEST(AnnotationScanner, TextThatIsNotCodeIsIgnored) {
  AnnotationScan s = scan(
      "// [[dispatch::function]] void in_a_comment();\n"
      "/* [[dispatch::function]] */\n"
      "inline const char* a = \"[[dispatch::function]]\";\n"
      "inline const char* b = R\"([[dispatch::function]])\";\n"
      "#if 0\n"
      "[[dispatch::function]] void skipped();\n"
      "#endif\n"
      "#ifdef NOT_DEFINED\n"
      "[[dispatch::function]] void not_defined();\n"
      "#else\n"
      "[[dispatch::function]] void taken();\n"
      "#endif\n");
  EXPECT_THAT(errors(s), IsEmpty());
  EXPECT_THAT(found(s), ElementsAre("11:3"));
}

TEST(AnnotationScanner, ClangArgumentsDecideWhichBlocksAreCode) {
  const std::string text = "#ifdef WITH_G\n[[dispatch::function]] void g();\n#endif\n";
  EXPECT_THAT(found(scan(text)), IsEmpty());
  EXPECT_THAT(found(scan(text, {"-DWITH_G"})), ElementsAre("2:3"));
}

TEST(AnnotationScanner, MisspelledAttribute) {
  AnnotationScan s = scan("[[dispatch::functon]] void f();\n");
  EXPECT_THAT(found(s), IsEmpty());
  EXPECT_THAT(errors(s), ElementsAre("api.h:1:13: error: unknown attribute 'dispatch::functon'; did you mean "
                                     "'dispatch::function'?"));
}

TEST(AnnotationScanner, MisspelledAttributeAfterUsing) {
  AnnotationScan s = scan("[[using dispatch: fn]] void f();\n");
  EXPECT_THAT(found(s), IsEmpty());
  EXPECT_THAT(errors(s), ElementsAre("api.h:1:19: error: unknown attribute 'dispatch::fn'; did you mean "
                                     "'dispatch::function'?"));
}

TEST(AnnotationScanner, MisspelledAttributeSuggestsTheClosest) {
  EXPECT_THAT(errors(scan("[[dispatch::event_]] void f();\n")),
              ElementsAre("api.h:1:13: error: unknown attribute 'dispatch::event_'; did you mean 'dispatch::event'?"));
  EXPECT_THAT(errors(scan("[[dispatch::fass(\"x\")]] void f();\n")),
              ElementsAre("api.h:1:13: error: unknown attribute 'dispatch::fass'; did you mean 'dispatch::faas'?"));
}

TEST(AnnotationScanner, ReadsEventAndFaasAnnotations) {
  AnnotationScan s = scan(
      "[[dispatch::event]] void any(int x);\n"
      "[[dispatch::event(\"com.example.placed\")]] void typed(int x);\n"
      "[[dispatch::event(\"com.example.placed\", \"com.example.receipt\")]] int replied(int x);\n"
      "[[dispatch::faas(\"figlet.openfaas-fn\")]] int proxied(int x);\n");
  EXPECT_THAT(errors(s), IsEmpty());
  ASSERT_EQ(s.annotations.size(), 4u);
  EXPECT_EQ(s.annotations[0].kind, Annotation::Kind::event);
  EXPECT_EQ(s.annotations[0].event_type, "");
  EXPECT_EQ(s.annotations[1].event_type, "com.example.placed");
  EXPECT_EQ(s.annotations[1].reply_type, "");
  EXPECT_EQ(s.annotations[2].event_type, "com.example.placed");
  EXPECT_EQ(s.annotations[2].reply_type, "com.example.receipt");
  EXPECT_EQ(s.annotations[3].kind, Annotation::Kind::faas);
  EXPECT_EQ(s.annotations[3].faas_name, "figlet.openfaas-fn");
}

TEST(AnnotationScanner, RefusesEventAndFaasArgumentsThatNameNothing) {
  EXPECT_THAT(errors(scan("[[dispatch::event(42)]] void f(int x);\n")),
              ElementsAre("api.h:1:19: error: [[dispatch::event]] takes string literals, e.g. "
                          "[[dispatch::event(\"com.example.order.placed\")]]"));
  EXPECT_THAT(errors(scan("[[dispatch::event(\"a b\")]] void f(int x);\n")),
              ElementsAre("api.h:1:19: error: event type 'a b' is empty or has spaces; name a type such as "
                          "\"com.example.order.placed\""));
  EXPECT_THAT(errors(scan("[[dispatch::event(\"a\", \"b\", \"c\")]] void f(int x);\n")),
              ElementsAre("api.h:1:29: error: [[dispatch::event]] takes at most the event type and the reply "
                          "event's type"));
  EXPECT_THAT(errors(scan("[[dispatch::faas(\"Fib_1\")]] int f(int x);\n")),
              ElementsAre(StartsWith("api.h:1:18: error: FaaS function name 'Fib_1' is not one")));
  EXPECT_THAT(errors(scan("[[dispatch::faas]] int f(int x);\n")),
              ElementsAre(StartsWith("api.h:1:3: error: [[dispatch::faas]] takes one string literal")));
}

constexpr const char* kFunctionArguments =
    ": error: [[dispatch::function]] takes a string literal naming the remote function, then keyword "
    "arguments: version = \"...\" pinning a workflow's version, idempotency = \"no_side_effects\" or "
    "\"idempotent\"; e.g. [[dispatch::function(\"charge_v2\")]], "
    "[[dispatch::function(\"checkout\", version = \"3\")]]";

TEST(AnnotationScanner, ArgumentThatIsNotAStringLiteral) {
  AnnotationScan s = scan("[[dispatch::function(charge)]] void f();\n");
  EXPECT_THAT(found(s), IsEmpty());
  EXPECT_THAT(errors(s), ElementsAre(std::string("api.h:1:22") + kFunctionArguments));
}

TEST(AnnotationScanner, EmptyArgumentListPointsAtTheAttribute) {
  AnnotationScan s = scan("[[dispatch::function()]] void f();\n");
  EXPECT_THAT(found(s), IsEmpty());
  EXPECT_THAT(errors(s), ElementsAre(std::string("api.h:1:3") + kFunctionArguments));
}

TEST(AnnotationScanner, TwoArguments) {
  AnnotationScan s = scan("[[dispatch::function(\"a\", \"b\")]] void f();\n");
  EXPECT_THAT(found(s), IsEmpty());
  EXPECT_THAT(errors(s), ElementsAre(std::string("api.h:1:27") + kFunctionArguments));
}

TEST(AnnotationScanner, RemoteNamesThatAreNotIdentifiers) {
  AnnotationScan s = scan(
      "[[dispatch::function(\"charge-v2\")]] void f();\n"
      "[[dispatch::function(\"2fast\")]] void g();\n"
      "[[dispatch::function(\"\")]] void h();\n");
  EXPECT_THAT(found(s), IsEmpty());
  const std::string rule = "' is not an identifier; use letters, digits and '_', not starting with a digit";
  EXPECT_THAT(errors(s), ElementsAre("api.h:1:22: error: remote name 'charge-v2" + rule,
                                     "api.h:2:22: error: remote name '2fast" + rule,
                                     "api.h:3:22: error: remote name '" + rule));
}

// version = "..." pins a workflow's version, after the remote name or alone;
// the scanner checks its form (whether the function is a workflow is the
// front end's to say).
TEST(AnnotationScanner, ReadsAPinnedVersion) {
  AnnotationScan s = scan(
      "[[dispatch::function(\"checkout_v2\", version = \"3\")]] void f();\n"
      "[[dispatch::function(version = \"2026-12.1+build:7\")]] void g();\n"
      "[[dispatch::function(\"h2\")]] void h();\n");
  EXPECT_THAT(errors(s), IsEmpty());
  EXPECT_THAT(found(s), ElementsAre("1:3=checkout_v2", "2:3", "3:3=h2"));
  ASSERT_EQ(s.annotations.size(), 3u);
  EXPECT_EQ(s.annotations[0].version, "3");
  EXPECT_EQ(s.annotations[0].version_loc.line, 1u);
  EXPECT_EQ(s.annotations[0].version_loc.column, 47u);  // the literal
  EXPECT_EQ(s.annotations[1].version, "2026-12.1+build:7");
  EXPECT_FALSE(s.annotations[1].remote_name.has_value());
  EXPECT_FALSE(s.annotations[2].version.has_value());
}

TEST(AnnotationScanner, RefusesAVersionThatIsEmptyTooLongOrNotPrintable) {
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"\")]] void f();\n")),
              ElementsAre("api.h:1:32: error: workflow version is empty; pin a version such as version = \"3\", or "
                          "leave it out for the generated one (docs/workflows.md)"));
  const std::string long_version(kMaxWorkflowVersion + 1, '7');
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"" + long_version + "\")]] void f();\n")),
              ElementsAre("api.h:1:32: error: workflow version '" + long_version + "' has 65 characters; at most 64"));
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"" + std::string(kMaxWorkflowVersion, '7') +
                          "\")]] void f();\n")),
              IsEmpty());
  const std::string unprintable =
      "' has a space or a character that is not printable ASCII; use letters, digits and punctuation, e.g. "
      "\"3\" or \"2026-12.1\"";
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"v 3\")]] void f();\n")),
              ElementsAre("api.h:1:32: error: workflow version 'v 3" + unprintable));
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"v\u00e9\")]] void f();\n")),
              ElementsAre("api.h:1:32: error: workflow version 'v\u00e9" + unprintable));
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"a\\tb\")]] void f();\n")),
              ElementsAre("api.h:1:32: error: workflow version 'a\\tb': escape sequences are not read here; write "
                          "it plainly"));
}

TEST(AnnotationScanner, RefusesAMisspeltVersionArgument) {
  // Each points at the token that does not fit.
  EXPECT_THAT(errors(scan("[[dispatch::function(\"f2\", \"3\")]] void f();\n")),
              ElementsAre(std::string("api.h:1:28") + kFunctionArguments));
  EXPECT_THAT(errors(scan("[[dispatch::function(\"f2\", revision = \"3\")]] void f();\n")),
              ElementsAre(std::string("api.h:1:28: error: 'revision' is not an argument of [[dispatch::function]]; ") +
                          (kFunctionArguments + 9)));
  EXPECT_THAT(errors(scan("[[dispatch::function(version = 3)]] void f();\n")),
              ElementsAre(std::string("api.h:1:22") + kFunctionArguments));
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"3\", \"f2\")]] void f();\n")),
              ElementsAre(std::string("api.h:1:37") + kFunctionArguments));
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"3\",)]] void f();\n")),
              ElementsAre(std::string("api.h:1:35") + kFunctionArguments));
  EXPECT_THAT(errors(scan("[[dispatch::function(version = \"3\", version = \"4\")]] void f();\n")),
              ElementsAre("api.h:1:37: error: version is given twice"));
  EXPECT_THAT(errors(scan("[[dispatch::function(\"f2\",)]] void f();\n")),
              ElementsAre(std::string("api.h:1:26") + kFunctionArguments));
  // A version is dispatch::function's only: dispatch::event takes strings.
  EXPECT_THAT(errors(scan("[[dispatch::event(version = \"3\")]] void f(int x);\n")),
              ElementsAre("api.h:1:19: error: [[dispatch::event]] takes string literals, e.g. "
                          "[[dispatch::event(\"com.example.order.placed\")]]"));
}

// idempotency = "no_side_effects" | "idempotent", alone or with the remote
// name and a version, in any order after the name.
TEST(AnnotationScanner, ReadsAnIdempotency) {
  AnnotationScan s = scan(
      "[[dispatch::function(idempotency = \"no_side_effects\")]] int f();\n"
      "[[dispatch::function(\"g2\", idempotency = \"idempotent\")]] void g();\n"
      "[[dispatch::function(idempotency = \"idempotent\", version = \"3\")]] void h();\n"
      "[[dispatch::function]] void i();\n");
  ASSERT_THAT(errors(s), ElementsAre());
  ASSERT_EQ(s.annotations.size(), 4u);
  EXPECT_EQ(s.annotations[0].idempotency, Idempotency::no_side_effects);
  EXPECT_EQ(s.annotations[0].idempotency_loc.column, 36u);  // the literal
  EXPECT_EQ(s.annotations[1].idempotency, Idempotency::idempotent);
  EXPECT_EQ(s.annotations[1].remote_name, "g2");
  EXPECT_EQ(s.annotations[2].idempotency, Idempotency::idempotent);
  EXPECT_EQ(s.annotations[2].version, "3");
  EXPECT_FALSE(s.annotations[3].idempotency.has_value());

  EXPECT_THAT(errors(scan("[[dispatch::function(idempotency = \"safe\")]] void f();\n")),
              ElementsAre(StartsWith("api.h:1:36: error: idempotency 'safe' is not one: \"no_side_effects\"")));
  EXPECT_THAT(errors(scan("[[dispatch::function(idempotency = no_side_effects)]] void f();\n")),
              ElementsAre(std::string("api.h:1:22") + kFunctionArguments));
  EXPECT_THAT(
      errors(scan("[[dispatch::function(idempotency = \"idempotent\", idempotency = \"idempotent\")]] void f();\n")),
      ElementsAre("api.h:1:50: error: idempotency is given twice"));
}

TEST(AnnotationScanner, AMalformedAnnotationDoesNotStopTheScan) {
  AnnotationScan s = scan(
      "[[dispatch::function(42)]] void f();\n"
      "[[dispatch::function(\"g2\")]] void g();\n");
  EXPECT_THAT(errors(s), ElementsAre(std::string("api.h:1:22") + kFunctionArguments));
  EXPECT_THAT(found(s), ElementsAre("2:3=g2"));
}

TEST(AnnotationScanner, AnUnclosedListIsNotAnAnnotation) {
  // Not an attribute at all: clang reports the syntax error when the header
  // is parsed; the scanner neither reads it nor adds a second message.
  AnnotationScan s = scan("[[dispatch::function void f();\n");
  EXPECT_THAT(found(s), IsEmpty());
  EXPECT_THAT(errors(s), IsEmpty());
}

TEST(AnnotationScanner, TheAttributeInsideAMacroIsAnError) {
  const std::string message =
      ": error: [[dispatch::function]] inside a macro is not recognised (dispatch-gen reads the header's own "
      "tokens); write the attribute out before each function";
  AnnotationScan s = scan(
      "#define REMOTE [[dispatch::function]]\n"
      "  #  define CONTINUED \\\n"
      "    [[dispatch::function(\"c\")]]\n"
      "REMOTE void f();\n"
      "[[dispatch::function]] void g();\n");
  EXPECT_THAT(errors(s), ElementsAre("api.h:1:18" + message, "api.h:3:7" + message));
  EXPECT_THAT(found(s), ElementsAre("5:3"));
}

TEST(AnnotationScanner, ClangArgumentsClangRejects) {
  EXPECT_THAT(errors(scan("[[dispatch::function]] void f();\n", {"-fno-such-flag"})),
              ElementsAre("dispatch-gen: error: unknown argument: '-fno-such-flag'"));
  AnnotationScan none = scan("[[dispatch::function]] void f();\n", {"-std=c++99"});
  EXPECT_THAT(found(none), IsEmpty());
  EXPECT_THAT(errors(none), ElementsAre(StartsWith("dispatch-gen: error: clang could not tokenize 'api.h'")));
}

// The scanner proper needs no libclang: any tokenizer's tokens will do.
TEST(AnnotationScanner, ScansTokensFromAnyTokenizer) {
  const std::string text = "[[dispatch::function(\"x\")]] void f();";
  auto tok = [&](TokenKind kind, const std::string& spelling, unsigned at) {
    return Token{kind, spelling, at, at + unsigned(spelling.size()), SourceLocation{"t.h", 1, at + 1}};
  };
  using K = TokenKind;
  std::vector<Token> tokens = {
      tok(K::kPunctuation, "[", 0),  tok(K::kPunctuation, "[", 1),    tok(K::kIdentifier, "dispatch", 2),
      tok(K::kPunctuation, "::", 10), tok(K::kIdentifier, "function", 12), tok(K::kPunctuation, "(", 20),
      tok(K::kLiteral, "\"x\"", 21), tok(K::kPunctuation, ")", 24),   tok(K::kPunctuation, "]", 25),
      tok(K::kPunctuation, "]", 26), tok(K::kKeyword, "void", 28),      tok(K::kIdentifier, "f", 33),
      tok(K::kPunctuation, "(", 34), tok(K::kPunctuation, ")", 35),   tok(K::kPunctuation, ";", 36)};
  AnnotationScan s = scan_annotations(text, tokens);
  EXPECT_THAT(errors(s), IsEmpty());
  EXPECT_THAT(found(s), ElementsAre("1:3=x"));
  ASSERT_EQ(s.annotations.size(), 1u);
  EXPECT_EQ(s.annotations[0].end, 27u);

  // An identifier where the string literal was is no remote name.
  tokens[6].kind = K::kIdentifier;
  EXPECT_THAT(errors(scan_annotations(text, tokens)), ElementsAre(std::string("t.h:1:22") + kFunctionArguments));
}

}  // namespace
}  // namespace dispatch::gen

namespace dispatch::gen {
namespace {

// A state field's expiration, and a stateful function's type named in full.
TEST(AnnotationScanner, ExpirationsAndStatefulFunctionTypes) {
  AnnotationScan s = scan(
      "struct S {\n"
      "  [[dispatch::expire_after_write(\"10m\")]] int a;\n"
      "  [[dispatch::expire_after_invoke(\"2d\")]] int b;\n"
      "  [[dispatch::expire_after_write(\"0s\")]] int c;\n"
      "  [[dispatch::expire_after_write]] int d;\n"
      "  [[dispatch::expire_after_invoke(\"5 weeks\")]] int e;\n"
      "};\n"
      "[[dispatch::function(\"counters/tally\")]] void f();\n"
      "[[dispatch::function(\"/tally\")]] void g();\n");
  ASSERT_EQ(s.annotations.size(), 3u);
  EXPECT_EQ(s.annotations[0].kind, Annotation::Kind::expire_after_write);
  EXPECT_EQ(s.annotations[0].expire_ms, 600000);
  EXPECT_EQ(s.annotations[1].kind, Annotation::Kind::expire_after_invoke);
  EXPECT_EQ(s.annotations[1].expire_ms, 2 * 86400000LL);
  EXPECT_EQ(s.annotations[2].remote_name, "counters/tally");
  const std::string rule = "takes one string literal, a positive whole number and a unit (ms, s, m, h, d), e.g. ";
  EXPECT_THAT(errors(s),
              ElementsAre("api.h:4:34: error: [[dispatch::expire_after_write]] " + rule +
                              "[[dispatch::expire_after_write(\"10m\")]]",
                          "api.h:5:5: error: [[dispatch::expire_after_write]] " + rule +
                              "[[dispatch::expire_after_write(\"10m\")]]",
                          "api.h:6:35: error: [[dispatch::expire_after_invoke]] " + rule +
                              "[[dispatch::expire_after_invoke(\"10m\")]]",
                          "api.h:9:22: error: remote name '/tally' is not an identifier; use letters, digits and "
                          "'_', not starting with a digit"));
}

}  // namespace
}  // namespace dispatch::gen
