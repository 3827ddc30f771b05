// The C++ back end: prints one annotated header's model as generated C++
// (see docs/types.md for what the generated code looks like and why):
//   <stem>.dispatch.h         request/response structs, public codecs, client stubs
//   <stem>.dispatch.cc        the stubs' bodies, the embedded descriptor
//   <stem>.dispatch.codec.cc  the codecs of every message, the stubs' request
//                             encoders
//   <stem>.dispatch.server.cc the handlers and the dispatch::Service (calls the
//                             user's functions, so clients need not link it)
// Not for: parsing or naming (the front end and naming pass fill the model),
// nor writing files (main.cc does).
#pragma once

#include <string>
#include <vector>

#include "model.h"

namespace dispatch::gen {

// Paths are bare file names ("api.dispatch.h"); the caller places them in the
// output directory that mirrors the header's directory. Output is
// deterministic: the same model and descriptor give byte-identical files.
// `serialized_file_descriptor` is the google.protobuf.FileDescriptorProto of
// the emitted .proto, embedded for Service::file_descriptor.
std::vector<OutputFile> emit_cpp(const Model& model, const std::string& serialized_file_descriptor);

}  // namespace dispatch::gen
