// route_protobuf_logs(): protobuf's own lines become lines of the Logger
// given (in its format, nothing on stderr), at most once per text within
// kRepeatEvery, and at the Logger's level.
#include "transport/protobuf_logs.h"

#include <google/protobuf/type.pb.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dispatch::transport {
namespace {

struct Line {
  LogLevel level;
  std::string text;
};

// A Logger writing into `lines`, JSON format.
Logger capturing(LogLevel level, const std::shared_ptr<std::vector<Line>>& lines) {
  return Logger(level, [lines](LogLevel l, std::string_view text) { lines->push_back({l, std::string(text)}); },
                LogFormat::json);
}

// "\x0a\x01\xff": field 1, a string of one byte that is not UTF-8.
const std::string kNotUtf8("\x0a\x01\xff", 3);

TEST(ProtobufLogs, AreTheLoggersLinesOncePerText) {
  auto lines = std::make_shared<std::vector<Line>>();
  route_protobuf_logs(capturing(LogLevel::info, lines));
  ::testing::internal::CaptureStderr();
  google::protobuf::StringValue value;
  EXPECT_FALSE(value.ParseFromString(kNotUtf8));
  EXPECT_FALSE(value.ParseFromString(kNotUtf8));  // the same text again: not written twice
  google::protobuf::Type type;                       // field 1 is its name
  EXPECT_FALSE(type.ParseFromString(kNotUtf8));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_EQ(lines->size(), 2u);
  for (const Line& line : *lines) EXPECT_EQ(line.level, LogLevel::warn);
  EXPECT_NE((*lines)[0].text.find(R"("message":"protobuf: String field 'google.protobuf.StringValue.value' )"
                                  R"(contains invalid UTF-8 data when parsing a protocol buffer.)"),
            std::string::npos)
      << (*lines)[0].text;
  EXPECT_NE((*lines)[1].text.find("'google.protobuf.Type.name' contains invalid UTF-8"), std::string::npos)
      << (*lines)[1].text;

  // A Logger that leaves warn out writes none of them.
  auto quiet = std::make_shared<std::vector<Line>>();
  route_protobuf_logs(capturing(LogLevel::error, quiet));
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(value.ParseFromString(kNotUtf8));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(quiet->empty());
}

TEST(ProtobufLogs, DistinctTextsAreBounded) {
  auto lines = std::make_shared<std::vector<Line>>();
  route_protobuf_logs(capturing(LogLevel::info, lines));
  // Many distinct texts at once (as a peer naming another field each time
  // would give): a bounded number is written, the rest dropped.
  for (int i = 0; i < 1000; ++i) {
    GOOGLE_LOG(WARNING) << "distinct " << i;
  }
  EXPECT_GE(lines->size(), 100u);
  EXPECT_LT(lines->size(), 1000u);
  route_protobuf_logs(Logger(LogLevel::off));
}

}  // namespace
}  // namespace dispatch::transport
