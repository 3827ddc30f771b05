#include "dispatch/core/logger.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "dispatch/core/service.h"

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
  // JSON lines carry them as members.
  ::setenv("K_SERVICE", "shop", 1);
  ::setenv("K_REVISION", "shop-00002", 1);
  ::setenv("DISPATCH_LOG_FORMAT", "json", 1);
  const Logger json = Logger::from_env();
  ::unsetenv("K_SERVICE");
  ::unsetenv("K_REVISION");
  ::unsetenv("DISPATCH_LOG_FORMAT");
  ::testing::internal::CaptureStderr();
  json.log(LogLevel::info, "listening");
  const auto parsed = nlohmann::json::parse(::testing::internal::GetCapturedStderr());
  EXPECT_EQ(parsed["service"], "shop");
  EXPECT_EQ(parsed["revision"], "shop-00002");
}

TEST(Logger, FormatFromEnv) {
  ::setenv("DISPATCH_LOG_FORMAT", "JSON", 1);
  EXPECT_EQ(Logger::from_env().format(), LogFormat::json);
  ::setenv("DISPATCH_LOG_FORMAT", "yaml", 1);
  EXPECT_EQ(Logger::from_env().format(), LogFormat::text);
  ::unsetenv("DISPATCH_LOG_FORMAT");
  EXPECT_EQ(Logger::from_env().format(), LogFormat::text);
}

TEST(Logger, JsonLinesAreObjectsAJsonParserReadsBack) {
  std::vector<std::string> lines;
  Logger logger(LogLevel::info, [&](LogLevel, std::string_view line) { lines.emplace_back(line); }, LogFormat::json);
  // Quotes, a newline, a control character and a byte that is not UTF-8.
  const std::string message = "bad \"input\"\n\x01 \xff end";
  logger.log(LogLevel::warn, message, LogFields{"shop.add", "d-1", "4bf92f3577b34da6a3ce929d0e0e4736"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
  auto parsed = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(parsed["level"], "warn");
  EXPECT_EQ(parsed["message"], "bad \"input\"\n\x01 \xef\xbf\xbd end");
  EXPECT_EQ(parsed["function"], "shop.add");
  EXPECT_EQ(parsed["dispatch_id"], "d-1");
  EXPECT_EQ(parsed["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed["time"].get<std::string>().size(), 24u);  // 2026-11-23T09:11:02.123Z
  logger.log(LogLevel::info, "plain");
  auto plain = nlohmann::json::parse(lines[1]);
  EXPECT_FALSE(plain.contains("trace_id"));
  EXPECT_FALSE(plain.contains("function"));
}

Result<std::string> log_from_inside(const MethodCall& call) {
  call.context.logger->log(LogLevel::info, "inside");
  return std::string();
}

TEST(Logger, ALineLoggedInsideACallCarriesItsFunctionDispatchIdAndTraceId) {
  static const Method method{"f", "/t.S/f", "t.Req", "t.Res", &log_from_inside};
  static const Service service{"t", "S", &method, 1, {}};
  DispatchTable table{&service};
  std::vector<std::string> text, json;
  Logger text_logger(LogLevel::info, [&](LogLevel, std::string_view line) { text.emplace_back(line); });
  Logger json_logger(LogLevel::info, [&](LogLevel, std::string_view line) { json.emplace_back(line); },
                     LogFormat::json);
  CallContext context;
  context.function = "t.f";
  context.dispatch_id = "d-9";
  context.trace = start_call_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", std::nullopt);
  context.logger = &text_logger;
  ASSERT_TRUE(table.invoke(method, "", context).ok());
  context.logger = &json_logger;
  ASSERT_TRUE(table.invoke(method, "", context).ok());
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0], "inside dispatch_id=d-9 trace_id=4bf92f3577b34da6a3ce929d0e0e4736");
  auto parsed = nlohmann::json::parse(json.at(0));
  EXPECT_EQ(parsed["function"], "t.f");
  EXPECT_EQ(parsed["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  // Outside a call, no fields.
  text_logger.log(LogLevel::info, "outside");
  EXPECT_EQ(text.back(), "outside");
}

}  // namespace
}  // namespace dispatch
