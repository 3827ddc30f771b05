// Key parsing: every accepted form, and each failure with the message a user
// needs (which variable, what is wrong).
#include "dispatch/security/keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>

namespace dispatch::security {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// RFC 9421 Appendix B.1.4, test-key-ed25519.
constexpr std::string_view kPrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----\n";
constexpr std::string_view kPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
    "-----END PUBLIC KEY-----\n";
// The same key's raw forms (the JWK "x" and "d" of B.1.4, as standard base64).
constexpr std::string_view kPublicBase64 = "JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";
constexpr std::string_view kSeedBase64 = "n4Ni+HpISpVObnQMW0wOhCKROaIKqKtW/2ZYb2p9KcU=";

// Test data made with `openssl genpkey` (not Ed25519, so they must be refused).
constexpr std::string_view kRsaPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDIuhlcGvuGIvLaQRnyGUyS693R\n"
    "BPg1e1Aku4bA/j0k4AlbMhpmlRZqNc9Ywv6Qg5TtXnt9ls5DhBb9FWvhGaPaM5UV\n"
    "mLtfqkvkWwgEpixDgOk4LIRkhyRE2OJ/ViXG0X1cLU2KzKa20f7x8+z4j6Ij+skB\n"
    "gEBaRxKeU3TJplXStQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
constexpr std::string_view kEcPrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqFdfYL5QVDjI0O78\n"
    "4ZKkrbxl9V/Uq8X+66gU34Lzm1+hRANCAARMU9+9VlWF9BpqMrRouI78sieCl14e\n"
    "TidhAom3/jZ/Yw7F17xchLCtTBLMvEmS+pdPejSaIy1etuUuXcWHsh9q\n"
    "-----END PRIVATE KEY-----\n";

std::string escaped_newlines(std::string_view pem) {
  std::string out;
  for (char c : pem) {
    if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string verification_error(std::string_view text) {
  auto key = VerificationKey::parse(text);
  EXPECT_FALSE(key.ok()) << "accepted: " << text;
  if (key.ok()) return "";
  EXPECT_EQ(key.error().code(), Code::invalid_argument);
  return key.error().message();
}

std::string signing_error(std::string_view text) {
  auto key = SigningKey::parse(text);
  EXPECT_FALSE(key.ok()) << "accepted: " << text;
  return key.ok() ? "" : key.error().message();
}

TEST(VerificationKey, PemAndBase64AgreeWithTheRfcKey) {
  auto from_pem = VerificationKey::parse(kPublicPem);
  ASSERT_TRUE(from_pem.ok()) << from_pem.error().message();
  auto from_base64 = VerificationKey::parse(kPublicBase64);
  ASSERT_TRUE(from_base64.ok()) << from_base64.error().message();
  EXPECT_EQ(*from_pem, *from_base64);
  EXPECT_EQ(from_pem->to_base64(), kPublicBase64);
  EXPECT_EQ(from_pem->to_pem(), kPublicPem);
}

TEST(VerificationKey, AcceptsLiteralBackslashNAndSurroundingWhitespace) {
  auto key = VerificationKey::parse("  " + escaped_newlines(kPublicPem) + "\n");
  ASSERT_TRUE(key.ok()) << key.error().message();
  EXPECT_EQ(key->to_base64(), kPublicBase64);
}

TEST(VerificationKey, EachMalformedKeySaysWhy) {
  EXPECT_THAT(verification_error(""), HasSubstr("empty"));
  EXPECT_THAT(verification_error("not a key!"), HasSubstr("not base64"));
  // 31 bytes.
  EXPECT_THAT(verification_error("JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0Q=="),
              HasSubstr("decodes to 31 bytes"));
  EXPECT_THAT(verification_error(kRsaPublicPem), HasSubstr("PEM holds RSA key"));
  EXPECT_THAT(verification_error(kPrivatePem), HasSubstr("this is a private key"));
  const std::string truncated(kPublicPem.substr(0, kPublicPem.size() - 10));
  EXPECT_THAT(verification_error(truncated), HasSubstr("truncated"));
  std::string corrupt(kPublicPem);
  corrupt.replace(corrupt.find("MCow"), 4, "MCoz");
  EXPECT_THAT(verification_error(corrupt), HasSubstr("PEM body is malformed"));
  EXPECT_THAT(verification_error("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
              HasSubstr("'CERTIFICATE', expected 'PUBLIC KEY'"));
}

TEST(VerificationKey, TwoPemBlocksInOneValueAreRefusedNotHalfRead) {
  // Two public keys pasted one after the other (a rotation written without
  // the comma): the second must not be dropped in silence.
  const std::string other = SigningKey::generate().public_key().to_pem();
  const std::string message = verification_error(std::string(kPublicPem) + other);
  EXPECT_THAT(message, HasSubstr("second 'PUBLIC KEY' block"));
  EXPECT_THAT(message, HasSubstr("separate several public keys with commas"));
  EXPECT_THAT(verification_error(escaped_newlines(std::string(kPublicPem) + other)),
              HasSubstr("second 'PUBLIC KEY' block"));
  // Text around a single block is still allowed (RFC 7468 section 2).
  auto annotated = VerificationKey::parse("# dispatch.pub\n" + std::string(kPublicPem) + "(end)\n");
  EXPECT_TRUE(annotated.ok()) << annotated.error().message();
}

TEST(VerificationKey, QuotesOrAFlattenedPemAreNamedNotLeftToOpenSsl) {
  // dispatch-keygen prints KEY="..." lines; docker --env-file keeps the
  // quotes. OpenSSL's reason for these was "unsupported".
  EXPECT_THAT(verification_error("\"" + escaped_newlines(kPublicPem) + "\""), HasSubstr("wrapped in quotes"));
  EXPECT_THAT(verification_error("'" + std::string(kPublicBase64) + "'"), HasSubstr("wrapped in quotes"));
  std::string flattened(kPublicPem);
  std::replace(flattened.begin(), flattened.end(), '\n', ' ');
  EXPECT_THAT(verification_error(flattened), HasSubstr("PEM has no line breaks around its body"));
  std::string one_line(kPublicPem);
  one_line.erase(std::remove(one_line.begin(), one_line.end(), '\n'), one_line.end());
  EXPECT_THAT(verification_error(one_line), HasSubstr("keep the newlines after '-----BEGIN PUBLIC KEY-----'"));
  std::string crlf;
  for (char c : kPublicPem) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  auto key = VerificationKey::parse(crlf);
  EXPECT_TRUE(key.ok()) << key.error().message();
}

TEST(VerificationKey, Base64UrlIsNamed) {
  // The RFC key's public half has both '+' and '/'; in base64url they are '-' and '_'.
  std::string url(kPublicBase64);
  std::replace(url.begin(), url.end(), '+', '-');
  std::replace(url.begin(), url.end(), '/', '_');
  EXPECT_THAT(verification_error(url), HasSubstr("is base64url ('-' and '_'); give the 32 raw bytes in standard base64"));
  EXPECT_THAT(verification_error("not-a-key"), HasSubstr("not base64 and not PEM"));
  std::string seed(kSeedBase64);
  std::replace(seed.begin(), seed.end(), '+', '-');
  std::replace(seed.begin(), seed.end(), '/', '_');
  EXPECT_THAT(signing_error(seed), HasSubstr("is base64url"));
}

TEST(VerificationKey, FromBytesChecksLength) {
  EXPECT_TRUE(VerificationKey::from_bytes(SigningKey::generate().public_key().bytes()).ok());
  EXPECT_THAT(VerificationKey::from_bytes(std::string(33, 'x')).error().message(),
              HasSubstr("32 bytes, got 33"));
}

TEST(VerificationKey, BytesThatAreNoCurvePointAreRefusedAtParse) {
  // No signature verifies with these; the key is refused where it is read,
  // not request by request. All zeros (a small-order point), and the RFC
  // key's seed given in place of its public key.
  EXPECT_THAT(verification_error("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
              HasSubstr("the 32 bytes are not an Ed25519 public key"));
  EXPECT_THAT(verification_error(kSeedBase64), HasSubstr("a private key's seed given as the public key?"));
  EXPECT_THAT(VerificationKey::from_bytes(std::string(32, '\0')).error().message(),
              HasSubstr("not an Ed25519 public key"));
}

TEST(VerificationKey, FromEnvNamesTheVariable) {
  ::unsetenv("DISPATCH_TEST_VKEY");
  auto unset = VerificationKey::from_env("DISPATCH_TEST_VKEY");
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->has_value());

  ::setenv("DISPATCH_TEST_VKEY", escaped_newlines(kPublicPem).c_str(), 1);
  auto set = VerificationKey::from_env("DISPATCH_TEST_VKEY");
  ASSERT_TRUE(set.ok()) << set.error().message();
  ASSERT_TRUE(set->has_value());
  EXPECT_EQ((*set)->to_base64(), kPublicBase64);

  ::setenv("DISPATCH_TEST_VKEY", "AAAA", 1);
  auto bad = VerificationKey::from_env("DISPATCH_TEST_VKEY");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("DISPATCH_TEST_VKEY: base64 decodes to 3 bytes"));
  ::unsetenv("DISPATCH_TEST_VKEY");
}

TEST(SigningKey, PemAndSeedAgreeWithTheRfcKey) {
  auto from_pem = SigningKey::parse(kPrivatePem);
  ASSERT_TRUE(from_pem.ok()) << from_pem.error().message();
  auto from_seed = SigningKey::parse(kSeedBase64);
  ASSERT_TRUE(from_seed.ok()) << from_seed.error().message();
  EXPECT_EQ(from_pem->seed(), from_seed->seed());
  EXPECT_EQ(from_pem->public_key().to_base64(), kPublicBase64);
  EXPECT_EQ(from_pem->to_pem(), kPrivatePem);
  auto escaped = SigningKey::parse(escaped_newlines(kPrivatePem));
  ASSERT_TRUE(escaped.ok()) << escaped.error().message();
  EXPECT_EQ(escaped->seed(), from_pem->seed());
}

TEST(SigningKey, SeedWithPublicKeyIsChecked) {
  auto key = SigningKey::parse(kSeedBase64).value();
  const std::string full = key.seed() + key.public_key().bytes();
  EXPECT_TRUE(SigningKey::from_seed(full).ok());
  std::string wrong = full;
  wrong[40] ^= 1;
  EXPECT_THAT(SigningKey::from_seed(wrong).error().message(), HasSubstr("not the public key"));
}

TEST(SigningKey, EachMalformedKeySaysWhy) {
  EXPECT_THAT(signing_error("%%%"), HasSubstr("not base64"));
  EXPECT_THAT(signing_error("AAAA"), HasSubstr("decodes to 3 bytes"));
  EXPECT_THAT(signing_error(kPublicPem), HasSubstr("this is a public key"));
  EXPECT_THAT(signing_error(kEcPrivatePem), HasSubstr("PEM holds EC key"));
  const std::string truncated(kPrivatePem.substr(0, 40));
  EXPECT_THAT(signing_error(truncated), HasSubstr("truncated"));
  EXPECT_THAT(signing_error("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA\n-----END ENCRYPTED PRIVATE KEY-----"),
              HasSubstr("encrypted keys are not supported"));
}

TEST(SigningKey, QuotesOrAFlattenedPemAreNamed) {
  EXPECT_THAT(signing_error("\"" + escaped_newlines(kPrivatePem) + "\""), HasSubstr("wrapped in quotes"));
  std::string flattened(kPrivatePem);
  std::replace(flattened.begin(), flattened.end(), '\n', ' ');
  EXPECT_THAT(signing_error(flattened), HasSubstr("PEM has no line breaks around its body"));
}

TEST(SigningKey, TwoPemBlocksInOneValueAreRefused) {
  const std::string message = signing_error(std::string(kPrivatePem) + SigningKey::generate().to_pem());
  EXPECT_THAT(message, HasSubstr("second 'PRIVATE KEY' block; give one key"));
  EXPECT_THAT(message, Not(HasSubstr("commas")));
  // A key pair's file, the private key and then its public half, is one key.
  auto pair = SigningKey::parse(std::string(kPrivatePem) + std::string(kPublicPem));
  ASSERT_TRUE(pair.ok()) << pair.error().message();
  EXPECT_EQ(pair->public_key().to_base64(), kPublicBase64);
}

TEST(SigningKey, FromEnvNamesTheVariable) {
  ::setenv("DISPATCH_TEST_SKEY", "-----BEGIN PRIVATE KEY-----\\nMC4CAQAw", 1);
  auto bad = SigningKey::from_env("DISPATCH_TEST_SKEY");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("DISPATCH_TEST_SKEY: PEM has no"));
  ::setenv("DISPATCH_TEST_SKEY", "", 1);
  auto empty = SigningKey::from_env("DISPATCH_TEST_SKEY");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  ::unsetenv("DISPATCH_TEST_SKEY");
}

TEST(SigningKey, GeneratedKeysSignAndVerify) {
  const auto a = SigningKey::generate();
  const auto b = SigningKey::generate();
  EXPECT_NE(a.seed(), b.seed());
  const std::string signature = a.sign("message");
  EXPECT_EQ(signature.size(), 64u);
  EXPECT_TRUE(a.public_key().verify("message", signature));
  EXPECT_FALSE(a.public_key().verify("messagE", signature));
  EXPECT_FALSE(b.public_key().verify("message", signature));
  EXPECT_FALSE(a.public_key().verify("message", signature.substr(0, 63)));
  // PEM round trip.
  auto again = SigningKey::parse(a.to_pem());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->seed(), a.seed());
  auto pub = VerificationKey::parse(a.public_key().to_pem());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, a.public_key());
}

}  // namespace
}  // namespace dispatch::security
