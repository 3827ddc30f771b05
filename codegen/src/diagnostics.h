// Diagnostics the generator reports: one error at a source location, printed
// the way compilers print them ("api.h:12:30: error: ...") so editors and
// build logs link to the spot. Not for clang's warnings, which we drop.
#pragma once

#include <string>
#include <vector>

#include "model.h"

namespace dispatch::gen {

struct Diagnostic {
  SourceLocation loc;  // file empty: not tied to a place in a header
  std::string message;
};

// "file:line:col: error: message", or "dispatch-gen: error: message" when the
// diagnostic has no file.
std::string format_diagnostic(const Diagnostic& d);

}  // namespace dispatch::gen
