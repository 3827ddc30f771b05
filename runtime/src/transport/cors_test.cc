// CORS: which origins are allowed, the preflight answer, the fields of an
// answer to an allowed page, and DISPATCH_CORS_ORIGINS; through
// RequestHandler::serve() as a server answers.
#include "transport/cors.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "transport/test_service.h"

namespace dispatch::transport {
namespace {

TEST(Cors, OriginsAreCheckedAndMatched) {
  for (const char* good : {"*", "https://app.example.com", "http://localhost:5173", "http://[::1]:8080"}) {
    EXPECT_TRUE(is_cors_origin(good)) << good;
  }
  for (const char* bad : {"", "app.example.com", "https://", "https://a.example/", "https://a.example/x",
                          "://a", "https://a b", "null*"}) {
    EXPECT_FALSE(is_cors_origin(bad)) << bad;
  }
  const std::vector<std::string> allowed{"https://app.example.com"};
  EXPECT_TRUE(cors_allows(allowed, "https://app.example.com"));
  EXPECT_TRUE(cors_allows(allowed, "HTTPS://App.Example.com"));
  EXPECT_FALSE(cors_allows(allowed, "https://app.example.com:8443"));
  EXPECT_FALSE(cors_allows(allowed, "https://evil.example"));
  EXPECT_FALSE(cors_allows(allowed, ""));
  EXPECT_TRUE(cors_allows({"*"}, "https://anyone.example"));
  EXPECT_FALSE(cors_allows({}, "https://app.example.com"));
}

class CorsServe : public ::testing::Test {
 protected:
  explicit CorsServe() { options_.logger = Logger(LogLevel::off); }
  Response answer(std::string_view bytes) {
    if (!handler_) handler_ = std::make_unique<RequestHandler>(table_, options_);
    auto r = handler_->serve_bytes(bytes);
    EXPECT_TRUE(r.has_value());
    return r ? *r : Response{};
  }
  static std::string field(const Response& r, boost::beast::http::field f) { return std::string(r[f]); }

  DispatchTable table_{&dispatch::testing::test_service()};
  ServerOptions options_;
  std::unique_ptr<RequestHandler> handler_;
};

const std::string kPreflight =
    "OPTIONS /t.TService/add HTTP/1.1\r\nHost: api\r\nOrigin: https://app.example.com\r\n"
    "Access-Control-Request-Method: POST\r\n"
    "Access-Control-Request-Headers: content-type, connect-protocol-version, authorization\r\n\r\n";
const std::string kCall =
    "POST /t.TService/add HTTP/1.1\r\nHost: api\r\nOrigin: https://app.example.com\r\n"
    "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"a\":1,\"b\":\"2\"}";

TEST_F(CorsServe, AnAllowedPageGetsItsPreflightAndReadableAnswers) {
  options_.cors_origins = {"https://app.example.com"};
  // Bearer keys are set: the preflight carries none and is answered anyway;
  // the call itself still needs one.
  options_.bearer_keys = std::make_shared<security::BearerKeys>(std::vector<std::string>{"k1"});
  namespace http = boost::beast::http;
  const Response pre = answer(kPreflight);
  EXPECT_EQ(pre.result_int(), 204u);
  EXPECT_EQ(field(pre, http::field::access_control_allow_origin), "https://app.example.com");
  EXPECT_EQ(field(pre, http::field::access_control_allow_methods), "POST, GET");
  EXPECT_EQ(field(pre, http::field::access_control_allow_headers),
            "content-type, connect-protocol-version, authorization");
  EXPECT_EQ(field(pre, http::field::vary), "Origin");
  EXPECT_EQ(pre.body(), "");

  const Response refused = answer(kCall);
  EXPECT_EQ(refused.result_int(), 401u) << refused.body();
  EXPECT_EQ(field(refused, http::field::access_control_allow_origin), "https://app.example.com");

  std::string with_key = kCall;
  with_key.insert(with_key.find("Content-Type"), "Authorization: Bearer k1\r\n");
  const Response ok = answer(with_key);
  EXPECT_EQ(ok.result_int(), 200u) << ok.body();
  EXPECT_EQ(ok.body(), R"({"result":"3"})");
  EXPECT_EQ(field(ok, http::field::access_control_allow_origin), "https://app.example.com");
  EXPECT_NE(field(ok, http::field::access_control_expose_headers).find("Grpc-Status"), std::string::npos);
}

TEST_F(CorsServe, OtherPagesAndServersWithoutOriginsGetNoCorsFields) {
  namespace http = boost::beast::http;
  auto other = [](std::string s) {
    s.replace(s.find("https://app.example.com"), 23, "https://evil.example");
    return s;
  };
  options_.cors_origins = {"https://app.example.com"};
  const Response pre = answer(other(kPreflight));
  EXPECT_EQ(pre.result_int(), 405u);  // OPTIONS on a method path, as without CORS
  EXPECT_EQ(field(pre, http::field::access_control_allow_origin), "");
  const Response call = answer(other(kCall));
  EXPECT_EQ(call.result_int(), 200u);
  EXPECT_EQ(field(call, http::field::access_control_allow_origin), "");

  handler_.reset();
  options_.cors_origins.clear();
  EXPECT_EQ(answer(kPreflight).result_int(), 405u);
  EXPECT_EQ(field(answer(kCall), http::field::access_control_allow_origin), "");

  handler_.reset();
  options_.cors_origins = {"*"};
  EXPECT_EQ(field(answer(other(kCall)), http::field::access_control_allow_origin), "https://evil.example");
}

TEST(Cors, OriginsFromTheEnvironment) {
  ::unsetenv("PORT");
  ::unsetenv("DISPATCH_ENDPOINT_ADDR");
  ::setenv("DISPATCH_CORS_ORIGINS", " https://a.example , http://localhost:5173,,", 1);
  auto o = ServerOptions::from_env();
  ASSERT_TRUE(o.ok()) << o.error().what();
  EXPECT_EQ(o->cors_origins, (std::vector<std::string>{"https://a.example", "http://localhost:5173"}));
  ::setenv("DISPATCH_CORS_ORIGINS", "https://a.example/app", 1);
  auto bad = ServerOptions::from_env();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            "DISPATCH_CORS_ORIGINS: 'https://a.example/app' is not an origin (scheme://host[:port], no path) or *");
  ::unsetenv("DISPATCH_CORS_ORIGINS");
  auto none = ServerOptions::from_env();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->cors_origins.empty());
}

}  // namespace
}  // namespace dispatch::transport
