// RFC 9530 Content-Digest: the header a signer adds so that a signature over
// the header also covers the body, and the check a verifier makes that the
// body it received is the body that was signed.
//
// Not for: Repr-Digest, Want-Content-Digest, algorithms other than sha-256
// and sha-512 (the RFC marks the rest insecure or non-standard).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "dispatch/core/result.h"

namespace dispatch::security {

enum class DigestAlgorithm { sha256, sha512 };

// The field value for `body`, e.g. "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:".
std::string content_digest(std::string_view body,
                           DigestAlgorithm algorithm = DigestAlgorithm::sha512);

// The raw digest bytes (32 or 64).
std::string digest_bytes(std::string_view body, DigestAlgorithm algorithm);

// Checks a received Content-Digest against the body. Every sha-256 and
// sha-512 member present must match (others are ignored) and at least one
// must be present. Comparisons are constant time.
//   absent header, malformed field, no sha-256/sha-512 member, a digest of
//   the wrong length or type        -> Code::unauthenticated
//   a digest that does not match     -> Code::permission_denied
Result<void> verify_content_digest(std::optional<std::string_view> field_value,
                                   std::string_view body);

}  // namespace dispatch::security
