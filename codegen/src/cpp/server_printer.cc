// Prints <stem>.dispatch.server.cc, the server half (see printers.h): one
// handler per function (decode the request, call the user's function with
// the fields moved in, encode the result), for a workflow its Definition
// instead (run by the runtime's entries, dispatch/workflow/serve.h), and the
// dispatch::Service that lists them. Kept apart from the client half because
// it calls the user's functions: a client need not link them.
// Not for: decoding or encoding (the handlers call the public codecs).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>

#include "cpp/cpp_format.h"
#include "cpp/printers.h"
#include "naming.h"  // cpp_stem (header-only)

namespace dispatch::gen {
namespace {

// The wire shape of `t`: its C++ type, and for each struct and enum it
// reaches, every field (name, number, type) and every enumerator.
void describe(const Model& m, const TypeRef& t, std::set<const void*>& seen, std::string& out) {
  out += t.cpp + ";";
  if (t.kind == TypeKind::kStruct && seen.insert(&m.structs[t.decl]).second) {
    out += "{";
    for (const Field& field : m.structs[t.decl].fields) {
      out += field.name + "=" + std::to_string(field.number) + ":";
      describe(m, field.type, seen, out);
    }
    out += "}";
  } else if (t.kind == TypeKind::kEnum && seen.insert(&m.enums[t.decl]).second) {
    out += "{";
    for (const EnumValue& v : m.enums[t.decl].values) out += v.name + "=" + std::to_string(v.value) + ",";
    out += "}";
  }
  for (const TypeRef& a : t.args) describe(m, a, seen, out);
}

// A workflow's version (docs/workflows.md, "Changing a deployed workflow"):
// the one its annotation pins, or else a hash (64-bit FNV-1a, in hex) of its
// name and the wire shape of its input and result. A journal written under
// another version is answered INCOMPATIBLE_STATE, and the scheduler starts
// the workflow again from its input. A change of the body alone keeps the
// version: replay checks it step by step.
std::string workflow_version(const CppNames& names, const Function& f) {
  if (!f.version.empty()) return f.version;
  const Model& m = names.model();
  std::set<const void*> seen;
  std::string shape = names.full_proto(f.remote_name) + "(";
  for (const Parameter& p : f.params) {
    shape += p.name + ":";
    describe(m, p.type, seen, shape);
  }
  shape += ")->";
  describe(m, f.result, seen, shape);
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : shape) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// A workflow's server half: how it starts from its input, and its
// Definition, which the runtime's entries of its Method run
// (dispatch/workflow/serve.h).
void workflow_entries(std::ostringstream& o, const CppNames& names, std::size_t i) {
  const Function& f = names.model().functions[i];
  const std::string request = names.remote_ns_q() + "::" + f.request_message;
  const std::string response = names.remote_ns_q() + "::" + f.response_message;
  const bool is_void = f.result.kind == TypeKind::kVoid;
  std::string call = f.cpp + "(";
  for (std::size_t k = 0; k < f.params.size(); ++k) {
    call += (k ? ", " : "") + std::string("std::move(request.") + f.params[k].name + ")";
  }
  call += ")";
  o << "// " << f.cpp << " is a workflow: the Dispatch protocol's Run runs it (a first run\n"
    << "// or a resume), its direct route refuses (docs/workflows.md).\n"
    << (f.version.empty() ? "" : "// Its version is pinned by its annotation, not generated from its signature.\n")
    << "::dispatch::Result<std::unique_ptr<::dispatch::workflow::Instance>> " << names.workflow_start(i)
    << "(std::string_view input) {\n"
    << "  return ::dispatch::workflow::start_instance<" << request << ", " << result_cpp(f) << ">(\n"
    << "      input, &" << names.wire_ns_q() << "::decode,\n"
    // Unnamed when the workflow takes nothing: an unused parameter warns.
    << "      [](" << request << (f.params.empty() ? "&" : "& request") << ") { return " << call << "; },\n";
  if (is_void) {
    o << "      [] { return " << names.wire_ns_q() << "::encode(" << response << "{}); });\n";
  } else {
    o << "      [](" << f.result.cpp << "&& result) { return " << names.wire_ns_q() << "::encode(" << response
      << "{std::move(result)}); });\n";
  }
  o << "}\n"
    << "const ::dispatch::workflow::Definition " << names.workflow_definition(i) << "{"
    << quote(names.full_proto(f.remote_name)) << ", " << quote(workflow_version(names, f)) << ",\n"
    << "    " << quote(names.full_proto(f.request_message)) << ", " << quote(names.full_proto(f.response_message))
    << ", &" << names.workflow_start(i) << "};\n\n";
}

}  // namespace

std::string print_server_source(const CppNames& names) {
  const Model& m = names.model();
  bool any_workflow = false;
  for (const Function& f : m.functions) any_workflow = any_workflow || f.workflow;
  std::ostringstream o;
  o << banner(m, "Server half of the remote functions in " + m.include_name +
                     ": handlers that decode a\n// request, call the function and encode its result, "
                     "and the dispatch::Service\n// listing them.")
    << "#include " << quote(names.generated_header()) << "\n\n"
    << "#include <iterator>\n"
    << (any_workflow ? "#include <memory>\n#include <string>\n#include <string_view>\n" : "")
    << "#include <utility>\n\n"
    << "#include \"dispatch/core/service.h\"\n#include \"dispatch/durable/function_service.h\"\n"
    // A workflow's server half is C++20, as its header is: only then.
    << (any_workflow ? "#include \"dispatch/workflow/serve.h\"\n" : "") << stateful_server_includes(names) << "\n"
    << kQuietDeprecation;
  o << ns_open(names.remote_ns()) << "namespace {\n\n";
  for (std::size_t i = 0; i < m.functions.size(); ++i) {
    const Function& f = m.functions[i];
    if (f.workflow) {
      workflow_entries(o, names, i);
      continue;
    }
    o << "::dispatch::Result<std::string> " << names.handler(i) << "(const ::dispatch::MethodCall& call) {\n"
      << "  " << names.remote_ns_q() << "::" << f.request_message << " request;\n"
      << "  auto decoded = " << names.wire_ns_q() << "::decode(call.request, &request);\n"
      << "  if (!decoded.ok()) return std::move(decoded).error();\n";
    std::string call = f.cpp + "(";
    for (std::size_t k = 0; k < f.params.size(); ++k) {
      call += (k ? ", " : "") + std::string("std::move(request.") + f.params[k].name + ")";
    }
    call += ")";
    if (f.result.kind == TypeKind::kVoid) {
      o << "  " << call << ";\n"
        << "  return " << names.wire_ns_q() << "::encode(" << names.remote_ns_q() << "::" << f.response_message
        << "{});\n";
    } else {
      o << "  return " << names.wire_ns_q() << "::encode(" << names.remote_ns_q() << "::" << f.response_message
        << "{" << call << "});\n";
    }
    o << "}\n\n";
  }
  // How each [[dispatch::event]] function takes CloudEvents: the request
  // field of its data parameter and of its dispatch::CloudEvent parameter (0
  // for none), and what its result (response field 1) is: nothing, the
  // reply's data, or the reply event.
  bool any_event = false;
  for (std::size_t i = 0; i < m.functions.size(); ++i) {
    const Function& f = m.functions[i];
    if (!f.event) continue;
    any_event = true;
    std::size_t data_field = 0, event_field = 0;
    for (std::size_t k = 0; k < f.params.size(); ++k) {
      (f.params[k].type.kind == TypeKind::kCloudEvent ? event_field : data_field) = k + 1;
    }
    const TypeRef& r = f.result;
    const bool reply_event = r.kind == TypeKind::kCloudEvent ||
                             (r.kind == TypeKind::kOptional && r.args[0].kind == TypeKind::kCloudEvent);
    o << "const ::dispatch::EventBinding " << names.handler(i) << "_event{" << quote(f.event_type) << ", "
      << quote(f.reply_type) << ", " << data_field << ", " << event_field << ", ::dispatch::EventBinding::Reply::"
      << (r.kind == TypeKind::kVoid ? "none" : reply_event ? "event" : "data") << "};\n";
  }
  if (any_event) o << "\n";
  if (!m.functions.empty()) {
    o << "const ::dispatch::Method " << names.methods() << "[] = {\n";
    for (std::size_t i = 0; i < m.functions.size(); ++i) {
      const Function& f = m.functions[i];
      o << "    {" << quote(f.remote_name) << ", " << quote(names.path(f)) << ", "
        << quote(names.full_proto(f.request_message)) << ", " << quote(names.full_proto(f.response_message));
      if (f.workflow) {
        const std::string& d = names.workflow_definition(i);
        o << ",\n     &::dispatch::workflow::direct_entry<" << d << ">, nullptr, &::dispatch::workflow::run_entry<"
          << d << ">},\n";
        continue;
      }
      o << ", &" << names.handler(i) << (f.event ? ", &" + names.handler(i) + "_event" : std::string()) << "},\n";
    }
    o << "};\n\n";
  }
  o << print_stateful_entries(names) << "}  // namespace\n\n"
    << "const ::dispatch::Service& " << cpp_stem(m.stem) << "_service() {\n";
  std::ostringstream head;
  head << "  static const ::dispatch::Service service{" << quote(m.package) << ", " << quote(m.service) << ", "
       << (m.functions.empty() ? "nullptr, 0" : names.methods() + ", std::size(" + names.methods() + ")") << ", "
       << cpp_stem(m.stem) << "_file_descriptor(),\n";
  if (!m.stateful.empty()) {
    o << print_stateful_service(names, head.str());
  } else {
    o << head.str() << "      // Served with the Dispatch protocol's Run, so a scheduler can drive it.\n"
      << "      &::dispatch::function_service()};\n";
  }
  o << "  return service;\n"
    << "}\n\n"
    << ns_close(names.remote_ns()) << kEndQuiet;
  return o.str();
}

}  // namespace dispatch::gen
