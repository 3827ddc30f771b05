// Mapping libclang types to the model; see type_mapper.h. Each C++ type with
// a wire form is recognised in map_type() / map_record(); a new one is added
// there (and in each back end).
#include "type_mapper.h"

#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <string_view>
#include <utility>

#include "clang_source.h"
#include "decl_names.h"

namespace dispatch::gen {
namespace {

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

std::optional<TypeRef> int_type(CXType t) {
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

CXType template_arg(CXType t, unsigned i) {
  return clang_getCanonicalType(clang_Type_getTemplateArgumentAsType(t, i));
}

void for_each_ref(TypeRef& t, const std::function<void(TypeRef&)>& f) {
  f(t);
  for (TypeRef& a : t.args) for_each_ref(a, f);
}

}  // namespace

void TypeMapper::error(const SourceLocation& loc, std::string message) {
  errors_.push_back(Diagnostic{loc, std::move(message)});
}

TypeMapper::View TypeMapper::map_view(CXType written, const Subject& s, std::optional<TypeRef>* type,
                                     std::string* view_cpp) {
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

std::nullopt_t TypeMapper::fail(const Subject& s, const std::string& why) {
  error(s.loc, s.what + " has type '" + s.written + "'; " + why);
  return std::nullopt;
}

std::optional<TypeRef> TypeMapper::map_type(CXType written, const Subject& s) {
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

// std::vector<elem> (elem canonical): bytes for std::uint8_t/unsigned char
// and std::byte, otherwise a list of elem.
std::optional<TypeRef> TypeMapper::vector_of(CXType elem, const Subject& s) {
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

std::optional<TypeRef> TypeMapper::map_whole_event(CXType written) {
  CXType t = clang_getCanonicalType(written);
  if (t.kind != CXType_Record) return std::nullopt;
  const std::string name = lookup_name(clang_getTypeDeclaration(t));
  TypeRef r;
  if (name == "dispatch::CloudEvent") {
    r.kind = TypeKind::kCloudEvent;
    r.cpp = "::dispatch::CloudEvent";
    return r;
  }
  if (name != "std::optional") return std::nullopt;
  std::optional<TypeRef> e = map_whole_event(template_arg(t, 0));
  if (!e || e->kind != TypeKind::kCloudEvent) return std::nullopt;
  r.kind = TypeKind::kOptional;
  r.cpp = "std::optional<" + e->cpp + ">";
  r.args.push_back(std::move(*e));
  return r;
}

std::optional<TypeRef> TypeMapper::map_record(CXType t, const Subject& s) {
  CXCursor decl = clang_getTypeDeclaration(t);
  std::string name = lookup_name(decl);
  if (name == "dispatch::CloudEvent") {
    return fail(s, "a whole CloudEvent is taken (const dispatch::CloudEvent&) or returned (dispatch::CloudEvent, "
                   "std::optional<dispatch::CloudEvent>) only by a [[dispatch::event]] function; anywhere else "
                   "pass what the event carries as a struct");
  }
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
  if (name == "std::variant") {
    if (nargs < 1) return fail(s, "std::variant needs at least one alternative");
    r.kind = TypeKind::kVariant;
    r.cpp = "std::variant<";
    for (int i = 0; i < nargs; ++i) {
      CXType arg = template_arg(t, unsigned(i));
      if (lookup_name(clang_getTypeDeclaration(arg)) == "std::monostate")
        return fail(s, "std::monostate has no wire form; for a value that may be absent use "
                       "std::optional<std::variant<...>>");
      std::optional<TypeRef> e = map_type(arg, s);
      if (!e) return std::nullopt;
      r.cpp += (i == 0 ? "" : ", ") + e->cpp;
      r.args.push_back(std::move(*e));
    }
    r.cpp += ">";
    return r;
  }
  if (name == "std::monostate")
    return fail(s, "std::monostate has no wire form; for a value that may be absent use "
                   "std::optional<std::variant<...>>");
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
  if (name == "dispatch::Workflow")
    return fail(s, "a dispatch::Workflow has no wire form; it is only ever a function's declared result, which "
                   "makes the function a workflow (docs/workflows.md)");
  if (name.rfind("std::", 0) == 0 || name.rfind("__", 0) == 0)
    return fail(s, "'" + name + "' is not supported (see docs/annotations.md for the supported types)");
  return map_struct(t, s);
}

std::optional<TypeRef> TypeMapper::map_duration(CXType t, const Subject& s) {
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
bool TypeMapper::check_nameable(CXCursor decl, const std::string& what, const Subject& s) {
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

std::optional<TypeRef> TypeMapper::map_enum(CXType t, const Subject& s) {
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
  e.hidden = hidden(def);
  CXType underlying = clang_getCanonicalType(clang_getEnumDeclIntegerType(def));
  std::optional<TypeRef> u = int_type(underlying);
  if (!u) {
    enum_index_[usr] = std::nullopt;
    return fail(s, "the enum's underlying type has no wire form");
  }
  e.underlying = *u;
  bool ok = true;
  struct Ctx {
    TypeMapper* self;
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

// The C idiom `struct stat` beside `stat()`, or glibc's `timezone` variable
// beside `struct timezone`: the plain name means the function or variable.
bool TypeMapper::hidden(CXCursor decl) {
  if (!non_types_) {
    non_types_.emplace();
    struct Walk {
      static CXChildVisitResult visit(CXCursor c, CXCursor, CXClientData data) {
        auto* names = static_cast<std::set<std::string>*>(data);
        switch (clang_getCursorKind(c)) {
          case CXCursor_Namespace:
          case CXCursor_LinkageSpec:
          case CXCursor_UnexposedDecl:  // extern "C" { } in C++
            clang_visitChildren(c, &Walk::visit, data);
            break;
          case CXCursor_FunctionDecl:
          case CXCursor_VarDecl:
            names->insert(full_cpp_name(c));
            break;
          default:
            break;
        }
        return CXChildVisit_Continue;
      }
    };
    CXCursor tu = clang_getTranslationUnitCursor(clang_Cursor_getTranslationUnit(decl));
    clang_visitChildren(tu, &Walk::visit, &*non_types_);
  }
  return non_types_->count(full_cpp_name(decl)) > 0;
}

TypeRef TypeMapper::enum_ref(size_t index) const {
  TypeRef r;
  r.kind = TypeKind::kEnum;
  r.cpp = type_cpp(model_.enums[index]);
  r.decl = index;
  return r;
}

TypeRef TypeMapper::struct_ref(size_t index) const {
  TypeRef r;
  r.kind = TypeKind::kStruct;
  r.cpp = type_cpp(model_.structs[index]);
  r.decl = index;
  return r;
}

std::optional<TypeRef> TypeMapper::map_struct(CXType t, const Subject& s) {
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
  sd.hidden = hidden(def);
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
        f.deprecated = is_deprecated(c, nullptr);
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

void order_structs(Model& model) {
  size_t n = model.structs.size();
  std::vector<size_t> order;
  std::vector<int> state(n, 0);  // 0 new, 1 visiting, 2 done
  std::function<void(size_t)> visit = [&](size_t i) {
    if (state[i] != 0) return;
    state[i] = 1;
    for (Field& f : model.structs[i].fields)
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
  for (size_t i : order) sorted.push_back(std::move(model.structs[i]));
  model.structs = std::move(sorted);
  auto remap = [&](TypeRef& t) {
    if (t.kind == TypeKind::kStruct && t.decl < n) t.decl = new_index[t.decl];
  };
  for (StructDecl& s : model.structs)
    for (Field& f : s.fields) for_each_ref(f.type, remap);
  for (Function& f : model.functions) {
    for (Parameter& p : f.params) for_each_ref(p.type, remap);
    for_each_ref(f.result, remap);
  }
  for (StatefulFunction& f : model.stateful) {
    for (StateField& s : f.state) {
      for_each_ref(s.type, remap);
      if (s.wrapper && *s.wrapper < n) s.wrapper = new_index[*s.wrapper];
    }
    for_each_ref(f.message, remap);
  }
}

}  // namespace dispatch::gen
