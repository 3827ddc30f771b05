// Prints <stem>.dispatch.cc, the client half (see printers.h): the codecs
// (codec_printer.cc), the serialized descriptor of the .proto, and the bodies
// of every stub's call forms (blocking, non-throwing, future, co_await).
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
  std::string client = local(f, "client"), options = local(f, "options"), request = local(f, "request"),
              promise = local(f, "promise"), future = local(f, "future"), reply = local(f, "reply"),
              done = local(f, "done"), result = local(f, "result"), cache = local(f, "c"),
              out = local(f, "p"), error = local(f, "e");
  std::string ps = names.params_decl(f);
  std::string ps_no_trailing = ps.empty() ? "" : ps.substr(0, ps.size() - 2);
  std::string st = name + "_stub";
  std::string decode_fn = "decode_" + name + "_reply";
  std::string resp = names.remote_ns_q() + "::" + f.response_message;

  o << "// ---- " << f.cpp << " ----\n\n";
  o << "::dispatch::Result<std::string> " << st << "::encode_request(" << ps_no_trailing << ") {\n"
    << "  try {\n"
    << "    return ::dispatch::wire::encode_message(\n"
    << "        [&](::dispatch::wire::SizeCache& " << cache << ") { return " << names.wire_ns_q() << "::size_of("
    << names.wire_ns_q() << "::" << f.request_message << "Refs{" << call_args(f)
    << "}, " << cache << "); },\n"
    << "        [&](::dispatch::wire::SizeCache& " << cache << ", std::uint8_t* " << out << ") { return "
    << names.wire_ns_q() << "::write(" << names.wire_ns_q() << "::" << f.request_message << "Refs{" << call_args(f)
    << "}, " << cache << ", " << out << "); });\n"
    << "  } catch (const ::dispatch::Error& " << error << ") {\n"
    << "    return " << error << ";\n"
    << "  }\n"
    << "}\n\n";

  o << "namespace {\n"
    << "// The reply's result, or the transport's error, or an internal error for\n"
    << "// a reply that is not a " << f.response_message << ".\n"
    << "::dispatch::Result<" << r << "> " << decode_fn << "(::dispatch::Result<std::string> " << reply << ") {\n"
    << "  if (!" << reply << ".ok()) return std::move(" << reply << ").error();\n"
    << "  " << resp << " " << result << ";\n"
    << "  auto decoded = " << names.wire_ns_q() << "::decode(*" << reply << ", &" << result << ");\n"
    << "  if (!decoded.ok()) {\n"
    << "    return ::dispatch::Error(::dispatch::Code::internal,\n"
    << "                             std::string(\"malformed reply from \") + " << st
    << "::path + \": \" + decoded.error().message());\n"
    << "  }\n"
    << (is_void ? "  return {};\n" : "  return std::move(" + result + ".result);\n")
    << "}\n"
    << "}  // namespace\n\n";

  o << r << " " << st << "::operator()(::dispatch::Client& " << client << ", " << ps
    << "const ::dispatch::CallOptions& " << options << ") const {\n"
    << "  return " << st << "::try_call(" << client << ", " << args(f) << options << ").value();\n"
    << "}\n\n";

  o << "::dispatch::Result<" << r << "> " << st << "::try_call(::dispatch::Client& " << client << ", " << ps
    << "const ::dispatch::CallOptions& " << options << ") const {\n"
    << "  auto " << request << " = " << st << "::encode_request(" << call_args(f) << ");\n"
    << "  if (!" << request << ".ok()) return std::move(" << request << ").error();\n"
    << "  return " << decode_fn << "(" << client << ".call(" << st << "::path, std::move(*" << request << "), "
    << options << "));\n"
    << "}\n\n";

  o << "std::future<" << r << "> " << st << "::async(::dispatch::Client& " << client << ", " << ps
    << "const ::dispatch::CallOptions& " << options << ") const {\n"
    << "  auto " << promise << " = std::make_shared<std::promise<" << r << ">>();\n"
    << "  auto " << future << " = " << promise << "->get_future();\n"
    << "  auto " << request << " = " << st << "::encode_request(" << call_args(f) << ");\n"
    << "  if (!" << request << ".ok()) {\n"
    << "    " << promise << "->set_exception(std::make_exception_ptr(std::move(" << request << ").error()));\n"
    << "    return " << future << ";\n"
    << "  }\n"
    << "  " << client << ".call_async(" << st << "::path, std::move(*" << request << "), " << options << ", [" << promise
    << "](::dispatch::Result<std::string> " << reply << ") {\n"
    << "    auto " << result << " = " << decode_fn << "(std::move(" << reply << "));\n"
    << "    if (!" << result << ".ok()) {\n"
    << "      " << promise << "->set_exception(std::make_exception_ptr(std::move(" << result << ").error()));\n"
    << "    } else {\n"
    << (is_void ? "      " + promise + "->set_value();\n"
                : "      " + promise + "->set_value(std::move(*" + result + "));\n")
    << "    }\n"
    << "  });\n"
    << "  return " << future << ";\n"
    << "}\n\n";

  o << "#if __cplusplus >= 202002L\n"
    << "::dispatch::Awaitable<" << r << "> " << st << "::co(::dispatch::Client& " << client << ", " << ps
    << "const ::dispatch::CallOptions& " << options << ") const {\n"
    << "  // Encoded now, so the arguments need not outlive the co_await.\n"
    << "  return ::dispatch::Awaitable<" << r << ">(\n"
    << "      [&" << client << ", " << request << " = " << st << "::encode_request("
    << call_args(f) << "), " << options << "](\n"
    << "          ::dispatch::Awaitable<" << r << ">::Done " << done << ") mutable {\n"
    << "        if (!" << request << ".ok()) return " << done << "(std::move(" << request << ").error());\n"
    << "        " << client << ".call_async(" << st << "::path, std::move(*" << request << "), " << options
    << ", [" << done << " = std::move(" << done << ")](::dispatch::Result<std::string> " << reply << ") {\n"
    << "          " << done << "(" << decode_fn << "(std::move(" << reply << ")));\n"
    << "        });\n"
    << "      });\n"
    << "}\n"
    << "#endif\n\n";
}

}  // namespace

std::string print_client_source(const CppNames& names, const std::string& serialized_file_descriptor) {
  const Model& m = names.model();
  std::ostringstream o;
  o << banner(m, "Client half and codecs of the remote functions in " + m.include_name + ".")
    << "#include " << quote(names.generated_header()) << "\n\n"
    << "#include <exception>\n#include <memory>\n#include <utility>\n\n"
    << "#include \"dispatch/wire/wire_io.h\"\n\n"
    << kQuietDeprecation;
  print_codecs(o, names);

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
