// Prints <stem>.dispatch.cc, the client half (see printers.h): the
// serialized descriptor of the .proto and, per stub, its reply decoder, its
// durable call() and dispatch() forms (the latter giving a
// dispatch::Dispatched<R> handle) and its blocking and non-throwing call
// forms, each one call into the runtime. The future and co_await forms are
// member templates in the header (header_printer.cc), so that their plumbing
// is compiled only where a program calls them, not here once per function;
// dispatch() is here so that its Dispatched<R> is instantiated once per
// function, not in every file that includes the header. The codecs are in
// their own file (codec_printer.cc), compiled in parallel with this one.
// Not for: the stubs' declarations (header_printer.cc) or the server.
#include <cstddef>
#include <sstream>
#include <string>

#include "cpp/cpp_format.h"
#include "cpp/printers.h"
#include "naming.h"  // cpp_stem (header-only)

namespace dispatch::gen {
namespace {

void stub_def(std::ostringstream& o, const CppNames& names, const Function& f, const std::string& name) {
  std::string r = result_cpp(f);
  bool is_void = f.result.kind == TypeKind::kVoid;
  std::string client = local(f, "client"), options = local(f, "options");
  std::string ps = names.params_decl(f);
  std::string st = name + "_stub";
  std::string signature_tail = "(::dispatch::Client& " + client + ", " + ps + "const ::dispatch::CallOptions& " +
                               options + ") const {\n";

  // The decoder's parameter and locals are its own: no user name reaches it.
  o << "// ---- " << f.cpp << " ----\n\n"
    << "::dispatch::Result<" << r << "> " << st << "::decode_reply(::dispatch::Result<std::string> reply) {\n"
    << "  if (!reply.ok()) return std::move(reply).error();\n"
    << "  " << names.remote_ns_q() << "::" << f.response_message << " response;\n"
    << "  auto decoded = " << names.wire_ns_q() << "::decode(*reply, &response);\n"
    << "  if (!decoded.ok()) return ::dispatch::stub::malformed_reply(" << st << "::path, decoded.error());\n"
    << (is_void ? "  return {};\n" : "  return std::move(response.result);\n")
    << "}\n\n";

  const std::string ps_no_trailing = ps.empty() ? "" : ps.substr(0, ps.size() - 2);
  // A workflow's durable call decodes the reply bytes the scheduler kept.
  const std::string kept = local(f, "kept");
  o << "::dispatch::DurableCall<" << r << "> " << st << "::call(" << ps_no_trailing << ") const {\n"
    << "  return ::dispatch::DurableCall<" << r << ">(" << st << "::function, " << st << "::request_type, "
    << st << "::encode_request(" << call_args(f) << "),\n"
    << "      [](std::string_view " << kept << ") { return " << st << "::decode_reply(std::string(" << kept
    << ")); });\n"
    << "}\n\n";

  // The durable form: the scheduler's ID in a handle that decodes the
  // response message the scheduler keeps.
  const std::string request = local(f, "request"), id = local(f, "id"), response = local(f, "response");
  o << "::dispatch::Result<::dispatch::Dispatched<" << r << ">> " << st << "::dispatch(::dispatch::DispatchClient& "
    << client << ", " << ps << "const ::dispatch::DispatchOptions& " << options << ") const {\n"
    << "  auto " << request << " = " << st << "::encode_request(" << call_args(f) << ");\n"
    << "  if (!" << request << ".ok()) return std::move(" << request << ").error();\n"
    << "  auto " << id << " = " << client << ".dispatch(" << st << "::function, " << st << "::request_type, std::move(*"
    << request << "), " << options << ");\n"
    << "  if (!" << id << ".ok()) return std::move(" << id << ").error();\n"
    << "  return ::dispatch::Dispatched<" << r << ">(" << client << ", std::move(*" << id << "), [](std::string_view "
    << response << ") {\n"
    << "    return " << st << "::decode_reply(std::string(" << response << "));\n"
    << "  });\n"
    << "}\n\n";

  o << r << " " << st << "::operator()" << signature_tail
    << "  return " << st << "::try_call(" << client << ", " << args(f) << options << ").value();\n"
    << "}\n\n";

  o << "::dispatch::Result<" << r << "> " << st << "::try_call" << signature_tail
    << "  return " << st << "::decode_reply(::dispatch::stub::call(" << client << ", " << st << "::path, " << st
    << "::encode_request(" << call_args(f) << "), " << call_options(f, options) << "));\n"
    << "}\n\n";
}

}  // namespace

std::string print_client_source(const CppNames& names, const std::string& serialized_file_descriptor) {
  const Model& m = names.model();
  std::ostringstream o;
  o << banner(m, "Client half of the remote functions in " + m.include_name + ": the stubs' calls\n// "
                 "and the .proto's descriptor (the codecs are in " + m.stem + ".dispatch.codec.cc).")
    << "#include " << quote(names.generated_header()) << "\n\n"
    << "#include <string>\n#include <string_view>\n#include <utility>\n\n"
    << "#include \"dispatch/core/stub_calls.h\"\n" << faas_source_includes(names) << "\n"
    << kQuietDeprecation;

  o << ns_open(names.remote_ns()) << "\n";
  o << "std::string_view " << cpp_stem(m.stem) << "_file_descriptor() {\n"
    << "  static constexpr char kDescriptor[] =\n"
    << byte_literal(serialized_file_descriptor, "      ") << ";\n"
    << "  return std::string_view(kDescriptor, sizeof kDescriptor - 1);\n"
    << "}\n\n";
  for (std::size_t i = 0; i < m.functions.size(); ++i) stub_def(o, names, m.functions[i], names.stub(i));
  o << ns_close(names.remote_ns()) << print_stateful_stub_bodies(names) << print_faas_proxy_bodies(names) << kEndQuiet;
  return o.str();
}

}  // namespace dispatch::gen
