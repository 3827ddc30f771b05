// Prints <stem>.dispatch.server.cc, the server half (see printers.h): one
// handler per function (decode the request, call the user's function with
// the fields moved in, encode the result) and the dispatch::Service that
// lists them. Kept apart from the client half because it calls the user's
// functions: a client need not link them.
// Not for: decoding or encoding (the handlers call the public codecs).
#include <cstddef>
#include <sstream>
#include <string>

#include "cpp/cpp_format.h"
#include "cpp/printers.h"
#include "naming.h"  // cpp_stem (header-only)

namespace dispatch::gen {

std::string print_server_source(const CppNames& names) {
  const Model& m = names.model();
  std::ostringstream o;
  o << banner(m, "Server half of the remote functions in " + m.include_name +
                     ": handlers that decode a\n// request, call the function and encode its result, "
                     "and the dispatch::Service\n// listing them.")
    << "#include " << quote(names.generated_header()) << "\n\n"
    << "#include <iterator>\n#include <utility>\n\n"
    << "#include \"dispatch/core/service.h\"\n#include \"dispatch/durable/function_service.h\"\n\n"
    << kQuietDeprecation;
  o << ns_open(names.remote_ns()) << "namespace {\n\n";
  for (std::size_t i = 0; i < m.functions.size(); ++i) {
    const Function& f = m.functions[i];
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
  // How each [[dispatch::event]] function takes CloudEvents: its one
  // parameter (request field 1) is the data, its result (response field 1)
  // the reply's data.
  bool any_event = false;
  for (std::size_t i = 0; i < m.functions.size(); ++i) {
    const Function& f = m.functions[i];
    if (!f.event) continue;
    any_event = true;
    o << "const ::dispatch::EventBinding " << names.handler(i) << "_event{" << quote(f.event_type) << ", "
      << quote(f.reply_type) << ", " << (f.params.empty() ? 0 : 1) << ", 0, ::dispatch::EventBinding::Reply::"
      << (f.result.kind == TypeKind::kVoid ? "none" : "data") << "};\n";
  }
  if (any_event) o << "\n";
  if (!m.functions.empty()) {
    o << "const ::dispatch::Method " << names.methods() << "[] = {\n";
    for (std::size_t i = 0; i < m.functions.size(); ++i) {
      const Function& f = m.functions[i];
      o << "    {" << quote(f.remote_name) << ", " << quote(names.path(f)) << ", "
        << quote(names.full_proto(f.request_message)) << ", " << quote(names.full_proto(f.response_message))
        << ", &" << names.handler(i) << (f.event ? ", &" + names.handler(i) + "_event" : std::string()) << "},\n";
    }
    o << "};\n\n";
  }
  o << "}  // namespace\n\n"
    << "const ::dispatch::Service& " << cpp_stem(m.stem) << "_service() {\n"
    << "  static const ::dispatch::Service service{" << quote(m.package) << ", " << quote(m.service) << ", "
    << (m.functions.empty() ? "nullptr, 0" : names.methods() + ", std::size(" + names.methods() + ")") << ", "
    << cpp_stem(m.stem) << "_file_descriptor(),\n"
    << "      // Served with the Dispatch protocol's Run, so a scheduler can drive it.\n"
    << "      &::dispatch::function_service()};\n"
    << "  return service;\n"
    << "}\n\n"
    << ns_close(names.remote_ns()) << kEndQuiet;
  return o.str();
}

}  // namespace dispatch::gen
