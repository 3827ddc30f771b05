// File output for dispatch-gen; see output.h.
#include "output.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace dispatch::gen {

namespace {

bool holds(const std::filesystem::path& path, const std::string& content) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream existing;
  existing << in.rdbuf();
  return existing.str() == content;
}

std::filesystem::path beside(const std::filesystem::path& path) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  return tmp;
}

void write_beside(const std::filesystem::path& path, const std::string& content) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create directory '" + path.parent_path().string() + "': " + ec.message());
  const std::filesystem::path tmp = beside(path);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write '" + path.string() + "': " + std::strerror(errno));
  out << content;
  out.close();
  if (!out) throw std::runtime_error("cannot write '" + path.string() + "': " + std::strerror(errno));
}

}  // namespace

std::size_t write_all_if_changed(const std::vector<FileToWrite>& files) {
  std::vector<const FileToWrite*> changed;
  for (const FileToWrite& f : files) {
    if (!holds(f.path, f.content)) changed.push_back(&f);
  }
  // Every changed file is written beside its place first; one that cannot
  // be written (a name too long, a full disk, a directory in the way)
  // removes those already written, so no file changes at all.
  std::size_t written = 0;
  try {
    for (; written < changed.size(); ++written) write_beside(changed[written]->path, changed[written]->content);
  } catch (...) {
    std::error_code ignored;
    for (std::size_t i = 0; i <= written && i < changed.size(); ++i) {
      std::filesystem::remove(beside(changed[i]->path), ignored);
    }
    throw;
  }
  // Then each is renamed into place, so a reader (or an interrupted build)
  // never sees half a file.
  for (const FileToWrite* f : changed) {
    std::error_code ec;
    std::filesystem::rename(beside(f->path), f->path, ec);
    if (ec) throw std::runtime_error("cannot write '" + f->path.string() + "': " + ec.message());
  }
  return changed.size();
}

bool write_if_changed(const std::filesystem::path& path, const std::string& content) {
  return write_all_if_changed({FileToWrite{path, content}}) == 1;
}

std::string escape_for_make(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ' ' || c == '#') out += '\\';
    if (c == '$') out += '$';
    out += c;
  }
  return out;
}

std::string make_depfile(const std::string& target, const std::vector<std::string>& deps) {
  std::string out = escape_for_make(target) + ":";
  for (const std::string& d : deps) out += " \\\n  " + escape_for_make(d);
  return out + "\n";
}

}  // namespace dispatch::gen
