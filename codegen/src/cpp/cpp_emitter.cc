// The C++ back end (see cpp_emitter.h). Each message (user struct, request,
// response) gets a size pass, a write pass and a reader, printed field by
// field from the model's TypeRefs; nested containers that proto cannot
// express directly go through one-field wrapper messages, as the naming pass
// and the .proto back end describe them (naming.h). The recursion over types
// is in three functions, one per pass: size_field, write_field, read_field.
#include "cpp/cpp_emitter.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "naming.h"  // cpp_stem, stub_name, join_ns, the generated namespaces (header-only)

namespace dispatch::gen {
namespace {

// ---- small text helpers ----

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A byte string as concatenated C string literals, 16 bytes a line, octal
// escapes for anything not plainly printable (octal stops after three digits,
// unlike \x, so a following digit cannot extend it).
std::string byte_literal(const std::string& bytes, const std::string& indent) {
  std::string out;
  std::string line;
  std::size_t count = 0;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\' && c != '?') {
      line += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      line += buf;
    }
    if (++count % 24 == 0) {
      out += indent + "\"" + line + "\"\n";
      line.clear();
    }
  }
  if (!line.empty() || out.empty()) out += indent + "\"" + line + "\"\n";
  out.pop_back();  // the caller ends the statement
  return out;
}

// ---- type classification ----

bool is_scalar(const TypeRef& t) {
  switch (t.kind) {
    case TypeKind::kBool:
    case TypeKind::kInt:
    case TypeKind::kFloat:
    case TypeKind::kDouble:
    case TypeKind::kEnum:
      return true;
    default:
      return false;
  }
}

// As naming.h: an element of a vector, a map's value, or an optional's
// content that proto cannot hold directly.
bool wrapped(const TypeRef& t) {
  return t.kind == TypeKind::kVector || t.kind == TypeKind::kOptional || t.kind == TypeKind::kMap;
}

unsigned wire_type(const TypeRef& t) {
  switch (t.kind) {
    case TypeKind::kFloat: return 5;
    case TypeKind::kDouble: return 1;
    default: return is_scalar(t) ? 0 : 2;
  }
}

const char* wire_type_name(unsigned wt) {
  switch (wt) {
    case 0: return "::dispatch::wire::kVarint";
    case 1: return "::dispatch::wire::kFixed64";
    case 5: return "::dispatch::wire::kFixed32";
    default: return "::dispatch::wire::kLen";
  }
}

// The bytes of a tag's varint, as "*p++ = 0x..;" statements.
std::string put_tag(std::uint32_t field, unsigned wt) {
  std::uint64_t tag = (static_cast<std::uint64_t>(field) << 3) | wt;
  std::string out;
  do {
    unsigned byte = tag & 0x7F;
    tag >>= 7;
    if (tag) byte |= 0x80;
    char buf[32];
    std::snprintf(buf, sizeof buf, "*p++ = 0x%02X; ", byte);
    out += buf;
  } while (tag);
  out.pop_back();
  return out;
}

std::size_t tag_size(std::uint32_t field) {
  std::uint64_t tag = static_cast<std::uint64_t>(field) << 3;
  std::size_t n = 1;
  while (tag >= 0x80) {
    tag >>= 7;
    ++n;
  }
  return n;
}

// What the encoder iterates for map x: a std::map's entries are in key order
// already; a std::unordered_map's are put in it, so that maps with the same
// entries encode to the same bytes.
std::string map_entries(const TypeRef& t, const std::string& x) {
  return t.unordered ? "::dispatch::wire::in_key_order(" + x + ")" : x;
}
// A vector's or set's elements in the order the write pass puts them: a
// std::unordered_set's sorted, like a std::unordered_map's entries. (The
// size pass only adds their sizes up, in any order.)
std::string elements(const TypeRef& t, const std::string& x) {
  return t.set && t.unordered ? "::dispatch::wire::in_order(" + x + ")" : x;
}

// Ratio of one tick for kDuration (its own) and kTimestamp (its duration's).
const TypeRef& tick_type(const TypeRef& t) { return t.kind == TypeKind::kTimestamp ? t.args[0] : t; }
std::string ratio_args(const TypeRef& t) {
  const TypeRef& d = tick_type(t);
  return std::to_string(d.ratio_num) + ", " + std::to_string(d.ratio_den);
}

// ---- the printer ----

class Printer {
 public:
  Printer(const Model& model, const std::string& descriptor)
      : m_(model), descriptor_(descriptor) {
    remote_ns_ = remote_namespace(m_);
    wire_ns_ = wire_namespace(m_);
    std::string dir;
    auto slash = m_.include_name.rfind('/');
    if (slash != std::string::npos) dir = m_.include_name.substr(0, slash + 1);
    generated_header_ = dir + m_.stem + ".dispatch.h";
    for (const Function& f : m_.functions) stub_names_.push_back(stub_name(m_, f));
    // The server half's own names in <ns>::remote's anonymous namespace must
    // not be a stub's name: the reference to kMethods from <ns>::remote would
    // be ambiguous.
    std::set<std::string> taken(stub_names_.begin(), stub_names_.end());
    auto unused = [&](std::string name) {
      while (taken.count(name) != 0) name += '_';
      taken.insert(name);
      return name;
    };
    methods_ = unused("kMethods");
    for (const std::string& stub : stub_names_) handlers_.push_back(unused(stub + "_handler"));
  }

  std::vector<OutputFile> print() {
    return {{m_.stem + ".dispatch.h", header()},
            {m_.stem + ".dispatch.cc", source()},
            {m_.stem + ".dispatch.server.cc", server()}};
  }

 private:
  // One message the codecs handle: its C++ type, its proto name, and fields.
  struct Message {
    std::string cpp;         // "::shop::Order", "::shop::remote::AddRequest"
    std::string proto_name;  // "Order", used in error messages
    const std::vector<Field>* fields;
  };

  std::string full_proto(const std::string& name) const {
    return m_.package.empty() ? name : m_.package + "." + name;
  }
  std::string path(const Function& f) const {
    return "/" + full_proto(m_.service) + "/" + f.remote_name;
  }

  // Generated code uses what the header declares, deprecated or not (a
  // retired field is still encoded and decoded, a deprecated function still
  // served): that is not the user's use, so it does not warn. Users' own
  // uses of the deprecated names, and of a deprecated function's stub, do.
  // The generated header quiets the user's header too when it includes it
  // first: GCC and clang report the implicit copy, move and destructor of a
  // struct with a deprecated field at the struct, where the generated code
  // cannot quiet them otherwise.
  static constexpr const char* kQuietDeprecation =
      "#if defined(__GNUC__)\n#pragma GCC diagnostic push\n"
      "#pragma GCC diagnostic ignored \"-Wdeprecated-declarations\"\n#endif\n\n";
  static constexpr const char* kEndQuiet = "\n#if defined(__GNUC__)\n#pragma GCC diagnostic pop\n#endif\n";

  std::string banner(const std::string& what) const {
    return "// " + what + "\n// Generated by dispatch-gen from " + m_.include_name +
           ". Do not edit: rerun dispatch-gen\n// (the build's dispatch_generate() does) to "
           "regenerate. See docs/types.md.\n";
  }

  static std::string ns_open(const std::string& ns) {
    return ns.empty() ? "" : "namespace " + ns + " {\n";
  }
  static std::string ns_close(const std::string& ns) {
    return ns.empty() ? "" : "}  // namespace " + ns + "\n";
  }
  std::string remote_ns_q() const { return "::" + remote_ns_; }
  std::string wire_ns_q() const { return "::" + wire_ns_; }

  // Fields of the request and response messages, as model Fields.
  static std::vector<Field> request_fields(const Function& f) {
    std::vector<Field> out;
    std::uint32_t n = 0;
    for (const Parameter& p : f.params) out.push_back({p.name, p.type, ++n, p.loc});
    return out;
  }
  static std::vector<Field> response_fields(const Function& f) {
    if (f.result.kind == TypeKind::kVoid) return {};
    return {{"result", f.result, 1, f.loc}};
  }

  // A name for one of the generated stub's own parameters or locals that no
  // user parameter shadows.
  static std::string local(const Function& f, std::string name) {
    const std::vector<std::string> params = stub_params(f);
    while (std::find(params.begin(), params.end(), name) != params.end()) name += '_';
    return name;
  }

  std::string result_cpp(const Function& f) const {
    return f.result.kind == TypeKind::kVoid ? "void" : f.result.cpp;
  }

  // ---------------- header ----------------

  std::string header() {
    std::ostringstream o;
    o << banner("Client half of the remote functions in " + m_.include_name + ": request and\n// "
                "response messages, their codecs, and one stub object per function.")
      << "#pragma once\n\n"
      << kQuietDeprecation
      << "#include <cstdint>\n#include <future>\n#include <string>\n#include <string_view>\n#include <utility>\n\n"
      << "#include \"dispatch/core/awaitable.h\"\n#include \"dispatch/core/client.h\"\n"
      << "#include \"dispatch/core/result.h\"\n#include \"dispatch/durable/dispatch_client.h\"\n"
      << "#include \"dispatch/durable/durable_call.h\"\n"
      << "#include " << quote(m_.include_name) << "\n\n"
      << "namespace dispatch {\nstruct Service;\n}  // namespace dispatch\n\n";

    o << ns_open(remote_ns_) << "\n";
    o << "// The messages of " << m_.proto_file << ", one request and one response per function.\n";
    for (const Function& f : m_.functions) {
      o << "struct " << f.request_message << " {\n";
      for (const Parameter& p : f.params) o << "  " << p.type.cpp << " " << p.name << "{};\n";
      o << "};\n";
      o << "struct " << f.response_message << " {\n";
      if (f.result.kind != TypeKind::kVoid) o << "  " << f.result.cpp << " result{};\n";
      o << "};\n";
    }
    o << "\n" << ns_close(remote_ns_) << "\n";

    o << "// Binary protobuf codecs for every message of " << m_.proto_file
      << ". decode() resets *value\n// first and reports malformed input as invalid_argument; "
         "encode() throws dispatch::Error\n// (out_of_range) only for a duration or time point "
         "proto cannot carry.\n";
    o << ns_open(wire_ns_);
    for (const StructDecl& s : m_.structs) codec_decl(o, s.cpp);
    for (const Function& f : m_.functions) {
      codec_decl(o, remote_ns_q() + "::" + f.request_message);
      codec_decl(o, remote_ns_q() + "::" + f.response_message);
    }
    o << ns_close(wire_ns_) << "\n";

    default_helpers(o);
    o << ns_open(remote_ns_) << "\n";
    for (std::size_t i = 0; i < m_.functions.size(); ++i) stub_decl(o, m_.functions[i], stub_names_[i]);
    o << "// The server half (in " << m_.stem
      << ".dispatch.server.cc): every function above, for a\n// dispatch::DispatchTable.\n"
      << "const ::dispatch::Service& " << cpp_stem(m_.stem) << "_service();\n"
      << "// The serialized google.protobuf.FileDescriptorProto of " << m_.proto_file << ".\n"
      << "std::string_view " << cpp_stem(m_.stem) << "_file_descriptor();\n\n"
      << ns_close(remote_ns_) << kEndQuiet;
    return o.str();
  }

  // The name of the function that returns the default argument of
  // parameter `param` (0-based) of function `function`, in its namespace:
  // "dispatch_default_add_1". The number, not the parameter's name, ends it,
  // so that get(user_id) and get_user(id) cannot both make "..._get_user_id".
  std::string default_helper(std::size_t function, std::size_t param) const {
    return "dispatch_default_" + stub_names_[function] + "_" + std::to_string(param);
  }
  std::string default_helper_q(std::size_t function, std::size_t param) const {
    const std::string& ns = m_.functions[function].cpp_namespace;
    return "::" + join_ns(ns, default_helper(function, param));
  }

  // Default arguments carry over to the stubs. Each is evaluated by an
  // inline function in the function's own namespace, so that its names
  // resolve as they did in the declaration, not among the stub's members or
  // the other stubs in <ns>::remote.
  void default_helpers(std::ostringstream& o) const {
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      std::string helpers;
      for (std::size_t k = 0; k < f.params.size(); ++k) {
        const Parameter& p = f.params[k];
        if (p.default_arg.empty()) continue;
        helpers += "// " + p.name + "\ninline " + (p.view_cpp.empty() ? p.type.cpp : p.view_cpp) + " " +
                   default_helper(i, k) + "() { return " +
                   p.default_arg + "; }\n";
      }
      if (helpers.empty()) continue;
      o << "// The default arguments of " << f.cpp << ", for its stub.\n"
        << ns_open(f.cpp_namespace) << helpers << ns_close(f.cpp_namespace) << "\n";
    }
  }

  static void codec_decl(std::ostringstream& o, const std::string& cpp) {
    o << "std::string encode(const " << cpp << "& value);\n"
      << "::dispatch::Result<void> decode(std::string_view bytes, " << cpp << "* value);\n";
  }

  // The names of f's parameters in its stub's member functions: the user's,
  // except that one named like a member of the stub (path, function, ...)
  // gets a '_' appended, so that it shadows nothing (-Wshadow stays quiet);
  // the request message's fields keep the user's names.
  static std::vector<std::string> stub_params(const Function& f) {
    static const std::set<std::string> kMembers = {"path", "function", "request_type", "response_type",
                                                   "try_call", "async", "co", "dispatch", "encode_request",
                                                   "call"};
    std::vector<std::string> names;
    for (const Parameter& p : f.params) {
      std::string name = p.name;
      auto taken = [&](const std::string& n) {
        if (kMembers.count(n) != 0 || std::find(names.begin(), names.end(), n) != names.end()) return true;
        if (n == p.name) return false;
        for (const Parameter& q : f.params) {
          if (q.name == n) return true;
        }
        return false;
      };
      while (taken(name)) name += '_';
      names.push_back(name);
    }
    return names;
  }
  // The stub's parameter list after the client: "const T& a, const U& b, ".
  // In declarations (with_defaults), a parameter with a default argument
  // gets "= <its helper>()".
  // For co() (in_co_await), only the trailing defaults of types without a
  // destructor: GCC 12 destroys some temporaries of a co_await expression
  // twice (see tests/generated/shop_test.cc), and a default argument is such
  // a temporary the caller cannot see.
  std::string params_decl(const Function& f, bool with_defaults = false, bool in_co_await = false) const {
    std::string s;
    std::vector<std::string> names = stub_params(f);
    const std::size_t index = static_cast<std::size_t>(&f - m_.functions.data());  // f is one of m_.functions
    std::size_t first_default = f.params.size();
    while (first_default > 0 && !f.params[first_default - 1].default_arg.empty() &&
           (!in_co_await || trivially_destructible(f.params[first_default - 1]))) {
      --first_default;
    }
    for (std::size_t i = 0; i < f.params.size(); ++i) {
      s += param_type(f.params[i]) + names[i];
      if (with_defaults && i >= first_default) s += " = " + default_helper_q(index, i) + "()";
      s += ", ";
    }
    return s;
  }
  static bool trivially_destructible(const Parameter& p) {
    const TypeRef& t = p.type;
    return !p.view_cpp.empty() || is_scalar(t) || t.kind == TypeKind::kDuration ||
           t.kind == TypeKind::kTimestamp;
  }
  // How a stub (and the request's struct of references) takes a parameter:
  // "const T& " for values, by value for views ("std::string_view ").
  static std::string param_type(const Parameter& p) {
    return p.view_cpp.empty() ? "const " + p.type.cpp + "& " : p.view_cpp + " ";
  }
  static std::string args(const Function& f) {
    std::string s;
    for (const std::string& name : stub_params(f)) s += name + ", ";
    return s;
  }
  // "a, b" (no trailing comma).
  static std::string call_args(const Function& f) {
    std::string s = args(f);
    return s.empty() ? s : s.substr(0, s.size() - 2);
  }

  void stub_decl(std::ostringstream& o, const Function& f, const std::string& name) {
    std::string r = result_cpp(f);
    std::string client = local(f, "client"), options = local(f, "options"),
                request = local(f, "request");
    std::string ps = params_decl(f, true);
    std::string ps_no_trailing = ps.empty() ? "" : ps.substr(0, ps.size() - 2);
    // The stub's members are named with it (st::path, not path) wherever a
    // parameter of the same name could shadow them.
    std::string st = name + "_stub";
    o << "// " << f.cpp << ", served as " << full_proto(f.remote_name) << " at " << path(f) << ".\n";
    if (f.deprecated) {  // as the function is: calls through the stub warn too
      o << "[[deprecated" << (f.deprecated_message.empty() ? "" : "(" + quote(f.deprecated_message) + ")")
        << "]] ";
    }
    o << "inline constexpr struct " << name << "_stub {\n"
      << "  static constexpr const char* path = " << quote(path(f)) << ";\n"
      << "  static constexpr const char* function = " << quote(full_proto(f.remote_name)) << ";\n"
      << "  static constexpr const char* request_type = " << quote(full_proto(f.request_message)) << ";\n"
      << "  static constexpr const char* response_type = " << quote(full_proto(f.response_message)) << ";\n\n"
      << "  // Calls and waits; throws dispatch::Error.\n"
      << "  " << r << " operator()(::dispatch::Client& " << client << ", " << ps
      << "const ::dispatch::CallOptions& " << options << " = {}) const;\n"
      << "  // Calls and waits; never throws.\n"
      << "  ::dispatch::Result<" << r << "> try_call(::dispatch::Client& " << client << ", " << ps
      << "const ::dispatch::CallOptions& " << options << " = {}) const;\n"
      << "  // Starts the call; the future holds the result or the dispatch::Error.\n"
      << "  std::future<" << r << "> async(::dispatch::Client& " << client << ", " << ps
      << "const ::dispatch::CallOptions& " << options << " = {}) const;\n"
      << "#if __cplusplus >= 202002L\n"
      << "  // co_await-able; resumes on the transport's completion, throws dispatch::Error.\n"
      << "  ::dispatch::Awaitable<" << r << "> co(::dispatch::Client& " << client << ", "
      << params_decl(f, true, true) << "const ::dispatch::CallOptions& " << options << " = {}) const;\n"
      << "#endif\n"
      << "  // Hands the call to a durable scheduler; returns its dispatch ID.\n"
      << "  ::dispatch::Result<std::string> dispatch(::dispatch::DispatchClient& " << client << ", "
      << ps << "const ::dispatch::DispatchOptions& " << options << " = {}) const {\n"
      << "    auto " << request << " = " << st << "::encode_request(" << call_args(f) << ");\n"
      << "    if (!" << request << ".ok()) return std::move(" << request << ").error();\n"
      << "    return " << client << ".dispatch(" << st << "::function, " << st << "::request_type, std::move(*"
      << request << "), " << options << ");\n"
      << "  }\n"
      << "  // The call as a workflow awaits it (dispatch/workflow/workflow.h): made\n"
      << "  // durably by the scheduler, giving the result or the dispatch::Error.\n"
      << "  ::dispatch::DurableCall<" << r << "> call(" << ps_no_trailing << ") const;\n"
      << "  // The request message's bytes (e.g. for DispatchClient::dispatch_batch).\n"
      << "  static ::dispatch::Result<std::string> encode_request(" << ps_no_trailing << ");\n"
      << "} " << name << "{};\n\n";
  }

  // ---------------- source: codecs + stubs ----------------

  std::string source() {
    std::ostringstream o;
    o << banner("Client half and codecs of the remote functions in " + m_.include_name + ".")
      << "#include " << quote(generated_header_) << "\n\n"
      << "#include <exception>\n#include <memory>\n#include <utility>\n\n"
      << "#include \"dispatch/wire/wire_io.h\"\n\n"
      << kQuietDeprecation;

    std::vector<Message> messages;
    for (const StructDecl& s : m_.structs) messages.push_back({s.cpp, s.proto_name, &s.fields});
    req_fields_.clear();
    resp_fields_.clear();
    for (const Function& f : m_.functions) {
      req_fields_.push_back(request_fields(f));
      resp_fields_.push_back(response_fields(f));
    }
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      messages.push_back({remote_ns_q() + "::" + f.request_message, f.request_message, &req_fields_[i]});
      messages.push_back({remote_ns_q() + "::" + f.response_message, f.response_message, &resp_fields_[i]});
    }

    o << ns_open(wire_ns_) << "namespace {\n\n"
      << "using ::dispatch::wire::SizeCache;\nusing ::dispatch::wire::Stream;\n\n"
      << "// Each message: size_of() measures it (caching nested sizes in pre-order),\n"
      << "// write() prints it into a buffer of that size, read() parses it.\n";
    for (const Message& msg : messages) {
      o << "std::size_t size_of(const " << msg.cpp << "& v, SizeCache& c);\n"
        << "std::uint8_t* write(const " << msg.cpp << "& v, SizeCache& c, std::uint8_t* p);\n"
        << "void read(Stream& in, " << msg.cpp << "* v);\n"
        << "void set_to_proto_defaults(" << msg.cpp << "* v);\n";
    }
    // Requests are encoded straight from the stub's arguments: a struct of
    // references avoids copying them into the request struct.
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      o << "struct " << f.request_message << "Refs {\n";
      for (const Parameter& p : f.params) o << "  " << param_type(p) << p.name << ";\n";
      o << "};\n"
        << "std::size_t size_of(const " << f.request_message << "Refs& v, SizeCache& c);\n"
        << "std::uint8_t* write(const " << f.request_message << "Refs& v, SizeCache& c, std::uint8_t* p);\n";
    }
    o << "\n";
    for (const Message& msg : messages) message_codec(o, msg);
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      Message refs{f.request_message + "Refs", f.request_message, &req_fields_[i]};
      encoder(o, refs);
    }
    o << "}  // namespace\n\n";

    for (const Message& msg : messages) {
      o << "std::string encode(const " << msg.cpp << "& value) {\n"
        << "  return ::dispatch::wire::encode_message([&](SizeCache& c) { return size_of(value, c); },\n"
        << "                                          [&](SizeCache& c, std::uint8_t* p) { return write(value, c, p); });\n"
        << "}\n\n"
        << "::dispatch::Result<void> decode(std::string_view bytes, " << msg.cpp << "* value) {\n"
        << "  set_to_proto_defaults(value);\n"
        << "  try {\n"
        << "    ::dispatch::wire::decode_buffer(bytes, " << quote(msg.proto_name)
        << ", [&](Stream& in) { read(in, value); });\n"
        << "  } catch (const ::dispatch::Error& e) {\n"
        << "    return e;\n"
        << "  }\n"
        << "  return {};\n"
        << "}\n\n";
    }
    o << ns_close(wire_ns_) << "\n";

    o << ns_open(remote_ns_) << "\n";
    o << "std::string_view " << cpp_stem(m_.stem) << "_file_descriptor() {\n"
      << "  static constexpr char kDescriptor[] =\n"
      << byte_literal(descriptor_, "      ") << ";\n"
      << "  return std::string_view(kDescriptor, sizeof kDescriptor - 1);\n"
      << "}\n\n";
    for (std::size_t i = 0; i < m_.functions.size(); ++i) stub_def(o, m_.functions[i], stub_names_[i]);
    o << ns_close(remote_ns_) << kEndQuiet;
    return o.str();
  }

  void message_codec(std::ostringstream& o, const Message& msg) {
    encoder(o, msg);
    // A message read from the wire starts from proto's defaults (0, false,
    // empty, absent), not from the struct's default member initializers: a
    // field left out because it was 0 must decode as 0, not as `int n = 3`'s
    // 3. Called on the decode target and on every struct the reader creates.
    o << "void set_to_proto_defaults(" << (msg.fields->empty() ? "[[maybe_unused]] " : "") << msg.cpp
      << "* v) {\n";
    for (const Field& f : *msg.fields) {
      const std::string x = "v->" + f.name;
      switch (f.type.kind) {
        case TypeKind::kStruct: o << "  set_to_proto_defaults(&" << x << ");\n"; break;
        case TypeKind::kOptional: o << "  " << x << ".reset();\n"; break;
        case TypeKind::kString:
        case TypeKind::kBytes:
        case TypeKind::kVector:
        case TypeKind::kMap: o << "  " << x << ".clear();\n"; break;
        default: o << "  " << x << " = {};\n"; break;
      }
    }
    o << "}\n\n";
    // reader
    o << "void read(Stream& in, " << (msg.fields->empty() ? "[[maybe_unused]] " : "") << msg.cpp
      << "* v) {\n"
      << "  while (std::uint32_t tag = ::dispatch::wire::next_tag(in, " << quote(msg.proto_name) << ")) {\n"
      << "    switch (tag >> 3) {\n";
    for (const Field& f : *msg.fields) {
      o << "      case " << f.number << ":  // " << f.name << "\n";
      read_field(o, "        ", f.type, "v->" + f.name, msg.proto_name, f.name, "tag", 1);
      o << "        break;\n";
    }
    o << "      default:\n"
      << "        ::dispatch::wire::skip(in, tag, " << quote(msg.proto_name) << ");\n"
      << "    }\n  }\n}\n\n";
  }

  void encoder(std::ostringstream& o, const Message& msg) {
    std::string unused = msg.fields->empty() ? "[[maybe_unused]] " : "";
    std::ostringstream size, write;
    for (const Field& f : *msg.fields) {
      Ctx ctx{msg.proto_name, f.name};
      size_field(size, "  ", f.type, "v." + f.name, f.number, false, "n", ctx, 1);
      write_field(write, "  ", f.type, "v." + f.name, f.number, false, ctx, 1);
    }
    std::string size_body = size.str(), write_body = write.str();
    // Every use of the cache goes through "c.": reserve(), set(), next(),
    // or passing it on as ", c)" / ", c, p)".
    auto uses_cache = [](const std::string& body) {
      return body.find(" c.") != std::string::npos || body.find("(c.") != std::string::npos ||
             body.find(", c)") != std::string::npos || body.find(", c, p)") != std::string::npos;
    };
    bool size_uses_c = uses_cache(size_body);
    bool write_uses_c = uses_cache(write_body);
    o << "std::size_t size_of(" << unused << "const " << msg.cpp << "& v, "
      << (size_uses_c ? "" : "[[maybe_unused]] ") << "SizeCache& c) {\n"
      << "  std::size_t n = 0;\n" << size_body << "  return n;\n}\n\n"
      << "std::uint8_t* write(" << unused << "const " << msg.cpp << "& v, "
      << (write_uses_c ? "" : "[[maybe_unused]] ") << "SizeCache& c, std::uint8_t* p) {\n"
      << write_body << "  return p;\n}\n\n";
  }

  // Where a field is, for error messages.
  struct Ctx {
    std::string message;
    std::string field;
    std::string args() const { return quote(message) + ", " + quote(field); }
  };

  // The varint-or-fixed size expression of a scalar value.
  static std::string scalar_size(const TypeRef& t, const std::string& x) {
    switch (t.kind) {
      case TypeKind::kFloat: return "4";
      case TypeKind::kDouble: return "8";
      case TypeKind::kBool: return "1";
      default: return "::dispatch::wire::varint_size(::dispatch::wire::varint_bits(" + x + "))";
    }
  }
  static std::string scalar_put(const TypeRef& t, const std::string& x) {
    switch (t.kind) {
      case TypeKind::kFloat: return "p = ::dispatch::wire::put_float(" + x + ", p);";
      case TypeKind::kDouble: return "p = ::dispatch::wire::put_double(" + x + ", p);";
      case TypeKind::kBool: return "*p++ = " + x + " ? 1 : 0;";
      default: return "p = ::dispatch::wire::put_varint(::dispatch::wire::varint_bits(" + x + "), p);";
    }
  }

  static std::string d(const char* name, int depth) { return name + std::to_string(depth); }

  // The Timespan of a duration or time point value.
  std::string timespan_expr(const TypeRef& t, const std::string& x, const Ctx& ctx) const {
    bool ts = t.kind == TypeKind::kTimestamp;
    return std::string("::dispatch::wire::") + (ts ? "timestamp_to_proto(" : "duration_to_proto(") + x +
           (ts ? ".time_since_epoch().count(), " : ".count(), ") + ratio_args(t) + ", " + ctx.args() + ")";
  }

  // Size pass: adds field `number` holding `x` (of type t) to `acc`.
  // `always`: written even when default (optional contents, map entries).
  void size_field(std::ostringstream& o, const std::string& in, const TypeRef& t, const std::string& x,
                  std::uint32_t number, bool always, const std::string& acc, const Ctx& ctx, int depth) {
    std::string ts = std::to_string(tag_size(number));
    if (is_scalar(t)) {
      std::string add = acc + " += " + ts + " + " + scalar_size(t, x) + ";";
      o << in << (always ? add : "if (!::dispatch::wire::is_default(" + x + ")) " + add) << "\n";
      return;
    }
    switch (t.kind) {
      case TypeKind::kString:
      case TypeKind::kBytes: {
        std::string add = acc + " += " + ts + " + ::dispatch::wire::len_size(" + x + ".size());";
        o << in << (always ? add : "if (!" + x + ".empty()) " + add) << "\n";
        return;
      }
      case TypeKind::kStruct: {
        std::string slot = d("slot", depth), m = d("m", depth);
        o << in << "{\n"
          << in << "  std::size_t " << slot << " = c.reserve();\n"
          << in << "  std::size_t " << m << " = size_of(" << x << ", c);\n"
          << in << "  c.set(" << slot << ", " << m << ");\n"
          << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kDuration:
      case TypeKind::kTimestamp:
        o << in << acc << " += " << ts << " + ::dispatch::wire::len_size(::dispatch::wire::timespan_size("
          << timespan_expr(t, x, ctx) << "));\n";
        return;
      case TypeKind::kVector: {
        const TypeRef& e = t.args[0];
        std::string el = d("e", depth);
        if (is_scalar(e)) {  // packed
          std::string m = d("m", depth);
          bool fixed = e.kind == TypeKind::kFloat || e.kind == TypeKind::kDouble || e.kind == TypeKind::kBool;
          o << in << "if (!" << x << ".empty()) {\n";
          if (fixed) {
            o << in << "  std::size_t " << m << " = " << x << ".size() * " << scalar_size(e, "") << ";\n";
          } else {
            std::string slot = d("slot", depth);
            o << in << "  std::size_t " << slot << " = c.reserve();\n"
              << in << "  std::size_t " << m << " = 0;\n"
              << in << "  for (const auto& " << el << " : " << x << ") " << m << " += " << scalar_size(e, el) << ";\n"
              << in << "  c.set(" << slot << ", " << m << ");\n";
          }
          o << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
            << in << "}\n";
          return;
        }
        // Any order: a set's elements (the only vectors written in another
        // order) are never messages, so they take no size-cache slots.
        o << in << "for (const auto& " << el << " : " << x << ") {\n";
        element_size(o, in + "  ", e, el, number, acc, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      case TypeKind::kOptional: {
        const TypeRef& e = t.args[0];
        o << in << "if (" << x << ") {\n";
        element_size(o, in + "  ", e, "(*" + x + ")", number, acc, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      case TypeKind::kMap: {
        std::string el = d("e", depth), slot = d("slot", depth), m = d("m", depth);
        o << in << "for (const auto& " << el << " : " << map_entries(t, x) << ") {\n"
          << in << "  std::size_t " << slot << " = c.reserve();\n"
          << in << "  std::size_t " << m << " = 0;\n";
        size_field(o, in + "  ", t.args[0], el + ".first", 1, true, m, ctx, depth + 1);
        element_size(o, in + "  ", t.args[1], el + ".second", 2, m, ctx, depth + 1);
        o << in << "  c.set(" << slot << ", " << m << ");\n"
          << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
          << in << "}\n";
        return;
      }
      default:
        return;
    }
  }

  // An element (of a vector, optional, map value): always written; a
  // wrapper message around it when proto needs one.
  void element_size(std::ostringstream& o, const std::string& in, const TypeRef& e, const std::string& x,
                    std::uint32_t number, const std::string& acc, const Ctx& ctx, int depth) {
    if (!wrapped(e)) {
      size_field(o, in, e, x, number, true, acc, ctx, depth);
      return;
    }
    std::string slot = d("slot", depth), m = d("m", depth);
    o << in << "{\n"
      << in << "  std::size_t " << slot << " = c.reserve();\n"
      << in << "  std::size_t " << m << " = 0;\n";
    size_field(o, in + "  ", e, x, 1, false, m, ctx, depth + 1);
    o << in << "  c.set(" << slot << ", " << m << ");\n"
      << in << "  " << acc << " += " << tag_size(number) << " + ::dispatch::wire::len_size(" << m << ");\n"
      << in << "}\n";
  }

  // Write pass: mirrors size_field exactly (same conditions, same order of
  // cache slots).
  void write_field(std::ostringstream& o, const std::string& in, const TypeRef& t, const std::string& x,
                   std::uint32_t number, bool always, const Ctx& ctx, int depth) {
    if (is_scalar(t)) {
      std::string stmt = put_tag(number, wire_type(t)) + " " + scalar_put(t, x);
      if (always) {
        o << in << stmt << "\n";
      } else {
        o << in << "if (!::dispatch::wire::is_default(" << x << ")) {\n" << in << "  " << stmt << "\n" << in << "}\n";
      }
      return;
    }
    switch (t.kind) {
      case TypeKind::kString:
      case TypeKind::kBytes: {
        std::string i2 = always ? in : in + "  ";
        if (!always) o << in << "if (!" << x << ".empty()) {\n";
        o << i2 << put_tag(number, 2) << "\n"
          << i2 << "p = ::dispatch::wire::put_len(" << x << ".size(), p);\n"
          << i2 << "p = ::dispatch::wire::put_raw(" << x << ".data(), " << x << ".size(), p);\n";
        if (!always) o << in << "}\n";
        return;
      }
      case TypeKind::kStruct:
        o << in << put_tag(number, 2) << "\n"
          << in << "p = ::dispatch::wire::put_len(c.next(), p);\n"
          << in << "p = write(" << x << ", c, p);\n";
        return;
      case TypeKind::kDuration:
      case TypeKind::kTimestamp: {
        std::string span = d("span", depth);
        o << in << "{\n"
          << in << "  ::dispatch::wire::Timespan " << span << " = " << timespan_expr(t, x, ctx) << ";\n"
          << in << "  " << put_tag(number, 2) << "\n"
          << in << "  p = ::dispatch::wire::put_len(::dispatch::wire::timespan_size(" << span << "), p);\n"
          << in << "  p = ::dispatch::wire::put_timespan(" << span << ", p);\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kVector: {
        const TypeRef& e = t.args[0];
        std::string el = d("e", depth);
        if (is_scalar(e)) {
          bool fixed = e.kind == TypeKind::kFloat || e.kind == TypeKind::kDouble || e.kind == TypeKind::kBool;
          std::string value = e.kind == TypeKind::kBool ? "static_cast<bool>(" + el + ")" : el;
          o << in << "if (!" << x << ".empty()) {\n"
            << in << "  " << put_tag(number, 2) << "\n"
            << in << "  p = ::dispatch::wire::put_len("
            << (fixed ? x + ".size() * " + scalar_size(e, "") : std::string("c.next()")) << ", p);\n"
            << in << "  for (const auto& " << el << " : " << elements(t, x) << ") " << scalar_put(e, value) << "\n"
            << in << "}\n";
          return;
        }
        o << in << "for (const auto& " << el << " : " << elements(t, x) << ") {\n";
        element_write(o, in + "  ", e, el, number, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      case TypeKind::kOptional:
        o << in << "if (" << x << ") {\n";
        element_write(o, in + "  ", t.args[0], "(*" + x + ")", number, ctx, depth + 1);
        o << in << "}\n";
        return;
      case TypeKind::kMap: {
        std::string el = d("e", depth);
        o << in << "for (const auto& " << el << " : " << map_entries(t, x) << ") {\n"
          << in << "  " << put_tag(number, 2) << "\n"
          << in << "  p = ::dispatch::wire::put_len(c.next(), p);\n";
        write_field(o, in + "  ", t.args[0], el + ".first", 1, true, ctx, depth + 1);
        element_write(o, in + "  ", t.args[1], el + ".second", 2, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      default:
        return;
    }
  }

  void element_write(std::ostringstream& o, const std::string& in, const TypeRef& e, const std::string& x,
                     std::uint32_t number, const Ctx& ctx, int depth) {
    if (!wrapped(e)) {
      write_field(o, in, e, x, number, true, ctx, depth);
      return;
    }
    o << in << put_tag(number, 2) << "\n"
      << in << "p = ::dispatch::wire::put_len(c.next(), p);\n";
    write_field(o, in, e, x, 1, false, ctx, depth + 1);
  }

  // The expression reading one scalar of type t.
  std::string scalar_read(const TypeRef& t, const Ctx& ctx) const {
    switch (t.kind) {
      case TypeKind::kBool: return "::dispatch::wire::read_bool(in, " + ctx.args() + ")";
      case TypeKind::kFloat: return "::dispatch::wire::read_float(in, " + ctx.args() + ")";
      case TypeKind::kDouble: return "::dispatch::wire::read_double(in, " + ctx.args() + ")";
      case TypeKind::kEnum: {
        const EnumDecl& e = m_.enums[t.decl];
        return "::dispatch::wire::read_enum<" + t.cpp + ">(in, " + ctx.args() + ", " + quote(t.cpp) + ", " +
               (e.synthetic_zero ? "true" : "false") + ")";
      }
      default:
        return "::dispatch::wire::read_int<" + t.cpp + ">(in, " + ctx.args() + ", " + quote(t.cpp) + ")";
    }
  }

  // Reads field data of type t (the tag, in variable `tag`, is already read)
  // into the lvalue `x`. Repeated occurrences append (vectors, maps), merge
  // (messages) or replace (scalars), as protobuf does.
  void read_field(std::ostringstream& o, const std::string& in, const TypeRef& t, const std::string& x,
                  const std::string& message, const std::string& field, const std::string& tag, int depth) {
    Ctx ctx{message, field};
    std::string expect_len = "::dispatch::wire::expect(" + tag + ", ::dispatch::wire::kLen, " + ctx.args() + ");\n";
    if (is_scalar(t)) {
      o << in << "::dispatch::wire::expect(" << tag << ", " << wire_type_name(wire_type(t)) << ", " << ctx.args() << ");\n"
        << in << x << " = " << scalar_read(t, ctx) << ";\n";
      return;
    }
    switch (t.kind) {
      case TypeKind::kString:
        o << in << expect_len << in << "::dispatch::wire::read_string(in, &" << x << ", " << ctx.args() << ");\n";
        return;
      case TypeKind::kBytes:
        o << in << expect_len << in << "::dispatch::wire::read_bytes(in, &" << x << ", " << ctx.args() << ");\n";
        return;
      case TypeKind::kStruct: {
        std::string limit = d("limit", depth);
        o << in << expect_len << in << "{\n"
          << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter(in, " << ctx.args() << ");\n"
          << in << "  read(in, &" << x << ");\n"
          << in << "  ::dispatch::wire::leave(in, " << limit << ");\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kDuration:
      case TypeKind::kTimestamp: {
        bool ts = t.kind == TypeKind::kTimestamp;
        const TypeRef& dur = tick_type(t);
        std::string ticks = "::dispatch::wire::proto_to_ticks<" + dur.args[0].cpp +
                            ">(\n" + in + "    ::dispatch::wire::read_timespan(in, " + ctx.args() +
                            (ts ? ", true), " : ", false), ") + ratio_args(t) + ", " + ctx.args() + ")";
        o << in << expect_len << in << x << " = " << t.cpp << "(" << (ts ? dur.cpp + "(" + ticks + ")" : ticks) << ");\n";
        return;
      }
      case TypeKind::kVector: {
        const TypeRef& e = t.args[0];
        if (is_scalar(e)) {  // packed (kLen) or one value per tag
          std::string limit = d("limit", depth);
          // A set takes each value once (a repeated value is kept once).
          const std::string add = t.set ? ".insert(" : ".push_back(";
          o << in << "if ((" << tag << " & 7) == ::dispatch::wire::kLen) {\n"
            << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter_packed(in, " << ctx.args() << ");\n";
          if (!t.set) {
            o << in << "  " << x << ".reserve(" << x << ".size() + ::dispatch::wire::packed_count(in, "
              << (e.kind == TypeKind::kFloat ? 4 : e.kind == TypeKind::kDouble ? 8 : 0) << "));\n";
          }
          o << in << "  while (::dispatch::wire::more(in)) " << x << add << scalar_read(e, ctx) << ");\n"
            << in << "  ::dispatch::wire::leave_packed(in, " << limit << ");\n"
            << in << "} else {\n"
            << in << "  ::dispatch::wire::expect(" << tag << ", " << wire_type_name(wire_type(e)) << ", " << ctx.args() << ");\n"
            << in << "  " << x << add << scalar_read(e, ctx) << ");\n"
            << in << "}\n";
          return;
        }
        if (t.set) {  // strings: read one, then insert it
          std::string one = d("one", depth);
          o << in << "{\n" << in << "  " << e.cpp << " " << one << ";\n";
          element_read(o, in + "  ", e, one, message, field, tag, depth);
          o << in << "  " << x << ".insert(std::move(" << one << "));\n" << in << "}\n";
          return;
        }
        o << in << x << ".emplace_back();\n";
        if (e.kind == TypeKind::kStruct) o << in << "set_to_proto_defaults(&" << x << ".back());\n";
        element_read(o, in, e, x + ".back()", message, field, tag, depth);
        return;
      }
      case TypeKind::kOptional:
        if (t.args[0].kind == TypeKind::kStruct) {  // engaged: merge into it, as protobuf does
          o << in << "if (!" << x << ") set_to_proto_defaults(&" << x << ".emplace());\n";
        } else {
          o << in << "if (!" << x << ") " << x << ".emplace();\n";
        }
        element_read(o, in, t.args[0], "(*" + x + ")", message, field, tag, depth);
        return;
      case TypeKind::kMap: {
        // The entry's tag is tag<depth + 1>, as in element_read: a map read
        // inside a wrapper's loop (std::optional<std::map<...>>) must not
        // shadow that loop's tag<depth>.
        std::string limit = d("limit", depth), key = d("key", depth), value = d("value", depth),
                    tg = d("tag", depth + 1);
        o << in << expect_len << in << "{\n"
          << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter(in, " << ctx.args() << ");\n"
          << in << "  " << t.args[0].cpp << " " << key << "{};\n"
          << in << "  " << t.args[1].cpp << " " << value << "{};\n"
          << (t.args[1].kind == TypeKind::kStruct ? in + "  set_to_proto_defaults(&" + value + ");\n" : "")
          << in << "  while (std::uint32_t " << tg << " = ::dispatch::wire::next_tag(in, " << quote(message) << ")) {\n"
          << in << "    if ((" << tg << " >> 3) == 1) {\n";
        read_field(o, in + "      ", t.args[0], key, message, field, tg, depth + 1);
        o << in << "    } else if ((" << tg << " >> 3) == 2) {\n";
        element_read(o, in + "      ", t.args[1], value, message, field, tg, depth + 1);
        o << in << "    } else {\n"
          << in << "      ::dispatch::wire::skip(in, " << tg << ", " << quote(message) << ");\n"
          << in << "    }\n"
          << in << "  }\n"
          << in << "  ::dispatch::wire::leave(in, " << limit << ");\n"
          << in << "  " << x << ".insert_or_assign(std::move(" << key << "), std::move(" << value << "));\n"
          << in << "}\n";
        return;
      }
      default:
        return;
    }
  }

  // An element (of a vector or optional, or a map's value): read as a field
  // of its own type, or through its one-field wrapper message (value = 1).
  void element_read(std::ostringstream& o, const std::string& in, const TypeRef& e, const std::string& x,
                    const std::string& message, const std::string& field, const std::string& tag, int depth) {
    if (!wrapped(e)) {
      read_field(o, in, e, x, message, field, tag, depth);
      return;
    }
    Ctx ctx{message, field};
    std::string limit = d("limit", depth), tg = d("tag", depth + 1);
    o << in << "::dispatch::wire::expect(" << tag << ", ::dispatch::wire::kLen, " << ctx.args() << ");\n"
      << in << "{\n"
      << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter(in, " << ctx.args() << ");\n"
      << in << "  while (std::uint32_t " << tg << " = ::dispatch::wire::next_tag(in, " << quote(message) << ")) {\n"
      << in << "    if ((" << tg << " >> 3) == 1) {\n";
    read_field(o, in + "      ", e, x, message, field, tg, depth + 1);
    o << in << "    } else {\n"
      << in << "      ::dispatch::wire::skip(in, " << tg << ", " << quote(message) << ");\n"
      << in << "    }\n"
      << in << "  }\n"
      << in << "  ::dispatch::wire::leave(in, " << limit << ");\n"
      << in << "}\n";
  }

  void stub_def(std::ostringstream& o, const Function& f, const std::string& name) {
    std::string r = result_cpp(f);
    bool is_void = f.result.kind == TypeKind::kVoid;
    std::string client = local(f, "client"), options = local(f, "options"), request = local(f, "request"),
                promise = local(f, "promise"), future = local(f, "future"), reply = local(f, "reply"),
                done = local(f, "done"), result = local(f, "result"), cache = local(f, "c"),
                out = local(f, "p"), error = local(f, "e");
    std::string ps = params_decl(f);
    std::string ps_no_trailing = ps.empty() ? "" : ps.substr(0, ps.size() - 2);
    std::string st = name + "_stub";
    std::string decode_fn = "decode_" + name + "_reply";
    std::string resp = remote_ns_q() + "::" + f.response_message;

    o << "// ---- " << f.cpp << " ----\n\n";
    o << "::dispatch::Result<std::string> " << st << "::encode_request(" << ps_no_trailing << ") {\n"
      << "  try {\n"
      << "    return ::dispatch::wire::encode_message(\n"
      << "        [&](::dispatch::wire::SizeCache& " << cache << ") { return " << wire_ns_q() << "::size_of("
      << wire_ns_q() << "::" << f.request_message << "Refs{" << call_args(f)
      << "}, " << cache << "); },\n"
      << "        [&](::dispatch::wire::SizeCache& " << cache << ", std::uint8_t* " << out << ") { return "
      << wire_ns_q() << "::write(" << wire_ns_q() << "::" << f.request_message << "Refs{" << call_args(f)
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
      << "  auto decoded = " << wire_ns_q() << "::decode(*" << reply << ", &" << result << ");\n"
      << "  if (!decoded.ok()) {\n"
      << "    return ::dispatch::Error(::dispatch::Code::internal,\n"
      << "                             std::string(\"malformed reply from \") + " << st
      << "::path + \": \" + decoded.error().message());\n"
      << "  }\n"
      << (is_void ? "  return {};\n" : "  return std::move(" + result + ".result);\n")
      << "}\n"
      << "// The same for a result the scheduler kept (a workflow's durable call).\n"
      << "::dispatch::Result<" << r << "> " << decode_fn << "_bytes(std::string_view " << reply << ") {\n"
      << "  return " << decode_fn << "(std::string(" << reply << "));\n"
      << "}\n"
      << "}  // namespace\n\n";

    o << "::dispatch::DurableCall<" << r << "> " << st << "::call(" << ps_no_trailing << ") const {\n"
      << "  return ::dispatch::DurableCall<" << r << ">(" << st << "::function, " << st << "::request_type, "
      << st << "::encode_request(" << call_args(f) << "), &" << decode_fn << "_bytes);\n"
      << "}\n\n";

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

  // ---------------- server half ----------------

  std::string server() {
    std::ostringstream o;
    o << banner("Server half of the remote functions in " + m_.include_name +
                ": handlers that decode a\n// request, call the function and encode its result, "
                "and the dispatch::Service\n// listing them.")
      << "#include " << quote(generated_header_) << "\n\n"
      << "#include <iterator>\n#include <utility>\n\n"
      << "#include \"dispatch/core/service.h\"\n#include \"dispatch/durable/function_service.h\"\n\n"
      << kQuietDeprecation;
    o << ns_open(remote_ns_) << "namespace {\n\n";
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      o << "::dispatch::Result<std::string> " << handlers_[i] << "(const ::dispatch::MethodCall& call) {\n"
        << "  " << remote_ns_q() << "::" << f.request_message << " request;\n"
        << "  auto decoded = " << wire_ns_q() << "::decode(call.request, &request);\n"
        << "  if (!decoded.ok()) return std::move(decoded).error();\n";
      std::string call = f.cpp + "(";
      for (std::size_t k = 0; k < f.params.size(); ++k) {
        call += (k ? ", " : "") + std::string("std::move(request.") + f.params[k].name + ")";
      }
      call += ")";
      if (f.result.kind == TypeKind::kVoid) {
        o << "  " << call << ";\n"
          << "  return " << wire_ns_q() << "::encode(" << remote_ns_q() << "::" << f.response_message << "{});\n";
      } else {
        o << "  return " << wire_ns_q() << "::encode(" << remote_ns_q() << "::" << f.response_message << "{"
          << call << "});\n";
      }
      o << "}\n\n";
    }
    if (!m_.functions.empty()) {
      o << "const ::dispatch::Method " << methods_ << "[] = {\n";
      for (std::size_t i = 0; i < m_.functions.size(); ++i) {
        const Function& f = m_.functions[i];
        o << "    {" << quote(f.remote_name) << ", " << quote(path(f)) << ", "
          << quote(full_proto(f.request_message)) << ", " << quote(full_proto(f.response_message)) << ", &"
          << handlers_[i] << "},\n";
      }
      o << "};\n\n";
    }
    o << "}  // namespace\n\n"
      << "const ::dispatch::Service& " << cpp_stem(m_.stem) << "_service() {\n"
      << "  static const ::dispatch::Service service{" << quote(m_.package) << ", " << quote(m_.service) << ", "
      << (m_.functions.empty() ? "nullptr, 0" : methods_ + ", std::size(" + methods_ + ")") << ", "
      << cpp_stem(m_.stem) << "_file_descriptor(),\n"
      << "      // Served with the Dispatch protocol's Run, so a scheduler can drive it.\n"
      << "      &::dispatch::function_service()};\n"
      << "  return service;\n"
      << "}\n\n"
      << ns_close(remote_ns_) << kEndQuiet;
    return o.str();
  }

  const Model& m_;
  const std::string& descriptor_;
  std::string remote_ns_, wire_ns_, generated_header_;
  std::vector<std::string> stub_names_;
  std::string methods_;                // "kMethods"
  std::vector<std::string> handlers_;  // per function, "add_handler"
  std::vector<std::vector<Field>> req_fields_, resp_fields_;
};

}  // namespace

std::vector<OutputFile> emit_cpp(const Model& model, const std::string& serialized_file_descriptor) {
  return Printer(model, serialized_file_descriptor).print();
}

}  // namespace dispatch::gen
