// Hand-assembled JSON for --dump-model: a small writer with a string escaper
// is all this needs; see model_json.h.
#include "model_json.h"

#include <cstdio>

namespace dispatch::gen {
namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

const char* kind_name(TypeKind k) {
  switch (k) {
    case TypeKind::kVoid: return "void";
    case TypeKind::kBool: return "bool";
    case TypeKind::kInt: return "int";
    case TypeKind::kFloat: return "float";
    case TypeKind::kDouble: return "double";
    case TypeKind::kString: return "string";
    case TypeKind::kBytes: return "bytes";
    case TypeKind::kVector: return "vector";
    case TypeKind::kOptional: return "optional";
    case TypeKind::kMap: return "map";
    case TypeKind::kEnum: return "enum";
    case TypeKind::kStruct: return "struct";
    case TypeKind::kDuration: return "duration";
    case TypeKind::kTimestamp: return "timestamp";
    case TypeKind::kVariant: return "variant";
    case TypeKind::kCloudEvent: return "cloud_event";
  }
  return "?";
}

// An object written member by member, commas handled.
class Object {
 public:
  Object& raw(const std::string& key, const std::string& json) {
    out_ += (out_.empty() ? "{" : ",") + quote(key) + ":" + json;
    return *this;
  }
  Object& str(const std::string& key, const std::string& v) { return raw(key, quote(v)); }
  Object& num(const std::string& key, long long v) { return raw(key, std::to_string(v)); }
  Object& boolean(const std::string& key, bool v) { return raw(key, v ? "true" : "false"); }
  std::string done() const { return out_.empty() ? "{}" : out_ + "}"; }

 private:
  std::string out_;
};

template <typename T, typename F>
std::string array(const std::vector<T>& items, F each) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + each(items[i]);
  return out + "]";
}

std::string loc(const SourceLocation& l) {
  return Object().str("file", l.file).num("line", l.line).num("column", l.column).done();
}

std::string type(const TypeRef& t) {
  Object o;
  o.str("kind", kind_name(t.kind)).str("cpp", t.cpp);
  if (t.kind == TypeKind::kInt) o.num("bits", t.bits).boolean("is_signed", t.is_signed);
  if (t.kind == TypeKind::kBytes) o.boolean("std_byte", t.std_byte);
  if (t.kind == TypeKind::kMap) o.boolean("unordered", t.unordered);
  if (t.kind == TypeKind::kVector && t.set) o.boolean("set", true).boolean("unordered", t.unordered);
  if (t.kind == TypeKind::kDuration) o.num("ratio_num", t.ratio_num).num("ratio_den", t.ratio_den);
  if (t.kind == TypeKind::kEnum || t.kind == TypeKind::kStruct) o.num("decl", (long long)t.decl);
  if (!t.args.empty()) o.raw("args", array(t.args, type));
  return o.done();
}

}  // namespace

std::string model_to_json(const Model& m) {
  Object o;
  o.str("input", m.input).str("include_name", m.include_name).str("stem", m.stem).str("package", m.package);
  o.str("service", m.service).str("cpp_namespace", m.cpp_namespace).str("proto_file", m.proto_file);
  o.raw("functions", array(m.functions, [](const Function& f) {
    Object fn;
    fn.str("cpp", f.cpp)
        .str("cpp_namespace", f.cpp_namespace)
        .str("name", f.name)
        .str("remote_name", f.remote_name)
        .raw("params", array(f.params, [](const Parameter& p) {
               return Object()
                   .str("name", p.name)
                   .raw("type", type(p.type))
                   .boolean("by_const_ref", p.by_const_ref)
                   .str("view_cpp", p.view_cpp)
                   .str("default_arg", p.default_arg)
                   .raw("loc", loc(p.loc))
                   .done();
             }))
        .raw("result", type(f.result))
        .str("request_message", f.request_message)
        .str("response_message", f.response_message)
        .raw("loc", loc(f.loc))
        .boolean("deprecated", f.deprecated)
        .str("deprecated_message", f.deprecated_message)
        .boolean("workflow", f.workflow)
        .str("version", f.version);
    // Absent when unknown (the default), as "faas" and "stateful" are.
    if (f.idempotency != Idempotency::unknown) fn.str("idempotency", idempotency_name(f.idempotency));
    return fn.done();
  }));
  if (!m.faas.empty()) {  // absent otherwise, as "stateful"
    o.raw("faas", array(m.faas, [](const FaasFunction& f) {
      return Object()
          .str("cpp", f.cpp)
          .str("cpp_namespace", f.cpp_namespace)
          .str("name", f.name)
          .str("faas_name", f.faas_name)
          .raw("params", array(f.params, [](const Parameter& p) {
                 return Object().str("name", p.name).raw("type", type(p.type)).str("view_cpp", p.view_cpp).done();
               }))
          .raw("result", type(f.result))
          .raw("loc", loc(f.loc))
          .done();
    }));
  }
  if (!m.stateful.empty()) {  // absent otherwise, so other models dump as before
    o.raw("stateful", array(m.stateful, [](const StatefulFunction& f) {
      return Object()
          .str("cpp", f.cpp)
          .str("cpp_namespace", f.cpp_namespace)
          .str("name", f.name)
          .str("remote_name", f.remote_name)
          .str("function_type", f.function_type)
          .str("state_cpp", f.state_cpp)
          .raw("state", array(f.state, [](const StateField& sf) {
                 const char* expire = sf.expire == StateField::Expire::after_write    ? "after_write"
                                      : sf.expire == StateField::Expire::after_invoke ? "after_invoke"
                                                                                       : "never";
                 Object out;
                 if (sf.wrapper) out.num("wrapper", static_cast<long long>(*sf.wrapper));
                 return out
                     .str("name", sf.name)
                     .raw("type", type(sf.type))
                     .str("expire", expire)
                     .num("expire_ms", sf.expire_ms)
                     .raw("loc", loc(sf.loc))
                     .done();
               }))
          .str("message_name", f.message_name)
          .raw("message", type(f.message))
          .raw("loc", loc(f.loc))
          .done();
    }));
  }
  o.raw("structs", array(m.structs, [](const StructDecl& s) {
    Object out;
    if (!s.state_field.empty()) out.str("state_field", s.state_field);  // absent for the user's structs
    return out
        .str("cpp", s.cpp)
        .str("proto_name", s.proto_name)
        .raw("fields", array(s.fields, [](const Field& f) {
               return Object()
                   .str("name", f.name)
                   .raw("type", type(f.type))
                   .num("number", f.number)
                   .raw("loc", loc(f.loc))
                   .boolean("deprecated", f.deprecated)
                   .done();
             }))
        .raw("loc", loc(s.loc))
        .done();
  }));
  o.raw("enums", array(m.enums, [](const EnumDecl& e) {
    return Object()
        .str("cpp", e.cpp)
        .str("proto_name", e.proto_name)
        .boolean("scoped", e.scoped)
        .raw("underlying", type(e.underlying))
        .raw("values", array(e.values, [](const EnumValue& v) {
               return Object().str("name", v.name).str("proto_name", v.proto_name).num("value", v.value).done();
             }))
        .boolean("synthetic_zero", e.synthetic_zero)
        .raw("loc", loc(e.loc))
        .done();
  }));
  o.raw("headers_read", array(m.headers_read, quote));
  return o.done();
}

std::string models_to_json(const std::vector<Model>& models) {
  return array(models, model_to_json) + "\n";
}

}  // namespace dispatch::gen
