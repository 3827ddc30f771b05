// The stateful functions' parts of the generated files (docs/stateful.md),
// each empty for a header without any, so that such a header generates as
// before: in <stem>.dispatch.h one stub per function (its function type, its
// messages as StateFun carries them, send() through dispatchd's ingress) and
// the structs of the state wrapper messages; in
// <stem>.dispatch.cc their bodies; in <stem>.dispatch.server.cc each
// function's state fields, argument decoder and invocation, and the
// registrations the header's dispatch::Service carries to the StateFun
// route. Not for: plain functions' stubs and handlers (the other printers).
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "cpp/cpp_format.h"
#include "cpp/printers.h"

namespace dispatch::gen {
namespace {

// The C++ type a built-in is handled as (dispatch::stateful::detail::Builtin).
std::string builtin_cpp(const TypeRef& t) {
  if (t.kind == TypeKind::kInt) return t.bits == 32 ? "std::int32_t" : "std::int64_t";
  return t.cpp;
}

// The built-in's typename constant in dispatch/stateful/value_types.h.
std::string builtin_constant(const TypeRef& t) {
  switch (t.kind) {
    case TypeKind::kBool: return "::dispatch::stateful::kBoolType";
    case TypeKind::kInt: return t.bits == 32 ? "::dispatch::stateful::kIntType" : "::dispatch::stateful::kLongType";
    case TypeKind::kFloat: return "::dispatch::stateful::kFloatType";
    case TypeKind::kDouble: return "::dispatch::stateful::kDoubleType";
    default: return "::dispatch::stateful::kStringType";
  }
}

// The encoder of value_types.h for a built-in.
std::string builtin_encoder(const TypeRef& t) {
  switch (t.kind) {
    case TypeKind::kBool: return "::dispatch::stateful::encode_bool";
    case TypeKind::kInt: return t.bits == 32 ? "::dispatch::stateful::encode_int" : "::dispatch::stateful::encode_long";
    case TypeKind::kFloat: return "::dispatch::stateful::encode_float";
    case TypeKind::kDouble: return "::dispatch::stateful::encode_double";
    default: return "::dispatch::stateful::encode_string";
  }
}

// A struct's typename, as every StateFun SDK names a protobuf message.
std::string message_typename(const CppNames& names, const StructDecl& s) {
  return "type.googleapis.com/" + names.full_proto(s.proto_name);
}
std::string message_typename(const CppNames& names, const TypeRef& t) {
  return message_typename(names, names.model().structs[t.decl]);
}

// An expression of type std::string_view (or const char*) naming t's typename.
std::string typename_expr(const CppNames& names, const TypeRef& t) {
  return t.kind == TypeKind::kStruct ? quote(message_typename(names, t)) : builtin_constant(t);
}

// The message types a function takes: the alternatives of its variant, or
// its one type.
std::vector<TypeRef> message_types(const StatefulFunction& f) {
  return f.message.kind == TypeKind::kVariant ? f.message.args : std::vector<TypeRef>{f.message};
}

std::string by_const_ref(const TypeRef& t) {
  return t.kind == TypeKind::kStruct || t.kind == TypeKind::kString || t.kind == TypeKind::kVariant
             ? "const " + t.cpp + "& "
             : builtin_cpp(t) + " ";
}

}  // namespace

std::string stateful_header_includes(const CppNames& names) {
  if (names.model().stateful.empty()) return "";
  return "#include \"dispatch/stateful/ingress.h\"\n#include \"dispatch/stateful/value_types.h\"\n";
}

std::string print_state_wrappers(const CppNames& names) {
  std::ostringstream o;
  for (const StructDecl& s : names.model().structs) {
    if (s.state_field.empty()) continue;
    o << "// State field " << s.state_field << ", persisted as the message " << names.full_proto(s.proto_name)
      << ".\n"
      << "struct " << s.proto_name << " {\n"
      << "  " << s.fields[0].type.cpp << " value{};\n"
      << "};\n";
  }
  return o.str();
}

std::string print_stateful_stubs(const CppNames& names) {
  const Model& m = names.model();
  if (m.stateful.empty()) return "";
  std::ostringstream o;
  o << "\n" << ns_open(names.remote_ns()) << "\n"
    << "// Stateful functions (docs/stateful.md): entities addressed by function type and\n"
    << "// id, served on the StateFun route (" << "/statefun" << ") of a server of this header.\n\n";
  for (const StatefulFunction& f : m.stateful) {
    o << "// " << f.cpp << ", the stateful function " << f.function_type << " over " << f.state_cpp << ".\n"
      << "inline constexpr struct " << f.name << "_stub {\n"
      << "  static constexpr const char* function_type = " << quote(f.function_type) << ";\n\n"
      << "  // A message as StateFun carries it: its typename and bytes.\n";
    for (const TypeRef& t : message_types(f))
      o << "  static ::dispatch::stateful::TypedValue message(" << by_const_ref(t) << "value);\n";
    if (f.message.kind == TypeKind::kVariant)
      o << "  static ::dispatch::stateful::TypedValue message(" << by_const_ref(f.message) << "value);\n";
    o << "  // Queues `message` for the entity `id` through dispatchd's ingress\n"
      << "  // (IngressService/Send); its message id once dispatchd has it on disk.\n"
      << "  ::dispatch::Result<std::uint64_t> send(::dispatch::Client& client, std::string id,\n"
      << "                                         " << by_const_ref(f.message) << "message,\n"
      << "                                         const ::dispatch::stateful::SendOptions& options = {}) const;\n"
      << "} " << f.name << "{};\n\n";
  }
  o << ns_close(names.remote_ns());
  return o.str();
}

std::string print_stateful_stub_bodies(const CppNames& names) {
  const Model& m = names.model();
  if (m.stateful.empty()) return "";
  std::ostringstream o;
  o << "\n" << ns_open(names.remote_ns()) << "\n";
  for (const StatefulFunction& f : m.stateful) {
    const std::string st = f.name + "_stub";
    o << "// ---- " << f.cpp << " (" << f.function_type << ") ----\n\n";
    for (const TypeRef& t : message_types(f)) {
      o << "::dispatch::stateful::TypedValue " << st << "::message(" << by_const_ref(t) << "value) {\n";
      if (t.kind == TypeKind::kStruct) {
        o << "  return {" << quote(message_typename(names, t)) << ", " << names.wire_ns_q() << "::encode(value)};\n";
      } else {
        o << "  return {std::string(" << builtin_constant(t) << "), " << builtin_encoder(t) << "(value)};\n";
      }
      o << "}\n\n";
    }
    if (f.message.kind == TypeKind::kVariant) {
      o << "::dispatch::stateful::TypedValue " << st << "::message(" << by_const_ref(f.message) << "value) {\n"
        << "  return std::visit([](const auto& alternative) { return " << st << "::message(alternative); }, value);\n"
        << "}\n\n";
    }
    o << "::dispatch::Result<std::uint64_t> " << st << "::send(::dispatch::Client& client, std::string id,\n"
      << "    " << by_const_ref(f.message) << "message, const ::dispatch::stateful::SendOptions& options) const {\n"
      << "  return ::dispatch::stateful::send(client, {function_type, std::move(id)}, " << st
      << "::message(message), options);\n"
      << "}\n\n";
  }
  o << ns_close(names.remote_ns());
  return o.str();
}

std::string stateful_server_includes(const CppNames& names) {
  if (names.model().stateful.empty()) return "";
  return "#include \"dispatch/stateful/context.h\"\n";
}

std::string print_stateful_entries(const CppNames& names) {
  const Model& m = names.model();
  std::ostringstream o;
  if (m.stateful.empty()) return "";
  // The header's structs, by C++ type, for the typed forms of
  // Context::reply and Context::egress.
  o << "// The messages of " << m.proto_file << " that are structs of " << m.include_name
    << ", for typed replies\n// and egress records (dispatch::Context::reply, egress).\n";
  std::vector<const StructDecl*> messages;
  for (const StructDecl& s : m.structs)
    if (s.state_field.empty()) messages.push_back(&s);
  if (messages.empty()) {
    o << "const ::dispatch::stateful::MessageTypes stateful_messages{};\n\n";
  } else {
    o << "const ::dispatch::stateful::MessageType stateful_message_list[] = {\n";
    for (const StructDecl* s : messages) {
      o << "    {&typeid(" << s->cpp << "), " << quote(message_typename(names, *s))
        << ",\n     [](const void* value) {\n       return " << names.wire_ns_q() << "::encode(*static_cast<const "
        << s->cpp << "*>(value));\n     }},\n";
    }
    o << "};\n"
      << "const ::dispatch::stateful::MessageTypes stateful_messages{stateful_message_list,\n"
      << "                                                          std::size(stateful_message_list)};\n\n";
  }
  for (const StatefulFunction& f : m.stateful) {
    const std::string type = quote(f.function_type);
    o << "// ---- " << f.function_type << ": " << f.cpp << " over " << f.state_cpp << " ----\n\n"
      << "// Each field of " << f.state_cpp << " is one persisted value (dispatch/stateful/context.h).\n"
      << "struct " << f.name << "_state {\n"
      << "  template <typename Fields>\n"
      << "  static void fields(Fields& f, " << f.state_cpp << "& state) {\n";
    for (const StateField& field : f.state) {
      const TypeRef& inner = field.type.kind == TypeKind::kOptional ? field.type.args[0] : field.type;
      if (field.wrapper) {
        const StructDecl& w = m.structs[*field.wrapper];
        const std::string call = "    f.template wrapped<" + w.cpp + ">(";
        o << call << quote(field.name) << ", state." << field.name << ", &" << names.wire_ns_q() << "::encode,\n"
          << std::string(call.size(), ' ') << "&" << names.wire_ns_q() << "::decode);\n";
      } else if (inner.kind == TypeKind::kStruct) {
        o << "    f.message(" << quote(field.name) << ", state." << field.name << ", &" << names.wire_ns_q()
          << "::encode, &" << names.wire_ns_q() << "::decode);\n";
      } else {
        o << "    f.value(" << quote(field.name) << ", state." << field.name << ");\n";
      }
    }
    o << "  }\n"
      << "};\n\n";

    o << f.message.cpp << " " << f.name << "_argument(const ::dispatch::stateful::TypedValue& argument) {\n";
    std::string accepted;
    for (const TypeRef& t : message_types(f)) {
      accepted += (accepted.empty() ? "" : ", ") + typename_expr(names, t);
      o << "  if (argument.type_name == " << typename_expr(names, t) << ") {\n";
      if (t.kind == TypeKind::kStruct) {
        o << "    return ::dispatch::stateful::message_argument<" << t.cpp << ">(" << type << ", argument,\n"
          << "                                                          &" << names.wire_ns_q() << "::decode);\n";
      } else {
        o << "    return ::dispatch::stateful::builtin_argument<" << builtin_cpp(t) << ">(" << type
          << ", argument);\n";
      }
      o << "  }\n";
    }
    o << "  ::dispatch::stateful::refuse_argument(" << type << ", argument,\n"
      << "                                        {" << accepted << "});\n"
      << "}\n\n";

    o << "void " << f.name << "_invoke(::dispatch::stateful::Invocation& invocation) {\n"
      << "  ::dispatch::stateful::run<" << f.name << "_state, " << f.state_cpp << ">(\n"
      << "      invocation, stateful_messages, [&invocation](::dispatch::Context<" << f.state_cpp << ">& context) {\n"
      << "        " << f.cpp << "(context, " << f.name << "_argument(invocation.argument()));\n"
      << "      });\n"
      << "}\n\n";
  }
  return o.str();
}

std::string print_stateful_service(const CppNames& names, const std::string& service_head) {
  const Model& m = names.model();
  std::ostringstream o;
  o << "  // The stateful functions, served on the StateFun route the service brings.\n"
    << "  static const ::dispatch::stateful::StatefulFunction stateful[] = {\n";
  for (const StatefulFunction& f : m.stateful) {
    o << "      {" << quote(f.function_type) << ",\n"
      << "       {";
    for (std::size_t i = 0; i < f.state.size(); ++i) {
      const StateField& field = f.state[i];
      const TypeRef& inner = field.type.kind == TypeKind::kOptional ? field.type.args[0] : field.type;
      const std::string type_name =
          field.wrapper ? quote(message_typename(names, m.structs[*field.wrapper])) : typename_expr(names, inner);
      o << (i ? ",\n        " : "") << "{" << quote(field.name) << ", std::string(" << type_name << ")";
      if (field.expire != StateField::Expire::never) {
        o << ",\n         ::dispatch::stateful::Expire::"
          << (field.expire == StateField::Expire::after_write ? "after_write" : "after_invoke")
          << ", std::chrono::milliseconds(" << field.expire_ms << ")";
      }
      o << "}";
    }
    o << "},\n"
      << "       &" << f.name << "_invoke},\n";
  }
  o << "  };\n"
    << service_head
    << "      // Its companion, the StateFun route, brings the Dispatch protocol's Run.\n"
    << "      &::dispatch::stateful::statefun_route(), stateful, std::size(stateful)};\n";
  return o.str();
}

}  // namespace dispatch::gen
