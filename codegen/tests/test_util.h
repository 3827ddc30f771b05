// Helpers for dispatch-gen's tests: a scratch directory for headers and
// outputs, and the front end + naming pass run over header text. Not a
// fixture for anything outside codegen/tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "diagnostics.h"
#include "frontend.h"
#include "naming.h"

namespace dispatch::gen::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dispatch-gen-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to `name` below the directory; returns the full path.
  std::string write(const std::string& name, const std::string& content) const {
    std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> formatted(const std::vector<Diagnostic>& ds) {
  std::vector<std::string> out;
  for (const Diagnostic& d : ds) out.push_back(format_diagnostic(d));
  return out;
}

// The standard headers every snippet may use, on kPreludeLines lines.
inline constexpr const char* kPrelude =
    "#pragma once\n"
    "#include <chrono>\n"
    "#include <cstddef>\n"
    "#include <cstdint>\n"
    "#include <map>\n"
    "#include <optional>\n"
    "#include <set>\n"
    "#include <span>\n"
    "#include <string>\n"
    "#include <string_view>\n"
    "#include <unordered_map>\n"
    "#include <vector>\n";
inline constexpr unsigned kPreludeLines = 12;

// Front end and (when it succeeded far enough) naming over `body` after the
// prelude, as header `name` in `dir`. Errors of both passes in `errors`.
struct Parsed {
  std::string path;
  Model model;
  std::vector<Diagnostic> errors;
};

inline Parsed parse(const TempDir& dir, const std::string& body, const std::string& name = "api.h",
                    const std::vector<std::string>& clang_args = {}, const NamingOptions& naming = {}) {
  Parsed p;
  p.path = dir.write(name, std::string(kPrelude) + body);
  FrontendResult r = parse_header(p.path, clang_args);
  p.model = std::move(r.model);
  p.errors = std::move(r.errors);
  std::vector<Diagnostic> more = assign_names(p.model, naming);
  p.errors.insert(p.errors.end(), more.begin(), more.end());
  return p;
}

}  // namespace dispatch::gen::testing
