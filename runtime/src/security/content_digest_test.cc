// RFC 9530 Content-Digest: the RFC's examples reproduce, and verification
// accepts a matching digest and refuses each kind of bad one with its code.
#include "dispatch/security/content_digest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dispatch::security {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kBody = R"({"hello": "world"})";
// RFC 9530 section 2 / appendix B examples for the body above.
constexpr std::string_view kSha256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
constexpr std::string_view kSha512 =
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";

TEST(ContentDigest, ReproducesRfc9530Examples) {
  EXPECT_EQ(content_digest(kBody, DigestAlgorithm::sha256), kSha256);
  EXPECT_EQ(content_digest(kBody, DigestAlgorithm::sha512), kSha512);
  EXPECT_EQ(content_digest(kBody), kSha512);  // sha-512 is the default
}

TEST(ContentDigest, VerifiesEitherAlgorithmAndBoth) {
  EXPECT_TRUE(verify_content_digest(kSha256, kBody).ok());
  EXPECT_TRUE(verify_content_digest(kSha512, kBody).ok());
  const std::string both = std::string(kSha256) + ", " + std::string(kSha512);
  EXPECT_TRUE(verify_content_digest(both, kBody).ok());
  // Unknown algorithms are ignored when a known one is present.
  EXPECT_TRUE(verify_content_digest("md5=:AAAA:, " + std::string(kSha256), kBody).ok());
}

TEST(ContentDigest, DigestOfAnotherBodyIsDenied) {
  auto result = verify_content_digest(kSha512, R"({"hello": "World"})");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::permission_denied);
  EXPECT_THAT(result.error().message(), HasSubstr("does not match"));
  // One good and one bad digest is still a mismatch.
  const std::string mixed = std::string(kSha256) + ", " + content_digest("other");
  EXPECT_EQ(verify_content_digest(mixed, kBody).error().code(), Code::permission_denied);
}

TEST(ContentDigest, MissingOrMalformedIsUnauthenticated) {
  auto expect = [](std::optional<std::string_view> header, std::string_view text) {
    auto result = verify_content_digest(header, kBody);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), Code::unauthenticated);
    EXPECT_THAT(result.error().message(), HasSubstr(text));
  };
  expect(std::nullopt, "missing Content-Digest");
  expect("sha-512=:abc", "malformed Content-Digest");
  expect("sha-512=\"text\"", "not a byte sequence");
  expect("sha-256=:AAAA:", "holds 3 bytes, expected 32");
  expect("md5=:AAAA:", "no sha-512 or sha-256");
  expect("", "no sha-512 or sha-256");
}

TEST(ContentDigest, EmptyBodyHasAWellKnownDigest) {
  // SHA-256 of the empty string.
  EXPECT_EQ(content_digest("", DigestAlgorithm::sha256),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
}

}  // namespace
}  // namespace dispatch::security
