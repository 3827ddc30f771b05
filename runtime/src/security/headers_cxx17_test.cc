// The security layer's public headers compile as C++17 (consumers may not be
// on C++20) and work from a C++17 translation unit.
#include <gtest/gtest.h>

#include "dispatch/security/content_digest.h"
#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/security/structured_fields.h"

static_assert(__cplusplus < 202002L, "this test must be compiled as C++17");

namespace dispatch::security {
namespace {

TEST(SecurityHeadersCxx17, SignAndVerify) {
  const SigningKey key = SigningKey::generate();
  const Signer signer(key);
  std::vector<std::pair<std::string, std::string>> headers =
      signer.sign("POST", "/a.B/C", "localhost:1", "application/proto", "body");
  headers.emplace_back("content-type", "application/proto");
  HttpRequestView request{"POST", "/a.B/C", "localhost:1",
                          [&](std::string_view name) -> std::optional<std::string_view> {
                            for (const auto& [k, v] : headers) {
                              std::string lower = k;
                              for (char& c : lower) c = static_cast<char>(std::tolower(c));
                              if (lower == name) return std::string_view(v);
                            }
                            return std::nullopt;
                          },
                          "body"};
  EXPECT_TRUE(Verifier(key.public_key()).verify(request).ok());
  request.body = "tampered";
  EXPECT_EQ(Verifier(key.public_key()).verify(request).error().code(), Code::permission_denied);
}

}  // namespace
}  // namespace dispatch::security
