// End to end over loopback: the generated shop stubs through
// dispatch::HttpClient against dispatch::Server, every shop function in
// binary (stubs) and JSON (a raw HTTP client, as curl would send it), the
// error paths, many threads, keep-alive reuse, an unreachable server, a
// drain of a real shop-server process on SIGTERM, and get_order (no side
// effects) called with a Connect GET.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "shop/api.dispatch.h"
#include "transport/test_child_process.h"
#include "transport/test_service.h"  // RawConnection, post (runtime/src/transport)

namespace {

using dispatch::Code;
using dispatch::testing::RawConnection;
using dispatch::testing::post;
namespace remote = shop::remote;

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

class ShopE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dispatch::ServerOptions options;
    options.port = 0;
    options.logger = dispatch::Logger(dispatch::LogLevel::warn);
    server_ = std::make_unique<dispatch::Server>(table_, options);
    ASSERT_TRUE(server_->start().ok());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    client_ = std::make_unique<dispatch::HttpClient>(url_);
  }
  std::string path(const char* function) { return std::string("/shop.ApiService/") + function; }

  dispatch::DispatchTable table_{&remote::api_service()};
  std::string url_;
  std::unique_ptr<dispatch::Server> server_;
  std::unique_ptr<dispatch::HttpClient> client_;
};

TEST_F(ShopE2E, EveryFunctionInBinary) {
  auto& c = *client_;
  EXPECT_EQ(remote::add(c, 40, 2), 42);
  EXPECT_EQ(remote::add(c, INT64_MIN + 1, -1), INT64_MIN);
  shop::Order order = remote::place_order(c, {{"apple", 3, 0.5}, {"pear", 1, 0.75}}, "1001");
  EXPECT_EQ(order.customer, 1001);
  ASSERT_EQ(order.items.size(), 2u);
  EXPECT_EQ(order.items[1].sku, "pear");
  EXPECT_DOUBLE_EQ(order.items[1].price, 0.75);
  EXPECT_EQ(order.status, shop::Status::pending);
  EXPECT_EQ(order.tags, (std::vector<int64_t>{3, 1}));
  EXPECT_FALSE(order.note.has_value());
  remote::charge(c, order);
  shop::Order paid = remote::get_order(c, order.id);
  EXPECT_EQ(paid.status, shop::Status::paid);
  EXPECT_EQ(remote::slow(c, 5), "slept 5 ms");
  EXPECT_EQ(remote::add.async(c, 2, 3).get(), 5);
  auto r = remote::add.try_call(c, 1, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
}

// get_order is annotated idempotency = "no_side_effects": through a client
// with use_get, every form of its stub calls it with a Connect GET, while
// add (no annotation) and the other functions stay POSTs.
TEST(ShopGet, AFunctionWithoutSideEffectsIsCalledWithGet) {
  dispatch::DispatchTable table{&remote::api_service()};
  dispatch::ServerOptions options;
  options.port = 0;
  options.logger = dispatch::Logger(dispatch::LogLevel::warn);
  std::mutex mu;
  std::vector<std::string> seen;
  options.authenticate = [&](const dispatch::RequestInfo& info) -> dispatch::Result<void> {
    std::lock_guard lock(mu);
    seen.push_back(std::string(info.method) + " " + std::string(info.path));
    return {};
  };
  dispatch::Server server(table, options);
  ASSERT_TRUE(server.start().ok());
  dispatch::HttpClientOptions client_options;
  client_options.use_get = true;
  dispatch::HttpClient c("http://127.0.0.1:" + std::to_string(server.port()), client_options);
  shop::Order order = remote::place_order(c, {{"apple", 3, 0.5}}, "1002");
  EXPECT_EQ(remote::get_order(c, order.id).id, order.id);
  auto missing = remote::get_order.try_call(c, "o-none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::not_found) << missing.error().what();
  EXPECT_EQ(remote::get_order.async(c, order.id).get().id, order.id);
  EXPECT_EQ(remote::add(c, 40, 2), 42);
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"POST /shop.ApiService/place_order", "GET /shop.ApiService/get_order",
                                            "GET /shop.ApiService/get_order", "GET /shop.ApiService/get_order",
                                            "POST /shop.ApiService/add"}));
}

TEST_F(ShopE2E, ErrorsKeepTheirCodes) {
  auto& c = *client_;
  auto missing = remote::get_order.try_call(c, "o-none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::not_found);
  EXPECT_EQ(missing.error().message(), "no order 'o-none'");
  auto bad = remote::place_order.try_call(c, {{"apple", 1, 0.5}}, "x1");
  EXPECT_EQ(bad.error().code(), Code::invalid_argument);
  EXPECT_TRUE(contains(bad.error().message(), "'x1'"));
  shop::Order order = remote::place_order(c, {{"fig", 1, 1.0}}, "7");
  remote::charge(c, order);
  EXPECT_EQ(remote::charge.try_call(c, order).error().code(), Code::failed_precondition);
  try {
    remote::get_order(c, "o-none");
    FAIL() << "get_order should throw";
  } catch (const dispatch::Error& e) {
    EXPECT_EQ(e.code(), Code::not_found);
  }
  dispatch::CallOptions fast;
  fast.timeout = std::chrono::milliseconds(50);
  EXPECT_EQ(remote::slow.try_call(c, 400, fast).error().code(), Code::deadline_exceeded);
}

TEST_F(ShopE2E, EveryFunctionInJson) {
  RawConnection raw(server_->port());
  auto call = [&](const char* function, const std::string& json) {
    raw.send(post(path(function), "application/json", json));
    return raw.read();
  };
  auto r = call("add", R"({"a": "40", "b": 2})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"result":"42"})");
  r = call("place_order", R"({"items": [{"sku": "apple", "qty": 2, "price": 0.5}], "customer": "12"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(contains(r.body, R"("customer":"12")")) << r.body;
  EXPECT_TRUE(contains(r.body, R"("sku":"apple")")) << r.body;
  const auto id_at = r.body.find(R"("id":")") + 6;
  const std::string id = r.body.substr(id_at, r.body.find('"', id_at) - id_at);
  r = call("get_order", R"({"id": ")" + id + R"("})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(contains(r.body, id));
  r = call("charge_v2", R"({"order": {"id": ")" + id + R"("}})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");
  r = call("slow", R"({"ms": 1})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"result":"slept 1 ms"})");
  // Errors in JSON too, on the same connection.
  r = call("get_order", R"({"id": "o-none"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(contains(r.body, R"("code":"not_found")")) << r.body;
  r = call("add", R"({"a": "forty"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(contains(r.body, "invalid_argument")) << r.body;
  r = call("nope", "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(contains(r.body, "unimplemented")) << r.body;
  raw.send(post(path("add"), "text/xml", "<a/>"));
  EXPECT_EQ(raw.read().status, 415);
  r = call("add", R"({"a": "1", "b": "1"})");
  EXPECT_EQ(r.body, R"({"result":"2"})");
}

TEST_F(ShopE2E, ManyThreadsShareOneClient) {
  constexpr int kThreads = 8, kCalls = 100;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        auto r = remote::add.try_call(*client_, t, i);
        if (!r.ok() || *r != t + i) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(client_->stats().connections_opened, static_cast<uint64_t>(kThreads));
}

TEST_F(ShopE2E, KeepAliveReuse) {
  for (int i = 0; i < 20; ++i) ASSERT_EQ(remote::add(*client_, i, 1), i + 1);
  EXPECT_EQ(client_->stats().connections_opened, 1u);
}

TEST(ShopUnreachable, IsUnavailableWithTheAddress) {
  // Bind a port, then free it: nothing listens there.
  dispatch::DispatchTable table;
  uint16_t port;
  {
    dispatch::ServerOptions options;
    options.port = 0;
    options.logger = dispatch::Logger(dispatch::LogLevel::off);
    dispatch::Server server(table, options);
    ASSERT_TRUE(server.start().ok());
    port = server.port();
  }
  dispatch::HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto r = remote::add.try_call(client, 1, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_TRUE(contains(r.error().message(), "127.0.0.1:" + std::to_string(port))) << r.error().message();
}

// shop-server as a child process; its stderr is read line by line.
class ShopServerProcess {
 public:
  ShopServerProcess() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = dispatch::testing::fork_ending_with_parent();
    if (pid_ == 0) {
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::setenv("DISPATCH_ENDPOINT_ADDR", "127.0.0.1:0", 1);
      ::setenv("DISPATCH_LOG_LEVEL", "debug", 1);
      ::unsetenv("PORT");
      ::execl(SHOP_SERVER_PATH, SHOP_SERVER_PATH, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    err_ = ::fdopen(fds[0], "r");
    const std::string line = wait_for("listening on http://127.0.0.1:");
    port_ = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  }
  ~ShopServerProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (err_) std::fclose(err_);
  }
  // Reads stderr until a line contains `text`; returns that line.
  std::string wait_for(std::string_view text) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, err_)) {
      std::string line(buf);
      if (contains(line, text)) return line;
    }
    throw std::runtime_error("shop-server ended without logging '" + std::string(text) + "'");
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  int wait_exit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  FILE* err_ = nullptr;
  uint16_t port_ = 0;
  bool reaped_ = false;
};

TEST(ShopServerDrain, InFlightCallFinishesAfterSigtermAndExitIsZero) {
  ShopServerProcess server;
  dispatch::HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  auto in_flight = remote::slow.async(client, 1500);
  server.wait_for("calling: shop.slow");  // the call is running on a worker
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  server.wait_for("draining");
  // Once draining, the server accepts no new connection.
  dispatch::HttpClient late("http://127.0.0.1:" + std::to_string(server.port()));
  auto refused = remote::add.try_call(late, 1, 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::unavailable);
  EXPECT_EQ(in_flight.get(), "slept 1500 ms");
  const int status = server.wait_exit();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
