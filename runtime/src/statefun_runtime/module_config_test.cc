// StateFun's module configuration: routes by exact type before namespace,
// {function.name} substitution, StateFun's defaults and Flink durations,
// connectors skipped with a warning, and every malformed input refused with
// where and what.
#include "dispatch/statefun_runtime/module_config.h"

#include <gtest/gtest.h>

namespace dispatch::statefun {
namespace {

using std::chrono::milliseconds;

TEST(ModuleConfig, RoutesAnExactTypeBeforeItsNamespaceAndFillsInTheName) {
  auto c = ModuleConfig::parse(R"(
kind: io.statefun.endpoints.v2/http
spec:
  functions: com.example/*
  urlPathTemplate: http://localhost:8000/statefun/{function.name}
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: com.example/special
  urlPathTemplate: https://special.example:9000/fn
  maxNumBatchRequests: 10
  transport:
    timeouts:
      call: 2 min
      connect: 5s
      read: 750 ms
      write: 1minutes
---
kind: io.statefun.kafka.v1/ingress
spec:
  address: kafka:9092
)");
  ASSERT_TRUE(c.ok()) << c.error().what();
  auto greeter = c->route("com.example/greeter");
  ASSERT_TRUE(greeter.has_value());
  EXPECT_EQ(greeter->url, "http://localhost:8000/statefun/greeter");
  EXPECT_EQ(greeter->max_batch, 1000u);
  EXPECT_EQ(greeter->call_timeout, milliseconds(60'000));
  EXPECT_EQ(greeter->read_timeout, milliseconds(10'000));
  auto special = c->route("com.example/special");
  ASSERT_TRUE(special.has_value());
  EXPECT_EQ(special->url, "https://special.example:9000/fn");
  EXPECT_EQ(special->max_batch, 10u);
  EXPECT_EQ(special->call_timeout, milliseconds(120'000));
  EXPECT_EQ(special->connect_timeout, milliseconds(5'000));
  EXPECT_EQ(special->read_timeout, milliseconds(750));
  EXPECT_EQ(special->write_timeout, milliseconds(60'000));
  EXPECT_FALSE(c->route("org.other/greeter").has_value());
  EXPECT_FALSE(c->route("com.example").has_value());
  ASSERT_EQ(c->warnings().size(), 1u);
  EXPECT_NE(c->warnings()[0].find("io.statefun.kafka.v1/ingress"), std::string::npos);
  EXPECT_NE(c->warnings()[0].find("document 3"), std::string::npos);
}

TEST(ModuleConfig, ReadsTheAsyncTransportsTimeoutsAndHttpEgresses) {
  auto c = ModuleConfig::parse(R"(
kind: io.statefun.endpoints.v2/http
spec:
  functions: a.b/f
  urlPathTemplate: http://h:1/{function.name}/{function.name}
  transport:
    type: io.statefun.transports.v1/async
    call: 30 s
    connect: 2 s
---
kind: dispatch.statefun.v1/http-egress
spec:
  id: out/receipts
  url: http://127.0.0.1:9/hook
  timeout: 3 s
)");
  ASSERT_TRUE(c.ok()) << c.error().what();
  auto f = c->route("a.b/f");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->url, "http://h:1/f/f");
  EXPECT_EQ(f->call_timeout, milliseconds(30'000));
  EXPECT_EQ(f->connect_timeout, milliseconds(2'000));
  ASSERT_EQ(c->http_egresses().size(), 1u);
  EXPECT_EQ(c->http_egresses()[0].egress, "out/receipts");
  EXPECT_EQ(c->http_egresses()[0].url, "http://127.0.0.1:9/hook");
  EXPECT_EQ(c->http_egresses()[0].timeout, milliseconds(3'000));
}

TEST(ModuleConfig, RefusesMalformedComponentsSayingWhereAndWhat) {
  struct Case {
    const char* yaml;
    const char* says;
  };
  const Case cases[] = {
      {"kind: [unclosed", "not valid YAML"},
      {"- just\n- a list\n", "a map with 'kind'"},
      {"spec: {}\n", "missing 'kind'"},
      {"kind: io.statefun.endpoints.v2/http\n", "missing 'spec'"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  urlPathTemplate: http://h/\n", "missing spec.functions"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n", "missing spec.urlPathTemplate"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: noslash\n  urlPathTemplate: http://h/\n",
       "<namespace>/<name>"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a*/b\n  urlPathTemplate: http://h/\n",
       "<namespace>/*"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b*\n  urlPathTemplate: http://h/\n",
       "not a function type"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n  urlPathTemplate: ftp://h/\n",
       "not an http:// or https:// URL"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n  urlPathTemplate: http+unix:///s.sock/f\n",
       "http+unix"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n  urlPathTemplate: http://h/\n"
       "  maxNumBatchRequests: lots\n",
       "maxNumBatchRequests must be a positive number"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n  urlPathTemplate: http://h/\n"
       "  transport:\n    timeouts:\n      call: 3 fortnights\n",
       "unknown time unit 'fortnights'"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n  urlPathTemplate: http://h/\n"
       "  transport:\n    timeouts:\n      read: soon\n",
       "timeouts.read"},
      {"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/\n---\n"
       "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://g/\n",
       "already served by module.yaml, document 1"},
      {"version: \"3.0\"\nmodule:\n  meta:\n    type: remote\n", "3.1+ format"},
      {"kind: dispatch.statefun.v1/http-egress\nspec:\n  url: http://h/\n", "needs 'id"},
      {"kind: dispatch.statefun.v1/http-egress\nspec:\n  id: a/b\n  url: mailto:x\n", "not an http://"},
  };
  for (const Case& c : cases) {
    auto r = ModuleConfig::parse(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find(c.says), std::string::npos)
        << "for:\n" << c.yaml << "\ngot: " << r.error().message();
    EXPECT_NE(r.error().message().find("module.yaml"), std::string::npos) << r.error().message();
  }
}

TEST(ModuleConfig, ALoadedFileThatIsMissingSaysWhich) {
  auto r = ModuleConfig::load("/nonexistent/module.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("/nonexistent/module.yaml"), std::string::npos);
}

TEST(FlinkDuration, ReadsFlinksUnitsAndBareMilliseconds) {
  EXPECT_EQ(parse_flink_duration("1 min").value(), milliseconds(60'000));
  EXPECT_EQ(parse_flink_duration("10sec").value(), milliseconds(10'000));
  EXPECT_EQ(parse_flink_duration("10seconds").value(), milliseconds(10'000));
  EXPECT_EQ(parse_flink_duration("250").value(), milliseconds(250));
  EXPECT_EQ(parse_flink_duration("2 H").value(), milliseconds(7'200'000));
  EXPECT_EQ(parse_flink_duration("1d").value(), milliseconds(86'400'000));
  EXPECT_EQ(parse_flink_duration("1500 us").value(), milliseconds(1));
  EXPECT_FALSE(parse_flink_duration("").ok());
  EXPECT_FALSE(parse_flink_duration("min").ok());
  EXPECT_FALSE(parse_flink_duration("-1 s").ok());
  EXPECT_FALSE(parse_flink_duration("1.5 s").ok());
  EXPECT_FALSE(parse_flink_duration("99999999999999999999 d").ok());
}

TEST(TypeName, SplitsAtTheLastSlash) {
  EXPECT_EQ(split_typename("com.example/greeter").value(), std::make_pair(std::string("com.example"), std::string("greeter")));
  EXPECT_EQ(split_typename("a/b/c").value(), std::make_pair(std::string("a/b"), std::string("c")));
  EXPECT_FALSE(split_typename("nons").has_value());
  EXPECT_FALSE(split_typename("/x").has_value());
  EXPECT_FALSE(split_typename("x/").has_value());
}

}  // namespace
}  // namespace dispatch::statefun
