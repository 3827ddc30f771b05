// base64_decode's strictness: the standard alphabet only, whatever the
// codec underneath would take.
#include "security/base64.h"

#include <gtest/gtest.h>

namespace dispatch::security::detail {
namespace {

TEST(Base64, DecodesTheStandardAlphabetPaddedOrNot) {
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64_decode("+/+/"), std::string("\xfb\xff\xbf", 3));
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode(base64_encode(std::string("\0\x01\xfe\xff", 4))), std::string("\0\x01\xfe\xff", 4));
}

// Every byte outside the alphabet, in a place where a digit would do:
// libsodium 1.0.18 alone takes the bytes from 0x80 up (a fuzz run of the
// JSON fast path found "Infin\xd1\x9eN" decoded to six bytes).
TEST(Base64, RefusesEveryByteOutsideTheAlphabet) {
  EXPECT_FALSE(base64_decode("Infin\xd1\x9eN"));
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool digit = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                       c == '/';
    std::string text = "aGVs";
    text[1] = c;
    EXPECT_EQ(base64_decode(text).has_value(), digit) << "byte " << b;
  }
  for (const char* bad : {"aGVs bG8=", "aGVs\nbG8=", "aGVsbG8=x", "aG=sbG8=", "-_-_"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

TEST(Base64, UrlSafeDecodesItsOwnAlphabetOnly) {
  EXPECT_EQ(base64url_decode("-_-_"), std::string("\xfb\xff\xbf", 3));
  EXPECT_EQ(base64url_encode(std::string("\xfb\xff\xbf", 3)), "-_-_");
  EXPECT_EQ(base64url_encode("hello"), "aGVsbG8");  // unpadded
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_decode(base64url_encode(std::string("\0\x01\xfe\xff", 4))), std::string("\0\x01\xfe\xff", 4));
  EXPECT_EQ(base64url_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64url_decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64url_decode(""), "");
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool digit = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                       c == '_';
    std::string text = "aGVs";
    text[1] = c;
    EXPECT_EQ(base64url_decode(text).has_value(), digit) << "byte " << b;
  }
  for (const char* bad : {"+/+/", "aGVsbG8=x", "aG=sbG8=", "aGVsbG8=="}) EXPECT_FALSE(base64url_decode(bad)) << bad;
}

}  // namespace
}  // namespace dispatch::security::detail
