// Prints <stem>.dispatch.cc, the client half (see printers.h): the
// serialized descriptor of the .proto and the bodies of every stub's call
// forms (blocking, non-throwing, future, co_await). Each form is one call
// into the runtime's dispatch::stub helpers with the function's reply
// decoder, so this file holds no per-function copy of the future and
// awaitable plumbing, and no codecs (codec_printer.cc): it compiles in
// parallel with them.
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
  std::string decode_fn = "decode_" + name + "_reply";
  // The call's start, shared by the forms: "(client, add_stub::path,
  // add_stub::encode_request(a, b), options".
  std::string begin_call = "(" + client + ", " + st + "::path, " + st + "::encode_request(" + call_args(f) +
                           "), " + options;
  std::string signature_tail = "(::dispatch::Client& " + client + ", " + ps + "const ::dispatch::CallOptions& " +
                               options + ") const {\n";

  // The decoder's parameter and locals are its own: no user name reaches it.
  o << "// ---- " << f.cpp << " ----\n\n"
    << "namespace {\n"
    << "// The reply's result, or the transport's error, or an internal error for\n"
    << "// a reply that is not a " << f.response_message << ".\n"
    << "::dispatch::Result<" << r << "> " << decode_fn << "(::dispatch::Result<std::string> reply) {\n"
    << "  if (!reply.ok()) return std::move(reply).error();\n"
    << "  " << names.remote_ns_q() << "::" << f.response_message << " response;\n"
    << "  auto decoded = " << names.wire_ns_q() << "::decode(*reply, &response);\n"
    << "  if (!decoded.ok()) return ::dispatch::stub::malformed_reply(" << st << "::path, decoded.error());\n"
    << (is_void ? "  return {};\n" : "  return std::move(response.result);\n")
    << "}\n"
    << "// The same for a result the scheduler kept (a workflow's durable call).\n"
    << "::dispatch::Result<" << r << "> " << decode_fn << "_bytes(std::string_view reply) {\n"
    << "  return " << decode_fn << "(std::string(reply));\n"
    << "}\n"
    << "}  // namespace\n\n";

  const std::string ps_no_trailing = ps.empty() ? "" : ps.substr(0, ps.size() - 2);
  o << "::dispatch::DurableCall<" << r << "> " << st << "::call(" << ps_no_trailing << ") const {\n"
    << "  return ::dispatch::DurableCall<" << r << ">(" << st << "::function, " << st << "::request_type, "
    << st << "::encode_request(" << call_args(f) << "), &" << decode_fn << "_bytes);\n"
    << "}\n\n";

  o << r << " " << st << "::operator()" << signature_tail
    << "  return " << st << "::try_call(" << client << ", " << args(f) << options << ").value();\n"
    << "}\n\n";

  o << "::dispatch::Result<" << r << "> " << st << "::try_call" << signature_tail
    << "  return " << decode_fn << "(::dispatch::stub::call" << begin_call << "));\n"
    << "}\n\n";

  o << "std::future<" << r << "> " << st << "::async" << signature_tail
    << "  return ::dispatch::stub::call_future" << begin_call << ", &" << decode_fn << ");\n"
    << "}\n\n";

  o << "#if __cplusplus >= 202002L\n"
    << "::dispatch::Awaitable<" << r << "> " << st << "::co" << signature_tail
    << "  // Encoded now, so the arguments need not outlive the co_await.\n"
    << "  return ::dispatch::stub::call_awaitable" << begin_call << ", &" << decode_fn << ");\n"
    << "}\n"
    << "#endif\n\n";
}

}  // namespace

std::string print_client_source(const CppNames& names, const std::string& serialized_file_descriptor) {
  const Model& m = names.model();
  std::ostringstream o;
  o << banner(m, "Client half of the remote functions in " + m.include_name + ": the stubs' calls\n// "
                 "and the .proto's descriptor (the codecs are in " + m.stem + ".dispatch.codec.cc).")
    << "#include " << quote(names.generated_header()) << "\n\n"
    << "#include <string>\n#include <string_view>\n#include <utility>\n\n"
    << "#include \"dispatch/core/stub_calls.h\"\n\n"
    << kQuietDeprecation;

  o << ns_open(names.remote_ns()) << "\n";
  o << "std::string_view " << cpp_stem(m.stem) << "_file_descriptor() {\n"
    << "  static constexpr char kDescriptor[] =\n"
    << byte_literal(serialized_file_descriptor, "      ") << ";\n"
    << "  return std::string_view(kDescriptor, sizeof kDescriptor - 1);\n"
    << "}\n\n";
  for (std::size_t i = 0; i < m.functions.size(); ++i) stub_def(o, names, m.functions[i], names.stub(i));
  o << ns_close(names.remote_ns()) << kEndQuiet;
  return o.str();
}

}  // namespace dispatch::gen
