// What the generated C++ calls things, shared by the C++ back end's
// printers: the generated namespaces, the stubs' and handlers' names,
// method paths, the fields of request and response messages, and how a stub
// spells its parameter list (names that shadow nothing, default arguments).
// Not for: the rules the naming pass owns (naming.h: namespaces, stub names,
// proto names), nor text formatting (cpp_format.h).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "model.h"

namespace dispatch::gen {

// A scalar: written as a varint or fixed-width value, not length-delimited.
bool is_scalar(const TypeRef& t);

class CppNames {
 public:
  explicit CppNames(const Model& model);

  const Model& model() const { return m_; }
  // "shop::remote", "shop::api_wire", and the same with a leading "::".
  const std::string& remote_ns() const { return remote_ns_; }
  const std::string& wire_ns() const { return wire_ns_; }
  std::string remote_ns_q() const { return "::" + remote_ns_; }
  std::string wire_ns_q() const { return "::" + wire_ns_; }
  // How generated sources #include the generated header: "shop/api.dispatch.h".
  const std::string& generated_header() const { return generated_header_; }
  // Function i's stub object in <ns>::remote ("add"; its type is "add_stub").
  const std::string& stub(std::size_t function) const { return stub_names_[function]; }
  // The server half's names in <ns>::remote's anonymous namespace, none of
  // them a stub's name: "kMethods", and per function "add_handler".
  const std::string& methods() const { return methods_; }
  const std::string& handler(std::size_t function) const { return handlers_[function]; }
  // A workflow's instead of a handler: the function that starts it from its
  // input ("checkout_start") and its dispatch::workflow::Definition
  // ("checkout_workflow"). Empty for a function that is not a workflow.
  const std::string& workflow_start(std::size_t function) const { return workflow_starts_[function]; }
  const std::string& workflow_definition(std::size_t function) const { return workflow_definitions_[function]; }

  // "pkg.Name", or "Name" without a package.
  std::string full_proto(const std::string& name) const;
  // "/pkg.Service/method".
  std::string path(const Function& f) const;

  // The function that returns the default argument of parameter `param`
  // (0-based) of function `function`, in its namespace, and qualified.
  std::string default_helper(std::size_t function, std::size_t param) const;
  std::string default_helper_q(std::size_t function, std::size_t param) const;

  // The stub's parameter list after the client: "const T& a, const U& b, ".
  // In declarations (with_defaults), a parameter with a default argument
  // gets "= <its helper>()". For co() (in_co_await), only the trailing
  // defaults of types without a destructor: GCC 12 destroys some temporaries
  // of a co_await expression twice (see tests/generated/shop_test.cc), and a
  // default argument is such a temporary the caller cannot see.
  std::string params_decl(const Function& f, bool with_defaults = false, bool in_co_await = false) const;

 private:
  const Model& m_;
  std::string remote_ns_, wire_ns_, generated_header_;
  std::vector<std::string> stub_names_;
  std::string methods_;
  std::vector<std::string> handlers_;
  std::vector<std::string> workflow_starts_, workflow_definitions_;
};

// Fields of the request and response messages, as model Fields.
std::vector<Field> request_fields(const Function& f);
std::vector<Field> response_fields(const Function& f);

// f's result type as C++: "void" or the type.
std::string result_cpp(const Function& f);

// The names of f's parameters in its stub's member functions: the user's,
// except that one named like a member of the stub (path, function, ...)
// gets a '_' appended, so that it shadows nothing (-Wshadow stays quiet);
// the request message's fields keep the user's names.
std::vector<std::string> stub_params(const Function& f);
// A name for one of the generated stub's own parameters or locals that no
// user parameter shadows.
std::string local(const Function& f, std::string name);
// How a stub (and the request's struct of references) takes a parameter:
// "const T& " for values, by value for views ("std::string_view ").
std::string param_type(const Parameter& p);
// The stub's parameter names as arguments: "a, b, " and "a, b".
std::string args(const Function& f);
std::string call_args(const Function& f);
// The call options a stub passes on: `options` as given, or, for a function
// without side effects, ::dispatch::stub::without_side_effects(options) (a
// transport may then call it with a Connect GET).
std::string call_options(const Function& f, const std::string& options);

}  // namespace dispatch::gen
