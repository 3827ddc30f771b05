// libFuzzer target: the security layer's key parsers (PEM SPKI / PKCS#8 and
// base64, with the literal "\n" form environment variables carry) and its
// strict base64 decoder. Bad text must be an invalid_argument error with a
// message, never a crash; a key that parses must re-parse from each form it
// prints (PEM, base64) to the same key.
//
// Not for: signatures and their headers (runtime/src/security's own
// fuzz_structured_fields and fuzz_verifier cover those).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dispatch/security/keys.h"
#include "security/base64.h"

namespace {

namespace sec = dispatch::security;

template <typename R>
void check_refusal(const R& result) {
  if (result.error().code() != dispatch::Code::invalid_argument || result.error().message().empty()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto key = sec::VerificationKey::parse(text); key.ok()) {
    auto from_pem = sec::VerificationKey::parse(key->to_pem());
    auto from_base64 = sec::VerificationKey::parse(key->to_base64());
    if (!from_pem.ok() || !(*from_pem == *key)) std::abort();
    if (!from_base64.ok() || !(*from_base64 == *key)) std::abort();
    if (key->bytes().size() != 32) std::abort();
  } else {
    check_refusal(key);
  }

  if (auto key = sec::SigningKey::parse(text); key.ok()) {
    auto from_pem = sec::SigningKey::parse(key->to_pem());
    if (!from_pem.ok() || from_pem->seed() != key->seed()) std::abort();
    // The public half must verify what the private half signs.
    if (!key->public_key().verify("m", key->sign("m"))) std::abort();
  } else {
    check_refusal(key);
  }

  if (auto bytes = sec::detail::base64_decode(text)) {
    const std::string again = sec::detail::base64_encode(*bytes);
    auto round = sec::detail::base64_decode(again);
    if (!round || *round != *bytes) std::abort();
  }
  return 0;
}
