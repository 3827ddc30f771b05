// libclang's strings, locations, tokens and parsing as plain values; see
// clang_source.h.
#include "clang_source.h"

#include <algorithm>
#include <utility>

namespace dispatch::gen {

std::string take(CXString s) {
  const char* c = clang_getCString(s);
  std::string out = c ? c : "";
  clang_disposeString(s);
  return out;
}

std::string file_name(CXFile file) { return file ? take(clang_getFileName(file)) : ""; }

SourceLocation location_of(CXSourceLocation where) {
  CXFile file = nullptr;
  unsigned line = 0, column = 0, offset = 0;
  clang_getExpansionLocation(where, &file, &line, &column, &offset);
  return SourceLocation{file_name(file), line, column};
}

SourceLocation location_of(CXCursor c) { return location_of(clang_getCursorLocation(c)); }

unsigned offset_of(CXSourceLocation where) {
  unsigned offset = 0;
  clang_getExpansionLocation(where, nullptr, nullptr, nullptr, &offset);
  return offset;
}

bool is_deprecated(CXCursor c, std::string* message) {
  if (clang_getCursorAvailability(c) != CXAvailability_Deprecated) return false;
  if (message != nullptr) {
    int always_deprecated = 0, always_unavailable = 0;
    CXString deprecated_message, unavailable_message;
    clang_getCursorPlatformAvailability(c, &always_deprecated, &deprecated_message, &always_unavailable,
                                        &unavailable_message, nullptr, 0);
    *message = take(deprecated_message);
    clang_disposeString(unavailable_message);
  }
  return true;
}

namespace {

TokenKind token_kind(CXTokenKind k) {
  switch (k) {
    case CXToken_Punctuation: return TokenKind::kPunctuation;
    case CXToken_Keyword: return TokenKind::kKeyword;
    case CXToken_Identifier: return TokenKind::kIdentifier;
    case CXToken_Literal: return TokenKind::kLiteral;
    case CXToken_Comment: return TokenKind::kComment;
  }
  return TokenKind::kPunctuation;
}

}  // namespace

SourceCode source_code(CXTranslationUnit tu, CXFile file) {
  SourceCode code;
  size_t size = 0;
  const char* text = clang_getFileContents(tu, file, &size);
  if (!text) return code;
  code.text.assign(text, size);
  CXSourceRange whole = clang_getRange(clang_getLocationForOffset(tu, file, 0),
                                       clang_getLocationForOffset(tu, file, unsigned(size)));
  CXToken* tokens = nullptr;
  unsigned count = 0;
  clang_tokenize(tu, whole, &tokens, &count);

  // Tokens in #if 0 and other skipped blocks are not code.
  std::vector<std::pair<unsigned, unsigned>> skipped;
  if (CXSourceRangeList* list = clang_getSkippedRanges(tu, file)) {
    for (unsigned i = 0; i < list->count; ++i)
      skipped.emplace_back(offset_of(clang_getRangeStart(list->ranges[i])),
                           offset_of(clang_getRangeEnd(list->ranges[i])));
    clang_disposeSourceRangeList(list);
  }
  code.tokens.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    CXSourceRange r = clang_getTokenExtent(tu, tokens[i]);
    unsigned b = offset_of(clang_getRangeStart(r));
    bool dead = std::any_of(skipped.begin(), skipped.end(),
                            [&](auto& s) { return b >= s.first && b < s.second; });
    if (dead) continue;
    code.tokens.push_back(Token{token_kind(clang_getTokenKind(tokens[i])),
                                take(clang_getTokenSpelling(tu, tokens[i])), b, offset_of(clang_getRangeEnd(r)),
                                location_of(clang_getTokenLocation(tu, tokens[i]))});
  }
  clang_disposeTokens(tu, tokens, count);
  return code;
}

IndexPtr make_index() {
  return IndexPtr(clang_createIndex(/*excludeDeclarationsFromPCH=*/0, /*displayDiagnostics=*/0));
}

std::vector<std::string> clang_arguments(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"-x", "c++-header", "-std=c++20", "-Wno-unknown-attributes",
                                   "-Wno-ignored-attributes", "-Wno-pragma-once-outside-header"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

CXErrorCode parse_translation_unit(CXIndex index, const std::string& path, const std::vector<std::string>& args,
                                   const std::string* contents, TuPtr* tu) {
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  CXUnsavedFile unsaved{path.c_str(), contents ? contents->data() : nullptr,
                        contents ? static_cast<unsigned long>(contents->size()) : 0};
  CXTranslationUnit raw = nullptr;
  CXErrorCode status = clang_parseTranslationUnit2(index, path.c_str(), argv.data(), int(argv.size()),
                                                   contents ? &unsaved : nullptr, contents ? 1 : 0,
                                                   CXTranslationUnit_DetailedPreprocessingRecord, &raw);
  tu->reset(status == CXError_Success ? raw : nullptr);
  if (status != CXError_Success && raw) clang_disposeTranslationUnit(raw);
  return status;
}

}  // namespace dispatch::gen
