// BearerKeys: Authorization: Bearer <key> against a configured set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dispatch/security/signature.h"

namespace dispatch::security {
namespace {

using ::testing::HasSubstr;

TEST(BearerKeys, AcceptsAnyConfiguredKey) {
  BearerKeys keys({"alpha-key", "beta-key"});
  EXPECT_TRUE(keys.check("Bearer alpha-key"));
  EXPECT_TRUE(keys.check("Bearer beta-key"));
  EXPECT_TRUE(keys.check("bearer beta-key"));  // scheme is case-insensitive
  EXPECT_TRUE(keys.check("Bearer   beta-key  "));
}

TEST(BearerKeys, RefusesOthers) {
  BearerKeys keys({"alpha-key"});
  EXPECT_FALSE(keys.check("Bearer alpha-ke"));
  EXPECT_FALSE(keys.check("Bearer alpha-key2"));
  EXPECT_FALSE(keys.check("Bearer ALPHA-KEY"));
  EXPECT_FALSE(keys.check("Basic alpha-key"));
  EXPECT_FALSE(keys.check("Beareralpha-key"));
  EXPECT_FALSE(keys.check("Bearer "));
  EXPECT_FALSE(keys.check(""));
}

TEST(BearerKeys, EmptyKeysNeverMatch) {
  BearerKeys keys({""});
  EXPECT_TRUE(keys.empty());
  EXPECT_FALSE(keys.check("Bearer "));
}

TEST(BearerKeys, AuthorizeSaysWhatIsWrong) {
  BearerKeys keys({"alpha-key"});
  EXPECT_TRUE(keys.authorize("Bearer alpha-key").ok());
  auto missing = keys.authorize(std::nullopt);
  EXPECT_EQ(missing.error().code(), Code::unauthenticated);
  EXPECT_THAT(missing.error().message(), HasSubstr("missing Authorization"));
  EXPECT_THAT(keys.authorize("Basic x").error().message(), HasSubstr("not a Bearer token"));
  EXPECT_THAT(keys.authorize("Bearer nope").error().message(), HasSubstr("unknown API key"));
}

}  // namespace
}  // namespace dispatch::security
