// Prints the typed proxies of [[dispatch::faas("name")]] declarations (see
// printers.h): in the header, one proxy object per function in
// <ns>::faas; in the client source, their bodies, which call a
// dispatch::faas::Gateway. How a parameter becomes the request body and the
// output the result (docs/deploy.md, "Typed proxies"):
//   std::string (or std::string_view)  the text itself, text/plain
//   bytes                              the bytes, application/octet-stream
//   a struct                           its message in protobuf's JSON
//                                      mapping, application/json
//   none / void                        an empty body / the output ignored
// Not for: the functions we serve (stub_printer.cc, server_printer.cc): a
// FaaS function has no route and no rpc here.
#include <cstddef>
#include <set>
#include <sstream>
#include <string>

#include "cpp/cpp_format.h"
#include "cpp/printers.h"
#include "naming.h"  // cpp_stem, join_ns (header-only)

namespace dispatch::gen {
namespace {

constexpr const char* kGateway = "const ::dispatch::faas::Gateway& gateway";

// The proxy's parameter name: the user's, unless it would shadow one of the
// proxy's members or locals; then with '_' appended.
std::string param_name(const FaasFunction& f) {
  static const std::set<std::string> taken = {"function", "content_type", "gateway", "callback_url", "body",
                                              "output", "json", "binary", "value", "decoded", "async", "try_call",
                                              "invoke_async", "cancel_async", "call_id", "encode_input",
                                              "decode_output", "Deferred"};
  std::string name = f.params.empty() ? "" : f.params[0].name;
  while (taken.count(name) != 0) name += '_';
  return name;
}

// "const std::string& text" (no trailing separator), "" without a parameter.
std::string param_decl(const FaasFunction& f) {
  if (f.params.empty()) return "";
  const Parameter& p = f.params[0];
  return (p.view_cpp.empty() ? "const " + p.type.cpp + "& " : p.view_cpp + " ") + param_name(f);
}

// ", const std::string& text", or "" without a parameter.
std::string after_gateway(const FaasFunction& f) { return f.params.empty() ? "" : ", " + param_decl(f); }

// The request body's content type, by the parameter's type.
const char* content_type(const FaasFunction& f) {
  if (f.params.empty()) return "text/plain; charset=utf-8";
  switch (f.params[0].type.kind) {
    case TypeKind::kBytes: return "application/octet-stream";
    case TypeKind::kStruct: return "application/json";
    default: return "text/plain; charset=utf-8";
  }
}

std::string describe(const TypeRef& t) {
  switch (t.kind) {
    case TypeKind::kVoid: return "ignored";
    case TypeKind::kString: return "the text";
    case TypeKind::kBytes: return "the bytes";
    default: return "a " + t.cpp.substr(2) + " in JSON";
  }
}

std::string proxy_type(const FaasFunction& f) { return f.name + "_proxy"; }

bool uses_json(const Model& m) {
  for (const FaasFunction& f : m.faas) {
    if (f.result.kind == TypeKind::kStruct) return true;
    if (!f.params.empty() && f.params[0].type.kind == TypeKind::kStruct) return true;
  }
  return false;
}

// The per-header JSON of the .proto's messages, in <ns>::remote: its name
// there, qualified.
std::string json_q(const CppNames& names) {
  return names.remote_ns_q() + "::" + cpp_stem(names.model().stem) + "_faas_json";
}

void proxy_decl(std::ostringstream& o, const FaasFunction& f) {
  const std::string r = f.result.cpp, t = proxy_type(f), p = param_name(f);
  std::string async_capture = "gateway";
  if (!f.params.empty()) {
    const Parameter& in = f.params[0];
    // A view's text is copied: the thread may outlive the caller's string.
    async_capture += ", " + (in.view_cpp.empty() ? p : p + " = " + in.type.cpp + "(" + p + ".begin(), " + p + ".end())");
  }
  o << "// " << f.cpp << ", a proxy of the OpenFaaS function " << quote(f.faas_name) << ".\n// The body is "
    << (f.params.empty() ? std::string("empty") : "`" + f.params[0].name + "`") << "; the output is "
    << describe(f.result) << ".\n"
    << "inline constexpr struct " << t << " {\n"
    << "  static constexpr const char* function = " << quote(f.faas_name) << ";\n"
    << "  static constexpr const char* content_type = " << quote(content_type(f)) << ";\n\n"
    << "  // Calls and waits (POST /function/" << f.faas_name << "); throws dispatch::Error.\n"
    << "  " << r << " operator()(" << kGateway << after_gateway(f) << ") const;\n"
    << "  // Calls and waits; never throws: the gateway's error (an HTTP status as its\n"
    << "  // code, unreachable, timed out; each naming the function) or an output that\n"
    << "  // does not decode, as a value.\n"
    << "  ::dispatch::Result<" << r << "> try_call(" << kGateway << after_gateway(f) << ") const;\n"
    << "  // Calls on a thread of its own: a std::future<" << r << "> holding the result or\n"
    << "  // the dispatch::Error.\n"
    << "  template <typename Deferred = void>\n"
    << "  auto async(" << kGateway << after_gateway(f) << ") const {\n"
    << "    return std::async(std::launch::async, [" << async_capture << "]() { return " << t << "{}(gateway"
    << (f.params.empty() ? "" : ", " + p) << "); });\n"
    << "  }\n"
    << "  // Queues the call on the gateway (POST /async-function/" << f.faas_name << "), which\n"
    << "  // posts the output to `callback_url`, if given, once the function has run:\n"
    << "  // the call's X-Call-Id. decode_output() reads what the callback receives.\n"
    << "  ::dispatch::Result<std::string> invoke_async(" << kGateway << after_gateway(f)
    << ", std::string_view callback_url = {}) const;\n"
    << "  // Cancels a queued or running async call by its call id (DELETE\n"
    << "  // /async-function/" << f.faas_name << "/<call id>).\n"
    << "  ::dispatch::Result<void> cancel_async(" << kGateway << ", std::string_view call_id) const {\n"
    << "    return gateway.cancel_async(function, call_id);\n"
    << "  }\n"
    << "  // The request body of a call.\n"
    << "  static ::dispatch::Result<std::string> encode_input(" << param_decl(f) << ");\n"
    << "  // The result from the function's output.\n"
    << "  static ::dispatch::Result<" << r << "> decode_output(const ::dispatch::faas::Output& output);\n"
    << "} " << f.name << "{};\n\n";
}

void proxy_def(std::ostringstream& o, const CppNames& names, const FaasFunction& f) {
  const Model& m = names.model();
  const std::string r = f.result.cpp, t = proxy_type(f), p = param_name(f);
  const std::string arg = f.params.empty() ? "" : p;
  o << "// ---- " << f.cpp << " (OpenFaaS function " << quote(f.faas_name) << ") ----\n\n";
  o << r << " " << t << "::operator()(" << kGateway << after_gateway(f) << ") const {\n"
    << "  return " << t << "::try_call(gateway" << (f.params.empty() ? "" : ", " + p) << ").value();\n"
    << "}\n\n";
  o << "::dispatch::Result<" << r << "> " << t << "::try_call(" << kGateway << after_gateway(f) << ") const {\n"
    << "  auto body = " << t << "::encode_input(" << arg << ");\n"
    << "  if (!body.ok()) return std::move(body).error();\n"
    << "  auto output = gateway.invoke(" << t << "::function, *body, " << t << "::content_type);\n"
    << "  if (!output.ok()) return std::move(output).error();\n"
    << "  return " << t << "::decode_output(*output);\n"
    << "}\n\n";
  o << "::dispatch::Result<std::string> " << t << "::invoke_async(" << kGateway << after_gateway(f)
    << ", std::string_view callback_url) const {\n"
    << "  auto body = " << t << "::encode_input(" << arg << ");\n"
    << "  if (!body.ok()) return std::move(body).error();\n"
    << "  return gateway.invoke_async(" << t << "::function, *body, " << t << "::content_type, callback_url);\n"
    << "}\n\n";

  o << "::dispatch::Result<std::string> " << t << "::encode_input(" << param_decl(f) << ") {\n";
  if (f.params.empty()) {
    o << "  return std::string();\n";
  } else {
    const TypeRef& in = f.params[0].type;
    if (in.kind == TypeKind::kString) {
      o << "  return std::string(" << p << ");\n";
    } else if (in.kind == TypeKind::kBytes) {
      o << "  return std::string(reinterpret_cast<const char*>(" << p << ".data()), " << p << ".size());\n";
    } else {
      o << "  const auto& json = " << json_q(names) << "();\n"
        << "  if (!json.ok()) return json.error();\n"
        << "  std::string binary;\n"
        << "  try {  // a duration or time point proto cannot carry\n"
        << "    binary = " << names.wire_ns_q() << "::encode(" << p << ");\n"
        << "  } catch (const ::dispatch::Error& error) {\n"
        << "    return error;\n"
        << "  }\n"
        << "  return json->to_json(" << quote(names.full_proto(m.structs[in.decl].proto_name)) << ", binary);\n";
    }
  }
  o << "}\n\n";

  o << "::dispatch::Result<" << r << "> " << t << "::decode_output(const ::dispatch::faas::Output& output) {\n";
  switch (f.result.kind) {
    case TypeKind::kVoid:
      o << "  static_cast<void>(output);\n  return {};\n";
      break;
    case TypeKind::kString:
      o << "  return output.body;\n";
      break;
    case TypeKind::kBytes:
      if (f.result.std_byte) {
        o << "  const auto* bytes = reinterpret_cast<const std::byte*>(output.body.data());\n"
          << "  return " << r << "(bytes, bytes + output.body.size());\n";
      } else {
        o << "  return " << r << "(output.body.begin(), output.body.end());\n";
      }
      break;
    default:
      o << "  const auto& json = " << json_q(names) << "();\n"
        << "  if (!json.ok()) return json.error();\n"
        << "  auto binary = json->output_to_binary(" << t << "::function, "
        << quote(names.full_proto(m.structs[f.result.decl].proto_name)) << ", output);\n"
        << "  if (!binary.ok()) return std::move(binary).error();\n"
        << "  " << r << " value;\n"
        << "  auto decoded = " << names.wire_ns_q() << "::decode(*binary, &value);\n"
        << "  if (!decoded.ok()) return std::move(decoded).error();\n"
        << "  return value;\n";
      break;
  }
  o << "}\n\n";
}

}  // namespace

std::string faas_header_includes(const CppNames& names) {
  return names.model().faas.empty() ? "" : "#include \"dispatch/faas/gateway.h\"\n";
}

std::string print_faas_proxies(const CppNames& names) {
  const Model& m = names.model();
  if (m.faas.empty()) return "";
  std::ostringstream o;
  std::string ns;
  bool open = false;
  for (const FaasFunction& f : m.faas) {
    const std::string here = join_ns(f.cpp_namespace, "faas");
    if (!open || here != ns) {
      if (open) o << ns_close(ns);
      ns = here;
      open = true;
      o << "\n" << ns_open(ns) << "\n"
        << "// Typed proxies of OpenFaaS functions (docs/deploy.md, \"Typed proxies\"): each\n"
        << "// posts its parameter to the gateway as the request body and reads its result\n"
        << "// from the function's output.\n\n";
    }
    proxy_decl(o, f);
  }
  o << ns_close(ns);
  return o.str();
}

std::string faas_source_includes(const CppNames& names) {
  return names.model().faas.empty() ? "" : "#include \"dispatch/faas/proxy.h\"\n";
}

std::string print_faas_proxy_bodies(const CppNames& names) {
  const Model& m = names.model();
  if (m.faas.empty()) return "";
  std::ostringstream o;
  if (uses_json(m)) {
    o << "\n" << ns_open(names.remote_ns()) << "namespace {\n\n"
      << "// The JSON of " << m.proto_file << "'s messages, for the proxies' struct bodies and\n"
      << "// outputs: made once, on first use, and read-only after.\n"
      << "const ::dispatch::Result<::dispatch::faas::MessageJson>& " << cpp_stem(m.stem) << "_faas_json() {\n"
      << "  static const auto json = ::dispatch::faas::MessageJson::create(" << cpp_stem(m.stem)
      << "_file_descriptor());\n"
      << "  return json;\n"
      << "}\n\n"
      << "}  // namespace\n" << ns_close(names.remote_ns());
  }
  std::string ns;
  bool open = false;
  for (const FaasFunction& f : m.faas) {
    const std::string here = join_ns(f.cpp_namespace, "faas");
    if (!open || here != ns) {
      if (open) o << ns_close(ns);
      ns = here;
      open = true;
      o << "\n" << ns_open(ns) << "\n";
    }
    proxy_def(o, names, f);
  }
  o << ns_close(ns);
  return o.str();
}

}  // namespace dispatch::gen
