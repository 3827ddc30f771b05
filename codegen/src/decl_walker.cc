// Declaration walking: the main file's declarations, each annotation
// attached to the one after it, and the function it names added to the
// model; see decl_walker.h.
#include "decl_walker.h"

#include <algorithm>
#include <map>
#include <optional>
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
    for (const Annotation& a : annotations) attach(a);
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
      error(a.loc, "[[dispatch::faas]] names a function on an OpenFaaS gateway; this dispatch-gen does not "
                   "generate proxies of such functions yet (call it with dispatch::faas::Gateway)");
      return;
    }
    f.event = a.kind == Annotation::Kind::event;
    f.event_type = a.event_type;
    f.reply_type = a.reply_type;
    f.version = a.version.value_or("");

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
    // The whole event as a parameter or result is the events layer's
    // protobuf-format field, which this generator does not emit yet.
    auto names_cloud_event = [](CXType t) {
      return take(clang_getTypeSpelling(clang_getCanonicalType(t))).find("dispatch::CloudEvent") != std::string::npos;
    };
    if (f.event) {
      if (n > 1) {
        error(f.loc, "event function '" + f.name + "' has " + std::to_string(n) +
                         " parameters; it takes at most one, the event's data");
      }
      bool whole_event = names_cloud_event(clang_getResultType(clang_getCursorType(fn)));
      for (int i = 0; i < n; ++i) {
        whole_event = whole_event || names_cloud_event(clang_getCursorType(clang_Cursor_getArgument(fn, unsigned(i))));
      }
      if (whole_event) {
        error(f.loc, "event function '" + f.name + "' takes or returns a dispatch::CloudEvent; this dispatch-gen "
                     "generates event functions of typed data only (a data parameter, a data result)");
      }
      if (errors_.size() != errors_before) return;
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
    } else if (std::optional<TypeRef> t =
                   types_.map_type(rt, Subject{result_what, take(clang_getTypeSpelling(rt)), f.loc})) {
      f.result = std::move(*t);
    }
    if (errors_.size() != errors_before) return;
    function_usrs_.emplace(usr, model_.functions.size());
    model_.functions.push_back(std::move(f));
  }

  // dispatch::Workflow<T> (dispatch/workflow/workflow.h), canonical.
  static bool is_workflow(CXType t) {
    return t.kind == CXType_Record && clang_Type_getNumTemplateArguments(t) == 1 &&
           lookup_name(clang_getTypeDeclaration(t)) == "dispatch::Workflow";
  }

  CXTranslationUnit tu_;
  CXFile main_file_;
  Model& model_;
  std::vector<Diagnostic>& errors_;
  TypeMapper types_;
  std::vector<DeclSpan> decls_;
  std::map<std::string, size_t> function_usrs_;
};

}  // namespace

void walk_declarations(CXTranslationUnit tu, CXFile main_file, const std::vector<Annotation>& annotations,
                       Model& model, std::vector<Diagnostic>& errors) {
  DeclWalker(tu, main_file, model, errors).run(annotations);
}

}  // namespace dispatch::gen
