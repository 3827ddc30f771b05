// libclang's C API read into plain values, for the front end's files:
// owned strings, the location a user sees, a header's text and code tokens,
// [[deprecated]], and the parse itself. Not for naming declarations
// (decl_names.h) or mapping types (type_mapper.h). Private to the front end:
// nothing declared here reaches model.h or a back end.
#pragma once

#include <clang-c/Index.h>

#include <memory>
#include <string>
#include <vector>

#include "annotation_scanner.h"
#include "model.h"

namespace dispatch::gen {

// The string's text; disposes of it.
std::string take(CXString s);

std::string file_name(CXFile file);  // "" for no file

// Where the user sees a declaration: a macro's use, not its definition.
SourceLocation location_of(CXSourceLocation where);
SourceLocation location_of(CXCursor c);

// Byte offset of the expansion location in its file.
unsigned offset_of(CXSourceLocation where);

// [[deprecated]] on the declaration (any of its redeclarations); its message,
// if it has one, into *message when message is not null.
bool is_deprecated(CXCursor c, std::string* message);

// A file of a translation unit as the annotation scanner reads it: its text
// and the tokens clang compiles, those in #if 0 and other skipped blocks
// left out. Both empty when clang has no contents for the file.
struct SourceCode {
  std::string text;
  std::vector<Token> tokens;
};
SourceCode source_code(CXTranslationUnit tu, CXFile file);

struct IndexDeleter {
  void operator()(void* index) const { clang_disposeIndex(index); }
};
struct TuDeleter {
  void operator()(CXTranslationUnitImpl* tu) const { clang_disposeTranslationUnit(tu); }
};
using IndexPtr = std::unique_ptr<void, IndexDeleter>;
using TuPtr = std::unique_ptr<CXTranslationUnitImpl, TuDeleter>;

// An index that prints no diagnostics (we report them ourselves).
IndexPtr make_index();

// The arguments a header is parsed with: C++20 header mode, unknown
// attributes quiet, then `extra` (so a later -std= wins).
std::vector<std::string> clang_arguments(const std::vector<std::string>& extra);

// Parses `path` with `args` and a detailed preprocessing record (for the
// skipped blocks). With `contents`, that text is parsed in place of the file
// on disk, which then need not exist. On failure *tu stays null.
CXErrorCode parse_translation_unit(CXIndex index, const std::string& path, const std::vector<std::string>& args,
                                   const std::string* contents, TuPtr* tu);

}  // namespace dispatch::gen
