// The .proto back end: the model as a google::protobuf::FileDescriptorProto
// (the wire contract the C++ emitter embeds and other languages compile) and
// as .proto text. Field numbers and names here are the ones the generated C++
// encodes; docs/annotations.md states the mapping. Not the C++ emitter.
#pragma once

#include <google/protobuf/descriptor.pb.h>

#include <vector>

#include "diagnostics.h"
#include "model.h"

namespace dispatch::gen {

// The file: proto3, package Model::package, imports of the well-known
// Duration/Timestamp when used; enums, struct messages, per function a
// request (parameters as fields 1..n) and response (result = 1, empty for
// void), wrapper messages (naming.h), one service. Expects a named model
// (assign_names without errors).
google::protobuf::FileDescriptorProto build_file_descriptor(const Model& model);

// Builds `file` into a DescriptorPool over the generated pool (for the
// well-known types), the check protoc would make; returns what it rejects.
std::vector<Diagnostic> validate_file_descriptor(const Model& model,
                                                 const google::protobuf::FileDescriptorProto& file);

// The .proto text, under a banner naming the input and the command. Throws
// std::runtime_error if the descriptor does not validate.
OutputFile emit_proto(const Model& model);

// The banner every generated file starts with, as comment lines with
// `comment` ("//") as prefix: input and the dispatch-gen command that
// reproduces the output. A relative input is shown as named, an absolute
// one by its include name, so the output is the same on every machine.
std::string generated_banner(const Model& model, const std::string& comment);

}  // namespace dispatch::gen
