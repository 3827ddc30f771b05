// File output for dispatch-gen; see output.h.
#include "output.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace dispatch::gen {

bool write_if_changed(const std::filesystem::path& path, const std::string& content) {
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream existing;
      existing << in.rdbuf();
      if (existing.str() == content) return false;
    }
  }
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create directory '" + path.parent_path().string() + "': " + ec.message());
  // Write beside and rename, so a reader (or a build interrupted) never
  // sees half a file.
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write '" + tmp.string() + "': " + std::strerror(errno));
    out << content;
    out.close();
    if (!out) throw std::runtime_error("cannot write '" + tmp.string() + "': " + std::strerror(errno));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot write '" + path.string() + "': " + ec.message());
  return true;
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
