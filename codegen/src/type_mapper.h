// Maps libclang types to the model's TypeRefs: builtins, the standard
// library types with a wire form, and the user's structs and enums, which it
// adds to the model once each with their fields and values. What cannot
// cross a process boundary gets a diagnostic naming the declaration that
// uses it. Not for finding or checking functions (decl_walker.h). Private to
// the front end: no libclang type leaves through model.h.
#pragma once

#include <clang-c/Index.h>

#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "diagnostics.h"
#include "model.h"

namespace dispatch::gen {

// What a type belongs to, for messages: "parameter 'cb'" with its type as
// written and the place to point at.
struct Subject {
  std::string what;
  std::string written;
  SourceLocation loc;
};

class TypeMapper {
 public:
  // Structs and enums are added to `model`; every error goes to `errors`.
  // Both must outlive the mapper.
  TypeMapper(Model& model, std::vector<Diagnostic>& errors) : model_(model), errors_(errors) {}

  // The model's form of `written` (typedefs resolved), or nullopt after
  // reporting why it has none as "<s.what> has type '<s.written>'; <why>".
  // A struct or enum is mapped and checked once; a rejected one reports its
  // errors once and is nullopt every later time.
  std::optional<TypeRef> map_type(CXType written, const Subject& s);

  // A parameter may be a view: `std::string_view` or `std::span<const T>`.
  // The stub takes the view; the request and the wire hold what it views,
  // as the owning type (std::string, std::vector<T>, bytes); the server
  // passes the decoded value, which converts to the view for the call.
  // Views are for parameters only: a field, a result or an element must own
  // its data (map_type says so).
  //   kNone:    not a view; map it with map_type.
  //   kMapped:  *type is the owning type, *view_cpp the view's spelling.
  //   kRefused: a view without a wire form, reported.
  enum class View { kNone, kMapped, kRefused };
  View map_view(CXType written, const Subject& s, std::optional<TypeRef>* type, std::string* view_cpp);

  // The whole-event forms of an event function (docs/events.md):
  // dispatch::CloudEvent (kCloudEvent) or std::optional<dispatch::CloudEvent>
  // (kOptional of it); nullopt for any other type. map_type refuses a
  // CloudEvent anywhere else (a field, an element, a plain function's
  // parameter), so only the walker, for an event function, asks this.
  static std::optional<TypeRef> map_whole_event(CXType written);

 private:
  void error(const SourceLocation& loc, std::string message);
  std::nullopt_t fail(const Subject& s, const std::string& why);
  std::optional<TypeRef> vector_of(CXType elem, const Subject& s);
  std::optional<TypeRef> map_record(CXType t, const Subject& s);
  std::optional<TypeRef> map_duration(CXType t, const Subject& s);
  bool check_nameable(CXCursor decl, const std::string& what, const Subject& s);
  std::optional<TypeRef> map_enum(CXType t, const Subject& s);
  std::optional<TypeRef> map_struct(CXType t, const Subject& s);
  bool hidden(CXCursor decl);
  TypeRef enum_ref(size_t index) const;
  TypeRef struct_ref(size_t index) const;

  Model& model_;
  std::vector<Diagnostic>& errors_;
  // USR -> index, or nullopt once a type was rejected (reported once).
  std::map<std::string, std::optional<size_t>> struct_index_;
  std::map<std::string, std::optional<size_t>> enum_index_;
  // The qualified names of namespace-scope functions and variables, which
  // hide a struct or enum of the same name; read once, when first needed.
  std::optional<std::set<std::string>> non_types_;
};

// Puts model.structs in dependency order, dependencies before dependents as
// far as cycles allow, so a back end can define each before its first use
// by value; every TypeRef's `decl` follows its struct.
void order_structs(Model& model);

}  // namespace dispatch::gen
