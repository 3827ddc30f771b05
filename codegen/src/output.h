// Writing the generator's files: only when their content changed (so the
// build does not recompile what did not change), and the Make-syntax depfile
// that makes editing an included header re-run the generator. Not
// generation.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dispatch::gen {

// Writes `content` to `path` (creating directories) unless the file already
// holds exactly that; returns whether it wrote. Throws std::runtime_error
// naming the path on I/O failure.
bool write_if_changed(const std::filesystem::path& path, const std::string& content);

// "target: dep1 \\\n  dep2\n" with Make escaping (space, '#', '$').
std::string make_depfile(const std::string& target, const std::vector<std::string>& deps);
std::string escape_for_make(const std::string& path);

}  // namespace dispatch::gen
