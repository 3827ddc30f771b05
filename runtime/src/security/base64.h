// Base64 (RFC 4648, standard alphabet) for the security layer, by libsodium:
// byte sequences in structured fields, raw keys in environment variables.
//
// Also URL-safe base64 (RFC 4648 section 5), which Connect's GET requests
// carry in a query parameter.
//
// Not for: PEM bodies (OpenSSL reads those).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dispatch::security::detail {

// Padded standard base64.
std::string base64_encode(std::string_view bytes);
// Strict decode: standard alphabet only, no whitespace, zero pad bits; the
// "=" padding may be absent (RFC 8941 4.2.7 asks parsers to accept that).
// nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view text);
// A character base64_decode takes: the standard alphabet and '='.
bool is_base64_char(char c);
// Unpadded URL-safe base64 ('-' and '_' for '+' and '/'), as Connect's
// GET requests carry a message.
std::string base64url_encode(std::string_view bytes);
// Strict decode of URL-safe base64 ('-' and '_' for '+' and '/'), the "="
// padding optional; nullopt on anything else.
std::optional<std::string> base64url_decode(std::string_view text);

// libsodium needs sodium_init() once before use; cheap and thread-safe after.
void ensure_sodium();

}  // namespace dispatch::security::detail
