// parse_url(): the parts of every accepted base URL form, and the reason
// given for each refused one.
#include "transport/url.h"

#include <gtest/gtest.h>

namespace dispatch::transport {
namespace {

TEST(Url, PlainHostPortAndPrefix) {
  auto u = parse_url("http://127.0.0.1:8000/api/v1//");
  ASSERT_TRUE(u.ok()) << u.error().what();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8000");
  EXPECT_EQ(u->authority, "127.0.0.1:8000");
  EXPECT_EQ(u->prefix, "/api/v1");
  EXPECT_EQ(u->origin(), "http://127.0.0.1:8000");
}

TEST(Url, DefaultPortsAreFilledInButNotAddedToTheHostHeader) {
  auto plain = parse_url("http://example.com");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, "80");
  EXPECT_EQ(plain->authority, "example.com");
  EXPECT_EQ(plain->prefix, "");
  auto tls = parse_url("https://example.com/");
  ASSERT_TRUE(tls.ok());
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->port, "443");
  EXPECT_EQ(tls->prefix, "");
  EXPECT_EQ(tls->origin(), "https://example.com");
}

TEST(Url, BracketedIpv6Host) {
  auto u = parse_url("http://[::1]:8000/prefix/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8000");
  EXPECT_EQ(u->authority, "[::1]:8000");
  EXPECT_EQ(u->prefix, "/prefix");
  auto no_port = parse_url("https://[::1]");
  ASSERT_TRUE(no_port.ok());
  EXPECT_EQ(no_port->port, "443");
}

TEST(Url, RefusedFormsSayWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "has no http:// or https:// scheme"},
      {"127.0.0.1:80", "has no http:// or https:// scheme"},
      {"ftp://x", "has no http:// or https:// scheme"},
      {"http://", "has no host"},
      {"http://:80", "has no host"},
      {"http://h:0", "has an invalid port"},
      {"http://h:99999", "has an invalid port"},
      {"http://h:123456", "has an invalid port"},
      {"http://h:8x", "has an invalid port"},
      {"http://u:p@h", "carries credentials; use api_key"},
      {"http://[::1", "has an unterminated [IPv6] host"},
      {"http://[::1]x", "has junk after the [IPv6] host"},
  };
  for (const auto& [url, why] : cases) {
    auto u = parse_url(url);
    ASSERT_FALSE(u.ok()) << url;
    EXPECT_EQ(u.error().code(), Code::invalid_argument);
    EXPECT_EQ(u.error().message(), "base URL '" + std::string(url) + "' " + why +
                                       "; expected http://host[:port][/prefix] or https://...");
  }
}

TEST(ParseUrl, KeepsThePathAsWrittenBesideThePrefix) {
  auto u = parse_url("http://[::1]:8080/hooks/orders/?x=1");
  ASSERT_TRUE(u.ok()) << u.error().message();
  EXPECT_EQ(u->path, "/hooks/orders/?x=1");  // a POST target, trailing '/' and query kept
  EXPECT_EQ(u->prefix, "/hooks/orders/?x=1");
  EXPECT_EQ(u->authority, "[::1]:8080");  // the Host header, brackets kept
  auto bare = parse_url("http://h");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->path, "/");
  EXPECT_EQ(bare->prefix, "");
  auto slash = parse_url("http://h/base/");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->path, "/base/");
  EXPECT_EQ(slash->prefix, "/base");
}

TEST(ParseUrl, ErrorsNameWhatTheUrlIsForAndCutLongUrls) {
  auto u = parse_url("ftp://h", "event sink URL");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message(), "event sink URL 'ftp://h' has no http:// or https:// scheme; expected "
                                 "http://host[:port][/prefix] or https://...");
  const std::string long_url = "http://" + std::string(300, 'a') + ":x";
  auto cut = parse_url(long_url);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message().find("'" + long_url.substr(0, 200) + "'"), std::string::npos);
  EXPECT_EQ(cut.error().message().find(long_url.substr(0, 201)), std::string::npos);
}

}  // namespace
}  // namespace dispatch::transport
