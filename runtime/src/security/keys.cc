// Ed25519 key parsing and encoding. PEM and DER go through OpenSSL (no
// hand-written ASN.1); signing and verifying through libsodium, which is
// faster than OpenSSL for Ed25519 verification on this hardware. Most of the
// code is error reporting: a key in an environment variable is the first
// thing a user gets wrong, and the message must say how.
#include "dispatch/security/keys.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "security/base64.h"

namespace dispatch::security {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

Error key_error(std::string message) { return Error(Code::invalid_argument, std::move(message)); }

// OpenSSL's reason for the last failure, and an empty queue afterwards (the
// queue is per thread; leaving entries would confuse the next OpenSSL user).
std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  std::string reason = "unknown reason";
  if (code != 0) {
    if (const char* r = ERR_reason_error_string(code)) reason = r;
  }
  ERR_clear_error();
  return reason;
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Environment variables often carry a PEM with literal "\n" sequences.
std::string unescape_newlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Checks common to both kinds of key before their forms are told apart: an
// empty value, and quotes kept around it (docker --env-file and Kubernetes
// env files keep the quotes of the lines dispatch-keygen prints).
Result<void> check_text(std::string_view text) {
  if (text.empty()) return key_error("key is empty");
  const auto is_quote = [](char c) { return c == '"' || c == '\''; };
  if (is_quote(text.front()) || is_quote(text.back())) {
    return key_error("key is wrapped in quotes; remove them (docker --env-file and Kubernetes keep the quotes "
                     "of a KEY=\"...\" line)");
  }
  return {};
}

// The label of the first PEM block ("PUBLIC KEY"), or nullopt for non-PEM.
std::optional<std::string> pem_label(std::string_view text) {
  constexpr std::string_view begin = "-----BEGIN ";
  const size_t at = text.find(begin);
  if (at == std::string_view::npos) return std::nullopt;
  const size_t start = at + begin.size();
  const size_t end = text.find("-----", start);
  if (end == std::string_view::npos) return std::string(text.substr(start, 40));
  return std::string(text.substr(start, end - start));
}

// Reads the PEM block `expected_label` after the label checks common to both
// kinds of key; `read` is PEM_read_bio_PUBKEY or PEM_read_bio_PrivateKey.
template <typename Read>
Result<PkeyPtr> read_ed25519_pem(const std::string& pem, const std::string& label,
                                 std::string_view expected_label, std::string_view what,
                                 Read read) {
  if (label != expected_label) {
    std::string hint;
    if (label == "PRIVATE KEY") hint = "; this is a private key, give the public key";
    if (label == "PUBLIC KEY") hint = "; this is a public key, give the private key";
    if (label == "ENCRYPTED PRIVATE KEY") hint = "; encrypted keys are not supported";
    return key_error("PEM block is '" + label + "', expected '" + std::string(expected_label) +
                     "' (" + std::string(what) + ")" + hint);
  }
  const std::string end_line = "-----END " + label + "-----";
  const size_t end = pem.find(end_line);
  if (end == std::string::npos) {
    return key_error("PEM has no '" + end_line + "' line (truncated?)");
  }
  // OpenSSL reads the first block and ignores the rest: a second key of the
  // same kind (two public keys pasted into one variable during a rotation)
  // would be dropped without a word, and every request signed with it
  // refused. Other blocks (a key pair's public half after its private key)
  // are left alone.
  if (pem.find("-----BEGIN " + label + "-----", end) != std::string::npos) {
    std::string hint = "give one key";
    if (expected_label == "PUBLIC KEY") hint += "; separate several public keys with commas";
    return key_error("PEM text holds a second '" + label + "' block; " + hint);
  }
  // OpenSSL's reason for a PEM flattened onto one line is "unsupported".
  const std::string begin_line = "-----BEGIN " + label + "-----";
  const size_t begin = pem.find(begin_line);
  const auto is_break = [](char c) { return c == '\n' || c == '\r'; };
  if (begin == std::string::npos || begin + begin_line.size() >= end || !is_break(pem[begin + begin_line.size()]) ||
      !is_break(pem[end - 1])) {
    return key_error("PEM has no line breaks around its body; keep the newlines after '" + begin_line +
                     "' and before '" + end_line + "' (as real newlines or as literal \\n)");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return key_error("out of memory reading PEM");
  // No passphrase callback: an encrypted key must fail, never prompt on a tty.
  auto no_password = [](char*, int, int, void*) -> int { return -1; };
  PkeyPtr key(read(bio.get(), nullptr, +no_password, nullptr));
  if (!key) return key_error("PEM body is malformed: " + openssl_reason());
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    const char* type = EVP_PKEY_get0_type_name(key.get());
    return key_error(std::string("PEM holds ") + (type ? type : "a non-Ed25519") +
                     " key; an Ed25519 key is required");
  }
  return key;
}

Result<std::string> decode_raw(std::string_view text, std::string_view what) {
  auto bytes = detail::base64_decode(text);
  if (!bytes && text.find_first_of("-_") != std::string_view::npos && detail::base64url_decode(text)) {
    return key_error("is base64url ('-' and '_'); give the " + std::string(what) +
                     " in standard base64 ('+' and '/')");
  }
  if (!bytes) {
    return key_error("not base64 and not PEM (expected '-----BEGIN ...' or the base64 of the " +
                     std::string(what) + ")");
  }
  return std::move(*bytes);
}

}  // namespace

// ---- VerificationKey ----------------------------------------------------

Result<VerificationKey> VerificationKey::from_bytes(std::string_view raw) {
  if (raw.size() != 32) {
    return key_error("an Ed25519 public key is 32 bytes, got " + std::to_string(raw.size()));
  }
  // No key generator makes such a key, and libsodium refuses every signature
  // for most of them (off the curve, small order): say so where the key is
  // read rather than answer each request 403 "does not verify".
  detail::ensure_sodium();
  if (crypto_core_ed25519_is_valid_point(reinterpret_cast<const unsigned char*>(raw.data())) != 1) {
    return key_error(
        "the 32 bytes are not an Ed25519 public key (not a point of the curve's prime-order group; "
        "a private key's seed given as the public key?)");
  }
  VerificationKey key;
  std::copy(raw.begin(), raw.end(), key.key_.begin());
  return key;
}

Result<VerificationKey> VerificationKey::parse(std::string_view text) {
  text = trim(text);
  if (auto ok = check_text(text); !ok) return std::move(ok).error();
  if (auto label = pem_label(text)) {
    const std::string pem = unescape_newlines(text);
    auto pkey = read_ed25519_pem(pem, *label, "PUBLIC KEY", "SPKI", PEM_read_bio_PUBKEY);
    if (!pkey) return std::move(pkey).error();
    unsigned char raw[32];
    size_t size = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey->get(), raw, &size) != 1 || size != 32) {
      return key_error("cannot read the Ed25519 public key: " + openssl_reason());
    }
    return from_bytes(std::string_view(reinterpret_cast<const char*>(raw), size));
  }
  auto raw = decode_raw(text, "32 raw bytes");
  if (!raw) return std::move(raw).error();
  if (raw->size() != 32) {
    return key_error("base64 decodes to " + std::to_string(raw->size()) +
                     " bytes; an Ed25519 public key is 32 bytes");
  }
  return from_bytes(*raw);
}

Result<std::optional<VerificationKey>> VerificationKey::from_env(const char* variable) {
  const char* value = std::getenv(variable);
  if (!value || trim(value).empty()) return std::optional<VerificationKey>();
  auto key = parse(value);
  if (!key) return key.error().with_context(variable);
  return std::optional<VerificationKey>(std::move(*key));
}

std::string VerificationKey::bytes() const {
  return std::string(reinterpret_cast<const char*>(key_.data()), key_.size());
}

std::string VerificationKey::to_base64() const { return detail::base64_encode(bytes()); }

std::string VerificationKey::to_pem() const {
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key_.data(), key_.size()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
    throw Error(Code::internal, "cannot encode public key as PEM: " + openssl_reason());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

bool VerificationKey::verify(std::string_view message, std::string_view signature) const {
  detail::ensure_sodium();
  if (signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), key_.data()) == 0;
}

// ---- SigningKey ---------------------------------------------------------

SigningKey::~SigningKey() { sodium_memzero(secret_.data(), secret_.size()); }

SigningKey SigningKey::generate() {
  detail::ensure_sodium();
  SigningKey key;
  unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_keypair(public_key, key.secret_.data());
  return key;
}

Result<SigningKey> SigningKey::from_seed(std::string_view seed) {
  detail::ensure_sodium();
  if (seed.size() != 32 && seed.size() != 64) {
    return key_error("an Ed25519 private key seed is 32 bytes, got " +
                     std::to_string(seed.size()));
  }
  SigningKey key;
  unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(public_key, key.secret_.data(),
                           reinterpret_cast<const unsigned char*>(seed.data()));
  if (seed.size() == 64 &&
      sodium_memcmp(seed.data() + 32, public_key, sizeof public_key) != 0) {
    return key_error("64-byte key: the last 32 bytes are not the public key of the first 32");
  }
  return key;
}

Result<SigningKey> SigningKey::parse(std::string_view text) {
  text = trim(text);
  if (auto ok = check_text(text); !ok) return std::move(ok).error();
  if (auto label = pem_label(text)) {
    std::string pem = unescape_newlines(text);
    auto pkey = read_ed25519_pem(pem, *label, "PRIVATE KEY", "PKCS#8", PEM_read_bio_PrivateKey);
    sodium_memzero(pem.data(), pem.size());
    if (!pkey) return std::move(pkey).error();
    unsigned char seed[32];
    size_t size = sizeof seed;
    if (EVP_PKEY_get_raw_private_key(pkey->get(), seed, &size) != 1 || size != 32) {
      return key_error("cannot read the Ed25519 private key: " + openssl_reason());
    }
    auto key = from_seed(std::string_view(reinterpret_cast<const char*>(seed), size));
    sodium_memzero(seed, sizeof seed);
    return key;
  }
  auto raw = decode_raw(text, "32-byte seed");
  if (!raw) return std::move(raw).error();
  if (raw->size() != 32 && raw->size() != 64) {
    const size_t size = raw->size();
    sodium_memzero(raw->data(), raw->size());
    return key_error("base64 decodes to " + std::to_string(size) +
                     " bytes; an Ed25519 private key seed is 32 bytes");
  }
  auto key = from_seed(*raw);
  sodium_memzero(raw->data(), raw->size());
  return key;
}

Result<std::optional<SigningKey>> SigningKey::from_env(const char* variable) {
  const char* value = std::getenv(variable);
  if (!value || trim(value).empty()) return std::optional<SigningKey>();
  auto key = parse(value);
  if (!key) return key.error().with_context(variable);
  return std::optional<SigningKey>(std::move(*key));
}

std::string SigningKey::seed() const {
  return std::string(reinterpret_cast<const char*>(secret_.data()), 32);
}

std::string SigningKey::to_pem() const {
  PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, secret_.data(), 32));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio ||
      PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw Error(Code::internal, "cannot encode private key as PEM: " + openssl_reason());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

VerificationKey SigningKey::public_key() const {
  return VerificationKey::from_bytes(
             std::string_view(reinterpret_cast<const char*>(secret_.data()) + 32, 32))
      .value();
}

std::string SigningKey::sign(std::string_view message) const {
  detail::ensure_sodium();
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_.data());
  return signature;
}

}  // namespace dispatch::security
