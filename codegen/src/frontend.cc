// The libclang front end: finds [[dispatch::function]] in a header's tokens,
// matches each annotation to the declaration after it, and maps the
// functions' parameter and result types into the model, rejecting what cannot
// cross a process boundary with a diagnostic at the offending declaration.
// Not the naming pass and not an emitter. libclang's C API only; no libclang
// type escapes this file.
#include "frontend.h"

#include <clang-c/Index.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

namespace dispatch::gen {
namespace {

std::string take(CXString s) {
  const char* c = clang_getCString(s);
  std::string out = c ? c : "";
  clang_disposeString(s);
  return out;
}

std::string file_name(CXFile file) { return file ? take(clang_getFileName(file)) : ""; }

// Where the user sees a declaration: a macro's use, not its definition.
SourceLocation location_of(CXSourceLocation where) {
  CXFile file = nullptr;
  unsigned line = 0, column = 0, offset = 0;
  clang_getExpansionLocation(where, &file, &line, &column, &offset);
  return SourceLocation{file_name(file), line, column};
}

SourceLocation location_of(CXCursor c) { return location_of(clang_getCursorLocation(c)); }

unsigned offset_of(CXSourceLocation where) {
  unsigned offset = 0;
  clang_getExpansionLocation(where, nullptr, nullptr, nullptr, &offset);
  return offset;
}

bool is_identifier(const std::string& s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || digit(c); });
}

// One enclosing scope of a declaration, outermost first.
struct Scope {
  enum Kind { kNamespace, kRecord, kOther } kind;
  std::string name;
  bool is_inline = false;
};

std::vector<Scope> scopes_of(CXCursor c) {
  std::vector<Scope> scopes;
  for (CXCursor p = clang_getCursorSemanticParent(c);
       !clang_Cursor_isNull(p) && clang_getCursorKind(p) != CXCursor_TranslationUnit;
       p = clang_getCursorSemanticParent(p)) {
    CXCursorKind k = clang_getCursorKind(p);
    Scope s;
    s.name = take(clang_getCursorSpelling(p));
    if (k == CXCursor_Namespace) {
      s.kind = Scope::kNamespace;
      s.is_inline = clang_Cursor_isInlineNamespace(p) != 0;
    } else if (k == CXCursor_StructDecl || k == CXCursor_ClassDecl) {
      s.kind = Scope::kRecord;
    } else if (k == CXCursor_LinkageSpec || k == CXCursor_UnexposedDecl) {
      continue;  // extern "C" { } / extern "C++" { } open no scope
    } else {
      s.kind = Scope::kOther;
    }
    scopes.push_back(std::move(s));
  }
  std::reverse(scopes.begin(), scopes.end());
  return scopes;
}

bool in_anonymous_namespace(const std::vector<Scope>& scopes) {
  return std::any_of(scopes.begin(), scopes.end(),
                     [](const Scope& s) { return s.kind == Scope::kNamespace && s.name.empty(); });
}

bool in_function(const std::vector<Scope>& scopes) {
  return std::any_of(scopes.begin(), scopes.end(), [](const Scope& s) { return s.kind == Scope::kOther; });
}

// "::a::v1::Outer::Inner": exact, inline namespaces included.
std::string full_cpp_name(CXCursor c) {
  std::string out;
  for (const Scope& s : scopes_of(c)) out += "::" + s.name;
  return out + "::" + take(clang_getCursorSpelling(c));
}

// "std::chrono::system_clock" for libstdc++'s std::chrono::_V2::system_clock:
// inline namespaces left out, for recognizing library types.
std::string lookup_name(CXCursor c) {
  std::string out;
  for (const Scope& s : scopes_of(c)) {
    if (s.kind == Scope::kNamespace && (s.is_inline || s.name.empty())) continue;
    out += s.name + "::";
  }
  return out + take(clang_getCursorSpelling(c));
}

// "Outer_Inner": the record path below the innermost namespace.
std::string flattened_name(CXCursor c) {
  std::vector<Scope> scopes = scopes_of(c);
  std::string out;
  for (auto it = scopes.rbegin(); it != scopes.rend() && it->kind == Scope::kRecord; ++it)
    out = it->name + "_" + out;
  return out + take(clang_getCursorSpelling(c));
}

// The namespace for the package and generated entities: "a::b", inline
// namespaces left out.
std::string namespace_of(CXCursor c) {
  std::string out;
  for (const Scope& s : scopes_of(c)) {
    if (s.kind != Scope::kNamespace || s.is_inline) continue;
    if (!out.empty()) out += "::";
    out += s.name;
  }
  return out;
}

// libclang gives integral template arguments of a class type only in its
// spelling: the canonical "std::ratio<1, 1000>" (values reduced, maybe with
// integer suffixes).
std::optional<std::pair<std::int64_t, std::int64_t>> parse_ratio(const std::string& spelling) {
  size_t pos = spelling.find('<');
  if (pos == std::string::npos) return std::nullopt;
  std::int64_t values[2];
  for (std::int64_t& v : values) {
    ++pos;
    while (pos < spelling.size() && spelling[pos] == ' ') ++pos;
    size_t used = 0;
    try {
      v = std::stoll(spelling.substr(pos), &used);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    pos += used;
    while (pos < spelling.size() && std::strchr("lLuU ", spelling[pos])) ++pos;
    if (pos >= spelling.size() || spelling[pos] != (&v == &values[0] ? ',' : '>')) return std::nullopt;
  }
  return std::make_pair(values[0], values[1]);
}

bool is_char_kind(CXTypeKind k) { return k == CXType_Char_S || k == CXType_Char_U; }

// One [[dispatch::function]] found in the header's tokens.
struct Annotation {
  unsigned begin = 0;  // offset of the first '['
  unsigned end = 0;    // offset just past the last ']'
  SourceLocation loc;  // of the attribute name
  std::optional<std::string> remote_name;
};

// A declaration in the main file an annotation may precede.
struct DeclSpan {
  unsigned begin = 0;
  unsigned end = 0;
  CXCursor cursor;
};

// What a type belongs to, for messages: "parameter 'cb'" with its type as
// written and the place to point at.
struct Subject {
  std::string what;
  std::string written;
  SourceLocation loc;
};

class Extractor {
 public:
  Extractor(CXTranslationUnit tu, CXFile main_file, Model& model, std::vector<Diagnostic>& errors)
      : tu_(tu), main_file_(main_file), model_(model), errors_(errors) {}

  void run() {
    std::vector<Annotation> annotations = scan_annotations();
    collect_decls(clang_getTranslationUnitCursor(tu_));
    std::stable_sort(decls_.begin(), decls_.end(),
              [](const DeclSpan& a, const DeclSpan& b) { return a.begin < b.begin; });
    for (const Annotation& a : annotations) attach(a);
    order_structs();
  }

 private:
  void error(const SourceLocation& loc, std::string message) {
    errors_.push_back(Diagnostic{loc, std::move(message)});
  }

  // ---- Annotations, from tokens: clang drops attributes it does not know,
  // so [[dispatch::function]] never reaches the AST.

  std::vector<Annotation> scan_annotations() {
    std::vector<Annotation> found;
    size_t size = 0;
    const char* text = clang_getFileContents(tu_, main_file_, &size);
    if (!text) return found;
    CXSourceRange whole = clang_getRange(clang_getLocationForOffset(tu_, main_file_, 0),
                                         clang_getLocationForOffset(tu_, main_file_, unsigned(size)));
    CXToken* tokens = nullptr;
    unsigned count = 0;
    clang_tokenize(tu_, whole, &tokens, &count);

    // Tokens in #if 0 and other skipped blocks are not code.
    std::vector<std::pair<unsigned, unsigned>> skipped;
    if (CXSourceRangeList* list = clang_getSkippedRanges(tu_, main_file_)) {
      for (unsigned i = 0; i < list->count; ++i)
        skipped.emplace_back(offset_of(clang_getRangeStart(list->ranges[i])),
                             offset_of(clang_getRangeEnd(list->ranges[i])));
      clang_disposeSourceRangeList(list);
    }
    struct Tok {
      CXTokenKind kind;
      std::string text;
      unsigned begin, end;
      SourceLocation loc;
    };
    std::vector<Tok> toks;
    toks.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
      CXSourceRange r = clang_getTokenExtent(tu_, tokens[i]);
      unsigned b = offset_of(clang_getRangeStart(r));
      bool dead = std::any_of(skipped.begin(), skipped.end(),
                              [&](auto& s) { return b >= s.first && b < s.second; });
      if (dead) continue;
      toks.push_back(Tok{clang_getTokenKind(tokens[i]), take(clang_getTokenSpelling(tu_, tokens[i])), b,
                         offset_of(clang_getRangeEnd(r)), location_of(clang_getTokenLocation(tu_, tokens[i]))});
    }
    clang_disposeTokens(tu_, tokens, count);

    // Preprocessor directives are not declarations. The attribute inside a
    // macro would apply wherever the macro is used, which the tokens do not
    // show, so it is an error rather than silently ignored.
    auto line_start = [&](unsigned offset) {
      while (offset > 0 && text[offset - 1] != '\n') {
        char c = text[offset - 1];
        if (c != ' ' && c != '\t') return false;
        --offset;
      }
      return true;
    };
    auto directive_end = [&](unsigned offset) {
      for (; offset < size; ++offset) {
        if (text[offset] != '\n') continue;
        unsigned back = offset;
        if (back > 0 && text[back - 1] == '\r') --back;
        if (back == 0 || text[back - 1] != '\\') break;
      }
      return offset;
    };
    std::vector<Tok> code;
    code.reserve(toks.size());
    for (size_t i = 0; i < toks.size(); ++i) {
      if (!(toks[i].text == "#" && line_start(toks[i].begin))) {
        code.push_back(std::move(toks[i]));
        continue;
      }
      unsigned end = directive_end(toks[i].begin);
      size_t j = i + 1;
      for (; j < toks.size() && toks[j].begin < end; ++j) {
        if (toks[j].text == "dispatch" && j + 2 < toks.size() && toks[j + 1].text == "::" &&
            toks[j + 2].text == "function")
          error(toks[j].loc, "[[dispatch::function]] inside a macro is not recognised (dispatch-gen reads the "
                             "header's own tokens); write the attribute out before each function");
      }
      i = j - 1;
    }
    toks = std::move(code);

    auto is = [&](size_t i, const char* text) { return i < toks.size() && toks[i].text == text; };
    for (size_t i = 0; i + 1 < toks.size(); ++i) {
      if (!(is(i, "[") && is(i + 1, "["))) continue;
      size_t start = i;
      size_t j = i + 2;
      std::string using_ns;
      if (is(j, "using") && j + 2 < toks.size() && is(j + 2, ":")) {
        using_ns = toks[j + 1].text;
        j += 3;
      }
      // attribute-list: attribute (',' attribute)* until "]]".
      bool closed = false;
      while (j < toks.size()) {
        if (is(j, "]") && is(j + 1, "]")) {
          closed = true;
          break;
        }
        if (is(j, ",")) {
          ++j;
          continue;
        }
        if (toks[j].kind != CXToken_Identifier && toks[j].kind != CXToken_Keyword) break;
        std::string ns = using_ns, name = toks[j].text;
        size_t name_tok = j, attr_tok = j;
        ++j;
        if (is(j, "::") && j + 1 < toks.size()) {
          ns = name;
          name = toks[j + 1].text;
          name_tok = j + 1;
          j += 2;
        }
        std::optional<std::vector<size_t>> args;
        if (is(j, "(")) {
          args.emplace();
          int depth = 0;
          for (; j < toks.size(); ++j) {
            if (is(j, "(")) ++depth;
            else if (is(j, ")") && --depth == 0) break;
            else if (depth == 1) args->push_back(j);
          }
          ++j;
        }
        if (is(j, "...")) ++j;
        if (ns != "dispatch") continue;
        if (name != "function") {
          error(toks[name_tok].loc, "unknown attribute 'dispatch::" + name + "'; did you mean 'dispatch::function'?");
          continue;
        }
        Annotation a;
        a.loc = toks[attr_tok].loc;
        if (args) {
          const std::vector<size_t>& arg = *args;
          if (arg.size() != 1 || toks[arg[0]].kind != CXToken_Literal || toks[arg[0]].text.size() < 2 ||
              toks[arg[0]].text.front() != '"' || toks[arg[0]].text.back() != '"') {
            error(arg.empty() ? a.loc : toks[arg[0]].loc,
                  "[[dispatch::function]] takes one string literal naming the remote function, "
                  "e.g. [[dispatch::function(\"charge_v2\")]]");
            continue;
          }
          std::string remote = toks[arg[0]].text.substr(1, toks[arg[0]].text.size() - 2);
          if (!is_identifier(remote)) {
            error(toks[arg[0]].loc, "remote name '" + remote +
                                        "' is not an identifier; use letters, digits and '_', "
                                        "not starting with a digit");
            continue;
          }
          a.remote_name = remote;
        }
        a.begin = toks[start].begin;
        found.push_back(a);
      }
      if (!closed) continue;
      for (size_t k = found.size(); k > 0 && found[k - 1].begin == toks[start].begin; --k)
        found[k - 1].end = toks[j + 1].end;
      i = j + 1;
    }
    // An annotation whose list did not close is not an attribute we read.
    found.erase(std::remove_if(found.begin(), found.end(), [](const Annotation& a) { return a.end == 0; }),
                found.end());
    return found;
  }

  // A parameter's default argument as its tokens after the '=', joined by
  // spaces (which never changes how C++ tokenizes them); "" when it has
  // none. Offsets are in the main file, where annotated declarations are;
  // the extent ends where the last token starts when that token is a macro
  // (`int n = DEFAULT_LIMIT`), otherwise after it.
  std::string default_argument(CXCursor param) {
    bool has_default = false;
    clang_visitChildren(
        param,
        [](CXCursor c, CXCursor, CXClientData data) {
          if (!clang_isExpression(clang_getCursorKind(c))) return CXChildVisit_Continue;
          *static_cast<bool*>(data) = true;
          return CXChildVisit_Break;
        },
        &has_default);
    if (!has_default) return "";
    CXSourceLocation last = clang_getRangeEnd(clang_getCursorExtent(param));
    const unsigned name = offset_of(clang_getCursorLocation(param)), end = offset_of(last);
    CXFile spelled_in = nullptr;
    unsigned spelled_at = 0;
    clang_getSpellingLocation(last, &spelled_in, nullptr, nullptr, &spelled_at);
    const bool ends_in_macro = !spelled_in || !clang_File_isEqual(spelled_in, main_file_) || spelled_at != end;
    CXSourceRange range = clang_getRange(clang_getLocationForOffset(tu_, main_file_, name),
                                         clang_getLocationForOffset(tu_, main_file_, end + 1));
    CXToken* tokens = nullptr;
    unsigned count = 0;
    clang_tokenize(tu_, range, &tokens, &count);
    std::string text;
    bool after_equals = false;
    for (unsigned i = 0; i < count; ++i) {
      const unsigned at = offset_of(clang_getRangeStart(clang_getTokenExtent(tu_, tokens[i])));
      if (at > end || (at == end && !ends_in_macro)) break;
      std::string spelling = take(clang_getTokenSpelling(tu_, tokens[i]));
      if (!after_equals) {
        after_equals = at > name && spelling == "=";
        continue;
      }
      if (!text.empty()) text += ' ';
      text += spelling;
    }
    clang_disposeTokens(tu_, tokens, count);
    return text;
  }

  // Declarations of the main file an annotation can precede or sit inside:
  // namespace members and class members, not what is inside function bodies.
  void collect_decls(CXCursor parent) {
    clang_visitChildren(
        parent,
        [](CXCursor c, CXCursor, CXClientData data) {
          auto* self = static_cast<Extractor*>(data);
          CXSourceLocation where = clang_getCursorLocation(c);
          CXFile file = nullptr;
          clang_getExpansionLocation(where, &file, nullptr, nullptr, nullptr);
          if (!file || !clang_File_isEqual(file, self->main_file_)) return CXChildVisit_Continue;
          CXCursorKind k = clang_getCursorKind(c);
          if (!clang_isDeclaration(k)) return CXChildVisit_Continue;
          CXSourceRange extent = clang_getCursorExtent(c);
          self->decls_.push_back(
              DeclSpan{offset_of(clang_getRangeStart(extent)), offset_of(clang_getRangeEnd(extent)), c});
          switch (k) {
            case CXCursor_Namespace:
            case CXCursor_LinkageSpec:
            case CXCursor_UnexposedDecl:  // extern "C" { } in C++
            case CXCursor_StructDecl:
            case CXCursor_ClassDecl:
            case CXCursor_UnionDecl:
            case CXCursor_ClassTemplate:
              self->collect_decls(c);
              break;
            default:
              break;
          }
          return CXChildVisit_Continue;
        },
        this);
  }

  void attach(const Annotation& a) {
    // The innermost declaration around the annotation (a template, a class
    // or the function itself when written after the declarator).
    const DeclSpan* around = nullptr;
    for (const DeclSpan& d : decls_)
      if (d.begin < a.begin && d.end >= a.end &&
          (!around || (d.begin >= around->begin && d.end <= around->end)))
        around = &d;
    const DeclSpan* next = nullptr;
    for (const DeclSpan& d : decls_)
      if (d.begin >= a.end) {
        next = &d;
        break;
      }
    CXCursorKind around_kind = around ? clang_getCursorKind(around->cursor) : CXCursor_NoDeclFound;
    if (around_kind == CXCursor_FunctionTemplate) {
      error(a.loc, "function template '" + take(clang_getCursorSpelling(around->cursor)) +
                       "' cannot be a dispatch function; only non-template functions have one wire form");
      return;
    }
    if (around_kind == CXCursor_FunctionDecl) {
      error(a.loc, "put [[dispatch::function]] before the declaration of '" +
                       take(clang_getCursorSpelling(around->cursor)) + "'");
      return;
    }
    if (!next) {
      error(a.loc, "[[dispatch::function]] must precede a free function declaration");
      return;
    }
    CXCursorKind k = clang_getCursorKind(next->cursor);
    std::string name = take(clang_getCursorSpelling(next->cursor));
    switch (k) {
      case CXCursor_FunctionDecl:
        // `[[dispatch::function]] void f(), g();` annotates both, as C++
        // applies the attribute to every declarator.
        for (const DeclSpan* d = next; d != decls_.data() + decls_.size() && d->begin == next->begin; ++d)
          if (clang_getCursorKind(d->cursor) == CXCursor_FunctionDecl) add_function(d->cursor, a);
        return;
      case CXCursor_CXXMethod:
      case CXCursor_Constructor:
      case CXCursor_Destructor:
      case CXCursor_ConversionFunction:
        error(a.loc, "member function '" + name +
                         "' cannot be a dispatch function; annotate a free function (namespace scope)");
        return;
      case CXCursor_FunctionTemplate:
        error(a.loc, "function template '" + name +
                         "' cannot be a dispatch function; only non-template functions have one wire form");
        return;
      default:
        error(a.loc, "[[dispatch::function]] must precede a free function declaration, not '" +
                         take(clang_getCursorKindSpelling(k)) + "'" + (name.empty() ? "" : " '" + name + "'"));
        return;
    }
  }

  void add_function(CXCursor fn, const Annotation& a) {
    Function f;
    f.name = take(clang_getCursorSpelling(fn));
    f.cpp = full_cpp_name(fn);
    f.cpp_namespace = namespace_of(fn);
    f.remote_name = a.remote_name.value_or(f.name);
    f.loc = location_of(fn);
    f.deprecated = deprecated(fn, &f.deprecated_message);

    // A redeclaration annotated again is the same function, not a second one.
    std::string usr = take(clang_getCursorUSR(clang_getCanonicalCursor(fn)));
    if (auto it = function_usrs_.find(usr); it != function_usrs_.end()) {
      const Function& first = model_.functions[it->second];
      if (first.remote_name != f.remote_name)
        error(a.loc, "function '" + f.name + "' is annotated again with remote name '" + f.remote_name +
                         "'; it was '" + first.remote_name + "' at " + first.loc.file + ":" +
                         std::to_string(first.loc.line));
      return;
    }

    size_t errors_before = errors_.size();
    std::vector<Scope> scopes = scopes_of(fn);
    if (in_anonymous_namespace(scopes) || clang_getCursorLinkage(fn) != CXLinkage_External) {
      error(f.loc, "function '" + f.name +
                       "' has internal linkage (static or in an anonymous namespace); a dispatch function "
                       "must be callable from the generated server code");
    }
    CXType type = clang_getCursorType(fn);
    if (clang_isFunctionTypeVariadic(type)) {
      error(f.loc, "function '" + f.name + "' is variadic; variadic arguments cannot cross a process boundary");
    }

    int n = clang_Cursor_getNumArguments(fn);
    for (int i = 0; i < n; ++i) {
      CXCursor p = clang_Cursor_getArgument(fn, unsigned(i));
      Parameter param;
      param.name = take(clang_getCursorSpelling(p));
      param.loc = location_of(p);
      CXType pt = clang_getCursorType(p);
      std::string written = take(clang_getTypeSpelling(pt));
      if (param.name.empty()) {
        error(param.loc, "parameter " + std::to_string(i + 1) + " of '" + f.name + "' (type '" + written +
                             "') has no name; name it, the name becomes the wire field name");
        continue;
      }
      Subject s{"parameter '" + param.name + "'", written, param.loc};
      CXType ct = clang_getCanonicalType(pt);
      if (ct.kind == CXType_LValueReference) {
        CXType pointee = clang_getPointeeType(ct);
        if (!clang_isConstQualifiedType(pointee)) {
          error(param.loc, s.what + " has type '" + written +
                               "'; non-const references cannot cross a process boundary (take it by value "
                               "or const&, and return results)");
          continue;
        }
        param.by_const_ref = true;
        pt = pointee;
      } else if (ct.kind == CXType_RValueReference) {
        error(param.loc, s.what + " has type '" + written +
                             "'; rvalue references are not supported, take it by value or const&");
        continue;
      }
      std::optional<TypeRef> t;
      switch (map_view(pt, s, &t, &param.view_cpp)) {
        case View::kNone: t = map_type(pt, s); break;
        case View::kMapped: break;
        case View::kRefused: continue;
      }
      if (t) {
        param.type = std::move(*t);
        param.default_arg = default_argument(p);
        f.params.push_back(std::move(param));
      }
    }

    CXType rt = clang_getResultType(type);
    CXType crt = clang_getCanonicalType(rt);
    if (crt.kind == CXType_Void) {
      f.result.kind = TypeKind::kVoid;
      f.result.cpp = "void";
    } else if (crt.kind == CXType_LValueReference || crt.kind == CXType_RValueReference) {
      error(f.loc, "result of '" + f.name + "' has type '" + take(clang_getTypeSpelling(rt)) +
                       "'; references cannot cross a process boundary, return by value");
    } else if (std::optional<TypeRef> t =
                   map_type(rt, Subject{"result of '" + f.name + "'", take(clang_getTypeSpelling(rt)), f.loc})) {
      f.result = std::move(*t);
    }
    if (errors_.size() != errors_before) return;
    function_usrs_.emplace(usr, model_.functions.size());
    model_.functions.push_back(std::move(f));
  }

  // [[deprecated]] on the declaration (any of its redeclarations), and its
  // message if it has one.
  static bool deprecated(CXCursor c, std::string* message) {
    if (clang_getCursorAvailability(c) != CXAvailability_Deprecated) return false;
    if (message != nullptr) {
      int always_deprecated = 0, always_unavailable = 0;
      CXString deprecated_message, unavailable_message;
      clang_getCursorPlatformAvailability(c, &always_deprecated, &deprecated_message, &always_unavailable,
                                          &unavailable_message, nullptr, 0);
      *message = take(deprecated_message);
      clang_disposeString(unavailable_message);
    }
    return true;
  }

  // ---- Types.

  // A parameter may be a view: `std::string_view` or `std::span<const T>`.
  // The stub takes the view; the request and the wire hold what it views,
  // as the owning type (std::string, std::vector<T>, bytes); the server
  // passes the decoded value, which converts to the view for the call.
  // Views are for parameters only: a field, a result or an element must own
  // its data (map_record says so).
  enum class View { kNone, kMapped, kRefused };
  View map_view(CXType written, const Subject& s, std::optional<TypeRef>* type, std::string* view_cpp) {
    CXType t = clang_getCanonicalType(written);
    if (t.kind != CXType_Record) return View::kNone;
    std::string name = lookup_name(clang_getTypeDeclaration(t));
    if (name == "std::basic_string_view") {
      if (!is_char_kind(template_arg(t, 0).kind) ||
          lookup_name(clang_getTypeDeclaration(template_arg(t, 1))) != "std::char_traits") {
        fail(s, "only std::string_view is supported among the string views");
        return View::kRefused;
      }
      TypeRef r;
      r.kind = TypeKind::kString;
      r.cpp = "std::string";
      *type = std::move(r);
      *view_cpp = "std::string_view";
      return View::kMapped;
    }
    if (name != "std::span") return View::kNone;
    CXType elem = clang_Type_getTemplateArgumentAsType(t, 0);
    // The extent is a value argument, which the C API shows only in the
    // spelling: std::span<const int, 18446744073709551615> is dynamic.
    std::string spelled = take(clang_getTypeSpelling(t));
    const std::string dynamic = ", " + std::to_string(std::numeric_limits<std::size_t>::max()) + ">";
    if (spelled.size() < dynamic.size() ||
        spelled.compare(spelled.size() - dynamic.size(), dynamic.size(), dynamic) != 0) {
      fail(s, "a std::span with a fixed extent is not supported (a decoded list has any length); take "
              "std::span<const T>");
      return View::kRefused;
    }
    // What the span views is what a std::vector of its element is.
    *type = vector_of(clang_getCanonicalType(elem), s);
    if (!*type) return View::kRefused;
    const TypeRef& owning = **type;
    if (owning.kind == TypeKind::kVector && owning.args[0].kind == TypeKind::kBool) {
      fail(s, "std::span<const bool> cannot view the std::vector<bool> the server decodes into; take "
              "const std::vector<bool>&");
      return View::kRefused;
    }
    const std::string elem_cpp = owning.kind == TypeKind::kBytes ? (owning.std_byte ? "std::byte" : "std::uint8_t")
                                                                  : owning.args[0].cpp;
    if (!clang_isConstQualifiedType(elem)) {
      fail(s, "a std::span of non-const elements is an out-parameter, and results do not travel back through "
              "parameters; take std::span<const T>");
      return View::kRefused;
    }
    *view_cpp = "std::span<const " + elem_cpp + ">";
    return View::kMapped;
  }

  std::nullopt_t fail(const Subject& s, const std::string& why) {
    error(s.loc, s.what + " has type '" + s.written + "'; " + why);
    return std::nullopt;
  }

  static std::optional<TypeRef> int_type(CXType t) {
    TypeRef r;
    r.kind = TypeKind::kInt;
    long long size = clang_Type_getSizeOf(t);
    if (size <= 0) return std::nullopt;
    r.bits = unsigned(size * 8);
    switch (t.kind) {
      case CXType_Char_S:
      case CXType_Char_U:
        r.is_signed = t.kind == CXType_Char_S;
        r.cpp = "char";
        return r;
      case CXType_SChar: r.is_signed = true; r.cpp = "std::int8_t"; return r;
      case CXType_UChar: r.cpp = "std::uint8_t"; return r;
      case CXType_Short: r.is_signed = true; r.cpp = r.bits == 16 ? "std::int16_t" : "short"; return r;
      case CXType_UShort: r.cpp = r.bits == 16 ? "std::uint16_t" : "unsigned short"; return r;
      case CXType_Int: r.is_signed = true; r.cpp = r.bits == 32 ? "std::int32_t" : "int"; return r;
      case CXType_UInt: r.cpp = r.bits == 32 ? "std::uint32_t" : "unsigned"; return r;
      // On LP64 std::int64_t is long; long long is a distinct type of the
      // same width, so it keeps its own spelling.
      case CXType_Long: r.is_signed = true; r.cpp = r.bits == 64 ? "std::int64_t" : "long"; return r;
      case CXType_ULong: r.cpp = r.bits == 64 ? "std::uint64_t" : "unsigned long"; return r;
      case CXType_LongLong: r.is_signed = true; r.cpp = "long long"; return r;
      case CXType_ULongLong: r.cpp = "unsigned long long"; return r;
      default: return std::nullopt;
    }
  }

  std::optional<TypeRef> map_type(CXType written, const Subject& s) {
    CXType t = clang_getCanonicalType(written);
    switch (t.kind) {
      case CXType_Bool: {
        TypeRef r;
        r.kind = TypeKind::kBool;
        r.cpp = "bool";
        return r;
      }
      case CXType_Char_S: case CXType_Char_U: case CXType_SChar: case CXType_UChar:
      case CXType_Short: case CXType_UShort: case CXType_Int: case CXType_UInt:
      case CXType_Long: case CXType_ULong: case CXType_LongLong: case CXType_ULongLong:
        if (auto r = int_type(t)) {
          if (r->bits == 8 || r->bits == 16 || r->bits == 32 || r->bits == 64) return r;
        }
        return fail(s, "this integer width has no wire form");
      case CXType_Float: {
        TypeRef r;
        r.kind = TypeKind::kFloat;
        r.cpp = "float";
        return r;
      }
      case CXType_Double: {
        TypeRef r;
        r.kind = TypeKind::kDouble;
        r.cpp = "double";
        return r;
      }
      case CXType_LongDouble: return fail(s, "long double has no wire form, use double");
      case CXType_Int128: case CXType_UInt128: return fail(s, "128-bit integers have no wire form");
      case CXType_WChar: case CXType_Char16: case CXType_Char32:
        return fail(s, "wide character types have no wire form; use an integer type or std::string");
      case CXType_Void: return fail(s, "void is only allowed as a function result");
      case CXType_NullPtr: return fail(s, "std::nullptr_t carries no value");
      case CXType_Pointer: {
        CXTypeKind pointee = clang_getCanonicalType(clang_getPointeeType(t)).kind;
        if (pointee == CXType_FunctionProto || pointee == CXType_FunctionNoProto)
          return fail(s, "function pointers cannot cross a process boundary");
        return fail(s, "pointers cannot cross a process boundary; pass the value itself");
      }
      case CXType_BlockPointer: case CXType_MemberPointer:
        return fail(s, "pointers cannot cross a process boundary; pass the value itself");
      case CXType_LValueReference: case CXType_RValueReference:
        return fail(s, "references cannot cross a process boundary; hold the value itself");
      case CXType_ConstantArray: case CXType_IncompleteArray: case CXType_VariableArray:
      case CXType_DependentSizedArray:
        return fail(s, "C arrays are not supported; use std::vector");
      case CXType_FunctionProto: case CXType_FunctionNoProto:
        return fail(s, "functions cannot cross a process boundary");
      case CXType_Enum: return map_enum(t, s);
      case CXType_Record: return map_record(t, s);
      default: return fail(s, "this type has no wire form (see docs/annotations.md for the supported types)");
    }
  }

  CXType template_arg(CXType t, unsigned i) {
    return clang_getCanonicalType(clang_Type_getTemplateArgumentAsType(t, i));
  }

  // std::vector<elem> (elem canonical): bytes for std::uint8_t/unsigned char
  // and std::byte, otherwise a list of elem.
  std::optional<TypeRef> vector_of(CXType elem, const Subject& s) {
    TypeRef r;
    if (elem.kind == CXType_UChar) {
      r.kind = TypeKind::kBytes;
      r.cpp = "std::vector<std::uint8_t>";
      return r;
    }
    if (elem.kind == CXType_Enum && lookup_name(clang_getTypeDeclaration(elem)) == "std::byte") {
      r.kind = TypeKind::kBytes;
      r.std_byte = true;
      r.cpp = "std::vector<std::byte>";
      return r;
    }
    std::optional<TypeRef> e = map_type(elem, s);
    if (!e) return std::nullopt;
    r.kind = TypeKind::kVector;
    r.cpp = "std::vector<" + e->cpp + ">";
    r.args.push_back(std::move(*e));
    return r;
  }

  std::optional<TypeRef> map_record(CXType t, const Subject& s) {
    CXCursor decl = clang_getTypeDeclaration(t);
    std::string name = lookup_name(decl);
    int nargs = clang_Type_getNumTemplateArguments(t);
    TypeRef r;
    // Generated code spells containers with their default comparator, hash
    // and allocator; another one would be a different C++ type.
    auto defaults = [&](std::initializer_list<std::pair<unsigned, const char*>> expected) {
      for (const auto& [index, want] : expected) {
        if (int(index) >= nargs) continue;
        CXType arg = template_arg(t, index);
        if (lookup_name(clang_getTypeDeclaration(arg)) != want) return false;
        // std::less<> and friends: transparent, not the default.
        std::string_view w = want;
        if (w != "std::allocator" && w != "std::char_traits" &&
            !clang_equalTypes(template_arg(arg, 0), template_arg(t, 0)))
          return false;
      }
      return true;
    };
    auto custom = [&](const char* what) {
      return fail(s, "'" + name + "' with a custom " + what +
                         " is not supported; generated code uses the default one");
    };
    if (name == "std::basic_string") {
      if (nargs < 1 || !is_char_kind(template_arg(t, 0).kind))
        return fail(s, "only std::string is supported among the string types");
      if (!defaults({{2, "std::allocator"}})) return custom("allocator");
      r.kind = TypeKind::kString;
      r.cpp = "std::string";
      return r;
    }
    if (name == "std::vector") {
      if (!defaults({{1, "std::allocator"}})) return custom("allocator");
      return vector_of(template_arg(t, 0), s);
    }
    if (name == "std::optional") {
      std::optional<TypeRef> e = map_type(template_arg(t, 0), s);
      if (!e) return std::nullopt;
      if (e->kind == TypeKind::kOptional)
        return fail(s, "std::optional<std::optional<T>> has no distinct wire form; use one std::optional");
      r.kind = TypeKind::kOptional;
      r.cpp = "std::optional<" + e->cpp + ">";
      r.args.push_back(std::move(*e));
      return r;
    }
    if (name == "std::set" && !defaults({{1, "std::less"}, {2, "std::allocator"}}))
      return custom("comparator or allocator");
    if (name == "std::unordered_set" && !defaults({{1, "std::hash"}, {2, "std::equal_to"}, {3, "std::allocator"}}))
      return custom("hash, equality or allocator");
    if (name == "std::set" || name == "std::unordered_set") {
      std::optional<TypeRef> e = map_type(template_arg(t, 0), s);
      if (!e) return std::nullopt;
      if (e->kind != TypeKind::kInt && e->kind != TypeKind::kBool && e->kind != TypeKind::kEnum &&
          e->kind != TypeKind::kString)
        return fail(s, "set elements must be integers, bool, enums or std::string (element type '" + e->cpp +
                           "'); use a std::vector");
      r.kind = TypeKind::kVector;
      r.set = true;
      r.unordered = name == "std::unordered_set";
      r.cpp = std::string(r.unordered ? "std::unordered_set<" : "std::set<") + e->cpp + ">";
      r.args.push_back(std::move(*e));
      return r;
    }
    if (name == "std::map" && !defaults({{2, "std::less"}, {3, "std::allocator"}}))
      return custom("comparator or allocator");
    if (name == "std::unordered_map" &&
        !defaults({{2, "std::hash"}, {3, "std::equal_to"}, {4, "std::allocator"}}))
      return custom("hash, equality or allocator");
    if (name == "std::map" || name == "std::unordered_map") {
      std::optional<TypeRef> k = map_type(template_arg(t, 0), s);
      if (!k) return std::nullopt;
      if (k->kind != TypeKind::kInt && k->kind != TypeKind::kString && k->kind != TypeKind::kBool)
        return fail(s, "map keys must be integers, bool or std::string, as proto's (key type '" + k->cpp + "')");
      std::optional<TypeRef> v = map_type(template_arg(t, 1), s);
      if (!v) return std::nullopt;
      r.kind = TypeKind::kMap;
      r.unordered = name == "std::unordered_map";
      r.cpp = std::string(r.unordered ? "std::unordered_map<" : "std::map<") + k->cpp + ", " + v->cpp + ">";
      r.args.push_back(std::move(*k));
      r.args.push_back(std::move(*v));
      return r;
    }
    if (name == "std::chrono::duration") return map_duration(t, s);
    if (name == "std::chrono::time_point") {
      CXCursor clock = clang_getTypeDeclaration(template_arg(t, 0));
      if (lookup_name(clock) != "std::chrono::system_clock")
        return fail(s, "only std::chrono::system_clock time points have a wire form (google.protobuf.Timestamp)");
      std::optional<TypeRef> d = map_duration(template_arg(t, 1), s);
      if (!d) return std::nullopt;
      r.kind = TypeKind::kTimestamp;
      r.cpp = "std::chrono::time_point<std::chrono::system_clock, " + d->cpp + ">";
      r.args.push_back(std::move(*d));
      return r;
    }
    if (name == "std::basic_string_view" || name == "std::span")
      return fail(s, "a view is accepted only as a parameter's own type (the function gets a view of the "
                     "decoded value); a field, a result or an element must own its data: use " +
                     std::string(name == "std::span" ? "std::vector" : "std::string"));
    if (name.rfind("std::", 0) == 0 || name.rfind("__", 0) == 0)
      return fail(s, "'" + name + "' is not supported (see docs/annotations.md for the supported types)");
    return map_struct(t, s);
  }

  std::optional<TypeRef> map_duration(CXType t, const Subject& s) {
    CXCursor decl = clang_getTypeDeclaration(t);
    if (lookup_name(decl) != "std::chrono::duration")
      return fail(s, "a time point's duration must be a std::chrono::duration");
    std::optional<TypeRef> rep = map_type(template_arg(t, 0), s);
    if (!rep) return std::nullopt;
    if (rep->kind != TypeKind::kInt && rep->kind != TypeKind::kFloat && rep->kind != TypeKind::kDouble)
      return fail(s, "a duration's representation must be an integer or floating-point type");
    std::optional<std::pair<std::int64_t, std::int64_t>> ratio =
        parse_ratio(take(clang_getTypeSpelling(template_arg(t, 1))));
    if (!ratio) return fail(s, "cannot read the duration's std::ratio");
    TypeRef r;
    r.kind = TypeKind::kDuration;
    r.ratio_num = ratio->first;
    r.ratio_den = ratio->second;
    if (r.ratio_num <= 0 || r.ratio_den <= 0) return fail(s, "a duration's period must be positive");
    r.cpp = "std::chrono::duration<" + rep->cpp + ", std::ratio<" + std::to_string(r.ratio_num) + ", " +
            std::to_string(r.ratio_den) + ">>";
    r.args.push_back(std::move(*rep));
    return r;
  }

  // A user-visible type the generated code must be able to name.
  bool check_nameable(CXCursor decl, const std::string& what, const Subject& s) {
    std::vector<Scope> scopes = scopes_of(decl);
    if (clang_Cursor_isAnonymous(decl) || take(clang_getCursorSpelling(decl)).empty()) {
      fail(s, "anonymous " + what + "s cannot be named by generated code; give the " + what + " a name");
      return false;
    }
    if (in_anonymous_namespace(scopes)) {
      fail(s, what + " '" + lookup_name(decl) + "' is in an anonymous namespace, which generated code cannot name");
      return false;
    }
    if (in_function(scopes)) {
      fail(s, "local " + what + " '" + take(clang_getCursorSpelling(decl)) + "' cannot be named by generated code");
      return false;
    }
    CXCursorKind parent = clang_getCursorKind(clang_getCursorSemanticParent(decl));
    if ((parent == CXCursor_StructDecl || parent == CXCursor_ClassDecl) &&
        clang_getCXXAccessSpecifier(decl) != CX_CXXPublic) {
      fail(s, what + " '" + lookup_name(decl) + "' is a non-public nested type, which generated code cannot name");
      return false;
    }
    return true;
  }

  std::optional<TypeRef> map_enum(CXType t, const Subject& s) {
    CXCursor decl = clang_getTypeDeclaration(t);
    std::string name = lookup_name(decl);
    if (name == "std::byte") return fail(s, "std::byte alone is not supported; use std::uint8_t");
    if (name.rfind("std::", 0) == 0)
      return fail(s, "'" + name + "' is not supported (see docs/annotations.md for the supported types)");
    CXCursor def = clang_getCursorDefinition(decl);
    std::string usr = take(clang_getCursorUSR(clang_getCanonicalCursor(decl)));
    if (auto it = enum_index_.find(usr); it != enum_index_.end()) {
      if (!it->second) return std::nullopt;
      return enum_ref(*it->second);
    }
    if (!check_nameable(decl, "enum", s)) {
      enum_index_[usr] = std::nullopt;
      return std::nullopt;
    }
    if (clang_Cursor_isNull(def)) def = decl;  // opaque enum: no enumerators
    EnumDecl e;
    e.cpp = full_cpp_name(def);
    e.proto_name = flattened_name(def);
    e.scoped = clang_EnumDecl_isScoped(def) != 0;
    e.loc = location_of(def);
    CXType underlying = clang_getCanonicalType(clang_getEnumDeclIntegerType(def));
    std::optional<TypeRef> u = int_type(underlying);
    if (!u) {
      enum_index_[usr] = std::nullopt;
      return fail(s, "the enum's underlying type has no wire form");
    }
    e.underlying = *u;
    bool ok = true;
    struct Ctx {
      Extractor* self;
      EnumDecl* e;
      bool is_signed;
      bool* ok;
    } ctx{this, &e, u->is_signed, &ok};
    clang_visitChildren(
        def,
        [](CXCursor c, CXCursor, CXClientData data) {
          auto* ctx = static_cast<Ctx*>(data);
          if (clang_getCursorKind(c) != CXCursor_EnumConstantDecl) return CXChildVisit_Continue;
          EnumValue v;
          v.name = take(clang_getCursorSpelling(c));
          bool fits;
          if (ctx->is_signed) {
            v.value = clang_getEnumConstantDeclValue(c);
            fits = v.value >= std::numeric_limits<std::int32_t>::min() &&
                   v.value <= std::numeric_limits<std::int32_t>::max();
          } else {
            unsigned long long uv = clang_getEnumConstantDeclUnsignedValue(c);
            fits = uv <= (unsigned long long)std::numeric_limits<std::int32_t>::max();
            v.value = std::int64_t(uv);
          }
          if (!fits) {
            ctx->self->error(location_of(c), "enumerator '" + v.name + "' of '" + ctx->e->cpp.substr(2) +
                                                 "' does not fit in 32 bits signed, the range of proto enums");
            *ctx->ok = false;
          }
          ctx->e->values.push_back(std::move(v));
          return CXChildVisit_Continue;
        },
        &ctx);
    if (!ok) {
      enum_index_[usr] = std::nullopt;
      return std::nullopt;
    }
    size_t index = model_.enums.size();
    model_.enums.push_back(std::move(e));
    enum_index_[usr] = index;
    return enum_ref(index);
  }

  TypeRef enum_ref(size_t index) {
    TypeRef r;
    r.kind = TypeKind::kEnum;
    r.cpp = model_.enums[index].cpp;
    r.decl = index;
    return r;
  }

  TypeRef struct_ref(size_t index) {
    TypeRef r;
    r.kind = TypeKind::kStruct;
    r.cpp = model_.structs[index].cpp;
    r.decl = index;
    return r;
  }

  std::optional<TypeRef> map_struct(CXType t, const Subject& s) {
    CXCursor decl = clang_getTypeDeclaration(t);
    std::string spelled = take(clang_getTypeSpelling(clang_getCursorType(decl)));
    if (clang_getCursorKind(decl) == CXCursor_UnionDecl)
      return fail(s, "unions cannot cross a process boundary; use a struct");
    if (clang_Type_getNumTemplateArguments(t) > 0)
      return fail(s, "'" + spelled + "' is a class template specialization; only plain structs are supported");
    CXCursor def = clang_getCursorDefinition(decl);
    if (clang_Cursor_isNull(def))
      return fail(s, "'" + spelled + "' is an incomplete type; include its definition");
    std::string usr = take(clang_getCursorUSR(def));
    if (auto it = struct_index_.find(usr); it != struct_index_.end()) {
      if (!it->second) return std::nullopt;
      return struct_ref(*it->second);
    }
    if (!check_nameable(def, "struct", s)) {
      struct_index_[usr] = std::nullopt;
      return std::nullopt;
    }
    size_t index = model_.structs.size();
    StructDecl sd;
    sd.cpp = full_cpp_name(def);
    sd.proto_name = flattened_name(def);
    sd.loc = location_of(def);
    model_.structs.push_back(sd);
    // Registered before its fields so a struct may reach itself through a
    // vector or map.
    struct_index_[usr] = index;

    size_t errors_before = errors_.size();
    std::string struct_name = sd.cpp.substr(2);
    std::vector<Field> fields;
    std::vector<CXCursor> children;
    clang_visitChildren(
        def,
        [](CXCursor c, CXCursor, CXClientData data) {
          static_cast<std::vector<CXCursor>*>(data)->push_back(c);
          return CXChildVisit_Continue;
        },
        &children);
    bool bad_shape = false;  // not an aggregate: fields are not worth mapping
    for (CXCursor c : children) {
      CXCursorKind k = clang_getCursorKind(c);
      SourceLocation loc = location_of(c);
      std::string cname = take(clang_getCursorSpelling(c));
      const char* aggregate = "; only aggregates with public data members can cross a process boundary";
      if (k == CXCursor_CXXBaseSpecifier) {
        error(loc, "struct '" + struct_name + "' has base class '" + take(clang_getTypeSpelling(clang_getCursorType(c))) +
                       "'; only structs without bases can cross a process boundary (make it a member)");
        bad_shape = true;
      } else if (k == CXCursor_Constructor) {
        error(loc, "struct '" + struct_name + "' declares a constructor" + aggregate);
        bad_shape = true;
      } else if ((k == CXCursor_CXXMethod || k == CXCursor_Destructor) && clang_CXXMethod_isVirtual(c)) {
        error(loc, "struct '" + struct_name + "' has virtual function '" + cname + "'" + aggregate);
        bad_shape = true;
      } else if ((k == CXCursor_UnionDecl || k == CXCursor_StructDecl) && clang_Cursor_isAnonymousRecordDecl(c)) {
        error(loc, "struct '" + struct_name + "' has an anonymous " + (k == CXCursor_UnionDecl ? "union" : "struct") +
                       " member; name the member and its type");
        bad_shape = true;
      } else if (k == CXCursor_FieldDecl) {
        CX_CXXAccessSpecifier access = clang_getCXXAccessSpecifier(c);
        if (access != CX_CXXPublic) {
          error(loc, "field '" + cname + "' of '" + struct_name + "' is " +
                         (access == CX_CXXPrivate ? "private" : "protected") + aggregate);
          bad_shape = true;
          continue;
        }
        CXType ft = clang_getCursorType(c);
        Subject fs{"field '" + cname + "' of '" + struct_name + "'", take(clang_getTypeSpelling(ft)), loc};
        if (clang_Cursor_isBitField(c)) {
          fail(fs, "bit-fields are not supported; use a whole integer");
          continue;
        }
        if (clang_isConstQualifiedType(clang_getCanonicalType(ft))) {
          fail(fs, "const fields cannot be decoded into; drop the const");
          continue;
        }
        if (std::optional<TypeRef> ftype = map_type(ft, fs)) {
          Field f;
          f.name = cname;
          f.type = std::move(*ftype);
          f.number = std::uint32_t(fields.size() + 1);
          f.loc = loc;
          f.deprecated = deprecated(c, nullptr);
          fields.push_back(std::move(f));
        }
      }
    }
    (void)bad_shape;
    if (errors_.size() != errors_before) {
      struct_index_[usr] = std::nullopt;
      return std::nullopt;
    }
    model_.structs[index].fields = std::move(fields);
    return struct_ref(index);
  }

  // ---- Structs, dependencies before dependents (as far as cycles allow),
  // so a back end can define each before its first use by value.

  static void for_each_ref(TypeRef& t, const std::function<void(TypeRef&)>& f) {
    f(t);
    for (TypeRef& a : t.args) for_each_ref(a, f);
  }

  void order_structs() {
    size_t n = model_.structs.size();
    std::vector<size_t> order;
    std::vector<int> state(n, 0);  // 0 new, 1 visiting, 2 done
    std::function<void(size_t)> visit = [&](size_t i) {
      if (state[i] != 0) return;
      state[i] = 1;
      for (Field& f : model_.structs[i].fields)
        for_each_ref(f.type, [&](TypeRef& t) {
          if (t.kind == TypeKind::kStruct && t.decl < n) visit(t.decl);
        });
      state[i] = 2;
      order.push_back(i);
    };
    for (size_t i = 0; i < n; ++i) visit(i);
    std::vector<size_t> new_index(n);
    for (size_t i = 0; i < n; ++i) new_index[order[i]] = i;
    std::vector<StructDecl> sorted;
    sorted.reserve(n);
    for (size_t i : order) sorted.push_back(std::move(model_.structs[i]));
    model_.structs = std::move(sorted);
    auto remap = [&](TypeRef& t) {
      if (t.kind == TypeKind::kStruct && t.decl < n) t.decl = new_index[t.decl];
    };
    for (StructDecl& s : model_.structs)
      for (Field& f : s.fields) for_each_ref(f.type, remap);
    for (Function& f : model_.functions) {
      for (Parameter& p : f.params) for_each_ref(p.type, remap);
      for_each_ref(f.result, remap);
    }
  }

  CXTranslationUnit tu_;
  CXFile main_file_;
  Model& model_;
  std::vector<Diagnostic>& errors_;
  std::vector<DeclSpan> decls_;
  std::map<std::string, size_t> function_usrs_;
  // USR -> index, or nullopt once a type was rejected (reported once).
  std::map<std::string, std::optional<size_t>> struct_index_;
  std::map<std::string, std::optional<size_t>> enum_index_;
};

struct IndexDeleter {
  void operator()(void* index) const { clang_disposeIndex(index); }
};
struct TuDeleter {
  void operator()(CXTranslationUnitImpl* tu) const { clang_disposeTranslationUnit(tu); }
};

}  // namespace

FrontendResult parse_header(const std::string& header, const std::vector<std::string>& clang_args) {
  FrontendResult result;
  Model& model = result.model;
  model.input = header;
  std::filesystem::path path(header);
  model.include_name = path.filename().string();
  model.stem = path.stem().string();
  model.proto_file = model.stem + ".proto";

  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    result.errors.push_back(Diagnostic{{}, "cannot read header '" + header + "': no such file"});
    return result;
  }

  std::vector<std::string> args = {"-x", "c++-header", "-std=c++20", "-Wno-unknown-attributes",
                                   "-Wno-ignored-attributes", "-Wno-pragma-once-outside-header"};
  args.insert(args.end(), clang_args.begin(), clang_args.end());
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());

  std::unique_ptr<void, IndexDeleter> index(clang_createIndex(/*excludeDeclarationsFromPCH=*/0,
                                                              /*displayDiagnostics=*/0));
  CXTranslationUnit raw_tu = nullptr;
  CXErrorCode status = clang_parseTranslationUnit2(index.get(), header.c_str(), argv.data(), int(argv.size()),
                                                   nullptr, 0, CXTranslationUnit_DetailedPreprocessingRecord,
                                                   &raw_tu);
  if (status != CXError_Success || !raw_tu) {
    // libclang gives no diagnostics without a translation unit; an
    // argument clang rejects is the usual cause, so show them.
    std::string shown;
    for (const std::string& a : args) shown += " " + a;
    result.errors.push_back(Diagnostic{{}, "clang could not parse '" + header + "' (libclang error " +
                                               std::to_string(int(status)) + "); check the clang arguments:" +
                                               shown});
    return result;
  }
  std::unique_ptr<CXTranslationUnitImpl, TuDeleter> tu(raw_tu);

  // Every file clang read, for the depfile: editing any of them may change
  // the output.
  std::vector<std::string> read;
  clang_getInclusions(
      tu.get(),
      [](CXFile file, CXSourceLocation*, unsigned, CXClientData data) {
        static_cast<std::vector<std::string>*>(data)->push_back(file_name(file));
      },
      &read);
  // System headers arrive as "/../lib/gcc/.../../../../include/c++/12/x";
  // their real path is what a build tool can stat. Relative (user) paths
  // stay as given.
  for (std::string& r : read) {
    std::filesystem::path p(r);
    if (!p.is_absolute()) continue;
    std::filesystem::path real = std::filesystem::weakly_canonical(p, ec);
    if (!ec && !real.empty()) r = real.string();
  }
  std::sort(read.begin(), read.end());
  read.erase(std::unique(read.begin(), read.end()), read.end());
  model.headers_read = std::move(read);

  unsigned n = clang_getNumDiagnostics(tu.get());
  for (unsigned i = 0; i < n; ++i) {
    CXDiagnostic d = clang_getDiagnostic(tu.get(), i);
    if (clang_getDiagnosticSeverity(d) >= CXDiagnostic_Error)
      result.errors.push_back(
          Diagnostic{location_of(clang_getDiagnosticLocation(d)), take(clang_getDiagnosticSpelling(d))});
    clang_disposeDiagnostic(d);
  }
  // A header clang rejects has no trustworthy AST to read annotations from.
  if (!result.errors.empty()) return result;

  CXFile main_file = clang_getFile(tu.get(), header.c_str());
  Extractor(tu.get(), main_file, model, result.errors).run();
  return result;
}

}  // namespace dispatch::gen
