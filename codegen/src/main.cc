// dispatch-gen's command line: runs the front end, naming pass and back ends
// over each header and writes what changed. All checks run before anything
// is written, so a failed run leaves the output directory as it was.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "cpp/cpp_emitter.h"
#include "diagnostics.h"
#include "frontend.h"
#include "model_json.h"
#include "naming.h"
#include "output.h"
#include "proto_emitter.h"

namespace {

using namespace dispatch::gen;

constexpr const char* kUsage =
    "usage: dispatch-gen --out-dir DIR [--package P] [--include-name NAME [--check-include-name]]\n"
    "                    [--service-entry NAME] [--depfile F] [--dump-model] HEADER... [-- CLANG_ARGS...]\n"
    "\n"
    "Generates serialization, client stubs, a server dispatch table and a .proto\n"
    "for the [[dispatch::function]] declarations of each HEADER.\n"
    "\n"
    "  --out-dir DIR        where generated files go (written only when changed)\n"
    "  --package P          proto package (default: the functions' C++ namespace,\n"
    "                       '::' -> '.')\n"
    "  --include-name NAME  how generated code #includes the header (default: its path\n"
    "                       below the deepest -I directory that holds it, else its\n"
    "                       file name); one HEADER only\n"
    "  --check-include-name fail unless the -I directories spell the header as NAME\n"
    "                       (when one holds it) and #include \"NAME\" reaches it\n"
    "  --service-entry NAME also define `const dispatch::Service& NAME()` in the global\n"
    "                       namespace of <stem>.dispatch.server.cc, returning the\n"
    "                       header's service: the name dispatch_add_server()'s main()\n"
    "                       calls it by; one HEADER only\n"
    "  --depfile F          write a Make-syntax depfile listing every header read\n"
    "  --dump-model         print the model as JSON and write nothing\n"
    "  --help               this text\n"
    "  -- CLANG_ARGS        passed to clang (-I, -D, -std=...; default -std=c++20)\n"
    "\n"
    "See docs/annotations.md.\n";

struct Options {
  std::optional<std::string> out_dir, package, include_name, depfile, service_entry;
  bool dump_model = false, check_include_name = false;
  std::vector<std::string> headers, clang_args;
};

bool is_identifier(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// The function --service-entry adds at the end of the server half: the
// header's service under a name chosen by the build, so a main() written by
// dispatch_add_server() reaches it without knowing the header's namespace.
std::string service_entry(const Model& m, const std::string& name) {
  const std::string service = "::" + remote_namespace(m) + "::" + cpp_stem(m.stem) + "_service";
  return "\n// The service under the name dispatch_add_server()'s main() calls it by\n"
         "// (dispatch-gen --service-entry).\n"
         "const ::dispatch::Service& " + name + "();\n"
         "const ::dispatch::Service& " + name + "() { return " + service + "(); }\n";
}

int usage_error(const std::string& message) {
  std::cerr << "dispatch-gen: error: " << message << "\n\n" << kUsage;
  return 2;
}

std::string serialize_deterministic(const google::protobuf::FileDescriptorProto& file) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    file.SerializeToCodedStream(&coded);
  }
  return out;
}

// Why #include "<name>" in generated code is not how the -I directories
// reach `header`, or nullopt when it is (or none of them holds it: then the
// name is the caller's own choice). dispatch_generate() names its output
// files after the spelling it works out at configure time and asks for this
// check, because only the -I list seen here is complete.
std::optional<std::string> include_name_mismatch(const std::string& header, const std::string& name,
                                                 const std::vector<std::string>& dirs) {
  std::optional<IncludeSpelling> spelled = include_spelling(header, dirs);
  if (!spelled) return std::nullopt;
  std::string would = "generated code would #include \"" + name + "\", but ";
  if (spelled->name != name)
    return would + "the include directory '" + spelled->dir + "' spells this header \"" + spelled->name +
           "\" (the deepest directory that holds it decides). dispatch_generate() spells a header from the "
           "include directories it can read when the CMakeLists.txt that calls it ends; it cannot read one "
           "that a generator expression other than $<BUILD_INTERFACE:...> adds, or that comes from a target "
           "defined later: give the target '" + spelled->dir + "' with target_include_directories() as a "
           "plain path";
  std::optional<std::string> found = include_lookup(name, dirs);
  std::error_code ec;
  if (found && !std::filesystem::equivalent(*found, header, ec) && !ec)
    return would + "that finds '" + *found + "' first among the include directories; rename one of the two "
           "headers or put '" + spelled->dir + "' first";
  return std::nullopt;
}

// Front end, naming pass and the descriptor check for one header; every
// error, in source order. The model is kept only when there is none.
std::vector<Diagnostic> check_header(const std::string& header, const Options& opt, std::vector<Model>& models) {
  FrontendResult parsed = parse_header(header, opt.clang_args);
  std::vector<Diagnostic> errors = std::move(parsed.errors);
  std::vector<std::string> dirs = include_dirs(opt.clang_args);
  std::optional<std::string> include_name = opt.include_name;
  if (!include_name)
    if (std::optional<IncludeSpelling> spelled = include_spelling(header, dirs)) include_name = spelled->name;

  // A header clang rejected yields no model worth naming; one with our own
  // errors still gets the naming checks, so one run reports everything.
  bool clang_failed = !errors.empty() && parsed.model.functions.empty() && parsed.model.structs.empty();
  if (!clang_failed) {
    std::vector<Diagnostic> naming = assign_names(parsed.model, NamingOptions{opt.package, include_name});
    errors.insert(errors.end(), naming.begin(), naming.end());
  }
  if (opt.check_include_name)
    if (std::optional<std::string> why = include_name_mismatch(header, *include_name, dirs))
      errors.push_back(Diagnostic{{header, 0, 0}, *why});
  if (errors.empty()) errors = validate_file_descriptor(parsed.model, build_file_descriptor(parsed.model));
  std::stable_sort(errors.begin(), errors.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.loc.file.empty() != b.loc.file.empty()) return b.loc.file.empty();
    return std::tie(a.loc.file, a.loc.line, a.loc.column) < std::tie(b.loc.file, b.loc.line, b.loc.column);
  });
  if (errors.empty()) models.push_back(std::move(parsed.model));
  return errors;
}

int run(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) opt.clang_args.push_back(argv[i]);
      break;
    }
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--dump-model") {
      opt.dump_model = true;
      continue;
    }
    if (arg == "--check-include-name") {
      opt.check_include_name = true;
      continue;
    }
    std::optional<std::string>* value = nullptr;
    std::string name = arg.substr(0, arg.find('='));
    if (name == "--out-dir") value = &opt.out_dir;
    else if (name == "--package") value = &opt.package;
    else if (name == "--include-name") value = &opt.include_name;
    else if (name == "--depfile") value = &opt.depfile;
    else if (name == "--service-entry") value = &opt.service_entry;
    if (value) {
      if (arg.size() > name.size()) {
        *value = arg.substr(name.size() + 1);
      } else if (i + 1 < argc) {
        *value = argv[++i];
      } else {
        return usage_error(name + " needs a value");
      }
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') return usage_error("unknown option '" + arg + "'");
    opt.headers.push_back(arg);
  }
  if (opt.headers.empty()) return usage_error("no HEADER given");
  if (!opt.out_dir && !opt.dump_model) return usage_error("--out-dir is required");
  if (opt.include_name && opt.headers.size() > 1)
    return usage_error("--include-name names one header; run dispatch-gen once per header to use it");
  if (opt.check_include_name && !opt.include_name)
    return usage_error("--check-include-name checks --include-name; give both");
  if (opt.service_entry && opt.headers.size() > 1)
    return usage_error("--service-entry names one header's service; run dispatch-gen once per header to use it");
  if (opt.service_entry && !is_identifier(*opt.service_entry))
    return usage_error("--service-entry '" + *opt.service_entry +
                       "' is not a C++ identifier (letters, digits, '_'; not starting with a digit)");

  std::vector<Model> models;
  std::vector<Diagnostic> errors;
  for (const std::string& header : opt.headers) {
    std::vector<Diagnostic> found = check_header(header, opt, models);
    errors.insert(errors.end(), found.begin(), found.end());
  }
  for (const Diagnostic& d : errors) std::cerr << format_diagnostic(d) << "\n";
  if (!errors.empty()) {
    std::cerr << errors.size() << (errors.size() == 1 ? " error" : " errors") << " generated; nothing written.\n";
    return 1;
  }

  // Not an error (a header may be generated before its first function is
  // annotated), but most likely a mistake: the annotation in a macro or an
  // #if'd-out block, or the wrong header named.
  for (const Model& m : models)
    if (m.functions.empty() && m.stateful.empty() && m.faas.empty())
      std::cerr << m.input << ": warning: no function is annotated with [[dispatch::function]], "
                << "[[dispatch::event]] or [[dispatch::faas]]; the generated files declare nothing to call\n";

  if (opt.dump_model) {
    std::cout << models_to_json(models);
    return 0;
  }

  // Everything is generated before anything is written.
  std::vector<OutputFile> outputs;
  std::set<std::string> deps;
  for (const Model& m : models) {
    for (OutputFile& f : emit_cpp(m, serialize_deterministic(build_file_descriptor(m)))) {
      if (opt.service_entry && f.path == m.stem + ".dispatch.server.cc")
        f.content += service_entry(m, *opt.service_entry);
      outputs.push_back(std::move(f));
    }
    outputs.push_back(emit_proto(m));
    deps.insert(m.headers_read.begin(), m.headers_read.end());
  }
  std::set<std::string> paths;
  for (const OutputFile& f : outputs)
    if (!paths.insert(f.path).second)
      return usage_error("two headers generate '" + f.path + "'; give them different file names");

  std::filesystem::path out_dir(*opt.out_dir);
  std::vector<FileToWrite> files;
  for (OutputFile& f : outputs) files.push_back({out_dir / f.path, std::move(f.content)});
  if (opt.depfile) {
    std::string target = (out_dir / outputs.front().path).string();
    files.push_back({*opt.depfile, make_depfile(target, std::vector<std::string>(deps.begin(), deps.end()))});
  }
  write_all_if_changed(files);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "dispatch-gen: error: " << e.what() << "\n";
    return 1;
  }
}
