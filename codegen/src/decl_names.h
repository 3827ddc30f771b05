// The C++ names of a declaration, read from its libclang cursor: exact and
// qualified for generated code to spell, without inline namespaces for
// recognising library types, flattened for proto message names, and the
// enclosing namespace. Not for types (type_mapper.h). Private to the front
// end.
#pragma once

#include <clang-c/Index.h>

#include <string>
#include <vector>

namespace dispatch::gen {

// One enclosing scope of a declaration, outermost first.
struct Scope {
  enum Kind { kNamespace, kRecord, kOther } kind;
  std::string name;
  bool is_inline = false;
};

// The scopes enclosing `c`, outermost first; extern "C" blocks open none.
std::vector<Scope> scopes_of(CXCursor c);

bool in_anonymous_namespace(const std::vector<Scope>& scopes);
// Inside a function (or anything else that is neither a namespace nor a
// class): a local declaration.
bool in_function(const std::vector<Scope>& scopes);

// "::a::v1::Outer::Inner": exact, inline namespaces included.
std::string full_cpp_name(CXCursor c);

// "std::chrono::system_clock" for libstdc++'s std::chrono::_V2::system_clock:
// inline namespaces left out, for recognizing library types.
std::string lookup_name(CXCursor c);

// "Outer_Inner": the record path below the innermost namespace.
std::string flattened_name(CXCursor c);

// The namespace for the package and generated entities: "a::b", inline
// namespaces left out.
std::string namespace_of(CXCursor c);

}  // namespace dispatch::gen
