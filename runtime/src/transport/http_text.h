// Text of HTTP fields shared by the transport's protocols and the layers
// above it (CloudEvents' binding): the optional whitespace around a value or
// a list item, and the case of names and tokens (ASCII only: std::tolower
// would follow the C locale's idea of a letter).
//
// Not for: parsing HTTP (Beast does), or whitespace that includes line
// breaks (a PEM's or a key file's text: security/ and secure_options.cc).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dispatch::transport {

// `s` without the optional whitespace (RFC 9110 5.6.3: spaces and tabs) at
// either end.
inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `f` with each item of a comma-separated list (an HTTP field's list,
// RFC 9110 5.6.1), its optional whitespace trimmed, empty items skipped,
// until `f` returns true; returns whether one did. With `separator` ';',
// the parameters after a media type or a list item (`charset=utf-8`, `q=0`).
template <typename F>
bool find_list_item(std::string_view list, F&& f, char separator = ',') {
  while (!list.empty()) {
    const std::size_t end = list.find(separator);
    const std::string_view item = trim_ows(list.substr(0, end));
    if (!item.empty() && f(item)) return true;
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return false;
}

// The value of a hexadecimal digit (either case), -1 for any other byte:
// for %-escapes.
inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline char lower_ascii(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `s` with its ASCII letters in lower case: an HTTP/2 field name (RFC 9113
// 8.2.1 asks for lower case) from an HTTP/1.1 one.
inline std::string lowercase_ascii(std::string s) noexcept {
  for (char& c : s) c = lower_ascii(c);
  return s;
}

// A parsed message's fields (Beast's, or any list of fields with
// name_string() and value()) as lines with lower-case names, into `out`
// (cleared first): the answer's headers CallOptions::response_headers asks
// for.
template <typename Fields>
void copy_fields(const Fields& fields, std::vector<std::pair<std::string, std::string>>& out) {
  out.clear();
  for (const auto& f : fields) out.emplace_back(lowercase_ascii(std::string(f.name_string())), std::string(f.value()));
}

// Whether `text` begins with `lower_prefix` (given in lower case), letters
// compared without regard to case: a media type's "application/grpc".
inline bool istarts_with_ascii(std::string_view text, std::string_view lower_prefix) noexcept {
  if (text.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
    if (lower_ascii(text[i]) != lower_prefix[i]) return false;
  }
  return true;
}

// Whether `a` and `b` are equal but for the case of ASCII letters.
inline bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  }
  return true;
}

}  // namespace dispatch::transport
