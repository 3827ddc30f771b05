// The body of the generated-decoder fuzz targets (fuzz_decoders_*.cc): the
// first input byte picks one message type of a generated header, the rest
// is fed to its generated decode(). Malformed bytes must be an
// invalid_argument Result with a message; bytes that decode must round-trip:
// the value re-encodes, decodes again to an equal value (or, where == cannot
// say, as for NaN, to the same encoding), and never throws.
//
// Not for: a particular header (each fuzz_decoders_<name>.cc lists its types).
#pragma once

#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>
#include <typeinfo>

#include "dispatch/core/error.h"
#include "dispatch/core/result.h"

namespace dispatch::fuzz {

[[noreturn]] inline void fail(const char* type, const char* what) {
  std::fprintf(stderr, "fuzz_decoders: %s: %s\n", type, what);
  std::abort();
}

// Codec: a struct with static decode(bytes, T*) and encode(const T&) that
// forward to the generated <namespace>::<stem>_wire functions.
template <typename Codec, typename T>
void round_trip(std::string_view bytes) {
  const char* type = typeid(T).name();
  T first{};
  const Result<void> decoded = Codec::decode(bytes, &first);
  if (!decoded.ok()) {
    if (decoded.error().code() != Code::invalid_argument) fail(type, "refusal is not invalid_argument");
    if (decoded.error().message().empty()) fail(type, "refusal without a message");
    return;
  }
  std::string encoded;
  try {
    encoded = Codec::encode(first);
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz_decoders: %s: %s\n", type, e.what());
    fail(type, "a decoded value does not encode");
  }
  T second{};
  if (!Codec::decode(encoded, &second).ok()) fail(type, "its own encoding does not decode");
  if constexpr (std::equality_comparable<T>) {
    if (first == second) return;
  }
  if (Codec::encode(second) != encoded) fail(type, "decode -> encode -> decode is not stable");
}

template <typename Codec, typename... Types>
int run(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t pick = data[0] % sizeof...(Types);
  std::size_t i = 0;
  ((i++ == pick ? round_trip<Codec, Types>(bytes) : void()), ...);
  return 0;
}

}  // namespace dispatch::fuzz
