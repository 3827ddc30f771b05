// Builds the .proto of a model with libprotobuf's descriptor types and prints
// it with FileDescriptor::DebugString(); see proto_emitter.h.
#include "proto_emitter.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>

#include "naming.h"

namespace dispatch::gen {
namespace {

using google::protobuf::DescriptorProto;
using google::protobuf::FieldDescriptorProto;
using google::protobuf::FileDescriptorProto;

bool uses(const Model& model, TypeKind kind) {
  bool found = false;
  std::function<void(const TypeRef&)> visit = [&](const TypeRef& t) {
    found = found || t.kind == kind;
    for (const TypeRef& a : t.args) visit(a);
  };
  for (const StructDecl& s : model.structs)
    for (const Field& f : s.fields) visit(f.type);
  for (const Function& f : model.functions) {
    for (const Parameter& p : f.params) visit(p.type);
    visit(f.result);
  }
  return found;
}

// protobuf's own rule for a map field's entry message name.
std::string map_entry_name(const std::string& field) {
  std::string out;
  bool up = true;
  for (char c : field) {
    if (c == '_') {
      up = true;
    } else if (up) {
      out += char(std::toupper(static_cast<unsigned char>(c)));
      up = false;
    } else {
      out += c;
    }
  }
  return out + "Entry";
}

class Builder {
 public:
  explicit Builder(const Model& model) : model_(model) {}

  std::string full(const std::string& name) const {
    return "." + (model_.package.empty() ? name : model_.package + "." + name);
  }

  // The field's type when it holds a value of `t` that is neither a
  // container nor optional.
  void set_single(FieldDescriptorProto* f, const TypeRef& t) const {
    switch (t.kind) {
      case TypeKind::kBool: f->set_type(FieldDescriptorProto::TYPE_BOOL); return;
      case TypeKind::kInt:
        if (t.bits == 64)
          f->set_type(t.is_signed ? FieldDescriptorProto::TYPE_INT64 : FieldDescriptorProto::TYPE_UINT64);
        else
          f->set_type(t.is_signed ? FieldDescriptorProto::TYPE_INT32 : FieldDescriptorProto::TYPE_UINT32);
        return;
      case TypeKind::kFloat: f->set_type(FieldDescriptorProto::TYPE_FLOAT); return;
      case TypeKind::kDouble: f->set_type(FieldDescriptorProto::TYPE_DOUBLE); return;
      case TypeKind::kString: f->set_type(FieldDescriptorProto::TYPE_STRING); return;
      case TypeKind::kBytes: f->set_type(FieldDescriptorProto::TYPE_BYTES); return;
      // The CloudEvents protobuf format's bytes (dispatch/wire/cloud_event.h).
      case TypeKind::kCloudEvent: f->set_type(FieldDescriptorProto::TYPE_BYTES); return;
      case TypeKind::kEnum:
        f->set_type(FieldDescriptorProto::TYPE_ENUM);
        f->set_type_name(full(model_.enums.at(t.decl).proto_name));
        return;
      case TypeKind::kStruct:
        f->set_type(FieldDescriptorProto::TYPE_MESSAGE);
        f->set_type_name(full(model_.structs.at(t.decl).proto_name));
        return;
      case TypeKind::kDuration:
        f->set_type(FieldDescriptorProto::TYPE_MESSAGE);
        f->set_type_name(".google.protobuf.Duration");
        return;
      case TypeKind::kTimestamp:
        f->set_type(FieldDescriptorProto::TYPE_MESSAGE);
        f->set_type_name(".google.protobuf.Timestamp");
        return;
      case TypeKind::kOptional:
      case TypeKind::kVector:
      case TypeKind::kMap:
      case TypeKind::kVariant:
        // Held by a wrapper message (naming.h).
        f->set_type(FieldDescriptorProto::TYPE_MESSAGE);
        f->set_type_name(full(type_name(model_, t)));
        return;
      case TypeKind::kVoid: break;
    }
    throw std::logic_error("void has no proto field type");
  }

  static bool is_message(const TypeRef& t) {
    return t.kind == TypeKind::kStruct || t.kind == TypeKind::kDuration || t.kind == TypeKind::kTimestamp ||
           t.kind == TypeKind::kVariant;
  }

  // A field `name` = `number` of C++ type `t` in message `m`.
  void add_field(DescriptorProto* m, const std::string& name, std::uint32_t number, const TypeRef& t) const {
    FieldDescriptorProto* f = m->add_field();
    f->set_name(name);
    f->set_number(int(number));
    f->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
    switch (t.kind) {
      case TypeKind::kOptional: {
        const TypeRef& inner = t.args.at(0);
        set_single(f, inner);
        // Scalars get proto3 `optional` (explicit presence); a message field
        // has presence already, and a container is wrapped in one.
        if (!is_message(inner) && !needs_wrapper(inner)) {
          f->set_proto3_optional(true);
          f->set_oneof_index(m->oneof_decl_size());
          m->add_oneof_decl()->set_name("_" + name);
        }
        return;
      }
      case TypeKind::kVector:
        f->set_label(FieldDescriptorProto::LABEL_REPEATED);
        set_single(f, t.args.at(0));
        return;
      case TypeKind::kMap: {
        DescriptorProto* entry = m->add_nested_type();
        entry->set_name(map_entry_name(name));
        entry->mutable_options()->set_map_entry(true);
        FieldDescriptorProto* key = entry->add_field();
        key->set_name("key");
        key->set_number(1);
        key->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
        set_single(key, t.args.at(0));
        FieldDescriptorProto* value = entry->add_field();
        value->set_name("value");
        value->set_number(2);
        value->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
        set_single(value, t.args.at(1));
        f->set_label(FieldDescriptorProto::LABEL_REPEATED);
        f->set_type(FieldDescriptorProto::TYPE_MESSAGE);
        f->set_type_name(full(m->name() + "." + entry->name()));
        return;
      }
      default:
        set_single(f, t);
        return;
    }
  }

  FileDescriptorProto build() const {
    FileDescriptorProto file;
    file.set_name(model_.proto_file);
    if (!model_.package.empty()) file.set_package(model_.package);
    file.set_syntax("proto3");
    if (uses(model_, TypeKind::kDuration)) file.add_dependency("google/protobuf/duration.proto");
    if (uses(model_, TypeKind::kTimestamp)) file.add_dependency("google/protobuf/timestamp.proto");

    for (const EnumDecl& e : model_.enums) {
      auto* pe = file.add_enum_type();
      pe->set_name(e.proto_name);
      if (e.synthetic_zero) {
        auto* v = pe->add_value();
        v->set_name(upper_snake(e.proto_name) + "_UNSPECIFIED");
        v->set_number(0);
      }
      // proto3 wants the zero value first; the rest keep declaration order.
      std::vector<const EnumValue*> values;
      for (const EnumValue& v : e.values)
        if (v.value == 0 && values.empty()) values.push_back(&v);
      for (const EnumValue& v : e.values)
        if (values.empty() || &v != values.front()) values.push_back(&v);
      std::set<std::int64_t> seen;
      for (const EnumValue* v : values) {
        auto* pv = pe->add_value();
        pv->set_name(v->proto_name);
        pv->set_number(int(v->value));
        if (!seen.insert(v->value).second) pe->mutable_options()->set_allow_alias(true);
      }
    }
    for (const StructDecl& s : model_.structs) {
      DescriptorProto* m = file.add_message_type();
      m->set_name(s.proto_name);
      for (const Field& f : s.fields) {
        add_field(m, f.name, f.number, f.type);
        if (f.deprecated) m->mutable_field(m->field_size() - 1)->mutable_options()->set_deprecated(true);
      }
    }
    for (const Function& fn : model_.functions) {
      DescriptorProto* req = file.add_message_type();
      req->set_name(fn.request_message);
      std::uint32_t n = 0;
      for (const Parameter& p : fn.params) add_field(req, p.name, ++n, p.type);
      DescriptorProto* resp = file.add_message_type();
      resp->set_name(fn.response_message);
      if (fn.result.kind != TypeKind::kVoid) add_field(resp, "result", 1, fn.result);
    }
    for (const auto& [name, element] : wrapper_messages(model_)) {
      DescriptorProto* m = file.add_message_type();
      m->set_name(name);
      if (element.kind != TypeKind::kVariant) {
        add_field(m, "value", 1, element);
        continue;
      }
      // A variant: one oneof, an alternative (or its wrapper) per field.
      m->add_oneof_decl()->set_name("value");
      std::uint32_t n = 0;
      for (const TypeRef& alternative : element.args) {
        FieldDescriptorProto* f = m->add_field();
        f->set_name(variant_field(model_, alternative));
        f->set_number(int(++n));
        f->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
        set_single(f, alternative);
        f->set_oneof_index(0);
      }
    }
    auto* service = file.add_service();
    service->set_name(model_.service);
    for (const Function& fn : model_.functions) {
      auto* method = service->add_method();
      method->set_name(fn.remote_name);
      method->set_input_type(full(fn.request_message));
      method->set_output_type(full(fn.response_message));
      if (fn.deprecated) method->mutable_options()->set_deprecated(true);
      if (fn.idempotency == Idempotency::no_side_effects) {
        method->mutable_options()->set_idempotency_level(google::protobuf::MethodOptions::NO_SIDE_EFFECTS);
      } else if (fn.idempotency == Idempotency::idempotent) {
        method->mutable_options()->set_idempotency_level(google::protobuf::MethodOptions::IDEMPOTENT);
      }
    }
    return file;
  }

 private:
  const Model& model_;
};

class Collector : public google::protobuf::DescriptorPool::ErrorCollector {
 public:
  explicit Collector(const Model& model) : model_(model) {}
  void AddError(const std::string& filename, const std::string& element_name, const google::protobuf::Message*,
                ErrorLocation, const std::string& message) override {
    (void)filename;
    errors.push_back(Diagnostic{locate(element_name),
                                "the generated .proto is invalid at '" + element_name + "': " + message});
  }
  std::vector<Diagnostic> errors;

 private:
  // The C++ declaration behind "pkg.Message.field": the field, the struct
  // or the function, else the header.
  SourceLocation locate(const std::string& element) const {
    std::string rest = element;
    if (!model_.package.empty() && rest.rfind(model_.package + ".", 0) == 0)
      rest = rest.substr(model_.package.size() + 1);
    std::string message = rest.substr(0, rest.find('.'));
    std::string field = rest.find('.') == std::string::npos ? "" : rest.substr(rest.find('.') + 1);
    for (const StructDecl& s : model_.structs) {
      if (s.proto_name != message) continue;
      for (const Field& f : s.fields)
        if (f.name == field) return f.loc;
      return s.loc;
    }
    for (const Function& f : model_.functions) {
      if (f.request_message != message && f.response_message != message) continue;
      for (const Parameter& p : f.params)
        if (p.name == field && f.request_message == message) return p.loc;
      return f.loc;
    }
    return SourceLocation{model_.input, 0, 0};
  }

  const Model& model_;
};

}  // namespace

FileDescriptorProto build_file_descriptor(const Model& model) { return Builder(model).build(); }

std::vector<Diagnostic> validate_file_descriptor(const Model& model, const FileDescriptorProto& file) {
  // Registers the well-known types with the generated pool, our underlay.
  google::protobuf::Duration::descriptor();
  google::protobuf::Timestamp::descriptor();
  google::protobuf::DescriptorPool pool(google::protobuf::DescriptorPool::generated_pool());
  Collector collector(model);
  pool.BuildFileCollectingErrors(file, &collector);
  return collector.errors;
}

std::string generated_banner(const Model& model, const std::string& comment) {
  // dispatch_generate() passes absolute paths; the output must not depend on
  // where the source tree is, so those are shown by their include name.
  std::string input = std::filesystem::path(model.input).is_absolute() ? model.include_name : model.input;
  std::string command = "dispatch-gen --out-dir <dir>";
  if (!model.package.empty()) command += " --package " + model.package;
  command += " --include-name " + model.include_name + " " + input;
  return comment + " Generated by dispatch-gen from " + input + ". Do not edit.\n" + comment +
         " Command: " + command + "\n";
}

OutputFile emit_proto(const Model& model) {
  FileDescriptorProto proto = build_file_descriptor(model);
  google::protobuf::Duration::descriptor();
  google::protobuf::Timestamp::descriptor();
  google::protobuf::DescriptorPool pool(google::protobuf::DescriptorPool::generated_pool());
  Collector collector(model);
  const google::protobuf::FileDescriptor* file = pool.BuildFileCollectingErrors(proto, &collector);
  if (!file) {
    std::string what = "invalid .proto for " + model.input + ":";
    for (const Diagnostic& d : collector.errors) what += "\n" + d.message;
    throw std::runtime_error(what);
  }
  return OutputFile{model.proto_file, generated_banner(model, "//") + "\n" + file->DebugString()};
}

}  // namespace dispatch::gen
