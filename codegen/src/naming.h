// The naming pass: gives a parsed Model its proto names (package, service,
// request/response messages, enum value names, proto file) and reports names
// that collide. Both back ends read these names from the model, so the .proto
// and the generated C++ cannot disagree. Also the rule for the wrapper
// messages that nested containers need in proto (see docs/annotations.md),
// and how generated code spells the #include of the user's header.
// Not libclang, not output.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diagnostics.h"
#include "model.h"

namespace dispatch::gen {

struct NamingOptions {
  std::optional<std::string> package;       // --package: overrides the namespace
  std::optional<std::string> include_name;  // --include-name, or the -I directories' spelling
};

// Fills package, service, cpp_namespace, include_name (when given),
// Function::request_message/response_message, EnumValue::proto_name and
// EnumDecl::synthetic_zero; returns every naming error (empty = ok).
std::vector<Diagnostic> assign_names(Model& model, const NamingOptions& options);

// "place_order" -> "PlaceOrder", "api" -> "Api", "shop-api.v2" -> "ShopApiV2".
std::string pascal_case(std::string_view name);
// "OrderStatus" -> "ORDER_STATUS", "pending" -> "PENDING", "HTTPCode" -> "HTTP_CODE".
std::string upper_snake(std::string_view name);

// ---- C++ names of the generated code. Beside the user's namespace <ns> (the
// model's cpp_namespace) the generated code declares two namespaces,
// <ns>::remote (message structs, stubs, <stem>_service(),
// <stem>_file_descriptor()) and <ns>::<stem>_wire (codecs). assign_names
// reports a user name that would collide with one of them. Header-only, so
// the C++ back end shares these rules without linking the naming pass.

// The file stem as a C++ identifier: "shop-api.v2" -> "shop_api_v2", "2fa" -> "_2fa".
inline std::string cpp_stem(const std::string& stem) {
  std::string out;
  for (char c : stem) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out = "_" + out;
  return out;
}

// "outer::inner", or `inner` alone in the global namespace ("").
inline std::string join_ns(const std::string& outer, const std::string& inner) {
  return outer.empty() ? inner : outer + "::" + inner;
}
// The generated namespaces, unqualified: "shop::remote", "shop::api_wire".
inline std::string remote_namespace(const Model& model) { return join_ns(model.cpp_namespace, "remote"); }
inline std::string wire_namespace(const Model& model) {
  return join_ns(model.cpp_namespace, cpp_stem(model.stem) + "_wire");
}

// The name of f's stub (an object in <ns>::remote): the function's name, or
// its remote name when the header overloads the name.
inline std::string stub_name(const Model& model, const Function& f) {
  int same = 0;
  for (const Function& g : model.functions) same += (g.name == f.name);
  return same > 1 ? f.remote_name : f.name;
}

// ---- Wrapper messages. proto has no repeated optional, repeated repeated,
// map of repeated etc.; where a C++ container holds such an element, the
// element is carried in a wrapper message with one field, "value = 1", that
// holds the element as a field of its own type would. Wrappers are top-level
// messages of the file, named after the element type:
//   wrapper_name(optional<T>) = "Optional" + type_name(T)
//   wrapper_name(vector<T>)   = "List" + type_name(T)
//   wrapper_name(map<K, V>)   = "Map" + type_name(K) + type_name(V)
// where type_name is the wrapper name for those three and otherwise
// Bool, Int32, Int64, Uint32, Uint64, Float, Double, String, Bytes, Duration,
// Timestamp, or the enum's/struct's proto name.
// A std::variant is always a message of its own, wherever it is (a field, a
// parameter, a result, an element): one `oneof value` with one field per
// alternative, numbered 1..n in the variant's order and named
// variant_field(alternative); an alternative that needs a wrapper is held by
// its wrapper, as an element is:
//   wrapper_name(variant<A, B>) = "Variant" + type_name(A) + type_name(B)
// A field of variant type is an ordinary message field of that message, so it
// keeps one field number.

// True when `element` (a vector's element, a map's value, or what an optional
// field holds) needs a wrapper message: it is an optional, a vector (not
// bytes) or a map.
bool needs_wrapper(const TypeRef& element);
// The wrapper's message name (or, for other types, the name used inside
// wrapper names).
std::string type_name(const Model& model, const TypeRef& type);
// The name of the oneof field that holds alternative `alternative` of a
// variant: type_name in lower snake case + "_value" ("int32_value",
// "list_string_value", "order_value").
std::string variant_field(const Model& model, const TypeRef& alternative);
// Every wrapper message the model needs, by name, with the element type it
// wraps (for a variant's message: the variant itself); sorted by name.
std::map<std::string, TypeRef> wrapper_messages(const Model& model);

// ---- How generated code #includes the user's header: the way code compiled
// with the same include directories does. A header is "held" by a directory
// it lies below (paths compared after resolving symlinks); the deepest such
// directory gives the shortest spelling, which is the one people write:
// with -Ilib -Ilib/api, lib/api/acme/x.h is "acme/x.h", not "api/acme/x.h".

// The include directories of clang arguments, in the order a quoted #include
// searches them: -iquote, then -I, then -isystem (each "-Idir" or "-I dir").
std::vector<std::string> include_dirs(const std::vector<std::string>& clang_args);

// `header` spelled relative to the deepest of `dirs` that holds it ('/'
// separators), and that directory as given; nullopt when none holds it.
struct IncludeSpelling {
  std::string name;  // "acme/x.h"
  std::string dir;   // "lib/api"
};
std::optional<IncludeSpelling> include_spelling(const std::string& header, const std::vector<std::string>& dirs);

// The file #include "<name>" reaches through `dirs`, searched in order
// (<dir>/<name> as given), or nullopt when no directory has it.
std::optional<std::string> include_lookup(const std::string& name, const std::vector<std::string>& dirs);

}  // namespace dispatch::gen
