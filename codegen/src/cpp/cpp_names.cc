// Names of the generated C++ (see cpp_names.h).
#include "cpp/cpp_names.h"

#include <algorithm>
#include <set>

#include "naming.h"  // stub_name, join_ns, the generated namespaces (header-only)

namespace dispatch::gen {

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

CppNames::CppNames(const Model& model) : m_(model) {
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
  for (std::size_t i = 0; i < m_.functions.size(); ++i) {
    if (!m_.functions[i].workflow) {
      workflow_starts_.emplace_back();
      workflow_definitions_.emplace_back();
      continue;
    }
    workflow_starts_.push_back(unused(stub_names_[i] + "_start"));
    workflow_definitions_.push_back(unused(stub_names_[i] + "_workflow"));
  }
}

std::string CppNames::full_proto(const std::string& name) const {
  return m_.package.empty() ? name : m_.package + "." + name;
}

std::string CppNames::path(const Function& f) const {
  return "/" + full_proto(m_.service) + "/" + f.remote_name;
}

// The number, not the parameter's name, ends it ("dispatch_default_add_1"),
// so that get(user_id) and get_user(id) cannot both make "..._get_user_id".
std::string CppNames::default_helper(std::size_t function, std::size_t param) const {
  return "dispatch_default_" + stub_names_[function] + "_" + std::to_string(param);
}

std::string CppNames::default_helper_q(std::size_t function, std::size_t param) const {
  const std::string& ns = m_.functions[function].cpp_namespace;
  return "::" + join_ns(ns, default_helper(function, param));
}

namespace {

bool trivially_destructible(const Parameter& p) {
  const TypeRef& t = p.type;
  return !p.view_cpp.empty() || is_scalar(t) || t.kind == TypeKind::kDuration ||
         t.kind == TypeKind::kTimestamp;
}

}  // namespace

std::string CppNames::params_decl(const Function& f, bool with_defaults, bool in_co_await) const {
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

std::vector<Field> request_fields(const Function& f) {
  std::vector<Field> out;
  std::uint32_t n = 0;
  for (const Parameter& p : f.params) out.push_back({p.name, p.type, ++n, p.loc});
  return out;
}

std::vector<Field> response_fields(const Function& f) {
  if (f.result.kind == TypeKind::kVoid) return {};
  return {{"result", f.result, 1, f.loc}};
}

std::string result_cpp(const Function& f) { return f.result.kind == TypeKind::kVoid ? "void" : f.result.cpp; }

std::vector<std::string> stub_params(const Function& f) {
  static const std::set<std::string> kMembers = {"path", "function", "request_type", "response_type",
                                                 "try_call", "async", "co", "dispatch", "encode_request",
                                                 "decode_reply", "call"};
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

std::string local(const Function& f, std::string name) {
  const std::vector<std::string> params = stub_params(f);
  while (std::find(params.begin(), params.end(), name) != params.end()) name += '_';
  return name;
}

std::string param_type(const Parameter& p) {
  return p.view_cpp.empty() ? "const " + p.type.cpp + "& " : p.view_cpp + " ";
}

std::string args(const Function& f) {
  std::string s;
  for (const std::string& name : stub_params(f)) s += name + ", ";
  return s;
}

std::string call_args(const Function& f) {
  std::string s = args(f);
  return s.empty() ? s : s.substr(0, s.size() - 2);
}

std::string call_options(const Function& f, const std::string& options) {
  if (f.idempotency != Idempotency::no_side_effects) return options;
  return "::dispatch::stub::without_side_effects(" + options + ")";
}

}  // namespace dispatch::gen
