// Declaration walking: the main file's declarations, each annotation
// attached to the one after it, and the function it names added to the
// model; see decl_walker.h.
#include "decl_walker.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "clang_source.h"
#include "decl_names.h"
#include "type_mapper.h"

namespace dispatch::gen {
namespace {

// A declaration in the main file an annotation may precede.
struct DeclSpan {
  unsigned begin = 0;
  unsigned end = 0;
  CXCursor cursor;
};

class DeclWalker {
 public:
  DeclWalker(CXTranslationUnit tu, CXFile main_file, Model& model, std::vector<Diagnostic>& errors)
      : tu_(tu), main_file_(main_file), model_(model), errors_(errors), types_(model, errors) {}

  void run(const std::vector<Annotation>& annotations) {
    collect_decls(clang_getTranslationUnitCursor(tu_));
    std::stable_sort(decls_.begin(), decls_.end(),
                     [](const DeclSpan& a, const DeclSpan& b) { return a.begin < b.begin; });
    // Expirations first: a state struct may be completed after its function.
    auto is_expiration = [](const Annotation& a) {
      return a.kind == Annotation::Kind::expire_after_write || a.kind == Annotation::Kind::expire_after_invoke;
    };
    for (const Annotation& a : annotations)
      if (is_expiration(a)) expire_on(a);
    for (const Annotation& a : annotations)
      if (!is_expiration(a)) attach(a);
    for (const auto& [usr, pending] : expirations_) {
      if (pending.used) continue;
      error(pending.annotation.loc, "[[dispatch::" +
                                        std::string(pending.annotation.kind == Annotation::Kind::expire_after_write
                                                        ? "expire_after_write"
                                                        : "expire_after_invoke") +
                                        "]] applies to a field of a stateful function's state struct; '" +
                                        pending.target + "' is not one");
    }
  }

 private:
  void error(const SourceLocation& loc, std::string message) {
    errors_.push_back(Diagnostic{loc, std::move(message)});
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

  // A macro the default argument of `param` names that the main file
  // #undefs after it: the name and the #undef's line. The stubs spell the
  // default's tokens in the generated header, after the whole header.
  std::optional<std::pair<std::string, unsigned>> macro_undefined_later(CXCursor param) {
    if (!undefs_) {
      undefs_.emplace();
      size_t size = 0;
      clang_getFileContents(tu_, main_file_, &size);
      CXSourceRange all = clang_getRange(clang_getLocationForOffset(tu_, main_file_, 0),
                                         clang_getLocationForOffset(tu_, main_file_, unsigned(size)));
      CXToken* tokens = nullptr;
      unsigned count = 0;
      clang_tokenize(tu_, all, &tokens, &count);
      for (unsigned i = 0; i + 2 < count; ++i) {
        if (take(clang_getTokenSpelling(tu_, tokens[i])) != "#" ||
            take(clang_getTokenSpelling(tu_, tokens[i + 1])) != "undef")
          continue;
        unsigned line = 0;
        clang_getSpellingLocation(clang_getTokenLocation(tu_, tokens[i]), nullptr, &line, nullptr, nullptr);
        undefs_->emplace(take(clang_getTokenSpelling(tu_, tokens[i + 2])),
                         std::make_pair(offset_of(clang_getTokenLocation(tu_, tokens[i])), line));
      }
      clang_disposeTokens(tu_, tokens, count);
    }
    if (undefs_->empty()) return std::nullopt;
    const unsigned at = offset_of(clang_getCursorLocation(param));
    CXToken* tokens = nullptr;
    unsigned count = 0;
    clang_tokenize(tu_, clang_getCursorExtent(param), &tokens, &count);
    std::optional<std::pair<std::string, unsigned>> found;
    for (unsigned i = 0; i < count && !found; ++i) {
      if (clang_getTokenKind(tokens[i]) != CXToken_Identifier) continue;
      auto [first, last] = undefs_->equal_range(take(clang_getTokenSpelling(tu_, tokens[i])));
      for (auto it = first; it != last && !found; ++it)
        if (it->second.first > at) found = std::make_pair(it->first, it->second.second);
    }
    clang_disposeTokens(tu_, tokens, count);
    return found;
  }

  // The spellings of the tokens in `range` (libclang has no query for
  // `= delete` on a free function, nor for `consteval`).
  std::vector<std::string> token_spellings(CXSourceRange range) {
    CXToken* tokens = nullptr;
    unsigned count = 0;
    clang_tokenize(tu_, range, &tokens, &count);
    std::vector<std::string> out;
    for (unsigned i = 0; i < count; ++i) out.push_back(take(clang_getTokenSpelling(tu_, tokens[i])));
    clang_disposeTokens(tu_, tokens, count);
    return out;
  }
  // `= delete` follows the declaration's extent, before its `;`.
  bool is_deleted(CXCursor fn) {
    const unsigned end = offset_of(clang_getRangeEnd(clang_getCursorExtent(fn)));
    size_t size = 0;
    clang_getFileContents(tu_, main_file_, &size);
    const unsigned until = unsigned(std::min<size_t>(size, end + 64));
    const std::vector<std::string> t = token_spellings(clang_getRange(
        clang_getLocationForOffset(tu_, main_file_, end), clang_getLocationForOffset(tu_, main_file_, until)));
    return t.size() >= 2 && t[0] == "=" && t[1] == "delete";
  }
  // `consteval` among the specifiers, before the parameter list.
  bool is_consteval(CXCursor fn) {
    for (const std::string& t : token_spellings(clang_getCursorExtent(fn))) {
      if (t == "(") return false;
      if (t == "consteval") return true;
    }
    return false;
  }

  // Declarations of the main file an annotation can precede or sit inside:
  // namespace members and class members, not what is inside function bodies.
  void collect_decls(CXCursor parent) {
    clang_visitChildren(
        parent,
        [](CXCursor c, CXCursor, CXClientData data) {
          auto* self = static_cast<DeclWalker*>(data);
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

  // An expiration annotates the field it sits in or precedes; kept by the
  // field's USR until a stateful function's state reads it.
  void expire_on(const Annotation& a) {
    const DeclSpan* target = nullptr;
    for (const DeclSpan& d : decls_)
      if (d.begin < a.begin && d.end >= a.end && clang_getCursorKind(d.cursor) == CXCursor_FieldDecl) target = &d;
    if (!target) {
      for (const DeclSpan& d : decls_)
        if (d.begin >= a.end) {
          target = &d;
          break;
        }
    }
    if (!target) {
      error(a.loc, "[[dispatch::expire_after_...]] must precede a field of a stateful function's state struct");
      return;
    }
    std::string usr = take(clang_getCursorUSR(target->cursor));
    expirations_[usr] = PendingExpiration{a, take(clang_getCursorSpelling(target->cursor)), false};
  }

  // dispatch::Context<State> (dispatch/stateful/context.h), canonical,
  // after references.
  static bool is_context(CXType t) {
    t = clang_getCanonicalType(t);
    if (t.kind == CXType_LValueReference || t.kind == CXType_RValueReference) t = clang_getPointeeType(t);
    t = clang_getCanonicalType(t);
    return t.kind == CXType_Record && clang_Type_getNumTemplateArguments(t) == 1 &&
           lookup_name(clang_getTypeDeclaration(t)) == "dispatch::Context";
  }

  // Built in as StateFun names them: bool, int32, int64, float, double, string.
  static bool is_builtin(const TypeRef& t) {
    switch (t.kind) {
      case TypeKind::kBool:
      case TypeKind::kFloat:
      case TypeKind::kDouble:
      case TypeKind::kString:
        return true;
      case TypeKind::kInt:
        return t.is_signed && (t.bits == 32 || t.bits == 64);
      default:
        return false;
    }
  }

  // [[dispatch::function]] void f(dispatch::Context<State>& ctx, const M& message).
  void add_stateful(CXCursor fn, const Annotation& a, Function& f) {
    StatefulFunction s;
    s.cpp = f.cpp;
    s.cpp_namespace = f.cpp_namespace;
    s.name = f.name;
    s.loc = f.loc;
    s.remote_name = f.name;
    if (a.remote_name) {
      if (a.remote_name->find('/') != std::string::npos) s.function_type = *a.remote_name;
      else s.remote_name = *a.remote_name;
    }
    std::string usr = take(clang_getCursorUSR(clang_getCanonicalCursor(fn)));
    if (!stateful_usrs_.insert(usr).second) return;  // a redeclaration annotated again
    const size_t errors_before = errors_.size();
    if (f.event) {
      error(a.loc, "stateful function '" + f.name + "' cannot take CloudEvents; annotate it [[dispatch::function]]");
    }
    std::vector<Scope> scopes = scopes_of(fn);
    if (in_anonymous_namespace(scopes) || clang_getCursorLinkage(fn) != CXLinkage_External) {
      error(f.loc, "function '" + f.name +
                       "' has internal linkage (static or in an anonymous namespace); a dispatch function "
                       "must be callable from the generated server code");
    }
    const int n = clang_Cursor_getNumArguments(fn);
    CXCursor ctx = clang_Cursor_getArgument(fn, 0);
    CXType ctx_type = clang_getCanonicalType(clang_getCursorType(ctx));
    const std::string ctx_written = take(clang_getTypeSpelling(clang_getCursorType(ctx)));
    if (ctx_type.kind != CXType_LValueReference || clang_isConstQualifiedType(clang_getPointeeType(ctx_type))) {
      error(location_of(ctx), "parameter '" + take(clang_getCursorSpelling(ctx)) + "' of stateful function '" +
                                  f.name + "' has type '" + ctx_written +
                                  "'; take the context as dispatch::Context<State>& (a non-const reference)");
      return;
    }
    CXType context = clang_getCanonicalType(clang_getPointeeType(ctx_type));
    CXType state = clang_getCanonicalType(clang_Type_getTemplateArgumentAsType(context, 0));
    CXCursor state_decl = clang_getTypeDeclaration(state);
    const CXCursorKind state_kind = clang_getCursorKind(state_decl);
    const std::string state_name = take(clang_getTypeSpelling(state));
    if (state.kind != CXType_Record || (state_kind != CXCursor_StructDecl && state_kind != CXCursor_ClassDecl) ||
        lookup_name(state_decl).rfind("std::", 0) == 0 || clang_Type_getNumTemplateArguments(state) > 0) {
      error(location_of(ctx), "parameter '" + take(clang_getCursorSpelling(ctx)) + "' of stateful function '" +
                                  f.name + "' has type '" + ctx_written + "'; the state '" + state_name +
                                  "' is not a struct: declare a struct whose fields are the persisted values");
      return;
    }
    s.state_cpp = "::" + lookup_name(state_decl);
    struct Visit {
      DeclWalker* self;
      StatefulFunction* s;
      std::string state;
      std::string proto_name;
    } visit{this, &s, s.state_cpp.substr(2), flattened_name(state_decl)};
    clang_Type_visitFields(
        state,
        [](CXCursor field, CXClientData data) {
          auto* v = static_cast<Visit*>(data);
          v->self->add_state_field(field, v->state, v->proto_name, *v->s);
          return CXVisit_Continue;
        },
        &visit);
    if (s.state.empty() && errors_.size() == errors_before) {
      error(location_of(state_decl), "state '" + s.state_cpp.substr(2) + "' of stateful function '" + f.name +
                                         "' has no fields; each field is one persisted value");
    }

    if (n != 2) {
      error(f.loc, "stateful function '" + f.name + "' has " +
                       (n == 1 ? std::string("only the context") : std::to_string(n) + " parameters") +
                       "; it takes the context and one message: void " + f.name +
                       "(dispatch::Context<State>& ctx, const Message& message)");
      return;
    }
    CXCursor p = clang_Cursor_getArgument(fn, 1);
    s.message_name = take(clang_getCursorSpelling(p));
    SourceLocation ploc = location_of(p);
    CXType pt = clang_getCursorType(p);
    const std::string written = take(clang_getTypeSpelling(pt));
    CXType ct = clang_getCanonicalType(pt);
    if (ct.kind == CXType_LValueReference && !clang_isConstQualifiedType(clang_getPointeeType(ct))) {
      error(ploc, "message parameter of stateful function '" + f.name + "' has type '" + written +
                      "'; take it by value or const&");
      return;
    }
    if (ct.kind == CXType_LValueReference || ct.kind == CXType_RValueReference) pt = clang_getPointeeType(ct);
    std::optional<TypeRef> t = types_.map_type(pt, Subject{"message parameter '" + s.message_name + "'", written, ploc});
    if (!t) return;
    auto takes = [&](const TypeRef& m) { return is_builtin(m) || m.kind == TypeKind::kStruct; };
    bool ok = takes(*t);
    if (t->kind == TypeKind::kVariant) {
      ok = true;
      for (const TypeRef& alt : t->args) ok = ok && takes(alt);
    }
    if (!ok) {
      error(ploc, "message parameter '" + s.message_name + "' of stateful function '" + f.name + "' has type '" +
                      written + "'; a stateful function takes a struct (a protobuf message), bool, std::int32_t, "
                      "std::int64_t, float, double, std::string, or a std::variant of these (one per message type)");
      return;
    }
    s.message = std::move(*t);
    CXType rt = clang_getCanonicalType(clang_getResultType(clang_getCursorType(fn)));
    if (rt.kind != CXType_Void) {
      error(f.loc, "stateful function '" + f.name + "' returns '" +
                       take(clang_getTypeSpelling(clang_getResultType(clang_getCursorType(fn)))) +
                       "'; it answers with ctx.reply(): return void");
    }
    if (errors_.size() != errors_before) return;
    model_.stateful.push_back(std::move(s));
  }

  void add_state_field(CXCursor field, const std::string& state, const std::string& state_proto_name,
                       StatefulFunction& s) {
    StateField sf;
    sf.name = take(clang_getCursorSpelling(field));
    sf.loc = location_of(field);
    CXType ft = clang_getCursorType(field);
    const std::string written = take(clang_getTypeSpelling(ft));
    const std::string what = "state field '" + sf.name + "' of '" + state + "'";
    if (clang_getCXXAccessSpecifier(field) != CX_CXXPublic) {
      error(sf.loc, what + " is not public; the generated code reads and writes each field of the state");
      return;
    }
    std::optional<TypeRef> t = types_.map_type(ft, Subject{what, written, sf.loc});
    if (!t) return;
    const TypeRef& inner = t->kind == TypeKind::kOptional ? t->args[0] : *t;
    if (!is_builtin(inner) && inner.kind != TypeKind::kStruct) {
      // No StateFun name and no message of its own: persisted as the
      // message <State>_<field> { <type> value = 1; }, one per state struct
      // and field however many functions share the state.
      const std::string proto_name = state_proto_name + "_" + sf.name;
      auto [it, inserted] = state_wrappers_.emplace(proto_name, model_.structs.size());
      if (inserted) {
        StructDecl w;
        w.proto_name = proto_name;
        w.fields.push_back(Field{"value", inner, 1, sf.loc});
        w.loc = sf.loc;
        w.state_field = state + "::" + sf.name;
        model_.structs.push_back(std::move(w));
      }
      sf.wrapper = it->second;
    }
    sf.type = std::move(*t);
    auto it = expirations_.find(take(clang_getCursorUSR(field)));
    if (it != expirations_.end()) {
      it->second.used = true;
      sf.expire = it->second.annotation.kind == Annotation::Kind::expire_after_write ? StateField::Expire::after_write
                                                                                     : StateField::Expire::after_invoke;
      sf.expire_ms = it->second.annotation.expire_ms;
    }
    s.state.push_back(std::move(sf));
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
    f.deprecated = is_deprecated(fn, &f.deprecated_message);
    if (a.kind == Annotation::Kind::faas) {
      add_faas(fn, a, f);
      return;
    }
    f.event = a.kind == Annotation::Kind::event;
    f.event_type = a.event_type;
    f.reply_type = a.reply_type;
    f.version = a.version.value_or("");
    f.idempotency = a.idempotency.value_or(Idempotency::unknown);
    // A dispatch::Context<State>& parameter makes a stateful function, and
    // comes first.
    for (int i = 0, n = clang_Cursor_getNumArguments(fn); i < n; ++i) {
      CXCursor p = clang_Cursor_getArgument(fn, unsigned(i));
      if (!is_context(clang_getCursorType(p))) continue;
      if (i == 0 && a.version) {
        error(a.version_loc, "function '" + f.name + "' is a stateful function, not a workflow; version = \"" +
                                 *a.version + "\" pins a workflow's version (docs/workflows.md), leave it out");
      } else if (i == 0 && a.idempotency) {
        error(a.idempotency_loc, "function '" + f.name +
                                     "' is a stateful function, whose calls change its state; idempotency is for "
                                     "plain functions, leave it out");
      } else if (i == 0) {
        add_stateful(fn, a, f);
      } else {
        error(location_of(p), "parameter '" + take(clang_getCursorSpelling(p)) + "' of '" + f.name +
                                  "' is a dispatch::Context; a stateful function takes it first: void " + f.name +
                                  "(dispatch::Context<State>& ctx, const Message& message)");
      }
      return;
    }
    if (f.remote_name.find('/') != std::string::npos) {
      error(a.loc, "'" + f.remote_name + "' is a stateful function's type (namespace/name), but '" + f.name +
                       "' takes no dispatch::Context<State>&; give it a plain remote name");
      return;
    }

    // A redeclaration annotated again is the same function, not a second one.
    std::string usr = take(clang_getCursorUSR(clang_getCanonicalCursor(fn)));
    if (auto it = function_usrs_.find(usr); it != function_usrs_.end()) {
      const Function& first = model_.functions[it->second];
      if (first.remote_name != f.remote_name)
        error(a.loc, "function '" + f.name + "' is annotated again with remote name '" + f.remote_name +
                         "'; it was '" + first.remote_name + "' at " + first.loc.file + ":" +
                         std::to_string(first.loc.line));
      else if (first.version != f.version)
        error(a.version ? a.version_loc : a.loc,
              "function '" + f.name + "' is annotated again with " +
                  (f.version.empty() ? std::string("no version") : "version \"" + f.version + "\"") +
                  "; it was " +
                  (first.version.empty() ? std::string("unpinned") : "version \"" + first.version + "\"") +
                  " at " + first.loc.file + ":" + std::to_string(first.loc.line));
      return;
    }

    if (f.name.rfind("operator", 0) == 0 && f.name.size() > 8 &&
        !(std::isalnum(static_cast<unsigned char>(f.name[8])) || f.name[8] == '_')) {
      error(f.loc, "function '" + f.name + "' is an operator, and a remote function needs a name (its stub is "
                   "an object named after it); annotate a named function that calls it instead, e.g. "
                   "[[dispatch::function]] T plus(const T& a, const T& b) { return a + b; }");
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
    if (is_deleted(fn)) {
      error(f.loc, "function '" + f.name + "' is deleted (= delete); the server would have nothing to call, so "
                   "remove [[dispatch::function]] or the function");
    }
    if (is_consteval(fn)) {
      error(f.loc, "function '" + f.name + "' is consteval, so it cannot be called at run time as the server "
                   "calls it; make it constexpr or a plain function");
    }

    int n = clang_Cursor_getNumArguments(fn);
    // An event function takes the event's data, the whole event
    // (dispatch::CloudEvent, with its attributes), both or neither.
    auto whole_event_param = [](CXType t) {
      CXType ct = clang_getCanonicalType(t);
      if (ct.kind == CXType_LValueReference) ct = clang_getPointeeType(ct);
      std::optional<TypeRef> e = TypeMapper::map_whole_event(ct);
      return e && e->kind == TypeKind::kCloudEvent;
    };
    if (f.event) {
      int events = 0;
      for (int i = 0; i < n; ++i) events += whole_event_param(clang_getCursorType(clang_Cursor_getArgument(fn, unsigned(i))));
      if (events > 1 || n - events > 1) {
        error(f.loc, "event function '" + f.name + "' has " + std::to_string(n) + " parameters (" +
                         std::to_string(n - events) + " of data, " + std::to_string(events) +
                         " dispatch::CloudEvent); it takes at most one of each: the event's data and the whole "
                         "event (const dispatch::CloudEvent&)");
        return;
      }
    }
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
      if (f.event && whole_event_param(pt)) {
        CXType ct = clang_getCanonicalType(pt);
        if (ct.kind == CXType_LValueReference && !clang_isConstQualifiedType(clang_getPointeeType(ct))) {
          error(param.loc, s.what + " has type '" + written +
                               "'; the event is the caller's, take it as const dispatch::CloudEvent& (a reply "
                               "is returned)");
          continue;
        }
        param.by_const_ref = ct.kind == CXType_LValueReference;
        param.type = *TypeMapper::map_whole_event(ct.kind == CXType_LValueReference ? clang_getPointeeType(ct) : ct);
        f.params.push_back(std::move(param));
        continue;
      }
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
      switch (types_.map_view(pt, s, &t, &param.view_cpp)) {
        case TypeMapper::View::kNone: t = types_.map_type(pt, s); break;
        case TypeMapper::View::kMapped: break;
        case TypeMapper::View::kRefused: continue;
      }
      if (t) {
        param.type = std::move(*t);
        param.default_arg = default_argument(p);
        if (auto undone = macro_undefined_later(p)) {
          error(param.loc, "the default argument of " + s.what + " uses macro '" + undone->first +
                               "', which the header #undefs at line " + std::to_string(undone->second) +
                               "; the stub's default is evaluated where the macro is gone, so write the value or "
                               "use a constant (inline constexpr) instead");
          continue;
        }
        f.params.push_back(std::move(param));
      }
    }

    CXType rt = clang_getResultType(type);
    CXType crt = clang_getCanonicalType(rt);
    if (is_workflow(crt)) {
      // A workflow's result on the wire, and its stub's, is what the
      // coroutine co_returns.
      f.workflow = true;
      rt = clang_Type_getTemplateArgumentAsType(crt, 0);
      crt = clang_getCanonicalType(rt);
      if (f.event) {
        error(f.loc, "event function '" + f.name + "' is a workflow (it returns '" +
                         take(clang_getTypeSpelling(clang_getResultType(type))) +
                         "'); an event is delivered to its function directly, and a workflow runs only through a "
                         "scheduler: let the event function dispatch the workflow");
      }
    }
    if (a.idempotency && f.workflow) {
      error(a.idempotency_loc, "function '" + f.name +
                                   "' is a workflow, which runs only through a scheduler; idempotency is for "
                                   "plain functions, leave it out");
    }
    if (a.version && !f.workflow) {
      error(a.version_loc, "function '" + f.name + "' is not a workflow (it returns '" +
                               take(clang_getTypeSpelling(rt)) + "'); version = \"" + *a.version +
                               "\" pins a workflow's version (docs/workflows.md), leave it out");
    }
    const std::string result_what = (f.workflow ? "result of workflow '" : "result of '") + f.name + "'";
    if (crt.kind == CXType_Void) {
      f.result.kind = TypeKind::kVoid;
      f.result.cpp = "void";
    } else if (crt.kind == CXType_LValueReference || crt.kind == CXType_RValueReference) {
      error(f.loc, result_what + " has type '" + take(clang_getTypeSpelling(rt)) +
                       "'; references cannot cross a process boundary, return by value");
    } else if (std::optional<TypeRef> e = f.event ? TypeMapper::map_whole_event(rt) : std::nullopt) {
      f.result = std::move(*e);  // the reply event
    } else if (std::optional<TypeRef> t =
                   types_.map_type(rt, Subject{result_what, take(clang_getTypeSpelling(rt)), f.loc})) {
      f.result = std::move(*t);
    }
    if (errors_.size() != errors_before) return;
    function_usrs_.emplace(usr, model_.functions.size());
    model_.functions.push_back(std::move(f));
  }

  // dispatch::Result<T> (dispatch/core/result.h), canonical.
  static bool is_result(CXType t) {
    return t.kind == CXType_Record && clang_Type_getNumTemplateArguments(t) == 1 &&
           lookup_name(clang_getTypeDeclaration(t)) == "dispatch::Result";
  }

  // What a typed proxy's body and output can be (docs/deploy.md, "Typed
  // proxies"): text, bytes or a struct's JSON.
  static bool is_faas_body(const TypeRef& t) {
    return t.kind == TypeKind::kString || t.kind == TypeKind::kBytes || t.kind == TypeKind::kStruct;
  }

  // [[dispatch::faas("name")]] R f(P p): a typed proxy of an OpenFaaS
  // function (model.h, FaasFunction).
  void add_faas(CXCursor fn, const Annotation& a, const Function& f) {
    FaasFunction x;
    x.cpp = f.cpp;
    x.cpp_namespace = f.cpp_namespace;
    x.name = f.name;
    x.faas_name = a.faas_name;
    x.loc = f.loc;
    const std::string what = "FaaS proxy '" + f.name + "'";
    std::string usr = take(clang_getCursorUSR(clang_getCanonicalCursor(fn)));
    if (auto it = faas_usrs_.find(usr); it != faas_usrs_.end()) {
      const FaasFunction& first = model_.faas[it->second];
      if (first.faas_name != x.faas_name)
        error(a.loc, what + " is annotated again with FaaS function '" + x.faas_name + "'; it was '" +
                         first.faas_name + "' at " + first.loc.file + ":" + std::to_string(first.loc.line));
      return;
    }
    for (const FaasFunction& other : model_.faas) {
      if (other.cpp == x.cpp) {  // an overload: one proxy name, two signatures
        error(f.loc, what + " overloads the proxy at " + other.loc.file + ":" + std::to_string(other.loc.line) +
                         "; a proxy is named after its function, so give each one its own name");
        return;
      }
    }
    const size_t errors_before = errors_.size();
    if (in_anonymous_namespace(scopes_of(fn))) {
      error(f.loc, what + " is in an anonymous namespace; its proxy is <namespace>::faas::" + f.name +
                       ", which needs a named (or the global) namespace");
    }
    CXType type = clang_getCursorType(fn);
    if (clang_isFunctionTypeVariadic(type)) {
      error(f.loc, what + " is variadic; an OpenFaaS function takes one request body");
    }
    const int n = clang_Cursor_getNumArguments(fn);
    if (n > 1) {
      error(f.loc, what + " has " + std::to_string(n) +
                       " parameters; an OpenFaaS function takes one request body: take one parameter (a struct "
                       "holding the values, sent as JSON)");
    }
    for (int i = 0; i < n && n == 1; ++i) {
      CXCursor p = clang_Cursor_getArgument(fn, unsigned(i));
      Parameter param;
      param.name = take(clang_getCursorSpelling(p));
      param.loc = location_of(p);
      if (param.name.empty()) param.name = "input";
      CXType pt = clang_getCursorType(p);
      const std::string written = take(clang_getTypeSpelling(pt));
      Subject s{"parameter '" + param.name + "' of " + what, written, param.loc};
      CXType ct = clang_getCanonicalType(pt);
      if (ct.kind == CXType_LValueReference && clang_isConstQualifiedType(clang_getPointeeType(ct))) {
        param.by_const_ref = true;
        pt = clang_getPointeeType(ct);
      } else if (ct.kind == CXType_LValueReference || ct.kind == CXType_RValueReference) {
        error(param.loc, s.what + " has type '" + written + "'; take the request body by value or const&");
        continue;
      }
      if (!default_argument(p).empty()) {
        error(param.loc, s.what + " has a default argument; a proxy takes its body explicitly, leave it out");
        continue;
      }
      std::optional<TypeRef> t;
      switch (types_.map_view(pt, s, &t, &param.view_cpp)) {
        case TypeMapper::View::kNone: t = types_.map_type(pt, s); break;
        case TypeMapper::View::kMapped: break;
        case TypeMapper::View::kRefused: continue;
      }
      if (!t) continue;
      if (!is_faas_body(*t)) {
        error(param.loc, s.what + " has type '" + written +
                             "'; the request body is a std::string (sent as text/plain), bytes "
                             "(application/octet-stream) or a struct (application/json): put the value in a struct");
        continue;
      }
      param.type = std::move(*t);
      x.params.push_back(std::move(param));
    }
    CXType rt = clang_getResultType(type);
    CXType crt = clang_getCanonicalType(rt);
    std::string written = take(clang_getTypeSpelling(rt));
    if (is_result(crt)) {
      rt = clang_Type_getTemplateArgumentAsType(crt, 0);
      crt = clang_getCanonicalType(rt);
    }
    const std::string result_what = "result of " + what;
    if (crt.kind == CXType_Void) {
      x.result.kind = TypeKind::kVoid;
      x.result.cpp = "void";
    } else if (is_workflow(crt)) {
      error(f.loc, result_what + " has type '" + written +
                       "'; an OpenFaaS function is no workflow: return what its output holds");
    } else if (crt.kind == CXType_LValueReference || crt.kind == CXType_RValueReference) {
      error(f.loc, result_what + " has type '" + written + "'; references cannot cross a process boundary, "
                                                           "return by value");
    } else if (std::optional<TypeRef> t = types_.map_type(rt, Subject{result_what, written, f.loc})) {
      if (is_faas_body(*t)) {
        x.result = std::move(*t);
      } else {
        error(f.loc, result_what + " has type '" + written +
                         "'; the output is read as a std::string (any content type), bytes, a struct "
                         "(JSON) or nothing (void): put the value in a struct");
      }
    }
    if (errors_.size() != errors_before) return;
    faas_usrs_.emplace(usr, model_.faas.size());
    model_.faas.push_back(std::move(x));
  }

  // dispatch::Workflow<T> (dispatch/workflow/workflow.h), canonical.
  static bool is_workflow(CXType t) {
    return t.kind == CXType_Record && clang_Type_getNumTemplateArguments(t) == 1 &&
           lookup_name(clang_getTypeDeclaration(t)) == "dispatch::Workflow";
  }

  CXTranslationUnit tu_;
  CXFile main_file_;
  // #undef NAME in the main file: its offset and line (macro_undefined_later).
  std::optional<std::multimap<std::string, std::pair<unsigned, unsigned>>> undefs_;
  Model& model_;
  std::vector<Diagnostic>& errors_;
  TypeMapper types_;
  std::vector<DeclSpan> decls_;
  std::map<std::string, size_t> function_usrs_;
  std::set<std::string> stateful_usrs_;
  std::map<std::string, size_t> faas_usrs_;  // by the canonical declaration's USR
  std::map<std::string, size_t> state_wrappers_;  // proto name -> index in Model::structs
  struct PendingExpiration {
    Annotation annotation;
    std::string target;  // what it annotates, for the error when that is no state field
    bool used = false;
  };
  std::map<std::string, PendingExpiration> expirations_;  // by the annotated field's USR
};

}  // namespace

void walk_declarations(CXTranslationUnit tu, CXFile main_file, const std::vector<Annotation>& annotations,
                       Model& model, std::vector<Diagnostic>& errors) {
  DeclWalker(tu, main_file, model, errors).run(annotations);
}

}  // namespace dispatch::gen
