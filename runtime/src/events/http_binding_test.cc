// The HTTP binding's pure parts: content modes, header value encoding (the
// binding's own examples), binary-mode reading and writing, and the spec's
// checks on an event.
#include "dispatch/events/http_binding.h"

#include <gtest/gtest.h>

namespace dispatch::events {
namespace {

TEST(ContentMode, TellsTheModesApartByContentType) {
  EXPECT_EQ(content_mode("application/cloudevents+json; charset=UTF-8"), ContentMode::structured);
  EXPECT_EQ(content_mode("Application/CloudEvents+JSON"), ContentMode::structured);
  EXPECT_EQ(content_mode("application/cloudevents-batch+json"), ContentMode::batch);
  EXPECT_EQ(content_mode("application/json"), ContentMode::binary);
  EXPECT_EQ(content_mode(""), ContentMode::binary);
}

TEST(HeaderValues, EncodeAsTheBindingsExampleDoes) {
  EXPECT_EQ(percent_encode("Euro \xE2\x82\xAC \xF0\x9F\x98\x80"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
  EXPECT_EQ(percent_encode("a\"b%c"), "a%22b%25c");
  EXPECT_EQ(percent_encode("/mycontext/subcontext"), "/mycontext/subcontext");
  EXPECT_EQ(percent_encode(std::string("\x7f\x01", 2)), "%7F%01");
}

// Every byte value at every place of values of several lengths: a plain
// value is exactly one that is its own encoding.
TEST(HeaderValues, PlainTextIsExactlyWhatEncodingLeavesAlone) {
  for (std::size_t size : {1, 7, 8, 9, 16, 19}) {
    for (std::size_t at = 0; at < size; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string s(size, 'a');
        s[at] = static_cast<char>(b);
        const bool plain = b > 0x20 && b < 0x7F && b != '"' && b != '%';
        ASSERT_EQ(is_plain_header_text(s), plain) << "byte " << b << " at " << at << " of " << size;
        ASSERT_EQ(percent_encode(s) == s, plain) << "byte " << b << " at " << at << " of " << size;
      }
    }
  }
  EXPECT_TRUE(is_plain_header_text(""));
  EXPECT_TRUE(is_plain_header_text("01a2486b-6801-4782-b033-94eb87c7ded6"));
}

TEST(HeaderValues, DecodeEitherHexCaseAndUnnecessaryEncoding) {
  EXPECT_EQ(decode_header_value("Euro%20%e2%82%ac%20%F0%9F%98%80").value(), "Euro \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(decode_header_value("%41BC").value(), "ABC");
  EXPECT_EQ(decode_header_value("").value(), "");
}

TEST(HeaderValues, UnquoteBeforeDecoding) {
  EXPECT_EQ(decode_header_value(R"("a b \"c\" %20")").value(), "a b \"c\"  ");
  EXPECT_FALSE(decode_header_value(R"("unterminated)").ok());
  EXPECT_FALSE(decode_header_value(R"("x" trailing)").ok());
}

TEST(HeaderValues, RefuseBadEncodingsAndInvalidUtf8) {
  for (const char* bad : {"%", "%4", "%G0", "abc%", "%C0%A0", "%FF", "%ED%A0%80"}) {
    auto r = decode_header_value(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
  }
  EXPECT_NE(decode_header_value("%C0%A0").error().message().find("UTF-8"), std::string::npos);
}

HeaderViews headers_of(const std::vector<std::pair<std::string, std::string>>& lines) {
  HeaderViews out;
  for (const auto& [n, v] : lines) out.emplace_back(n, v);
  return out;
}

TEST(BinaryMode, ReadsAttributesFromCeHeadersAndDataFromTheBody) {
  const std::vector<std::pair<std::string, std::string>> lines = {
      {"Host", "webhook.example.com"},
      {"CE-SpecVersion", "1.0"},
      {"ce-type", "com.example.someevent"},
      {"ce-time", "2018-04-05T03:56:24Z"},
      {"ce-id", "1234-1234-1234"},
      {"ce-source", "/mycontext/subcontext"},
      {"ce-subject", "caf%C3%A9%20%22x%22"},
      {"ce-comexampleextension1", "value"},
      {"Content-Type", "application/json; charset=utf-8"}};
  auto e = from_binary(headers_of(lines), R"({"a":1})");
  ASSERT_TRUE(e.ok()) << e.error().what();
  EXPECT_EQ(e->specversion, "1.0");
  EXPECT_EQ(e->type, "com.example.someevent");
  EXPECT_EQ(e->time, "2018-04-05T03:56:24Z");
  EXPECT_EQ(e->subject, "caf\xC3\xA9 \"x\"");
  EXPECT_EQ(e->datacontenttype, "application/json; charset=utf-8");
  EXPECT_EQ(e->extensions.at("comexampleextension1").text, "value");
  EXPECT_EQ(e->data, R"({"a":1})");
}

TEST(BinaryMode, WritesWhatItReads) {
  CloudEvent e;
  e.id = "id 1";
  e.source = "/s";
  e.type = "t.x";
  e.subject = "\xE2\x82\xAC";
  e.datacontenttype = "text/plain";
  e.extensions["traceparent"] = {"00-abc", AttributeKind::string};
  e.data = "hello";
  const HeaderLines lines = binary_headers(e);
  std::vector<std::pair<std::string, std::string>> copy(lines.begin(), lines.end());
  auto back = from_binary(headers_of(copy), *e.data);
  ASSERT_TRUE(back.ok()) << back.error().what();
  EXPECT_EQ(*back, e);
  bool saw_encoded_id = false;
  for (const auto& [n, v] : lines) saw_encoded_id = saw_encoded_id || (n == "ce-id" && v == "id%201");
  EXPECT_TRUE(saw_encoded_id);
}

// Taking the event (a server's reply) gives the headers copying it gives,
// encoding where needed, and leaves the data for the body.
TEST(BinaryMode, TakingTheEventWritesTheSameHeaders) {
  CloudEvent e;
  e.id = "6f1c0c52-2d2e-4a8e-9b7c-3c2d1e0f9a8b";
  e.source = "/a source with spaces and a long path";
  e.type = "t.x";
  e.subject = "caf\xC3\xA9";
  e.time = "2026-12-05T03:00:00Z";
  e.datacontenttype = "application/protobuf";
  e.extensions["traceparent"] = {"00-abc", AttributeKind::string};
  e.extensions["n"] = {"100%", AttributeKind::string};
  e.data = "some bytes of the reply's data";
  const HeaderLines copied = binary_headers(e);
  CloudEvent taken = e;
  const HeaderLines moved = binary_headers(std::move(taken));
  EXPECT_EQ(moved, copied);
  EXPECT_EQ(taken.data, e.data);  // NOLINT(bugprone-use-after-move): data is documented as left in place
}

TEST(BinaryMode, RefusesWhatTheBindingForbids) {
  auto base = std::vector<std::pair<std::string, std::string>>{
      {"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "t"}};
  auto with = [&](std::pair<std::string, std::string> extra) {
    auto lines = base;
    lines.push_back(std::move(extra));
    return from_binary(headers_of(lines), "");
  };
  EXPECT_TRUE(from_binary(headers_of(base), "").ok());
  EXPECT_FALSE(with({"ce-datacontenttype", "application/json"}).ok());
  EXPECT_FALSE(with({"ce-id", "2"}).ok());        // repeated
  EXPECT_FALSE(with({"CE-Type", "t"}).ok());      // repeated, another case
  auto twice = base;
  twice.emplace_back("ce-traceid", "a");
  twice.emplace_back("ce-TraceId", "b");
  auto repeated = from_binary(headers_of(twice), "");  // a repeated extension
  ASSERT_FALSE(repeated.ok());
  EXPECT_NE(repeated.error().message().find("ce-traceid appears more than once"), std::string::npos)
      << repeated.error().message();
  EXPECT_FALSE(with({"ce-bad_name", "x"}).ok());  // not [a-z0-9]
  EXPECT_FALSE(with({"ce-subject", "%C0%A0"}).ok());
  EXPECT_FALSE(with({"ce-subject", "a%0Ab"}).ok());  // a control character
  auto missing = from_binary(headers_of({{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "t"}}), "");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("'source'"), std::string::npos) << missing.error().message();
  auto version = from_binary(
      headers_of({{"ce-specversion", "0.3"}, {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "t"}}), "");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.error().message().find("unknown specversion '0.3'"), std::string::npos);
}

CloudEvent valid() {
  CloudEvent e;
  e.id = "1";
  e.source = "/s";
  e.type = "t";
  return e;
}

TEST(CheckEvent, AcceptsAMinimalEvent) { EXPECT_TRUE(check_event(valid()).ok()); }

TEST(CheckEvent, RefusesEachBrokenRule) {
  auto refused = [](CloudEvent e, const char* needle) {
    auto r = check_event(e);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  };
  CloudEvent e = valid();
  e.id.clear();
  refused(e, "'id'");
  e = valid();
  e.specversion = "2.0";
  refused(e, "unknown specversion");
  e = valid();
  e.subject = "";
  refused(e, "'subject' is empty");
  e = valid();
  e.time = "yesterday";
  refused(e, "RFC 3339");
  e = valid();
  e.datacontenttype = "json";
  refused(e, "not a media type");
  e = valid();
  e.extensions["Upper"] = {"x"};
  refused(e, "lower-case");
  e = valid();
  e.extensions["data"] = {"x"};
  refused(e, "'data'");
  e = valid();
  e.extensions["n"] = {"4294967296", AttributeKind::integer};
  refused(e, "32-bit");
  e = valid();
  e.extensions["b"] = {"yes", AttributeKind::boolean};
  refused(e, "true or false");
  e = valid();
  e.type = "a\x01";
  refused(e, "control character U+0001");
  for (const char* longer : {"abcdefgh\x7F", "abcdefg\x1F", "\x7F" "bcdefghijklmnop", "abcdefghijklmno\x01"}) {
    e = valid();
    e.id = longer;  // at the end, at the start, in longer values
    refused(e, "control character U+00");
  }
  e = valid();
  e.id = "a b \"c\" 100% ~";  // printable ASCII, space and all
  EXPECT_TRUE(check_event(e).ok());
  e = valid();
  e.type = "a\xC2\x85";  // U+0085, a C1 control
  refused(e, "control character U+0085");
  e = valid();
  e.type = "a\xEF\xBF\xBF";  // U+FFFF
  refused(e, "noncharacter U+FFFF");
  e = valid();
  e.source = "\xC3";
  refused(e, "UTF-8");
}

TEST(CheckEvent, TakesEveryFormOfAnRfc3339Time) {
  // Lower-case 't' and 'z' (RFC 3339 section 5.6), a leap second (5.7), an
  // offset and nanoseconds: a valid event refused with 400 is lost, as
  // Knative does not retry it.
  for (const char* time : {"2018-04-05T17:31:00Z", "2018-04-05t17:31:00z", "2016-12-31T23:59:60Z",
                           "2018-04-05T17:31:00.123456789+01:00"}) {
    CloudEvent e = valid();
    e.time = time;
    EXPECT_TRUE(check_event(e).ok()) << time;
  }
  for (const char* time : {"2018-04-05 17:31:00Z", "2018-04-05T17:31:00", "2018-04-05T17:31:61Z", "t"}) {
    CloudEvent e = valid();
    e.time = time;
    EXPECT_FALSE(check_event(e).ok()) << time;
  }
}

TEST(MediaType, LowerCasesAndDropsParameters) {
  EXPECT_EQ(media_type(" Application/JSON ; charset=utf-8"), "application/json");
  EXPECT_TRUE(is_json_media("application/json"));
  EXPECT_TRUE(is_json_media("application/vnd.api+json"));
  EXPECT_TRUE(is_json_media("text/json"));
  EXPECT_FALSE(is_json_media("application/jsonx"));
  EXPECT_FALSE(is_json_media("text/plain"));
}

}  // namespace
}  // namespace dispatch::events
