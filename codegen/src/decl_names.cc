// A declaration's C++ names from its cursor's semantic parents; see
// decl_names.h.
#include "decl_names.h"

#include <algorithm>
#include <utility>

#include "clang_source.h"

namespace dispatch::gen {

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

std::string full_cpp_name(CXCursor c) {
  std::string out;
  for (const Scope& s : scopes_of(c)) out += "::" + s.name;
  return out + "::" + take(clang_getCursorSpelling(c));
}

std::string lookup_name(CXCursor c) {
  std::string out;
  for (const Scope& s : scopes_of(c)) {
    if (s.kind == Scope::kNamespace && (s.is_inline || s.name.empty())) continue;
    out += s.name + "::";
  }
  return out + take(clang_getCursorSpelling(c));
}

std::string flattened_name(CXCursor c) {
  std::vector<Scope> scopes = scopes_of(c);
  std::string out;
  for (auto it = scopes.rbegin(); it != scopes.rend() && it->kind == Scope::kRecord; ++it)
    out = it->name + "_" + out;
  return out + take(clang_getCursorSpelling(c));
}

std::string namespace_of(CXCursor c) {
  std::string out;
  for (const Scope& s : scopes_of(c)) {
    if (s.kind != Scope::kNamespace || s.is_inline) continue;
    if (!out.empty()) out += "::";
    out += s.name;
  }
  return out;
}

}  // namespace dispatch::gen
