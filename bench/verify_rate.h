// The raw Ed25519 verify rate with libsodium on one core: the ceiling a
// verifying server cannot beat, measured in the same run as the signed
// transport rows (issue 4's goal compares against it).
//
// Not for: checking signatures in the runtime (runtime/src/security does).
#pragma once

namespace bench {

// Verifies one signature of a typical RFC 9421 signature base (368 bytes)
// back to back on the calling thread for `seconds`; returns verifies/s.
// Throws std::runtime_error if libsodium fails to initialise or a signature
// does not verify (a broken measurement must not produce a number).
double ed25519_verify_rate(double seconds);

}  // namespace bench
