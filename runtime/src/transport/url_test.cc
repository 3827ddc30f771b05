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

}  // namespace
}  // namespace dispatch::transport
