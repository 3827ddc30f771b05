// The generator's front end: parses one annotated header with libclang and
// fills a Model with its [[dispatch::function]] declarations and every type
// they reach. Not the naming pass (naming.h gives proto names) and not an
// emitter; no libclang type leaves the front end (frontend.cc and the
// files it runs).
#pragma once

#include <string>
#include <vector>

#include "diagnostics.h"
#include "model.h"

namespace dispatch::gen {

struct FrontendResult {
  // Filled as far as parsing got. Set here: input, include_name (the
  // header's file name), stem, proto_file, functions (cpp, cpp_namespace,
  // name, remote_name, params, result, loc), structs and enums (cpp, fields
  // or values, loc, and proto_name = the C++ name below its namespace with
  // "::" -> "_", e.g. "Outer_Inner"), headers_read. The naming pass does the
  // rest.
  Model model;
  // Every error found (clang's and ours), in source order of discovery.
  // Non-empty means the model must not be emitted.
  std::vector<Diagnostic> errors;
};

// Parses `header` as C++ (default "-x c++-header -std=c++20"; clang_args are
// appended, so a later -std= wins) and extracts the annotated functions.
// Only annotations written in `header` itself count, not in what it includes.
//
// Function::cpp_namespace leaves out inline namespaces (they are transparent
// to lookup, so "a" names what "a::v1" holds); Function::cpp keeps them.
FrontendResult parse_header(const std::string& header,
                            const std::vector<std::string>& clang_args);

}  // namespace dispatch::gen
