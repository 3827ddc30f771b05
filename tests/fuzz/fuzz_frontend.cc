// libFuzzer target: dispatch-gen's pipeline (libclang front end, naming pass,
// descriptor check, .proto and C++ back ends) over mutated headers. A header
// may be rejected with diagnostics; it must never crash the generator, and a
// header that passes every check must emit without throwing.
//
// The input is written to a scratch file because parse_header() takes a path
// (as dispatch-gen does); the cost is small next to libclang's parse.
// Not for: checking the generated text (golden tests do that).
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cpp/cpp_emitter.h"
#include "frontend.h"
#include "naming.h"
#include "proto_emitter.h"

namespace {

// A private directory for the header, removed when the process exits.
struct ScratchDir {
  ScratchDir() {
    const char* base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = std::string(base) + "/dispatch-fuzz-frontend-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dispatch::gen;
  static const ScratchDir scratch;
  const std::string header = (scratch.path / "api.h").string();
  {
    std::ofstream out(header, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  FrontendResult parsed = parse_header(header, {});
  if (!parsed.errors.empty()) {
    // Rejected: every diagnostic must say something.
    for (const Diagnostic& d : parsed.errors) {
      if (format_diagnostic(d).empty()) std::abort();
    }
    if (parsed.model.functions.empty() && parsed.model.structs.empty()) return 0;
  }
  std::vector<Diagnostic> naming = assign_names(parsed.model, NamingOptions{});
  if (!parsed.errors.empty() || !naming.empty()) return 0;
  const auto file = build_file_descriptor(parsed.model);
  if (!validate_file_descriptor(parsed.model, file).empty()) return 0;
  // Accepted: both back ends must print it.
  const OutputFile proto = emit_proto(parsed.model);
  if (proto.content.empty()) std::abort();
  for (const OutputFile& f : emit_cpp(parsed.model, file.SerializeAsString())) {
    if (f.content.empty()) std::abort();
  }
  return 0;
}
