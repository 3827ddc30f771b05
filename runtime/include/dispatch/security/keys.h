// Ed25519 keys for request signatures: the public VerificationKey a server
// checks signatures with and the private SigningKey a client (or scheduler)
// signs with, read from the forms users have (PEM or base64, files or
// environment variables) with errors that say which variable is wrong and how.
//
// Not for: other algorithms, encrypted PEM, key storage or rotation policy
// (a Verifier holds several keys; see signature.h).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "dispatch/core/result.h"

namespace dispatch::security {

class VerificationKey {
 public:
  // The 32 raw bytes of an Ed25519 public key; bytes that are not a point of
  // the curve's prime-order group (no Ed25519 key generator makes one) are refused.
  static Result<VerificationKey> from_bytes(std::string_view raw);
  // PEM SPKI ("-----BEGIN PUBLIC KEY-----", literal "\n" sequences allowed,
  // as environment variables carry them) or base64 of the 32 raw bytes.
  // Errors (invalid_argument) say what is wrong: not base64, wrong length,
  // an RSA key, a private key, a truncated PEM, a second key's PEM block.
  static Result<VerificationKey> parse(std::string_view text);
  // The key in environment variable `variable`; nullopt when it is unset or
  // empty (verification off). Errors name the variable.
  static Result<std::optional<VerificationKey>> from_env(
      const char* variable = "DISPATCH_VERIFICATION_KEY");

  std::string bytes() const;
  std::string to_base64() const;
  std::string to_pem() const;  // SPKI, "-----BEGIN PUBLIC KEY-----"
  // True when `signature` (64 bytes) is this key's signature of `message`.
  bool verify(std::string_view message, std::string_view signature) const;

  friend bool operator==(const VerificationKey& a, const VerificationKey& b) {
    return a.key_ == b.key_;
  }

 private:
  VerificationKey() = default;
  std::array<unsigned char, 32> key_{};
};

class SigningKey {
 public:
  // A fresh random key (libsodium's CSPRNG).
  static SigningKey generate();
  // The 32-byte seed (RFC 8032's private key); 64 bytes of seed followed by
  // the public key (libsodium's and Go's form) are accepted and checked.
  static Result<SigningKey> from_seed(std::string_view seed);
  // PEM PKCS#8 ("-----BEGIN PRIVATE KEY-----", literal "\n" allowed) or
  // base64 of the seed. Errors as VerificationKey::parse().
  static Result<SigningKey> parse(std::string_view text);
  // nullopt when unset or empty; errors name the variable.
  static Result<std::optional<SigningKey>> from_env(const char* variable = "DISPATCH_SIGNING_KEY");

  SigningKey(const SigningKey&) = default;
  SigningKey& operator=(const SigningKey&) = default;
  ~SigningKey();  // wipes the secret

  std::string seed() const;
  std::string to_pem() const;  // PKCS#8, "-----BEGIN PRIVATE KEY-----"
  VerificationKey public_key() const;
  // The 64-byte Ed25519 signature of `message` (deterministic, RFC 8032).
  std::string sign(std::string_view message) const;

 private:
  SigningKey() = default;
  std::array<unsigned char, 64> secret_{};  // libsodium layout: seed || public key
};

}  // namespace dispatch::security
