#include "dispatch/core/logger.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace dispatch {
namespace {

TEST(Logger, LevelsFilter) {
  std::vector<std::string> lines;
  Logger logger(LogLevel::warn, [&](LogLevel, std::string_view line) { lines.emplace_back(line); });
  logger.log(LogLevel::info, "quiet");
  logger.log(LogLevel::warn, "loud");
  logger.log(LogLevel::error, "louder");
  EXPECT_EQ(lines, (std::vector<std::string>{"loud", "louder"}));
  Logger off(LogLevel::off, [&](LogLevel, std::string_view line) { lines.emplace_back(line); });
  off.log(LogLevel::error, "never");
  EXPECT_EQ(lines.size(), 2u);
}

TEST(Logger, ParsesNames) {
  EXPECT_EQ(log_level_from_name("DEBUG"), LogLevel::debug);
  EXPECT_EQ(log_level_from_name("warning"), LogLevel::warn);
  EXPECT_EQ(log_level_from_name("off"), LogLevel::off);
  EXPECT_FALSE(log_level_from_name("loud"));
}

TEST(Logger, FromEnv) {
  ::setenv("DISPATCH_LOG_LEVEL", "error", 1);
  EXPECT_EQ(Logger::from_env().level(), LogLevel::error);
  ::setenv("DISPATCH_LOG_LEVEL", "bogus", 1);
  EXPECT_EQ(Logger::from_env().level(), LogLevel::info);
  ::unsetenv("DISPATCH_LOG_LEVEL");
  EXPECT_EQ(Logger::from_env().level(), LogLevel::info);
}

TEST(Logger, FromEnvLabelsEveryLineWithTheKnativeServiceAndRevision) {
  ::setenv("K_SERVICE", "shop", 1);
  ::setenv("K_REVISION", "shop-00002", 1);
  const Logger logger = Logger::from_env();
  ::unsetenv("K_SERVICE");
  ::unsetenv("K_REVISION");
  ::testing::internal::CaptureStderr();
  logger.log(LogLevel::info, "listening");
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find(" info listening service=shop revision=shop-00002\n"), std::string::npos) << out;
  ::testing::internal::CaptureStderr();
  Logger::from_env().log(LogLevel::info, "plain");
  const std::string plain = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(plain.find(" info plain\n"), std::string::npos) << plain;
}

}  // namespace
}  // namespace dispatch
