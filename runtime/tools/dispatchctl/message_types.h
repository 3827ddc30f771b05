// The message types dispatchctl knows, from .proto files (parsed with protoc's
// library) and descriptor sets (FileDescriptorSet, e.g. protoc
// --descriptor_set_out --include_imports): calls' inputs and outputs shown
// as protobuf JSON, and JSON taken as a call's input. The well-known types
// (google/protobuf/*.proto) are always known.
//
// Not for: the scheduler's own messages (compiled in), or anything that
// needs a network.
#pragma once

#include <google/protobuf/compiler/importer.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/core/result.h"

namespace dispatchctl {

class MessageTypes {
 public:
  MessageTypes();
  ~MessageTypes();
  MessageTypes(const MessageTypes&) = delete;
  MessageTypes& operator=(const MessageTypes&) = delete;

  // A directory that imports are found in (protoc's -I). Add them before the
  // files that import from them.
  void add_proto_path(const std::string& dir);
  // Parses a .proto file (and what it imports). A file outside every proto
  // path is found through its own directory. Errors name the file, line and
  // column and what protoc's parser said.
  dispatch::Result<void> add_proto_file(const std::string& path);
  // Reads a serialized google.protobuf.FileDescriptorSet.
  dispatch::Result<void> add_descriptor_set(const std::string& path);
  // True once any .proto file or descriptor set was added.
  bool any() const { return any_; }

  // The message named `name` ("pkg.Message", or a type URL
  // ".../pkg.Message"), or null.
  const google::protobuf::Descriptor* find(const std::string& name_or_url) const;

  // `bytes`, a message of the type `type_url` names, as compact protobuf
  // JSON; nullopt when the type is not known or the bytes do not parse as it.
  std::optional<std::string> to_json(const std::string& type_url, const std::string& bytes) const;
  // JSON in protobuf's JSON mapping for the message `type`, encoded; errors
  // name the type and what was wrong (an unknown field, a bad value).
  dispatch::Result<std::string> from_json(const std::string& type, const std::string& json) const;

  // The request message of `function` ("pkg.method", as dispatch-gen names
  // functions): the input type of the method `method` of a service in
  // package `pkg`. An error when no service has it, or several do.
  dispatch::Result<std::string> request_type_of(const std::string& function) const;

 private:
  class Errors;
  std::unique_ptr<Errors> errors_;
  google::protobuf::compiler::DiskSourceTree tree_;
  google::protobuf::SimpleDescriptorDatabase sets_;
  google::protobuf::DescriptorPoolDatabase compiled_in_;
  google::protobuf::MergedDescriptorDatabase fallback_;
  google::protobuf::compiler::SourceTreeDescriptorDatabase sources_;
  google::protobuf::MergedDescriptorDatabase all_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  mutable google::protobuf::DynamicMessageFactory factory_;
  std::vector<const google::protobuf::FileDescriptor*> files_;  // every file added, for services
  std::vector<std::string> set_files_;  // names of the files the descriptor sets hold
  bool any_ = false;
};

}  // namespace dispatchctl
