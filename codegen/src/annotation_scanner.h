// Finds [[dispatch::function]], [[dispatch::function("name")]] and their
// keyword arguments (a pinned workflow version, a plain function's
// idempotency): [[dispatch::function("name", version = "3")]],
// [[dispatch::function(idempotency = "no_side_effects")]], and
// [[dispatch::event(...)]] and [[dispatch::faas("name")]], in a header's
// tokens. Clang drops attributes it does not know before the AST,
// so the annotations are read from tokens, not declarations. Not for
// matching an annotation to its declaration (decl_walker.h) or for anything
// about types. Holds no libclang type: the scanner works on plain tokens, so
// a test can drive it from a string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diagnostics.h"
#include "model.h"

namespace dispatch::gen {

// libclang's token kinds.
enum class TokenKind { kPunctuation, kKeyword, kIdentifier, kLiteral, kComment };

struct Token {
  TokenKind kind = TokenKind::kPunctuation;
  std::string text;    // the spelling: "[", "dispatch", "\"charge_v2\""
  unsigned begin = 0;  // byte offsets into the header's text
  unsigned end = 0;
  SourceLocation loc;  // where the user sees it
};

// One [[dispatch::function]], [[dispatch::event]] or [[dispatch::faas]]
// found in the header's tokens.
struct Annotation {
  unsigned begin = 0;  // offset of the attribute list's first '['
  unsigned end = 0;    // offset just past its last ']'
  SourceLocation loc;  // of the attribute name
  std::optional<std::string> remote_name;  // function: the string argument, if any
  // function: `version = "..."`, a workflow's pinned version (model.h,
  // Function::version), checked here for its form; whether the function is
  // a workflow is the declaration walker's to check, at `version_loc`.
  std::optional<std::string> version;
  SourceLocation version_loc;
  // function: `idempotency = "no_side_effects"` or `"idempotent"` (model.h,
  // Function::idempotency); that the function is a plain one is the
  // declaration walker's to check, at `idempotency_loc`.
  std::optional<Idempotency> idempotency;
  SourceLocation idempotency_loc;
  // What the attribute makes of the function (model.h, Function::event and
  // Function::faas): a remote function; one taking CloudEvents,
  // [[dispatch::event]], [[dispatch::event("type")]] or
  // [[dispatch::event("type", "reply type")]]; or a typed proxy of an
  // existing FaaS function, [[dispatch::faas("name")]].
  // Or, on a field of a stateful function's state struct, how its value
  // expires: [[dispatch::expire_after_write("10m")]] or
  // [[dispatch::expire_after_invoke("1h")]] (ms, s, m, h, d).
  enum class Kind { function, event, faas, expire_after_write, expire_after_invoke };
  Kind kind = Kind::function;
  std::string event_type;  // event: "" takes any type
  std::string reply_type;  // event: "" for the default
  std::string faas_name;   // faas: the function's name on the gateway
  std::int64_t expire_ms = 0;  // expire_after_*: the duration
};

// The longest pinned workflow version, in characters.
inline constexpr std::size_t kMaxWorkflowVersion = 64;

struct AnnotationScan {
  std::vector<Annotation> annotations;  // source order
  // Malformed annotations: a misspelt dispatch:: attribute, an argument that
  // is not one string literal naming an identifier, a version that is
  // empty, longer than kMaxWorkflowVersion or not printable ASCII without
  // spaces, an idempotency other than "no_side_effects" or "idempotent",
  // a keyword argument given twice or not known, the attribute inside a preprocessor directive (a #define would
  // apply it out of sight). Each one is left out of `annotations`.
  std::vector<Diagnostic> errors;
};

// Scans `tokens`, the code tokens of `text` in order (each token's offsets
// index `text`; tokens of #if-skipped blocks already left out). `text` shows
// where lines start, so that '#' directives and their continuation lines
// can be told apart from code.
AnnotationScan scan_annotations(std::string_view text, std::vector<Token> tokens);

// Scans `text` as the header `file_name`: libclang preprocesses and
// tokenizes it in memory (parsed like parse_header(), `clang_args`
// appended; #if-skipped blocks are not code), then scan_annotations() above
// reads the tokens. Nothing is read from disk under `file_name`; what `text`
// #includes is. Of clang's own errors only those about the arguments are
// reported (first); errors in the code are parse_header()'s to report, as
// the scan reads tokens, not declarations.
AnnotationScan scan_annotations_in_text(const std::string& text, const std::string& file_name,
                                        const std::vector<std::string>& clang_args = {});

}  // namespace dispatch::gen
