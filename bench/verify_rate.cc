// Raw libsodium Ed25519 verification rate; see verify_rate.h.
#include "verify_rate.h"

#include <sodium.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace bench {

double ed25519_verify_rate(double seconds) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  // The shape of the signature base the runtime signs: five covered
  // components and the signature parameters line.
  const std::string base =
      "\"@method\": POST\n"
      "\"@path\": /bench.TransportApiService/add\n"
      "\"@authority\": 127.0.0.1:8000\n"
      "\"content-type\": application/proto\n"
      "\"content-digest\": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
      "\"@signature-params\": (\"@method\" \"@path\" \"@authority\" \"content-type\" \"content-digest\")"
      ";created=1700000000;keyid=\"bench\";alg=\"ed25519\"";
  const auto* message = reinterpret_cast<const unsigned char*>(base.data());
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, message, base.size(), sk);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  unsigned long long count = 0;
  Clock::time_point now;
  do {
    // Check the clock every 64 verifies; a verify is tens of microseconds.
    for (int i = 0; i < 64; ++i) {
      if (crypto_sign_verify_detached(sig, message, base.size(), pk) != 0) {
        throw std::runtime_error("a valid Ed25519 signature failed to verify");
      }
    }
    count += 64;
    now = Clock::now();
  } while (now < until);
  return static_cast<double>(count) / std::chrono::duration<double>(now - start).count();
}

}  // namespace bench
