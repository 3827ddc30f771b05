// Prints <stem>.dispatch.h (see printers.h): the request and response
// structs, the public codec declarations, the default-argument helpers and
// one stub object per function. Not for: any function body but the stubs'
// member templates async() and co() (stub_printer.cc has the rest).
#include <cstddef>
#include <sstream>
#include <string>

#include "cpp/cpp_format.h"
#include "cpp/printers.h"
#include "naming.h"  // cpp_stem (header-only)

namespace dispatch::gen {
namespace {

void codec_decl(std::ostringstream& o, const std::string& cpp) {
  o << "std::string encode(const " << cpp << "& value);\n"
    << "::dispatch::Result<void> decode(std::string_view bytes, " << cpp << "* value);\n";
}

// Default arguments carry over to the stubs. Each is evaluated by an
// inline function in the function's own namespace, so that its names
// resolve as they did in the declaration, not among the stub's members or
// the other stubs in <ns>::remote.
void default_helpers(std::ostringstream& o, const CppNames& names) {
  const Model& m = names.model();
  for (std::size_t i = 0; i < m.functions.size(); ++i) {
    const Function& f = m.functions[i];
    std::string helpers;
    for (std::size_t k = 0; k < f.params.size(); ++k) {
      const Parameter& p = f.params[k];
      if (p.default_arg.empty()) continue;
      helpers += "// " + p.name + "\ninline " + (p.view_cpp.empty() ? p.type.cpp : p.view_cpp) + " " +
                 names.default_helper(i, k) + "() { return " + p.default_arg + "; }\n";
    }
    if (helpers.empty()) continue;
    o << "// The default arguments of " << f.cpp << ", for its stub.\n"
      << ns_open(f.cpp_namespace) << helpers << ns_close(f.cpp_namespace) << "\n";
  }
}

void stub_decl(std::ostringstream& o, const CppNames& names, const Function& f, const std::string& name) {
  std::string r = result_cpp(f);
  const bool is_void = f.result.kind == TypeKind::kVoid;
  std::string client = local(f, "client"), options = local(f, "options");
  std::string ps = names.params_decl(f, true);
  std::string ps_no_trailing = ps.empty() ? "" : ps.substr(0, ps.size() - 2);
  // The stub's members are named with it (st::path, not path) wherever a
  // parameter of the same name could shadow them.
  std::string st = name + "_stub";
  // async() and co() are member templates, their parameter unused but for
  // making the body depend on it, and their return type deduced (a declared
  // std::future<R> or Awaitable<R> would be instantiated with the header):
  // the future and awaitable plumbing is then instantiated only where a
  // program calls them (dispatch/core/stub_calls.h).
  std::string deferred = local(f, "Deferred");
  // Their call: "(client, add_stub::path, add_stub::encode_request(a, b),
  // options, &add_stub::decode_reply".
  std::string begin_call = "(" + client + ", " + st + "::path, " + st + "::encode_request(" + call_args(f) +
                           "), " + call_options(f, options) + ", &" + st + "::decode_reply";
  o << "// " << f.cpp << ", served as " << names.full_proto(f.remote_name) << " at " << names.path(f) << ".\n";
  if (f.workflow) {
    o << "// A workflow (docs/workflows.md): it runs through a scheduler, so dispatch() it,\n"
      << "// or await call() in a workflow. The direct forms (operator(), try_call, async,\n"
      << "// co) answer failed_precondition.\n";
  }
  if (f.deprecated) {  // as the function is: calls through the stub warn too
    o << "[[deprecated" << (f.deprecated_message.empty() ? "" : "(" + quote(f.deprecated_message) + ")")
      << "]] ";
  }
  o << "inline constexpr struct " << name << "_stub {\n"
    << "  static constexpr const char* path = " << quote(names.path(f)) << ";\n"
    << "  static constexpr const char* function = " << quote(names.full_proto(f.remote_name)) << ";\n"
    << "  static constexpr const char* request_type = " << quote(names.full_proto(f.request_message)) << ";\n"
    << "  static constexpr const char* response_type = " << quote(names.full_proto(f.response_message))
    << ";\n\n"
    << "  // Calls and waits; throws dispatch::Error.\n"
    << "  " << r << " operator()(::dispatch::Client& " << client << ", " << ps
    << "const ::dispatch::CallOptions& " << options << " = {}) const;\n"
    << "  // Calls and waits; never throws.\n"
    << "  ::dispatch::Result<" << r << "> try_call(::dispatch::Client& " << client << ", " << ps
    << "const ::dispatch::CallOptions& " << options << " = {}) const;\n"
    << "  // Starts the call; returns a std::future<" << r << "> that holds the result\n"
    << "  // or the dispatch::Error.\n"
    << "  template <typename " << deferred << " = void>\n"
    << "  auto async(::dispatch::Client& " << client << ", " << ps
    << "const ::dispatch::CallOptions& " << options << " = {}) const {\n"
    << "    return ::dispatch::stub::call_future<" << r << ", " << deferred << ">" << begin_call << ");\n"
    << "  }\n"
    << "#if __cplusplus >= 202002L\n"
    << "  // co_await-able (a dispatch::Awaitable<" << r << ">); resumes on the transport's\n"
    << "  // completion, throws dispatch::Error. The request is encoded now, so the\n"
    << "  // arguments need not outlive the co_await.\n"
    << "  template <typename " << deferred << " = void>\n"
    << "  auto co(::dispatch::Client& " << client << ", "
    << names.params_decl(f, true, true) << "const ::dispatch::CallOptions& " << options << " = {}) const {\n"
    << "    return ::dispatch::stub::call_awaitable<" << r << ", " << deferred << ">" << begin_call << ");\n"
    << "  }\n"
    << "#endif\n"
    << "  // Hands the call to a durable scheduler; once the scheduler has persisted\n"
    << "  // it, its handle (dispatch/durable/dispatched.h): id(), and wait() or\n"
    << "  // co_await (C++20) for the " << (is_void ? "end" : r) << " or the call's dispatch::Error.\n"
    << "  // The handle refers to `" << client << "`, which must outlive it (and not move).\n"
    << "  ::dispatch::Result<::dispatch::Dispatched<" << r << ">> dispatch(::dispatch::DispatchClient& " << client
    << ", " << ps << "const ::dispatch::DispatchOptions& " << options << " = {}) const;\n"
    << "  // The call as a workflow awaits it (dispatch/workflow/workflow.h): made\n"
    << "  // durably by the scheduler, giving the result or the dispatch::Error.\n"
    << "  ::dispatch::DurableCall<" << r << "> call(" << ps_no_trailing << ") const;\n"
    << "  // The request message's bytes (e.g. for DispatchClient::dispatch_batch).\n"
    << "  static ::dispatch::Result<std::string> encode_request(" << ps_no_trailing << ");\n"
    << "  // The call's result from its reply: the transport's error, or the\n"
    << "  // response message's bytes decoded (an internal error if they are not one).\n"
    << "  static ::dispatch::Result<" << r << "> decode_reply(::dispatch::Result<std::string> reply);\n"
    << "} " << name << "{};\n\n";
}

}  // namespace

std::string print_header(const CppNames& names) {
  const Model& m = names.model();
  std::ostringstream o;
  o << banner(m, "Client half of the remote functions in " + m.include_name + ": request and\n// "
                 "response messages, their codecs, and one stub object per function.")
    << "#pragma once\n\n"
    << kQuietDeprecation
    << "#include <cstdint>\n#include <future>\n#include <string>\n#include <string_view>\n#include <utility>\n\n"
    << "#include \"dispatch/core/awaitable.h\"\n#include \"dispatch/core/client.h\"\n"
    << "#include \"dispatch/core/result.h\"\n#include \"dispatch/core/stub_calls.h\"\n"
    << "#include \"dispatch/durable/dispatch_client.h\"\n"
    << "#include \"dispatch/durable/dispatched.h\"\n"
    << "#include \"dispatch/durable/durable_call.h\"\n"
    << stateful_header_includes(names) << faas_header_includes(names)
    << "#include " << quote(m.include_name) << "\n\n"
    << "namespace dispatch {\nstruct Service;\n}  // namespace dispatch\n\n";

  o << ns_open(names.remote_ns()) << "\n";
  o << "// The messages of " << m.proto_file << ", one request and one response per function.\n";
  for (const Function& f : m.functions) {
    o << "struct " << f.request_message << " {\n";
    for (const Parameter& p : f.params) o << "  " << p.type.cpp << " " << p.name << "{};\n";
    o << "};\n";
    o << "struct " << f.response_message << " {\n";
    if (f.result.kind != TypeKind::kVoid) o << "  " << f.result.cpp << " result{};\n";
    o << "};\n";
  }
  o << print_state_wrappers(names) << "\n" << ns_close(names.remote_ns()) << "\n";

  o << "// Binary protobuf codecs for every message of " << m.proto_file
    << ". decode() resets *value\n// first and reports malformed input as invalid_argument; "
       "encode() throws dispatch::Error\n// (out_of_range) only for a duration or time point "
       "proto cannot carry.\n";
  o << ns_open(names.wire_ns());
  for (const StructDecl& s : m.structs) codec_decl(o, type_cpp(s));
  for (const Function& f : m.functions) {
    codec_decl(o, names.remote_ns_q() + "::" + f.request_message);
    codec_decl(o, names.remote_ns_q() + "::" + f.response_message);
  }
  o << ns_close(names.wire_ns()) << "\n";

  default_helpers(o, names);
  o << ns_open(names.remote_ns()) << "\n";
  for (std::size_t i = 0; i < m.functions.size(); ++i) stub_decl(o, names, m.functions[i], names.stub(i));
  o << "// The server half (in " << m.stem
    << ".dispatch.server.cc): every function above, for a\n// dispatch::DispatchTable.\n"
    << "const ::dispatch::Service& " << cpp_stem(m.stem) << "_service();\n"
    << "// The serialized google.protobuf.FileDescriptorProto of " << m.proto_file << ".\n"
    << "std::string_view " << cpp_stem(m.stem) << "_file_descriptor();\n\n"
    << ns_close(names.remote_ns()) << print_stateful_stubs(names) << print_faas_proxies(names) << kEndQuiet;
  return o.str();
}

}  // namespace dispatch::gen
