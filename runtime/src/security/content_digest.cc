// RFC 9530 digests with OpenSSL's EVP one-shot hashing; the field syntax is
// the RFC 8941 dictionary parser's; comparisons are libsodium's constant-time
// sodium_memcmp so that a mismatch's position is not leaked by timing.
#include "dispatch/security/content_digest.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <stdexcept>

#include "dispatch/security/structured_fields.h"
#include "security/base64.h"

namespace dispatch::security {

std::string digest_bytes(std::string_view body, DigestAlgorithm algorithm) {
  const EVP_MD* md = algorithm == DigestAlgorithm::sha512 ? EVP_sha512() : EVP_sha256();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(body.data(), body.size(), out, &size, md, nullptr) != 1) {
    throw std::runtime_error("OpenSSL EVP_Digest failed");  // allocation failure only
  }
  return std::string(reinterpret_cast<const char*>(out), size);
}

std::string content_digest(std::string_view body, DigestAlgorithm algorithm) {
  const char* name = algorithm == DigestAlgorithm::sha512 ? "sha-512=:" : "sha-256=:";
  return name + detail::base64_encode(digest_bytes(body, algorithm)) + ":";
}

Result<void> verify_content_digest(std::optional<std::string_view> field_value,
                                   std::string_view body) {
  if (!field_value) return Error(Code::unauthenticated, "missing Content-Digest header");
  auto dict = sf::parse_dictionary(*field_value);
  if (!dict) {
    return Error(Code::unauthenticated, "malformed Content-Digest header: " + dict.error().message());
  }
  detail::ensure_sodium();
  bool checked = false;
  for (const auto& [name, member] : *dict) {
    DigestAlgorithm algorithm;
    if (name == "sha-512") {
      algorithm = DigestAlgorithm::sha512;
    } else if (name == "sha-256") {
      algorithm = DigestAlgorithm::sha256;
    } else {
      continue;
    }
    const auto* item = std::get_if<sf::Item>(&member);
    const auto* bytes = item ? std::get_if<sf::ByteSequence>(&item->value) : nullptr;
    if (!bytes) {
      return Error(Code::unauthenticated,
                   "malformed Content-Digest header: " + name + " is not a byte sequence");
    }
    const std::string expected = digest_bytes(body, algorithm);
    if (bytes->bytes.size() != expected.size()) {
      return Error(Code::unauthenticated, "malformed Content-Digest header: " + name + " holds " +
                                              std::to_string(bytes->bytes.size()) +
                                              " bytes, expected " +
                                              std::to_string(expected.size()));
    }
    if (sodium_memcmp(bytes->bytes.data(), expected.data(), expected.size()) != 0) {
      return Error(Code::permission_denied,
                   "Content-Digest " + name + " does not match the request body");
    }
    checked = true;
  }
  if (!checked) {
    return Error(Code::unauthenticated, "Content-Digest header has no sha-512 or sha-256 digest");
  }
  return {};
}

}  // namespace dispatch::security
