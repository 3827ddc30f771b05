// Base64 via libsodium's constant-time codec (no hand-written tables).
#include "security/base64.h"

#include <sodium.h>

#include <cstdlib>
#include <stdexcept>

namespace dispatch::security::detail {

void ensure_sodium() {
  // sodium_init() is idempotent and thread-safe; a static makes it run once.
  static const int result = sodium_init();
  if (result < 0) throw std::runtime_error("libsodium failed to initialize");
}

namespace {

// libsodium's encode of `bytes` in one of its variants.
std::string encode(std::string_view bytes, int variant) {
  ensure_sodium();
  const size_t size = sodium_base64_ENCODED_LEN(bytes.size(), variant);
  std::string out(size, '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    variant);
  out.resize(size - 1);  // the codec writes a terminating NUL
  return out;
}

}  // namespace

std::string base64_encode(std::string_view bytes) { return encode(bytes, sodium_base64_VARIANT_ORIGINAL); }

std::string base64url_encode(std::string_view bytes) {
  return encode(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
         c == '=';
}

namespace {

bool is_base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '=';
}

// libsodium's decode of `text` in one of its alphabets (`url`), padded or
// not as `text` is.
std::optional<std::string> decode(std::string_view text, bool url) {
  ensure_sodium();
  // libsodium 1.0.18's decoder takes some bytes outside the alphabet (any
  // byte from 0x80 up) as digits: "Infin\xd1\x9eN" decodes to six bytes.
  // Only the alphabet and '=' reach it.
  for (char c : text) {
    if (!(url ? is_base64url_char(c) : is_base64_char(c))) return std::nullopt;
  }
  const bool padded = text.find('=') != std::string_view::npos;
  if (padded && text.size() % 4 != 0) return std::nullopt;
  const int variant = url ? (padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING)
                          : (padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t out_size = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &out_size, &end, variant) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(out_size);
  return out;
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) { return decode(text, false); }

std::optional<std::string> base64url_decode(std::string_view text) { return decode(text, true); }

}  // namespace dispatch::security::detail
