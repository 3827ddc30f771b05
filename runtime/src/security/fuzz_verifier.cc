// libFuzzer target: the Verifier over attacker-controlled Signature-Input,
// Signature and Content-Digest headers and body must never crash, and every
// refusal must carry one of the two documented codes.
// Input layout: Signature-Input, Signature and Content-Digest values, then
// the body, separated by '\n'. The key's seed is fixed (0x07 x 32) so that
// seeds in tests/fuzz/corpus/fuzz_verifier/ can carry valid signatures.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dispatch/security/signature.h"

using namespace dispatch::security;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Verifier verifier(
      SigningKey::from_seed(std::string(32, '\x07')).value().public_key());
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string_view fields[3];
  for (auto& field : fields) {
    const size_t nl = rest.find('\n');
    field = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  HttpRequestView request{"POST", "/dispatch.sdk.v1.FunctionService/Run", "localhost:8000",
                          [&](std::string_view name) -> std::optional<std::string_view> {
                            if (name == "signature-input") return fields[0];
                            if (name == "signature") return fields[1];
                            if (name == "content-digest") return fields[2];
                            if (name == "content-type") return std::string_view("application/proto");
                            return std::nullopt;
                          },
                          rest};
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  auto result = verifier.verify(request, now);
  if (!result.ok() && result.error().code() != dispatch::Code::unauthenticated &&
      result.error().code() != dispatch::Code::permission_denied) {
    std::abort();  // every refusal is one of the two documented codes
  }
  return 0;
}
