// dispatch::Server over loopback: the Connect protocol in both encodings,
// every error path, limits, keep-alive, the worker pool and drain. Requests
// the HttpClient would never send go through a raw socket.
#include "dispatch/transport/server.h"

#include <gtest/gtest.h>

#include <future>
#include <stdexcept>
#include <mutex>
#include <thread>
#include <vector>

#include "dispatch/metrics/registry.h"
#include "dispatch/transport/http_client.h"
#include "transport/test_service.h"

namespace dispatch {
namespace {

using testing::RawConnection;
using testing::post;

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.port = 0;
    options.logger = Logger(LogLevel::info, [this](LogLevel, std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    });
    server_ = std::make_unique<Server>(table_, std::move(options));
    auto started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().what();
    ASSERT_NE(server_->port(), 0);
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void SetUp() override { testing::gate().reset(); }
  void TearDown() override {
    testing::gate().release();
    if (server_) server_->stop();
  }
  std::vector<std::string> log() {
    std::lock_guard lock(log_mu_);
    return log_;
  }
  static bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

  DispatchTable table_{&testing::test_service()};
  std::mutex log_mu_;
  std::vector<std::string> log_;
  std::string url_;
  std::unique_ptr<Server> server_;  // last: destroyed first, while its log sink is alive
};

TEST_F(ServerTest, Healthz) {
  start();
  RawConnection c(server_->port());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST_F(ServerTest, BinaryCallThroughClient) {
  start();
  HttpClient client(url_);
  auto r = client.call("/t.TService/add", testing::varint_field(1, 40) + testing::varint_field(2, 2), {});
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(testing::read_varints(*r)[1], 42u);
  auto echoed = client.call("/t.TService/echo", testing::string_field(1, "hé"), {});
  ASSERT_TRUE(echoed.ok());
  EXPECT_EQ(*echoed, testing::string_field(1, "hé"));
}

TEST_F(ServerTest, JsonCalls) {
  start();
  RawConnection c(server_->port());
  c.send(post("/t.TService/add", "application/json", R"({"a": "40", "b": 2})"));
  auto r = c.read();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.body, R"({"result":"42"})");
  c.send(post("/t.TService/echo", "application/json; charset=utf-8", R"({"text": "a \"quoted\" é"})"));
  r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"text":"a \"quoted\" é"})");
  c.send(post("/t.TService/fail", "application/json", ""));  // empty body = empty message
  r = c.read();
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(contains(r.body, R"("code":"not_found")")) << r.body;
}

TEST_F(ServerTest, UserErrorKeepsCodeMessageAndDetails) {
  start();
  HttpClient client(url_);
  auto r = client.call("/t.TService/fail", "", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::not_found);
  EXPECT_EQ(r.error().message(), "order \"42\" <not> found");
  ASSERT_EQ(r.error().details().size(), 1u);
  EXPECT_EQ(r.error().details()[0].type, "google.protobuf.StringValue");
  EXPECT_EQ(r.error().details()[0].value, std::string("\x0a\x02id", 4));
  auto crash = client.call("/t.TService/crash", "", {});
  EXPECT_EQ(crash.error().code(), Code::internal);
  EXPECT_EQ(crash.error().message(), "boom");
}

TEST_F(ServerTest, ProtocolErrorsKeepTheConnectionServing) {
  start();
  RawConnection c(server_->port());
  struct Case {
    std::string request;
    int status;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {post("/t.TService/nope", "application/proto", ""), 404, "unimplemented", "/t.TService/nope"},
      {post("/t.TService/add", "text/plain", "x"), 415, "unimplemented", "text/plain"},
      {post("/t.TService/add", "application/proto", "\xff\xff\xff"), 400, "invalid_argument", ""},
      {post("/t.TService/add", "application/json", "{\"a\":"), 400, "invalid_argument", "t.AddRequest"},
      {post("/t.TService/add", "application/json", R"({"a": true})"), 400, "invalid_argument", "t.AddRequest"},
      {post("/t.TService/add", "application/proto", "", "Connect-Protocol-Version: 2\r\n"), 400,
       "invalid_argument", "Connect-Protocol-Version"},
      {post("/t.TService/add", "application/proto", "", "Connect-Timeout-Ms: soon\r\n"), 400, "invalid_argument",
       "Connect-Timeout-Ms"},
      {post("/t.TService/add", "application/proto", "", "Dispatch-Attempt: 0\r\n"), 400, "invalid_argument",
       "Dispatch-Attempt"},
      {post("/t.TService/add", "application/proto", "", "Content-Encoding: br\r\n"), 501, "unimplemented",
       "supported: gzip, identity"},
      {post("/t.TService/add", "application/proto", "xyz", "Content-Encoding: gzip\r\n"), 400, "invalid_argument",
       "not valid gzip"},
      {"GET /t.TService/add HTTP/1.1\r\nHost: x\r\n\r\n", 405, "unimplemented", "POST"},
  };
  for (const Case& k : cases) {
    c.send(k.request);
    auto r = c.read();
    EXPECT_EQ(r.status, k.status) << k.request;
    EXPECT_EQ(r.headers["content-type"], "application/json");
    EXPECT_TRUE(contains(r.body, std::string("\"code\":\"") + k.code + "\"")) << r.body;
    EXPECT_TRUE(contains(r.body, k.says)) << r.body;
  }
  c.send(post("/t.TService/add", "application/proto", testing::varint_field(1, 1)));
  EXPECT_EQ(c.read().status, 200);
}

// A route is the user's code: one that throws while the server works out
// who answers (takes, function_for) costs its request a 500, not the
// server, whether calls may run inline or always on the workers.
TEST_F(ServerTest, ARouteThatThrowsIsA500AndTheServerKeepsServing) {
  class Throwing final : public RequestRoute {
   public:
    bool takes(const RequestInfo& request) const override {
      if (request.path == "/throws-in-takes") throw std::runtime_error("takes broke");
      return request.path == "/throws-in-function-for";
    }
    const Method* function_for(const RequestInfo&) const override { throw std::runtime_error("function_for broke"); }
    HttpAnswer answer(const RequestInfo&, const CallContext&) const override { return HttpAnswer{}; }
  };
  for (auto limit : {std::chrono::microseconds(1000), std::chrono::microseconds(0)}) {
    ServerOptions options;
    options.inline_limit = limit;
    options.routes = {std::make_shared<Throwing>()};
    start(std::move(options));
    for (const char* path : {"/throws-in-takes", "/throws-in-function-for"}) {
      RawConnection c(server_->port());  // an answer to an exception closes its connection
      c.send(post(path, "application/json", "{}"));
      auto r = c.read();
      EXPECT_EQ(r.status, 500) << path << ", inline_limit " << limit.count() << " us";
      EXPECT_TRUE(contains(r.body, "broke")) << r.body;
    }
    RawConnection c(server_->port());
    c.send(post("/t.TService/add", "application/proto", testing::varint_field(1, 1)));
    EXPECT_EQ(c.read().status, 200);
    server_->stop();
  }
}

TEST_F(ServerTest, OversizedBodyIsRefusedAndClosed) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  start(options);
  RawConnection c(server_->port());
  c.send(post("/t.TService/echo", "application/proto", std::string(2000, 'x')));
  auto r = c.read();
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(contains(r.body, "resource_exhausted")) << r.body;
  EXPECT_TRUE(contains(r.body, "1000 bytes")) << r.body;
  EXPECT_TRUE(c.closed_by_peer());
  // Within the limit, fine.
  HttpClient client(url_);
  EXPECT_TRUE(client.call("/t.TService/echo", testing::string_field(1, std::string(900, 'y')), {}).ok());
}

TEST_F(ServerTest, OversizedHeadersAreRefused) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  start(options);
  RawConnection c(server_->port());
  c.send(post("/t.TService/add", "application/proto", "", "X-Big: " + std::string(4000, 'h') + "\r\n"));
  auto r = c.read();
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(contains(r.body, "resource_exhausted")) << r.body;
}

TEST_F(ServerTest, MalformedHttpIsBadRequest) {
  start();
  RawConnection c(server_->port());
  c.send("POST /t.TService/add HTTP/1.1\r\nContent-Length: zz\r\n\r\n");
  auto r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(contains(r.body, "malformed HTTP request")) << r.body;
}

// A body behind a Transfer-Encoding that does not end in chunked is not run
// as a next request (smuggling): the server answers 400 and closes before
// reading it; the same for a Host-less HTTP/1.1 request (RFC 9112 3.2, 6.3).
TEST_F(ServerTest, AnUnframableRequestIsRefusedAndItsBodyNeverRuns) {
  start();
  const std::string smuggled = post("/t.TService/add", "application/proto", testing::varint_field(1, 1));
  for (const std::string head :
       {"POST /t.TService/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked, identity\r\n\r\n",
        "POST /t.TService/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: identity\r\n\r\n",
        "POST /t.TService/add HTTP/1.1\r\nContent-Type: application/proto\r\nContent-Length: 0\r\n\r\n"}) {
    RawConnection c(server_->port());
    c.send(head + smuggled);
    auto r = c.read();
    EXPECT_EQ(r.status, 400) << head << r.body;
    EXPECT_EQ(r.headers["connection"], "close") << head;
    EXPECT_EQ(c.read().status, 0) << head << ": the body was answered as a request";
  }
  for (const std::string& line : log()) EXPECT_FALSE(contains(line, "executing: t.add")) << "a smuggled call ran: " << line;
}

// Requests refused before they were read whole (malformed, over a limit,
// too slow) are counted as rejected, as a refusal after reading is.
TEST_F(ServerTest, RequestsRefusedBeforeTheyAreReadAreCounted) {
  auto registry = std::make_shared<metrics::Registry>();
  ServerOptions options;
  options.metrics = registry;
  options.max_body_bytes = 1000;
  options.max_header_bytes = 1024;
  options.header_timeout = std::chrono::milliseconds(200);
  start(options);
  const auto answer = [&](const std::string& bytes) {
    RawConnection c(server_->port());
    c.send(bytes);
    return c.read().status;
  };
  EXPECT_EQ(answer("POST /t.TService/add HTTP/1.1\r\nContent-Length: zz\r\n\r\n"), 400);
  EXPECT_EQ(answer(post("/t.TService/add", "application/proto", "", "X-Big: " + std::string(4000, 'h') + "\r\n")),
            431);
  EXPECT_EQ(answer(post("/t.TService/echo", "application/proto", std::string(2000, 'x'))), 413);
  EXPECT_EQ(answer("POST /t.TService/add HTTP/1.1\r\nHost: x\r\n"), 408);  // headers never end
  EXPECT_EQ(answer(post("/t.TService/nope", "application/proto", "")), 404);
  const std::string text = registry->expose();
  const auto has = [&](std::string_view series) { return text.find(series) != std::string::npos; };
  EXPECT_TRUE(has("dispatch_server_rejected_total{protocol=\"connect\",code=\"invalid_argument\"} 1")) << text;
  EXPECT_TRUE(has("dispatch_server_rejected_total{protocol=\"connect\",code=\"resource_exhausted\"} 2")) << text;
  EXPECT_TRUE(has("dispatch_server_rejected_total{protocol=\"connect\",code=\"deadline_exceeded\"} 1")) << text;
  EXPECT_TRUE(has("dispatch_server_rejected_total{protocol=\"connect\",code=\"unimplemented\"} 1")) << text;
}

TEST_F(ServerTest, ExpectContinue) {
  start();
  RawConnection c(server_->port());
  c.send("POST /t.TService/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 9\r\nExpect: 100-continue\r\n\r\n");
  auto interim = c.read();
  EXPECT_EQ(interim.status, 100);
  c.send(R"({"a":"3"})");
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"result":"3"})");
}

TEST_F(ServerTest, DeadlineAndAttemptReachTheFunction) {
  start();
  RawConnection c(server_->port());
  c.send(post("/t.TService/context", "application/json", "{}", "Connect-Timeout-Ms: 60000\r\nDispatch-Attempt: 3\r\n"));
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"text":"attempt=3 deadline"})");
  c.send(post("/t.TService/context", "application/json", "{}"));
  EXPECT_EQ(c.read().body, R"({"text":"attempt=0"})");
}

TEST_F(ServerTest, RunningPastTheDeadlineIsDeadlineExceeded) {
  start();
  RawConnection c(server_->port());
  c.send(post("/t.TService/slow", "application/json", R"({"ms": 200})", "Connect-Timeout-Ms: 20\r\n"));
  auto r = c.read();
  EXPECT_EQ(r.status, 504);
  EXPECT_TRUE(contains(r.body, "deadline_exceeded")) << r.body;
}

TEST_F(ServerTest, AuthenticateHookRejectsBeforeDecoding) {
  ServerOptions options;
  std::mutex seen_mu;
  std::string seen;
  options.authenticate = [&](const RequestInfo& info) -> Result<void> {
    std::lock_guard lock(seen_mu);
    seen = std::string(info.method) + " " + std::string(info.path) + " " + std::string(info.authority) + " " +
           std::string(info.content_type) + " " + std::to_string(info.body.size());
    if (info.header("X-Token") != std::optional<std::string_view>("yes")) {
      return Error(Code::unauthenticated, "missing X-Token");
    }
    return {};
  };
  start(options);
  RawConnection c(server_->port());
  c.send(post("/t.TService/add", "application/proto", "{}"));
  auto r = c.read();
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(contains(r.body, "missing X-Token"));
  {
    std::lock_guard lock(seen_mu);
    EXPECT_EQ(seen, "POST /t.TService/add 127.0.0.1 application/proto 2");
  }
  c.send(post("/t.TService/add", "application/proto", "", "x-token: yes\r\n"));
  EXPECT_EQ(c.read().status, 200);
}

TEST_F(ServerTest, LogsOneLinePerCall) {
  start();
  HttpClient client(url_);
  ASSERT_TRUE(client.call("/t.TService/add", "", {}).ok());
  ASSERT_FALSE(client.call("/t.TService/fail", "", {}).ok());
  int add = 0, fail = 0;
  for (const auto& line : log()) {
    add += contains(line, "executing: t.add -> ok in ");
    fail += contains(line, "executing: t.fail -> not_found in ");
  }
  EXPECT_EQ(add, 1);
  EXPECT_EQ(fail, 1);
}

TEST_F(ServerTest, KeepAliveReusesOneConnection) {
  start();
  HttpClient client(url_);
  for (int i = 0; i < 50; ++i) {
    auto r = client.call("/t.TService/add", testing::varint_field(1, i), {});
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(testing::read_varints(*r)[1], static_cast<uint64_t>(i));
  }
  EXPECT_EQ(client.stats().connections_opened, 1u);
  EXPECT_EQ(client.stats().calls, 50u);
}

TEST_F(ServerTest, ManyThreadsAtOnce) {
  ServerOptions options;
  options.io_threads = 2;
  options.workers = 4;
  start(options);
  HttpClient client(url_);
  constexpr int kThreads = 8, kCalls = 200;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        auto r = client.call("/t.TService/add", testing::varint_field(1, t) + testing::varint_field(2, i), {});
        if (!r.ok() || testing::read_varints(*r)[1] != static_cast<uint64_t>(t + i)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(client.stats().calls, static_cast<uint64_t>(kThreads * kCalls));
  EXPECT_LE(client.stats().connections_opened, static_cast<uint64_t>(kThreads));
}

TEST_F(ServerTest, SlowFunctionDoesNotBlockTheIoThread) {
  ServerOptions options;
  options.io_threads = 1;
  options.workers = 2;
  start(options);
  HttpClient client(url_);
  std::promise<Result<std::string>> gated;
  client.call_async("/t.TService/gate", "", {}, [&](Result<std::string> r) { gated.set_value(std::move(r)); });
  testing::gate().wait_entered(1);
  // The single I/O thread still serves while the gated call occupies a worker.
  ASSERT_TRUE(client.call("/t.TService/add", "", {}).ok());
  testing::gate().release();
  auto r = gated.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, testing::string_field(1, "opened"));
}

// Calls of a function that waits (Method::waits, as the scheduler's Get with
// wait_ms) run on a pool of their own: more of them waiting at once than
// there are workers, on a connection each, do not hold up a call that
// needs a worker. (grpc_server_test: the same over HTTP/2.)
TEST_F(ServerTest, CallsThatWaitHoldUpNoOtherCall) {
  ServerOptions options;
  options.io_threads = 1;
  options.workers = 2;
  options.waiting_threads = 8;
  options.inline_limit = std::chrono::microseconds(0);  // every other call needs a worker
  start(options);
  constexpr int kWaiting = 6;
  std::vector<std::promise<Result<std::string>>> waited(kWaiting);  // outlives the clients
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < kWaiting; ++i) {
    clients.push_back(std::make_unique<HttpClient>(url_));
    clients.back()->call_async("/t.TService/wait", "", {},
                               [&waited, i](Result<std::string> r) { waited[i].set_value(std::move(r)); });
  }
  const bool all_waiting = testing::gate().wait_entered(kWaiting, std::chrono::seconds(10));
  HttpClient client(url_);
  CallOptions within;
  within.timeout = std::chrono::seconds(5);
  auto sum = client.call("/t.TService/add", testing::varint_field(1, 2) + testing::varint_field(2, 3), within);
  testing::gate().release();
  ASSERT_TRUE(all_waiting) << "the waiting calls did not all start: they queued for the workers";
  ASSERT_TRUE(sum.ok()) << "a call that needs a worker: " << sum.error().what();
  EXPECT_EQ(*sum, testing::varint_field(1, 5));
  for (auto& w : waited) {
    auto r = w.get_future().get();
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, testing::string_field(1, "opened"));
  }
}

// A quick call runs on the I/O thread that read it; when one holds that
// thread for longer than inline_limit, the watchdog lends the thread's
// connections another thread. One I/O thread: the first gated call holds it
// (the gate has never been slow, so it runs there); the second gated call and
// the add are still read, and run on the workers. Were the I/O thread not
// rescued, the add would time out. `idle_first`: the server has served a
// call and then been idle long enough for the watchdog to park (about
// 100 ms); the held call must wake it.
void expect_held_io_thread_rescued(const std::string& url, bool idle_first) {
  HttpClient client(url);
  if (idle_first) {
    ASSERT_TRUE(client.call("/t.TService/add", "", {}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  std::promise<Result<std::string>> first, second;
  client.call_async("/t.TService/gate", "", {}, [&](Result<std::string> r) { first.set_value(std::move(r)); });
  testing::gate().wait_entered(1);
  client.call_async("/t.TService/gate", "", {}, [&](Result<std::string> r) { second.set_value(std::move(r)); });
  testing::gate().wait_entered(2);
  CallOptions bounded;
  bounded.timeout = std::chrono::milliseconds(5000);
  auto added = client.call("/t.TService/add", testing::varint_field(1, 2) + testing::varint_field(2, 3), bounded);
  ASSERT_TRUE(added.ok()) << added.error().what();
  EXPECT_EQ(testing::read_varints(*added)[1], 5u);
  testing::gate().release();
  EXPECT_TRUE(first.get_future().get().ok());
  EXPECT_TRUE(second.get_future().get().ok());
}

ServerOptions one_io_thread_quick_to_rescue() {
  ServerOptions options;
  options.io_threads = 1;
  options.workers = 2;
  options.inline_limit = std::chrono::milliseconds(5);
  return options;
}

TEST_F(ServerTest, AnIoThreadHeldByACallIsRescued) {
  start(one_io_thread_quick_to_rescue());
  expect_held_io_thread_rescued(url_, /*idle_first=*/false);
}

TEST_F(ServerTest, AnIoThreadHeldAfterAnIdleSpellIsRescued) {
  start(one_io_thread_quick_to_rescue());
  expect_held_io_thread_rescued(url_, /*idle_first=*/true);
}

TEST_F(ServerTest, DrainFinishesInFlightCallsAndRefusesNewConnections) {
  start();
  HttpClient client(url_);
  std::promise<Result<std::string>> gated;
  client.call_async("/t.TService/gate", "", {}, [&](Result<std::string> r) { gated.set_value(std::move(r)); });
  testing::gate().wait_entered(1);
  std::thread drainer([&] { server_->drain(); });
  // Once the acceptor is closed a new client cannot get in.
  for (int i = 0; i < 1000; ++i) {
    HttpClient fresh(url_);
    if (!fresh.call("/t.TService/add", "", {}).ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  HttpClient late(url_);
  auto refused = late.call("/t.TService/add", "", {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::unavailable);
  testing::gate().release();
  auto r = gated.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().what();
  drainer.join();
}

// on_drain runs once, when the drain begins and before in-flight calls are
// waited for: there a waiting call can be told to answer, and the drain
// does not run out its timeout on it.
TEST_F(ServerTest, OnDrainRunsOnceBeforeInFlightCallsAreAwaited) {
  ServerOptions options;
  std::atomic<int> drains{0};
  options.on_drain = [&drains] {
    ++drains;
    testing::gate().release();  // what a scheduler's end_waits() does for its Gets
  };
  options.drain_timeout = std::chrono::seconds(20);
  start(options);
  HttpClient client(url_);
  std::promise<Result<std::string>> waited;
  client.call_async("/t.TService/wait", "", {}, [&](Result<std::string> r) { waited.set_value(std::move(r)); });
  ASSERT_TRUE(testing::gate().wait_entered(1, std::chrono::seconds(10)));
  const auto began = std::chrono::steady_clock::now();
  server_->drain();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10)) << "the drain waited out its timeout";
  auto r = waited.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, testing::string_field(1, "opened"));
  server_->stop();
  EXPECT_EQ(drains.load(), 1);
}

TEST_F(ServerTest, ConnectionLimit) {
  ServerOptions options;
  options.max_connections = 1;
  start(options);
  RawConnection first(server_->port());
  first.send(post("/t.TService/add", "application/proto", ""));
  ASSERT_EQ(first.read().status, 200);
  RawConnection second(server_->port());
  auto r = second.read();
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(contains(r.body, "limit of 1 connections")) << r.body;
  first.send(post("/t.TService/add", "application/proto", ""));
  EXPECT_EQ(first.read().status, 200);
}

TEST(ServerWithoutDescriptor, JsonIsRefusedBinaryWorks) {
  static const Method methods[] = {{"add", "/n.NService/add", "n.AddRequest", "n.AddResponse", &testing::add}};
  static const Service service{"n", "NService", methods, 1, {}};
  DispatchTable table{&service};
  ServerOptions options;
  options.port = 0;
  options.logger = Logger(LogLevel::off);
  Server server(table, options);
  ASSERT_TRUE(server.start().ok());
  RawConnection c(server.port());
  c.send(post("/n.NService/add", "application/json", "{}"));
  auto r = c.read();
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(r.body.find("JSON is not available for n.add"), std::string::npos) << r.body;
  c.send(post("/n.NService/add", "application/proto", testing::varint_field(1, 2)));
  r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(testing::read_varints(r.body)[1], 2u);
}

TEST_F(ServerTest, PortInUseIsUnavailable) {
  start();
  ServerOptions options;
  options.port = server_->port();
  Server second(table_, options);
  auto r = second.start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_TRUE(contains(r.error().message(), "127.0.0.1:" + std::to_string(server_->port())));
}

TEST(ServerOptions, ListenAddress) {
  auto a = parse_listen_address("0.0.0.0:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "0.0.0.0");
  EXPECT_EQ(a->second, 8080);
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  for (const char* bad : {"", "localhost", ":80", "host:", "host:99999", "host:8x", "[::1]80"}) {
    auto r = parse_listen_address(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
  }
}

TEST(ServerOptions, FromEnv) {
  ::unsetenv("PORT");
  ::unsetenv("DISPATCH_ENDPOINT_ADDR");
  auto d = ServerOptions::from_env();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "127.0.0.1");
  EXPECT_EQ(d->port, 8000);
  ::setenv("DISPATCH_ENDPOINT_ADDR", "127.0.0.2:9000", 1);
  EXPECT_EQ(ServerOptions::from_env()->port, 9000);
  ::setenv("PORT", "8081", 1);
  auto k = ServerOptions::from_env();
  EXPECT_EQ(k->host, "0.0.0.0");
  EXPECT_EQ(k->port, 8081);
  ::setenv("PORT", "eighty", 1);
  auto bad = ServerOptions::from_env();
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().message().find("PORT") != std::string::npos);
  // A colon in PORT is not a host's: a configuration error (exit 2), not a
  // listen address that fails to resolve when the server starts (exit 1).
  for (const char* not_a_port : {"8080:1", "1:2", "[::1]:80"}) {
    ::setenv("PORT", not_a_port, 1);
    auto refused = ServerOptions::from_env();
    ASSERT_FALSE(refused.ok()) << not_a_port << " read as " << refused->host << " port " << refused->port;
    EXPECT_EQ(refused.error().code(), Code::invalid_argument);
  }
  ::unsetenv("PORT");
  ::setenv("DISPATCH_ENDPOINT_ADDR", "nowhere", 1);
  auto bad_addr = ServerOptions::from_env();
  ASSERT_FALSE(bad_addr.ok());
  EXPECT_TRUE(bad_addr.error().message().find("DISPATCH_ENDPOINT_ADDR") != std::string::npos);
  ::unsetenv("DISPATCH_ENDPOINT_ADDR");
}

}  // namespace
}  // namespace dispatch
