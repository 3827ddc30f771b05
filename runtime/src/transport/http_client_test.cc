// dispatch::HttpClient against a local dispatch::Server, a scripted raw
// HTTP server and nothing: URL checks, unreachable servers, timeouts, stale
// keep-alive connections, the decorate hook and the API key, Connect GETs
// (use_get), for the blocking call() and the event-driven call_async().
#include "dispatch/transport/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <future>
#include <mutex>
#include <thread>

#include "dispatch/transport/server.h"
#include "transport/test_loopback_port.h"
#include "transport/grpc_framing.h"
#include "transport/test_service.h"

namespace dispatch {
namespace {

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// A port nobody listens on (nor will: outside the ephemeral range).
uint16_t closed_port() { return dispatch::testing::free_loopback_port(); }

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

// A timeout long enough for the blocking read's SO_RCVTIMEO (100 ms or more)
// ends the call at its deadline: not before, and not when the answer comes.
TEST(HttpClient, LongCallTimeoutIsDeadlineExceededOnTime) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  CallOptions options;
  options.timeout = std::chrono::milliseconds(400);
  const auto began = std::chrono::steady_clock::now();
  auto r = client.call("/t.TService/slow", testing::varint_field(1, 1500), options);
  const auto took = std::chrono::steady_clock::now() - began;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::deadline_exceeded) << r.error().what();
  EXPECT_GE(took, std::chrono::milliseconds(400));
  EXPECT_LT(took, std::chrono::milliseconds(1200)) << "waited for the answer instead of the deadline";
}

// One kept-alive connection serves calls with different timeouts, each
// answered before its own deadline: a receive timeout a previous call left
// on the socket neither cuts a later call short nor outlives a call without
// a deadline.
TEST(HttpClient, OneConnectionServesCallsWithDifferentTimeouts) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  auto slow = [&](int sleep_ms, std::optional<std::chrono::milliseconds> timeout) {
    CallOptions options;
    options.timeout = timeout;
    auto r = client.call("/t.TService/slow", testing::varint_field(1, static_cast<uint64_t>(sleep_ms)), options);
    EXPECT_TRUE(r.ok()) << "sleep " << sleep_ms << " ms: " << r.error().what();
  };
  slow(0, std::chrono::milliseconds(200));    // leaves a receive timeout of about 180 ms
  slow(400, std::nullopt);                    // no deadline: waits as long as it takes
  slow(0, std::chrono::milliseconds(1000));   // about 940 ms
  slow(1200, std::chrono::milliseconds(1800));  // the answer comes after that ran out
  EXPECT_EQ(client.stats().connections_opened, 1u);
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

// use_get: a call marked no_side_effects goes as a Connect GET (blocking and
// async), with its timeout, key and headers; other calls, a URL over the
// limit and a signing client stay POSTs. The server answers each alike.
TEST(HttpClient, CallsWithoutSideEffectsGoAsConnectGets) {
  DispatchTable table{&testing::test_service()};
  ServerOptions options = quiet_options();
  std::mutex mu;
  std::vector<std::string> seen;
  options.authenticate = [&](const RequestInfo& info) -> Result<void> {
    std::lock_guard lock(mu);
    seen.push_back(std::string(info.method) + " " + std::string(info.path) + " " +
                   std::string(info.header("authorization").value_or("-")) + " " +
                   std::string(info.header("connect-timeout-ms").value_or("-")) + " " +
                   std::string(info.header("x-trace").value_or("-")));
    return {};
  };
  Server server(table, options);
  ASSERT_TRUE(server.start().ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  HttpClientOptions get_options;
  get_options.use_get = true;
  get_options.api_key = "k1";
  get_options.max_get_url_bytes = 512;
  HttpClient client(url, get_options);
  CallOptions read_only;
  read_only.no_side_effects = true;
  read_only.timeout = std::chrono::seconds(30);
  read_only.headers.emplace_back("x-trace", "t1");
  // Bytes base64 writes '-' and '_' for, which must arrive unchanged.
  const std::string bytes = testing::string_field(1, std::string("a+b/c?d&e=f \xfb\xff\xbf", 15));
  auto echoed = client.call("/t.TService/echo", bytes, read_only);
  ASSERT_TRUE(echoed.ok()) << echoed.error().what();
  EXPECT_EQ(*echoed, bytes);
  std::promise<Result<std::string>> async_reply;
  client.call_async("/t.TService/echo", bytes, read_only,
                    [&](Result<std::string> reply) { async_reply.set_value(std::move(reply)); });
  auto async_echoed = async_reply.get_future().get();
  ASSERT_TRUE(async_echoed.ok()) << async_echoed.error().what();
  EXPECT_EQ(*async_echoed, bytes);
  // Not marked: a POST.
  ASSERT_TRUE(client.call("/t.TService/echo", bytes, {}).ok());
  // Too long for the URL limit: a POST.
  auto long_echo = client.call("/t.TService/echo", testing::string_field(1, std::string(600, 'x')), read_only);
  ASSERT_TRUE(long_echo.ok()) << long_echo.error().what();
  // A signing client (decorate): a POST.
  HttpClientOptions signing = get_options;
  signing.decorate = [](std::string_view, std::string_view, std::string_view, std::string_view, std::string_view,
                        std::vector<std::pair<std::string, std::string>>&) {};
  HttpClient signing_client(url, signing);
  ASSERT_TRUE(signing_client.call("/t.TService/echo", bytes, read_only).ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"GET /t.TService/echo Bearer k1 30000 t1",
                                            "GET /t.TService/echo Bearer k1 30000 t1",
                                            "POST /t.TService/echo Bearer k1 - -",
                                            "POST /t.TService/echo Bearer k1 30000 t1",
                                            "POST /t.TService/echo Bearer k1 30000 t1"}));
}

// A server that refuses GET for a function (not marked no_side_effects
// there) answers 405: the call fails with that error, as Connect clients'.
TEST(HttpClient, AGetToAFunctionWithSideEffectsIsRefused) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClientOptions get_options;
  get_options.use_get = true;
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()), get_options);
  CallOptions read_only;
  read_only.no_side_effects = true;
  auto r = client.call("/t.TService/add", testing::varint_field(1, 1), read_only);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unimplemented) << r.error().what();
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


// --- call_async() -------------------------------------------------------------

// Collects async replies; wait() returns once `n` callbacks have run and
// counts callbacks per call index, so a second run of one would show.
struct Replies {
  std::mutex mu;
  std::condition_variable cv;
  std::map<int, std::vector<Result<std::string>>> by_index;
  int count = 0;

  Client::Callback slot(int index) {
    return [this, index](Result<std::string> r) {
      std::lock_guard lock(mu);
      by_index[index].push_back(std::move(r));
      ++count;
      cv.notify_all();
    };
  }
  void wait(int n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return count >= n; });
  }
  Result<std::string> only(int index) {
    std::lock_guard lock(mu);
    EXPECT_EQ(by_index[index].size(), 1u) << "callback of call " << index;
    return by_index[index].front();
  }
};

TEST(HttpClientAsync, ManyConcurrentCallsGetTheirOwnReplies) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClientOptions options;
  options.max_connections = 8;
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()), options);
  constexpr int kThreads = 4, kPerThread = 250;
  Replies replies;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t * kPerThread; i < (t + 1) * kPerThread; ++i) {
        client.call_async("/t.TService/add", testing::varint_field(1, i) + testing::varint_field(2, 1000), {},
                          replies.slot(i));
      }
    });
  }
  for (auto& t : threads) t.join();
  replies.wait(kThreads * kPerThread);
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    auto r = replies.only(i);
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(testing::read_varints(*r)[1], static_cast<uint64_t>(i + 1000));
  }
  EXPECT_LE(client.stats().connections_opened, 8u);
  EXPECT_EQ(client.stats().calls, static_cast<uint64_t>(kThreads * kPerThread));
}

TEST(HttpClientAsync, ServerErrorsKeepTheirCode) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  Replies replies;
  client.call_async("/t.TService/fail", "", {}, replies.slot(0));
  replies.wait(1);
  auto r = replies.only(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::not_found);
  EXPECT_TRUE(contains(r.error().message(), "not> found")) << r.error().message();
}

TEST(HttpClientAsync, DeadlineFiresWhileTheServerStalls) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClientOptions options;
  options.max_connections = 1;
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()), options);
  CallOptions short_deadline;
  short_deadline.timeout = std::chrono::milliseconds(50);
  Replies replies;
  // On the wire when its deadline passes.
  client.call_async("/t.TService/slow", testing::varint_field(1, 400), short_deadline, replies.slot(0));
  replies.wait(1);
  auto r = replies.only(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::deadline_exceeded);
  EXPECT_TRUE(contains(r.error().message(), "50 ms")) << r.error().message();
  // Waiting for the only connection when its deadline passes.
  client.call_async("/t.TService/slow", testing::varint_field(1, 400), {}, replies.slot(1));
  client.call_async("/t.TService/add", "", short_deadline, replies.slot(2));
  replies.wait(3);
  EXPECT_TRUE(replies.only(1).ok());
  r = replies.only(2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::deadline_exceeded);
  // The timed-out connection was dropped; the client still works.
  client.call_async("/t.TService/add", testing::varint_field(1, 5), {}, replies.slot(3));
  replies.wait(4);
  r = replies.only(3);
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(testing::read_varints(*r)[1], 5u);
}

TEST(HttpClientAsync, UnreachableEndpointIsUnavailableWithTheAddress) {
  const uint16_t port = closed_port();
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  Replies replies;
  for (int i = 0; i < 3; ++i) client.call_async("/t.TService/add", "", {}, replies.slot(i));
  replies.wait(3);
  for (int i = 0; i < 3; ++i) {
    auto r = replies.only(i);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::unavailable);
    EXPECT_TRUE(contains(r.error().message(), "127.0.0.1:" + std::to_string(port))) << r.error().message();
  }
  EXPECT_EQ(client.stats().connections_opened, 0u);
}

TEST(HttpClientAsync, UnresolvableHostIsUnavailable) {
  HttpClient client("http://no-such-host.invalid:8000");
  Replies replies;
  client.call_async("/t.TService/add", "", {}, replies.slot(0));
  replies.wait(1);
  auto r = replies.only(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_TRUE(contains(r.error().message(), "no-such-host.invalid")) << r.error().message();
}

TEST(HttpClientAsync, ReconnectsWhenTheServerClosedAnIdleConnection) {
  DispatchTable table{&testing::test_service()};
  ServerOptions options = quiet_options();
  options.idle_timeout = std::chrono::milliseconds(50);
  Server server(table, options);
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  Replies replies;
  client.call_async("/t.TService/add", "", {}, replies.slot(0));
  replies.wait(1);
  ASSERT_TRUE(replies.only(0).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the server drop it
  client.call_async("/t.TService/add", testing::varint_field(1, 7), {}, replies.slot(1));
  replies.wait(2);
  auto r = replies.only(1);
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(testing::read_varints(*r)[1], 7u);
  EXPECT_EQ(client.stats().connections_opened, 2u);
}

// A raw HTTP/1.1 server on 127.0.0.1 whose every request is handled by
// `script(connection number, request number on it)`: true answers 200 with
// the request's body (as `content_type`) and keeps the connection, false
// closes it unanswered (after reading the request).
class ScriptedServer {
 public:
  // Echoes each request's body; with `content_encoding` "gzip" compressed,
  // with another coding sent as it is under that name.
  explicit ScriptedServer(std::function<bool(int, int)> script, std::string content_type = "application/proto",
                          std::string content_encoding = "")
      : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        script_(std::move(script)),
        content_type_(std::move(content_type)),
        content_encoding_(std::move(content_encoding)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    boost::system::error_code ec;
    // Wake the blocking accept with a connection of our own.
    boost::asio::ip::tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void serve() {
    namespace http = boost::beast::http;
    for (int conn = 0;; ++conn) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      connections_++;
      boost::beast::flat_buffer buffer;
      for (int req = 0;; ++req) {
        http::request<http::string_body> request;
        http::read(socket, buffer, request, ec);
        if (ec) break;
        requests_++;
        if (!script_(conn, req)) break;
        http::response<http::string_body> response(http::status::ok, 11);
        if (!content_type_.empty()) response.set(http::field::content_type, content_type_);
        response.body() = request.body();
        if (!content_encoding_.empty()) {
          response.set(http::field::content_encoding, content_encoding_);
          if (content_encoding_ == "gzip") response.body() = grpc::gzip_compress(request.body());
        }
        response.keep_alive(true);
        response.prepare_payload();
        http::write(socket, response, ec);
        if (ec) break;
      }
    }
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::function<bool(int, int)> script_;
  std::string content_type_;
  std::string content_encoding_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A 200 that is not application/proto (a web server or proxy page at the
// URL) is internal with the content type, not a misleading decode error;
// parameters on application/proto are fine.
TEST(HttpClient, TwoHundredWithAnotherContentTypeIsInternal) {
  // (ScriptedServer serves one connection at a time: one client each for
  // call() and call_async(), destroyed before their server.)
  for (const std::string type : {"text/html", "application/json", ""}) {
    {
      ScriptedServer server([](int, int) { return true; }, type);
      HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
      auto r = client.call("/t.TService/add", "hi", {});
      ASSERT_FALSE(r.ok()) << type;
      EXPECT_EQ(r.error().code(), Code::internal) << type;
      EXPECT_TRUE(contains(r.error().message(), "has Content-Type '" + type + "', not application/proto"))
          << r.error().message();
    }
    ScriptedServer server([](int, int) { return true; }, type);
    HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
    Replies replies;
    client.call_async("/t.TService/add", "hi", {}, replies.slot(0));
    replies.wait(1);
    auto a = replies.only(0);
    ASSERT_FALSE(a.ok()) << type;
    EXPECT_EQ(a.error().code(), Code::internal) << type;
    EXPECT_TRUE(contains(a.error().message(), "has Content-Type '" + type + "'")) << a.error().message();
  }
  ScriptedServer server([](int, int) { return true; }, "Application/Proto; charset=binary");
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  auto r = client.call("/t.TService/add", "hi", {});
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, "hi");
}

// The client asks for no compression, but a proxy may compress anyway: a
// gzip reply is inflated, another coding is internal naming it (it was
// read as the message, or its error body as text), on both paths.
TEST(HttpClient, ACompressedReplyIsInflatedOrRefusedByName) {
  const std::string message(3000, 'm');
  // A server and client for each call (ScriptedServer serves one connection
  // at a time); the client goes before its server.
  auto call = [&](const char* coding, bool async) -> Result<std::string> {
    ScriptedServer server([](int, int) { return true; }, "application/proto", coding);
    HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
    if (!async) return client.call("/t.TService/echo", message, {});
    Replies replies;
    client.call_async("/t.TService/echo", message, {}, replies.slot(0));
    replies.wait(1);
    return replies.only(0);
  };
  for (const bool async : {false, true}) {
    auto r = call("gzip", async);
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, message) << async;
    r = call("br", async);
    ASSERT_FALSE(r.ok()) << async;
    EXPECT_EQ(r.error().code(), Code::internal);
    EXPECT_TRUE(contains(r.error().message(), "has Content-Encoding 'br'")) << r.error().message();
  }
}

TEST(HttpClientAsync, ReusedConnectionClosedUnansweredIsResentOnceOnAFreshOne) {
  // Connection 0 answers its first request and closes at the second, as a
  // server does that drops an idle connection as the request arrives.
  ScriptedServer server([](int conn, int req) { return !(conn == 0 && req == 1); });
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  Replies replies;
  client.call_async("/t.TService/echo", "first", {}, replies.slot(0));
  replies.wait(1);
  ASSERT_TRUE(replies.only(0).ok());
  client.call_async("/t.TService/echo", "second", {}, replies.slot(1));
  replies.wait(2);
  auto r = replies.only(1);
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, "second");
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(client.stats().connections_opened, 2u);
}

TEST(HttpClientAsync, FreshConnectionClosedUnansweredIsNotResent) {
  ScriptedServer server([](int, int) { return false; });
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  Replies replies;
  client.call_async("/t.TService/echo", "x", {}, replies.slot(0));
  replies.wait(1);
  auto r = replies.only(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_TRUE(contains(r.error().message(), "/t.TService/echo")) << r.error().message();
  EXPECT_EQ(server.requests(), 1);
}

TEST(HttpClientAsync, ResentOnlyOnce) {
  // Every connection after its first answer closes the next request
  // unanswered: the resent request meets a fresh connection that closes too.
  ScriptedServer server([](int conn, int req) { return conn == 0 && req == 0; });
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  Replies replies;
  client.call_async("/t.TService/echo", "a", {}, replies.slot(0));
  replies.wait(1);
  ASSERT_TRUE(replies.only(0).ok());
  client.call_async("/t.TService/echo", "b", {}, replies.slot(1));
  replies.wait(2);
  auto r = replies.only(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_EQ(server.requests(), 3);  // a, b, b again: not a third time
}

TEST(HttpClientAsync, DestructionCompletesEveryCallOnceWithAnError) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  testing::gate().reset();
  constexpr int kCalls = 10;
  Replies replies;
  {
    HttpClientOptions options;
    options.max_connections = 2;
    HttpClient client("http://127.0.0.1:" + std::to_string(server.port()), options);
    // Two on the wire, held by the gate; eight waiting for a connection.
    for (int i = 0; i < kCalls; ++i) client.call_async("/t.TService/gate", "", {}, replies.slot(i));
    testing::gate().wait_entered(2);
  }
  {
    std::lock_guard lock(replies.mu);
    EXPECT_EQ(replies.count, kCalls);  // all completed by the time the destructor returned
  }
  for (int i = 0; i < kCalls; ++i) {
    auto r = replies.only(i);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::canceled) << r.error().what();
  }
  testing::gate().release();
}

TEST(HttpClientAsync, CallbackMayStartTheNextCall) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  std::promise<uint64_t> last;
  std::function<void(int)> chain = [&](int n) {
    client.call_async("/t.TService/add", testing::varint_field(1, n), {}, [&, n](Result<std::string> r) {
      if (!r.ok() || n == 20) {
        last.set_value(r.ok() ? testing::read_varints(*r)[1] : 0);
        return;
      }
      chain(n + 1);
    });
  };
  chain(0);
  EXPECT_EQ(last.get_future().get(), 20u);
  EXPECT_EQ(client.stats().connections_opened, 1u);
}

TEST(HttpClientAsync, BadHeaderIsInvalidArgument) {
  HttpClient client("http://127.0.0.1:1");
  CallOptions options;
  options.headers.emplace_back(std::string(70000, 'x'), "v");
  Replies replies;
  client.call_async("/t.TService/add", "", options, replies.slot(0));
  replies.wait(1);
  auto r = replies.only(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::invalid_argument);
}

}  // namespace
}  // namespace dispatch
