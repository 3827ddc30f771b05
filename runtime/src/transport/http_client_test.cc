// dispatch::HttpClient against a local dispatch::Server and against nothing:
// URL checks, unreachable servers, timeouts, stale keep-alive connections,
// the decorate hook and the API key.
#include "dispatch/http_client.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <thread>

#include "dispatch/server.h"
#include "test_service.h"

namespace dispatch {
namespace {

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// A port nobody listens on: bind one, note it, close it.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

ServerOptions quiet_options() {
  ServerOptions options;
  options.port = 0;
  options.logger = Logger(LogLevel::off);
  return options;
}

TEST(HttpClient, RejectsMalformedUrls) {
  for (const char* bad : {"", "127.0.0.1:80", "ftp://x", "http://", "http://:80", "http://h:0", "http://h:99999",
                          "http://h:8x", "http://u:p@h", "http://[::1"}) {
    auto r = HttpClient::create(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_TRUE(contains(r.error().message(), "base URL")) << r.error().message();
  }
  EXPECT_THROW(HttpClient("nope"), Error);
  EXPECT_TRUE(HttpClient::create("http://[::1]:8000/prefix/").ok());
  EXPECT_TRUE(HttpClient::create("https://example.com").ok());
}

TEST(HttpClient, UnreachableServerIsUnavailableWithTheAddress) {
  const uint16_t port = closed_port();
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto r = client.call("/t.TService/add", "", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_TRUE(contains(r.error().message(), "127.0.0.1:" + std::to_string(port))) << r.error().message();
  EXPECT_EQ(client.stats().connections_opened, 0u);
}

TEST(HttpClient, CallTimeoutIsDeadlineExceeded) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  CallOptions options;
  options.timeout = std::chrono::milliseconds(50);
  auto r = client.call("/t.TService/slow", testing::varint_field(1, 400), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::deadline_exceeded);
  EXPECT_TRUE(contains(r.error().message(), "50 ms")) << r.error().message();
  // The timed-out connection is not reused; the next call still works.
  EXPECT_TRUE(client.call("/t.TService/add", "", {}).ok());
  EXPECT_EQ(client.stats().connections_opened, 2u);
}

TEST(HttpClient, ReconnectsWhenTheServerClosedAnIdleConnection) {
  DispatchTable table{&testing::test_service()};
  ServerOptions options = quiet_options();
  options.idle_timeout = std::chrono::milliseconds(50);
  Server server(table, options);
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_TRUE(client.call("/t.TService/add", "", {}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the server drop it
  auto r = client.call("/t.TService/add", testing::varint_field(1, 7), {});
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(testing::read_varints(*r)[1], 7u);
  EXPECT_EQ(client.stats().connections_opened, 2u);
}

TEST(HttpClient, SendsApiKeyDecoratedAndCallHeaders) {
  DispatchTable table{&testing::test_service()};
  ServerOptions options = quiet_options();
  std::mutex mu;
  std::string seen;
  options.authenticate = [&](const RequestInfo& info) -> Result<void> {
    std::lock_guard lock(mu);
    seen = std::string(info.header("authorization").value_or("-")) + "|" +
           std::string(info.header("x-signature").value_or("-")) + "|" +
           std::string(info.header("x-trace").value_or("-")) + "|" +
           std::string(info.header("connect-protocol-version").value_or("-")) + "|" +
           std::string(info.header("connect-timeout-ms").value_or("-"));
    return {};
  };
  Server server(table, options);
  ASSERT_TRUE(server.start().ok());
  HttpClientOptions client_options;
  client_options.api_key = "k123";
  std::string hooked;
  client_options.decorate = [&](std::string_view method, std::string_view path, std::string_view authority,
                                std::string_view content_type, std::string_view body,
                                std::vector<std::pair<std::string, std::string>>& headers) {
    hooked = std::string(method) + " " + std::string(path) + " " + std::string(authority) + " " +
             std::string(content_type) + " " + std::to_string(body.size());
    headers.emplace_back("x-signature", "sig");
  };
  const std::string authority = "127.0.0.1:" + std::to_string(server.port());
  HttpClient client("http://" + authority, client_options);
  CallOptions call;
  call.headers.emplace_back("x-trace", "t1");
  call.timeout = std::chrono::seconds(30);
  ASSERT_TRUE(client.call("/t.TService/add", testing::varint_field(1, 1), call).ok());
  EXPECT_EQ(hooked, "POST /t.TService/add " + authority + " application/proto 2");
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, "Bearer k123|sig|t1|1|30000");
}

TEST(HttpClient, ApiKeyFromEnv) {
  ::setenv("DISPATCH_API_KEY", "from-env", 1);
  EXPECT_EQ(HttpClientOptions::from_env().api_key, "from-env");
  ::unsetenv("DISPATCH_API_KEY");
  EXPECT_EQ(HttpClientOptions::from_env().api_key, "");
}

TEST(HttpClient, AsyncCallsComeBackThroughTheCallback) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  std::vector<std::future<Result<std::string>>> futures;
  std::vector<std::shared_ptr<std::promise<Result<std::string>>>> promises;
  for (int i = 0; i < 20; ++i) {
    auto p = std::make_shared<std::promise<Result<std::string>>>();
    futures.push_back(p->get_future());
    client.call_async("/t.TService/add", testing::varint_field(1, i), {},
                      [p](Result<std::string> r) { p->set_value(std::move(r)); });
  }
  for (int i = 0; i < 20; ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(testing::read_varints(*r)[1], static_cast<uint64_t>(i));
  }
}

TEST(HttpClient, TlsToAPlainServerFailsAsUnavailable) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("https://127.0.0.1:" + std::to_string(server.port()));
  auto r = client.call("/t.TService/add", "", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_TRUE(contains(r.error().message(), "TLS handshake")) << r.error().message();
}

TEST(HttpClient, NonConnectErrorReplyKeepsTheStatusMeaning) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()) + "/no/such/prefix");
  auto r = client.call("/t.TService/add", "", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unimplemented);
  EXPECT_TRUE(contains(r.error().message(), "/no/such/prefix/t.TService/add")) << r.error().message();
}

}  // namespace
}  // namespace dispatch
