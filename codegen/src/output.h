// Writing the generator's files: only when their content changed (so the
// build does not recompile what did not change), and the Make-syntax depfile
// that makes editing an included header re-run the generator. Not
// generation.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dispatch::gen {

struct FileToWrite {
  std::filesystem::path path;
  std::string content;
};

// Writes each file (creating directories) unless it already holds exactly
// its content, all or none: when one cannot be written (a name too long, a
// full disk), none has changed. Returns how many it wrote; throws
// std::runtime_error naming the path on I/O failure.
std::size_t write_all_if_changed(const std::vector<FileToWrite>& files);
// One file the same way; returns whether it wrote.
bool write_if_changed(const std::filesystem::path& path, const std::string& content);

// "target: dep1 \\\n  dep2\n" with Make escaping (space, '#', '$').
std::string make_depfile(const std::string& target, const std::vector<std::string>& deps);
std::string escape_for_make(const std::string& path);

}  // namespace dispatch::gen
