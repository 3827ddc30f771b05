// The naming pass, the wrapper-message rule and how generated code spells
// the user's header; see naming.h for the rules and docs/annotations.md for
// the user's view of them.
#include "naming.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <filesystem>
#include <functional>
#include <set>
#include <system_error>

namespace dispatch::gen {
namespace {

bool is_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> parts;
  if (s.empty()) return parts;
  size_t start = 0;
  for (size_t pos; (pos = s.find(sep, start)) != std::string::npos; start = pos + sep.size())
    parts.push_back(s.substr(start, pos - start));
  parts.push_back(s.substr(start));
  return parts;
}

// The path with symlinks resolved as far as it exists, so a directory and a
// header reached through different links still compare.
std::filesystem::path resolved(const std::string& path) {
  std::error_code ec;
  std::filesystem::path out = std::filesystem::weakly_canonical(path, ec);
  return ec ? std::filesystem::absolute(path).lexically_normal() : out;
}

std::string where(const SourceLocation& loc) {
  return loc.file + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
}

void visit_types(const TypeRef& t, const std::function<void(const TypeRef&)>& f) {
  f(t);
  for (const TypeRef& a : t.args) visit_types(a, f);
}

// Calls `f` with each type under `root` that is carried in a wrapper message
// of its own: a variant, and an optional, vector or map that is an element
// (of a vector or optional, a map's value, a variant's alternative).
void for_each_wrapped(const TypeRef& root, const std::function<void(const TypeRef&)>& f) {
  visit_types(root, [&](const TypeRef& t) {
    const TypeRef* element = nullptr;
    if (t.kind == TypeKind::kOptional || t.kind == TypeKind::kVector) element = &t.args.at(0);
    if (t.kind == TypeKind::kMap) element = &t.args.at(1);
    if (element && needs_wrapper(*element)) f(*element);
    if (t.kind == TypeKind::kVariant) {
      f(t);
      for (const TypeRef& a : t.args)
        if (needs_wrapper(a)) f(a);
    }
  });
}

// What one message carries on the wire: equal for two types exactly when one
// wrapper message serves both (std::vector and std::set, int8_t and int32_t,
// std::byte and std::uint8_t bytes share one), different when only the names
// agree (a struct `Timestamp` and a time point are both "Timestamp" in
// wrapper names).
std::string wire_shape(const TypeRef& t) {
  std::string out;
  switch (t.kind) {
    case TypeKind::kInt: out = std::string(t.is_signed ? "i" : "u") + (t.bits == 64 ? "64" : "32"); break;
    case TypeKind::kEnum: out = "enum" + std::to_string(t.decl); break;
    case TypeKind::kStruct: out = "struct" + std::to_string(t.decl); break;
    case TypeKind::kDuration: return "duration";    // the rep is not on the wire
    case TypeKind::kTimestamp: return "timestamp";
    default: out = std::to_string(static_cast<int>(t.kind)); break;
  }
  if (t.args.empty()) return out;
  out += '(';
  for (const TypeRef& a : t.args) out += wire_shape(a) + ',';
  return out + ')';
}

// The structs and enums under `t`, as an error names them ("struct 'v::Item'").
void user_types(const Model& model, const TypeRef& t, std::set<std::string>& out) {
  visit_types(t, [&](const TypeRef& u) {
    if (u.kind == TypeKind::kStruct) out.insert("struct '" + model.structs.at(u.decl).cpp.substr(2) + "'");
    if (u.kind == TypeKind::kEnum) out.insert("enum '" + model.enums.at(u.decl).cpp.substr(2) + "'");
  });
}

}  // namespace

std::string pascal_case(std::string_view name) {
  std::string out;
  bool up = true;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) {
      up = true;
      continue;
    }
    out += up ? char(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

std::string upper_snake(std::string_view name) {
  std::string out;
  auto lower = [](char c) { return std::islower(static_cast<unsigned char>(c)) != 0; };
  auto upper = [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; };
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (upper(c) && i > 0 && !out.empty() && out.back() != '_') {
      char prev = name[i - 1];
      bool next_lower = i + 1 < name.size() && lower(name[i + 1]);
      if (lower(prev) || digit(prev) || (upper(prev) && next_lower)) out += '_';
    }
    out += char(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool needs_wrapper(const TypeRef& element) {
  return element.kind == TypeKind::kOptional || element.kind == TypeKind::kVector ||
         element.kind == TypeKind::kMap;
}

std::string type_name(const Model& model, const TypeRef& t) {
  switch (t.kind) {
    case TypeKind::kVoid: return "Void";
    case TypeKind::kBool: return "Bool";
    case TypeKind::kInt:
      if (t.bits == 64) return t.is_signed ? "Int64" : "Uint64";
      return t.is_signed ? "Int32" : "Uint32";
    case TypeKind::kFloat: return "Float";
    case TypeKind::kDouble: return "Double";
    case TypeKind::kString: return "String";
    case TypeKind::kBytes: return "Bytes";
    case TypeKind::kDuration: return "Duration";
    case TypeKind::kTimestamp: return "Timestamp";
    case TypeKind::kCloudEvent: return "CloudEvent";
    case TypeKind::kEnum: return model.enums.at(t.decl).proto_name;
    case TypeKind::kStruct: return model.structs.at(t.decl).proto_name;
    case TypeKind::kOptional: return "Optional" + type_name(model, t.args.at(0));
    case TypeKind::kVector: return "List" + type_name(model, t.args.at(0));
    case TypeKind::kMap: return "Map" + type_name(model, t.args.at(0)) + type_name(model, t.args.at(1));
    case TypeKind::kVariant: {
      std::string name = "Variant";
      for (const TypeRef& a : t.args) name += type_name(model, a);
      return name;
    }
  }
  return "";
}

std::string variant_field(const Model& model, const TypeRef& alternative) {
  std::string out;
  for (char c : upper_snake(type_name(model, alternative)))
    out += char(std::tolower(static_cast<unsigned char>(c)));
  return out + "_value";
}

std::map<std::string, TypeRef> wrapper_messages(const Model& model) {
  std::map<std::string, TypeRef> out;
  auto collect = [&](const TypeRef& root) {
    for_each_wrapped(root, [&](const TypeRef& t) { out.emplace(type_name(model, t), t); });
  };
  for (const StructDecl& s : model.structs)
    for (const Field& f : s.fields) collect(f.type);
  for (const Function& f : model.functions) {
    for (const Parameter& p : f.params) collect(p.type);
    collect(f.result);
  }
  return out;
}

std::vector<Diagnostic> assign_names(Model& model, const NamingOptions& options) {
  std::vector<Diagnostic> errors;
  auto error = [&](const SourceLocation& loc, std::string message) {
    errors.push_back(Diagnostic{loc, std::move(message)});
  };
  if (options.include_name) model.include_name = *options.include_name;

  // Package: --package, else the functions' one namespace.
  if (options.package) {
    bool ok = !options.package->empty();
    for (const std::string& part : split(*options.package, "."))
      ok = ok && is_identifier(part);
    if (!ok)
      error({}, "--package '" + *options.package +
                    "' is not a proto package name (identifiers joined with '.', e.g. shop.v1)");
    model.package = *options.package;
  } else if (!model.functions.empty() || !model.stateful.empty() || !model.faas.empty()) {
    // Stateful functions and FaaS proxies count as functions here (their
    // names and places): a proxy's struct types are messages of the package.
    std::vector<Function> functions = model.functions;
    for (const StatefulFunction& sf : model.stateful) {
      Function f;
      f.cpp_namespace = sf.cpp_namespace;
      f.name = sf.name;
      f.loc = sf.loc;
      functions.push_back(std::move(f));
    }
    for (const FaasFunction& x : model.faas) {
      Function f;
      f.cpp_namespace = x.cpp_namespace;
      f.name = x.name;
      f.loc = x.loc;
      functions.push_back(std::move(f));
    }
    const Function& first = functions.front();
    for (const Function& f : functions) {
      if (f.cpp_namespace == first.cpp_namespace) continue;
      auto shown = [](const std::string& ns) { return ns.empty() ? std::string("the global namespace") : "'" + ns + "'"; };
      error(f.loc, "function '" + f.name + "' is in namespace " + shown(f.cpp_namespace) + " but '" + first.name +
                       "' (" + where(first.loc) + ") is in " + shown(first.cpp_namespace) +
                       "; one header is one proto package: pass --package (PACKAGE in dispatch_generate) "
                       "or move them into one namespace");
      break;
    }
    std::string package;
    for (const std::string& part : split(first.cpp_namespace, "::"))
      package += (package.empty() ? "" : ".") + part;
    model.package = package;
  }

  // The innermost namespace enclosing every function.
  if (!model.functions.empty() || !model.stateful.empty() || !model.faas.empty()) {
    std::vector<std::string> namespaces;
    for (const Function& f : model.functions) namespaces.push_back(f.cpp_namespace);
    for (const StatefulFunction& f : model.stateful) namespaces.push_back(f.cpp_namespace);
    for (const FaasFunction& f : model.faas) namespaces.push_back(f.cpp_namespace);
    std::vector<std::string> common = split(namespaces.front(), "::");
    for (const std::string& f_ns : namespaces) {
      std::vector<std::string> parts = split(f_ns, "::");
      size_t n = 0;
      while (n < common.size() && n < parts.size() && common[n] == parts[n]) ++n;
      common.resize(n);
    }
    std::string ns;
    for (const std::string& part : common) ns += (ns.empty() ? "" : "::") + part;
    model.cpp_namespace = ns;
  }

  // State wrappers (model.h, StructDecl::state_field) are structs of the
  // generated header, in <ns>::remote.
  for (StructDecl& s : model.structs)
    if (!s.state_field.empty()) s.cpp = "::" + remote_namespace(model) + "::" + s.proto_name;

  model.service = pascal_case(model.stem) + "Service";
  if (!is_identifier(model.service))
    error({}, "cannot derive a service name from '" + model.input + "' (got '" + model.service +
                  "'); rename the header so its name starts with a letter");

  // Every name in the package scope of the .proto: messages, enums, the
  // service and enum values (proto scopes enum values beside their enum).
  std::map<std::string, std::string> taken;  // name -> what took it
  auto claim = [&](const std::string& name, const std::string& what, const SourceLocation& loc) {
    auto [it, inserted] = taken.emplace(name, what);
    if (!inserted)
      error(loc, "proto name '" + name + "' of " + what + " collides with " + it->second +
                     "; rename one of them");
  };
  claim(model.service, "the service of " + model.input, {});
  for (const StructDecl& s : model.structs) {
    claim(s.proto_name,
          s.state_field.empty() ? "struct '" + s.cpp.substr(2) + "'"
                                : "the message state field '" + s.state_field + "' is persisted as (docs/stateful.md)",
          s.loc);
  }
  for (EnumDecl& e : model.enums) {
    claim(e.proto_name, "enum '" + e.cpp.substr(2) + "'", e.loc);
    std::string prefix = upper_snake(e.proto_name) + "_";
    e.synthetic_zero = true;
    for (EnumValue& v : e.values) {
      v.proto_name = prefix + upper_snake(v.name);
      if (v.value == 0) e.synthetic_zero = false;
      claim(v.proto_name, "enumerator '" + e.cpp.substr(2) + "::" + v.name + "'", e.loc);
    }
    if (e.synthetic_zero) claim(prefix + "UNSPECIFIED", "the zero value proto3 needs in '" + e.cpp.substr(2) + "'", e.loc);
  }

  std::map<std::string, const Function*> remote;
  for (Function& f : model.functions) {
    auto [it, inserted] = remote.emplace(f.remote_name, &f);
    if (!inserted) {
      const Function& other = *it->second;
      if (other.name == f.name && f.remote_name == f.name)
        error(f.loc, "'" + f.name + "' is overloaded (other at " + where(other.loc) +
                         "); give each overload its own remote name with [[dispatch::function(\"name\")]]");
      else
        error(f.loc, "remote name '" + f.remote_name + "' of '" + f.name + "' is already used by '" + other.name +
                         "' at " + where(other.loc) + "; two functions cannot share one remote name");
      continue;
    }
    f.request_message = pascal_case(f.remote_name) + "Request";
    f.response_message = pascal_case(f.remote_name) + "Response";
    claim(f.request_message, "the request of '" + f.remote_name + "'", f.loc);
    claim(f.response_message, "the response of '" + f.remote_name + "'", f.loc);
  }
  // Stateful functions: their types, "<package>/<name>" unless annotated.
  std::map<std::string, const StatefulFunction*> function_types;
  for (StatefulFunction& sf : model.stateful) {
    if (sf.function_type.empty()) {
      if (model.package.empty()) {
        error(sf.loc, "stateful function '" + sf.name + "' has no namespace for its function type "
                      "(namespace/name); put it in a namespace, pass --package, or name its type with "
                      "[[dispatch::function(\"example/" + sf.remote_name + "\")]]");
        continue;
      }
      sf.function_type = model.package + "/" + sf.remote_name;
    }
    auto [it, inserted] = function_types.emplace(sf.function_type, &sf);
    if (!inserted)
      error(sf.loc, "function type '" + sf.function_type + "' of '" + sf.name + "' is already that of '" +
                        it->second->name + "' at " + where(it->second->loc) + "; give one of them another type");
  }
  // Wrapper messages are named after the types they hold, so two different
  // types can come out with one name (a struct `Timestamp` and a time point
  // in std::optional are both "OptionalTimestamp"). One message cannot carry
  // both: the .proto, and the JSON path that reads it, would be wrong for one.
  struct WrapperUse {
    TypeRef type;
    std::string shape;
    SourceLocation loc;
  };
  std::map<std::string, WrapperUse> wrappers;
  std::set<std::string> reported;  // one error per name, not one per use
  auto collect_wrappers = [&](const TypeRef& root, const SourceLocation& loc, const std::string& what) {
    for_each_wrapped(root, [&](const TypeRef& t) {
      std::string name = type_name(model, t), shape = wire_shape(t);
      auto [it, inserted] = wrappers.emplace(name, WrapperUse{t, shape, loc});
      if (inserted || it->second.shape == shape || !reported.insert(name).second) return;
      std::set<std::string> mine, theirs, differing;
      user_types(model, t, mine);
      user_types(model, it->second.type, theirs);
      std::set_symmetric_difference(mine.begin(), mine.end(), theirs.begin(), theirs.end(),
                                    std::inserter(differing, differing.end()));
      std::string rename;
      for (const std::string& d : differing) rename += (rename.empty() ? "" : " or ") + d;
      if (rename.empty()) rename = "a struct or enum they use";
      error(loc, what + " needs the wrapper message '" + name + "' for '" + t.cpp +
                     "', but that is also the wrapper message's name for '" + it->second.type.cpp + "' (" +
                     where(it->second.loc) + "), a different type; wrapper messages are named after the types "
                     "they hold (docs/annotations.md, \"Wrapper messages\"): rename " + rename +
                     " so the two names differ");
    });
  };
  for (const StructDecl& s : model.structs)
    for (const Field& f : s.fields) collect_wrappers(f.type, f.loc, "field '" + f.name + "' of '" + s.cpp.substr(2) + "'");
  for (const Function& f : model.functions) {
    for (const Parameter& p : f.params) collect_wrappers(p.type, p.loc, "parameter '" + p.name + "' of '" + f.name + "'");
    collect_wrappers(f.result, f.loc, "the result of '" + f.name + "'");
  }
  for (const auto& [name, use] : wrappers)
    claim(name, "the wrapper message for '" + use.type.cpp + "' (see docs/annotations.md)", use.loc);

  // Each alternative of a variant is one field of its oneof, named for its
  // wire type: two alternatives of one wire type (std::vector<std::byte> and
  // std::vector<std::uint8_t>, std::int32_t and an enum-free alias of it)
  // could not be told apart on the wire.
  auto check_variants = [&](const TypeRef& root, const SourceLocation& loc, const std::string& what) {
    visit_types(root, [&](const TypeRef& t) {
      if (t.kind != TypeKind::kVariant) return;
      std::map<std::string, const TypeRef*> fields;
      for (const TypeRef& a : t.args) {
        auto [it, inserted] = fields.emplace(variant_field(model, a), &a);
        if (!inserted && wire_shape(*it->second) != wire_shape(a))
          error(loc, what + ": in '" + t.cpp + "', alternatives '" + it->second->cpp + "' and '" + a.cpp +
                         "' would both be the oneof field '" + it->first + "' (their proto names, '" +
                         type_name(model, *it->second) + "' and '" + type_name(model, a) +
                         "', are alike in lower snake case); rename one of the types");
        else if (!inserted)
          error(loc, what + ": in '" + t.cpp + "', alternatives '" + it->second->cpp + "' and '" + a.cpp +
                         "' have one wire type (" + type_name(model, a) +
                         "), so a decoded value could not say which it holds; keep one of them");
      }
    });
  };
  for (const StructDecl& s : model.structs)
    for (const Field& f : s.fields) check_variants(f.type, f.loc, "field '" + f.name + "' of '" + s.cpp.substr(2) + "'");
  for (const Function& f : model.functions) {
    for (const Parameter& p : f.params) check_variants(p.type, p.loc, "parameter '" + p.name + "'");
    check_variants(f.result, f.loc, "result of '" + f.name + "'");
  }

  // C++ names. The generated namespaces <ns>::remote and <ns>::<stem>_wire
  // cannot share a name with a function, struct or enum of <ns>.
  const std::string remote_ns = remote_namespace(model), wire_ns = wire_namespace(model);
  std::map<std::string, std::string> namespaces = {
      {"::" + remote_ns, "namespace '" + remote_ns + "', which the generated code declares for the stubs"},
      {"::" + wire_ns, "namespace '" + wire_ns + "', which the generated code declares for the codecs"}};
  for (const FaasFunction& x : model.faas) {
    const std::string faas_ns = join_ns(x.cpp_namespace, "faas");
    namespaces.emplace("::" + faas_ns, "namespace '" + faas_ns + "', which the generated code declares for the "
                                       "FaaS proxies");
  }
  auto check_namespace = [&](const std::string& cpp, const std::string& what, const SourceLocation& loc) {
    auto it = namespaces.find(cpp);
    if (it != namespaces.end()) error(loc, what + " collides with " + it->second + "; rename it");
  };
  for (const Function& f : model.functions) check_namespace(f.cpp, "function '" + f.name + "'", f.loc);
  for (const StructDecl& s : model.structs)
    if (s.state_field.empty()) check_namespace(s.cpp, "struct '" + s.cpp.substr(2) + "'", s.loc);
  for (const EnumDecl& e : model.enums) {
    check_namespace(e.cpp, "enum '" + e.cpp.substr(2) + "'", e.loc);
    // An unscoped enum's enumerators are names of the enclosing scope too.
    if (e.scoped) continue;
    const std::string scope = e.cpp.substr(0, e.cpp.rfind("::"));
    for (const EnumValue& v : e.values)
      check_namespace(scope + "::" + v.name, "enumerator '" + v.name + "' of unscoped enum '" + e.cpp.substr(2) + "'",
                      e.loc);
  }

  // In <ns>::remote each stub is an object named after its function, beside
  // the message structs and the two functions of the header.
  std::map<std::string, std::string> in_remote;  // name -> what the generated code declares by it
  in_remote.emplace(cpp_stem(model.stem) + "_service", "the function that lists the server half of " + model.input);
  in_remote.emplace(cpp_stem(model.stem) + "_file_descriptor", "the function that returns the descriptor of " +
                                                                    model.input);
  if (!model.faas.empty())
    in_remote.emplace(cpp_stem(model.stem) + "_faas_json", "the JSON of the messages the FaaS proxies of " +
                                                               model.input + " use");
  for (const Function& f : model.functions) {
    if (f.request_message.empty()) continue;
    in_remote.emplace(f.request_message, "the request struct of '" + f.remote_name + "'");
    in_remote.emplace(f.response_message, "the response struct of '" + f.remote_name + "'");
  }
  for (const StructDecl& s : model.structs)
    if (!s.state_field.empty()) in_remote.emplace(s.proto_name, "the message of state field '" + s.state_field + "'");
  for (const StatefulFunction& sf : model.stateful) {
    auto [it, inserted] = in_remote.emplace(sf.name, "the stub of stateful function '" + sf.name + "'");
    if (!inserted)
      error(sf.loc, "stateful function '" + sf.name + "': its stub would be '" + remote_ns + "::" + sf.name +
                        "', already the name of " + it->second + "; rename the function");
  }
  std::map<std::string, const Function*> stubs;
  for (const Function& f : model.functions) {
    std::string stub = stub_name(model, f);
    auto [other, fresh] = stubs.emplace(stub, &f);
    if (!fresh) {
      const Function& g = *other->second;
      error(f.loc, "function '" + f.name + "': its stub would be '" + remote_ns + "::" + stub +
                       "', already the stub of '" + g.name + "' at " + where(g.loc) +
                       " (an overloaded function's stubs take its remote names); rename one of them or give the "
                       "overload another remote name");
      continue;
    }
    auto it = in_remote.find(stub);
    if (it == in_remote.end()) continue;
    bool by_remote_name = stub != f.name;
    error(f.loc, "function '" + f.name + "': its stub would be '" + remote_ns + "::" + stub +
                     "', already the name of " + it->second + "; rename the " +
                     (by_remote_name ? "function's remote name" : "function"));
  }
  return errors;
}

std::vector<std::string> include_dirs(const std::vector<std::string>& clang_args) {
  std::vector<std::string> dirs;
  for (std::string_view flag : {"-iquote", "-I", "-isystem"}) {
    for (size_t i = 0; i < clang_args.size(); ++i) {
      std::string_view arg = clang_args[i];
      if (arg.substr(0, flag.size()) != flag) continue;
      if (arg.size() > flag.size()) dirs.emplace_back(arg.substr(flag.size()));
      else if (i + 1 < clang_args.size()) dirs.push_back(clang_args[++i]);
    }
  }
  return dirs;
}

std::optional<IncludeSpelling> include_spelling(const std::string& header, const std::vector<std::string>& dirs) {
  std::filesystem::path file = resolved(header);
  std::optional<IncludeSpelling> best;
  for (const std::string& dir : dirs) {
    std::filesystem::path rel = file.lexically_relative(resolved(dir));
    if (rel.empty() || rel == "." || *rel.begin() == "..") continue;
    // Every directory that holds the header is one of its ancestors: the
    // deepest leaves the shortest path.
    std::string name = rel.generic_string();
    if (!best || name.size() < best->name.size()) best = IncludeSpelling{name, dir};
  }
  return best;
}

std::optional<std::string> include_lookup(const std::string& name, const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate.string();
  }
  return std::nullopt;
}

}  // namespace dispatch::gen
