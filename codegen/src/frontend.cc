// The front end's entry point: parses the header with libclang, reports what
// clang rejects, and runs the front end's passes over the translation unit:
// annotations from tokens (annotation_scanner.h), declarations and functions
// (decl_walker.h, with their types through type_mapper.h), then structs put
// in dependency order. Not the naming pass and not an emitter.
#include "frontend.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "annotation_scanner.h"
#include "clang_source.h"
#include "decl_walker.h"
#include "type_mapper.h"

namespace dispatch::gen {

FrontendResult parse_header(const std::string& header, const std::vector<std::string>& clang_args) {
  FrontendResult result;
  Model& model = result.model;
  model.input = header;
  std::filesystem::path path(header);
  model.include_name = path.filename().string();
  model.stem = path.stem().string();
  model.proto_file = model.stem + ".proto";

  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    result.errors.push_back(Diagnostic{{}, "cannot read header '" + header + "': no such file"});
    return result;
  }

  std::vector<std::string> args = clang_arguments(clang_args);
  IndexPtr index = make_index();
  TuPtr tu;
  CXErrorCode status = parse_translation_unit(index.get(), header, args, /*contents=*/nullptr, &tu);
  if (!tu) {
    // libclang gives no diagnostics without a translation unit; an
    // argument clang rejects is the usual cause, so show them.
    std::string shown;
    for (const std::string& a : args) shown += " " + a;
    result.errors.push_back(Diagnostic{{}, "clang could not parse '" + header + "' (libclang error " +
                                               std::to_string(int(status)) + "); check the clang arguments:" +
                                               shown});
    return result;
  }

  // Every file clang read, for the depfile: editing any of them may change
  // the output.
  std::vector<std::string> read;
  clang_getInclusions(
      tu.get(),
      [](CXFile file, CXSourceLocation*, unsigned, CXClientData data) {
        static_cast<std::vector<std::string>*>(data)->push_back(file_name(file));
      },
      &read);
  // System headers arrive as "/../lib/gcc/.../../../../include/c++/12/x";
  // their real path is what a build tool can stat. Relative (user) paths
  // stay as given.
  for (std::string& r : read) {
    std::filesystem::path p(r);
    if (!p.is_absolute()) continue;
    std::filesystem::path real = std::filesystem::weakly_canonical(p, ec);
    if (!ec && !real.empty()) r = real.string();
  }
  std::sort(read.begin(), read.end());
  read.erase(std::unique(read.begin(), read.end()), read.end());
  model.headers_read = std::move(read);

  unsigned n = clang_getNumDiagnostics(tu.get());
  for (unsigned i = 0; i < n; ++i) {
    CXDiagnostic d = clang_getDiagnostic(tu.get(), i);
    if (clang_getDiagnosticSeverity(d) >= CXDiagnostic_Error)
      result.errors.push_back(
          Diagnostic{location_of(clang_getDiagnosticLocation(d)), take(clang_getDiagnosticSpelling(d))});
    clang_disposeDiagnostic(d);
  }
  // A header clang rejects has no trustworthy AST to read annotations from.
  if (!result.errors.empty()) return result;

  CXFile main_file = clang_getFile(tu.get(), header.c_str());
  SourceCode code = source_code(tu.get(), main_file);
  AnnotationScan scan = scan_annotations(code.text, std::move(code.tokens));
  result.errors.insert(result.errors.end(), scan.errors.begin(), scan.errors.end());
  walk_declarations(tu.get(), main_file, scan.annotations, model, result.errors);
  order_structs(model);
  return result;
}

}  // namespace dispatch::gen
