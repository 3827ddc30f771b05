// See message_types.h. One descriptor pool over three sources: the
// descriptor sets, the types compiled into this program (the well-known
// types among them, so that a .proto importing
// google/protobuf/timestamp.proto needs no -I for it), and the .proto files
// (protoc's parser over the proto paths, loaded by name).
#include "message_types.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <set>
#include <sstream>
#include <utility>

namespace dispatchctl {

namespace pb = google::protobuf;
using dispatch::Code;
using dispatch::Error;

// protoc's parser and the pool's checks report here; the messages are read
// and cleared after each file.
class MessageTypes::Errors : public pb::compiler::MultiFileErrorCollector {
 public:
  void AddError(const std::string& filename, int line, int column, const std::string& message) override {
    if (!text_.empty()) text_ += "; ";
    text_ += filename;
    if (line >= 0) text_ += ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1);
    text_ += ": " + message;
  }
  void AddWarning(const std::string&, int, int, const std::string&) override {}
  std::string take() { return std::exchange(text_, std::string()); }

 private:
  std::string text_;
};

MessageTypes::MessageTypes()
    : errors_(std::make_unique<Errors>()),
      compiled_in_(*pb::DescriptorPool::generated_pool()),
      fallback_(&sets_, &compiled_in_),
      sources_(&tree_, &fallback_),
      // The sets and compiled-in types first: a merged database hides a
      // symbol found in one source when an earlier one has its file, and
      // the source tree "has" every file through its own fallback.
      all_(&fallback_, &sources_) {
  sources_.RecordErrorsTo(errors_.get());
  pool_ = std::make_unique<pb::DescriptorPool>(&all_, sources_.GetValidationErrorCollector());
}

MessageTypes::~MessageTypes() = default;

void MessageTypes::add_proto_path(const std::string& dir) { tree_.MapPath("", dir); }

dispatch::Result<void> MessageTypes::add_proto_file(const std::string& path) {
  if (!std::ifstream(path)) return Error(Code::invalid_argument, "cannot read the .proto file '" + path + "'");
  std::string virtual_name, shadowing;
  auto found = tree_.DiskFileToVirtualFile(path, &virtual_name, &shadowing);
  if (found == pb::compiler::DiskSourceTree::NO_MAPPING) {
    const auto slash = path.rfind('/');
    tree_.MapPath("", slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash));
    found = tree_.DiskFileToVirtualFile(path, &virtual_name, &shadowing);
  }
  if (found == pb::compiler::DiskSourceTree::SHADOWED) {
    return Error(Code::invalid_argument, "'" + path + "' is shadowed by '" + shadowing +
                                             "' in the proto paths; reorder -I or give that file");
  }
  if (found != pb::compiler::DiskSourceTree::SUCCESS) {
    return Error(Code::invalid_argument, "cannot find '" + path + "' in the proto paths");
  }
  errors_->take();
  const pb::FileDescriptor* file = pool_->FindFileByName(virtual_name);
  const std::string errors = errors_->take();
  if (file == nullptr) {
    return Error(Code::invalid_argument, "'" + path + "' does not parse: " +
                                             (errors.empty() ? std::string("unknown error") : errors));
  }
  files_.push_back(file);
  any_ = true;
  return {};
}

dispatch::Result<void> MessageTypes::add_descriptor_set(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Code::invalid_argument, "cannot read the descriptor set '" + path + "'");
  std::stringstream bytes;
  bytes << in.rdbuf();
  pb::FileDescriptorSet set;
  if (!set.ParseFromString(bytes.str()) || set.file_size() == 0) {
    return Error(Code::invalid_argument, "'" + path +
                                             "' is not a descriptor set (a serialized google.protobuf."
                                             "FileDescriptorSet, as protoc --descriptor_set_out writes)");
  }
  for (const auto& file : set.file()) {
    pb::FileDescriptorProto known;
    if (sets_.FindFileByName(file.name(), &known)) continue;  // the first set that has it wins
    if (!sets_.Add(file)) {
      return Error(Code::invalid_argument, "'" + path + "': its file '" + file.name() + "' conflicts with another");
    }
    set_files_.push_back(file.name());
  }
  // Build each file now, so that a broken set is told here, not at first use.
  for (const auto& file : set.file()) {
    errors_->take();
    const pb::FileDescriptor* built = pool_->FindFileByName(file.name());
    const std::string errors = errors_->take();
    if (built == nullptr) {
      return Error(Code::invalid_argument, "'" + path + "': its file '" + file.name() + "' does not build: " +
                                               (errors.empty() ? std::string("a dependency is missing") : errors));
    }
    files_.push_back(built);
  }
  any_ = true;
  return {};
}

const pb::Descriptor* MessageTypes::find(const std::string& name_or_url) const {
  const std::string name = name_or_url.substr(name_or_url.rfind('/') + 1);
  if (name.empty()) return nullptr;
  return pool_->FindMessageTypeByName(name);
}

std::optional<std::string> MessageTypes::to_json(const std::string& type_url, const std::string& bytes) const {
  const pb::Descriptor* type = find(type_url);
  if (type == nullptr) return std::nullopt;
  std::unique_ptr<pb::Message> message(factory_.GetPrototype(type)->New());
  {
    // Bytes that are not the message are shown another way by the caller;
    // protobuf would also log a string's invalid UTF-8 to stderr, a stray
    // line in the middle of dispatchctl's output.
    const pb::LogSilencer quiet;
    if (!message->ParseFromString(bytes)) return std::nullopt;
  }
  std::string out;
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  if (!pb::util::MessageToJsonString(*message, &out, options).ok()) return std::nullopt;
  return out;
}

dispatch::Result<std::string> MessageTypes::from_json(const std::string& type_name, const std::string& json) const {
  const pb::Descriptor* type = find(type_name);
  if (type == nullptr) {
    return Error(Code::invalid_argument,
                 "unknown message type '" + type_name + "'" +
                     (any_ ? std::string(" (not in the given .proto files or descriptor sets)")
                           : std::string(" (give its .proto with --proto or a descriptor set with --descriptor-set)")));
  }
  std::unique_ptr<pb::Message> message(factory_.GetPrototype(type)->New());
  const auto status = pb::util::JsonStringToMessage(json, message.get(), pb::util::JsonParseOptions());
  if (!status.ok()) {
    return Error(Code::invalid_argument,
                 "the JSON is not a " + type->full_name() + ": " + std::string(status.message()));
  }
  return message->SerializeAsString();
}

dispatch::Result<std::string> MessageTypes::request_type_of(const std::string& function) const {
  const auto dot = function.rfind('.');
  const std::string package = dot == std::string::npos ? "" : function.substr(0, dot);
  const std::string method = function.substr(dot == std::string::npos ? 0 : dot + 1);
  std::set<std::string> found;
  for (const pb::FileDescriptor* file : files_) {
    if (file->package() != package) continue;
    for (int s = 0; s < file->service_count(); ++s) {
      if (const pb::MethodDescriptor* m = file->service(s)->FindMethodByName(method)) {
        found.insert(m->input_type()->full_name());
      }
    }
  }
  if (found.size() == 1) return *found.begin();
  if (found.empty()) {
    return Error(Code::not_found, "no service of package '" + package + "' in the given .proto files or descriptor "
                                  "sets has a method '" + method + "' for function '" + function +
                                  "'; give the request message with --type");
  }
  std::string names;
  for (const auto& n : found) names += (names.empty() ? "" : ", ") + n;
  return Error(Code::invalid_argument,
               "function '" + function + "' matches methods taking " + names + "; give one with --type");
}

}  // namespace dispatchctl
