// The C++ back end (see cpp_emitter.h): names the generated entities once
// (CppNames) and has one printer per generated file print them (printers.h).
#include "cpp/cpp_emitter.h"

#include "cpp/cpp_format.h"
#include "cpp/cpp_names.h"
#include "cpp/printers.h"

namespace dispatch::gen {

std::vector<OutputFile> emit_cpp(const Model& model, const std::string& serialized_file_descriptor) {
  const CppNames names(model);
  return {{model.stem + ".dispatch.h", qualify_std(print_header(names))},
          {model.stem + ".dispatch.cc", qualify_std(print_client_source(names, serialized_file_descriptor))},
          {model.stem + ".dispatch.codec.cc", qualify_std(print_codec_source(names))},
          {model.stem + ".dispatch.server.cc", qualify_std(print_server_source(names))}};
}

}  // namespace dispatch::gen
