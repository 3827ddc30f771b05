// Formatting of generator diagnostics; see diagnostics.h.
#include "diagnostics.h"

namespace dispatch::gen {

std::string format_diagnostic(const Diagnostic& d) {
  if (d.loc.file.empty()) return "dispatch-gen: error: " + d.message;
  std::string out = d.loc.file;
  if (d.loc.line != 0) {
    out += ":" + std::to_string(d.loc.line);
    if (d.loc.column != 0) out += ":" + std::to_string(d.loc.column);
  }
  return out + ": error: " + d.message;
}

}  // namespace dispatch::gen
