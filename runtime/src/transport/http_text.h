// Text of HTTP field values shared by the transport's protocols and the
// layers above it (CloudEvents' binding): the optional whitespace around a
// value or a list item.
//
// Not for: parsing HTTP (Beast does), or whitespace that includes line
// breaks (a PEM's or a key file's text: security/ and secure_options.cc).
#pragma once

#include <string_view>

namespace dispatch::transport {

// `s` without the optional whitespace (RFC 9110 5.6.3: spaces and tabs) at
// either end.
inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace dispatch::transport
