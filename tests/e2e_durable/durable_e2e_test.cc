// The durable path across real processes, signed: the shop's generated
// client half (examples/shop) hands calls to dispatchd, a process of its
// own, which delivers them as RFC 9421 Ed25519-signed Run calls to
// shop-server, the generated server in a process of its own that verifies
// them with the public key; the test awaits each result as its C++ type
// through the dispatch::Dispatched<R> handle the stub's dispatch() gives
// (a void function's too). Also: Run calls signed with another key, or not
// signed, are refused and run no function;
// calls pending when shop-server is SIGKILLed complete, once each, after it
// is started again.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/dispatched.h"
#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/http_client.h"
#include "shop/api.dispatch.h"

namespace {

using namespace std::chrono_literals;
using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;
namespace admin = dispatch::scheduler::v1;
namespace remote = shop::remote;
namespace sec = dispatch::security;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void stop(pid_t pid, int signal) {
  if (pid <= 0) return;
  ::kill(pid, signal);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

class DurableShop : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "durable_e2e_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
    ASSERT_EQ(std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    shop_port_ = free_port();
    shop_url_ = "http://127.0.0.1:" + std::to_string(shop_port_);
    start_shop();
    scheduler_ = start_dispatchd(key_, "d");
    ASSERT_NE(scheduler_.pid, -1);
  }
  void TearDown() override {
    stop(shop_, SIGTERM);
    stop(scheduler_.pid, SIGTERM);
    stop(other_scheduler_.pid, SIGTERM);
    if (!HasFailure()) std::system(("rm -rf " + dir_).c_str());
  }

  struct Scheduler {
    pid_t pid = -1;
    std::string url;
    std::unique_ptr<dispatch::HttpClient> api;
    std::unique_ptr<dispatch::DispatchClient> client;
  };

  // dispatchd signing its Run calls with `key`, its store and log named
  // `name` in the test's directory; calls go to shop-server by default.
  Scheduler start_dispatchd(const sec::SigningKey& key, const std::string& name) {
    Scheduler s;
    const uint16_t port = free_port();
    s.url = "http://127.0.0.1:" + std::to_string(port);
    s.pid = spawn({DISPATCHD, "--db", dir_ + name + ".db", "--listen", "127.0.0.1:" + std::to_string(port),
                   "--api-key", "k1", "--min-backoff-ms", "50", "--max-backoff-ms", "400",
                   "--max-attempts", "100"},
                  dir_ + name + ".log", {{"DISPATCH_SIGNING_KEY", key.to_pem()}});
    for (int i = 0; i < 500 && !port_open(port); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(port_open(port)) << read_file(dir_ + name + ".log");
    dispatch::HttpClientOptions o;
    o.api_key = "k1";
    s.api = std::make_unique<dispatch::HttpClient>(s.url, o);
    s.client = std::make_unique<dispatch::DispatchClient>(*s.api, shop_url_);
    return s;
  }

  // shop-server on the test's port, verifying with key_'s public key; its
  // log goes on after a restart.
  void start_shop() {
    shop_ = spawn({SHOP_SERVER_PATH}, dir_ + "shop.log",
                  {{"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:" + std::to_string(shop_port_)},
                   {"DISPATCH_VERIFICATION_KEY", key_.public_key().to_base64()}});
    for (int i = 0; i < 500 && !port_open(shop_port_); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(port_open(shop_port_)) << read_file(dir_ + "shop.log");
  }

  // The scheduler's calls, oldest first (`state`: all when unspecified).
  std::vector<admin::CallInfo> list(admin::CallState state = admin::CALL_STATE_UNSPECIFIED) {
    admin::ListRequest req;
    req.set_state(state);
    req.set_limit(1000);
    auto reply = scheduler_.api->call("/dispatch.scheduler.v1.AdminService/List", req.SerializeAsString(), {});
    EXPECT_TRUE(reply.ok()) << reply.error().what();
    admin::ListResponse res;
    if (reply.ok()) {
      EXPECT_TRUE(res.ParseFromString(*reply));
    }
    return {res.calls().begin(), res.calls().end()};
  }

  // A Run request for shop.add(1, 2) sent straight to shop-server, signed
  // with `key` (none: unsigned).
  dispatch::Result<std::string> run_add_directly(const sec::SigningKey* key) {
    dispatch::sdk::v1::RunRequest run;
    run.set_function("shop.add");
    run.mutable_input()->set_type_url("type.googleapis.com/shop.AddRequest");
    run.mutable_input()->set_value(remote::add.encode_request(1, 2).value());
    dispatch::HttpClientOptions o;
    if (key != nullptr) o.signer = std::make_shared<sec::Signer>(*key);
    dispatch::HttpClient client(shop_url_, o);
    return client.call("/dispatch.sdk.v1.FunctionService/Run", run.SerializeAsString(), {});
  }

  sec::SigningKey key_ = sec::SigningKey::generate();
  std::string dir_, shop_url_;
  uint16_t shop_port_ = 0;
  pid_t shop_ = -1;
  Scheduler scheduler_, other_scheduler_;
};

TEST_F(DurableShop, StubsDispatchThroughDispatchdToTheGeneratedServerAndAwaitTypedResults) {
  dispatch::DispatchClient& dc = *scheduler_.client;
  auto sum = remote::add.dispatch(dc, 40, 2).value();
  auto order = remote::place_order.dispatch(dc, {{"apple", 3, 0.5}, {"pear", 1, 0.75}}, "1001").value();
  auto missing = remote::get_order.dispatch(dc, "o-none").value();
  auto bad = remote::place_order.dispatch(dc, {{"apple", 1, 0.5}}, "not-a-number").value();

  EXPECT_EQ(sum.wait(20s).value(), 42);
  auto placed = order.wait(20s);
  ASSERT_TRUE(placed.ok()) << placed.error().what();
  EXPECT_EQ(placed->customer, 1001);
  ASSERT_EQ(placed->items.size(), 2u);
  EXPECT_EQ(placed->items[1].sku, "pear");
  EXPECT_EQ(placed->items[1].price, 0.75);
  EXPECT_EQ(placed->status, shop::Status::pending);

  // A function's error comes back with its code and message.
  auto not_found = missing.wait(20s);
  ASSERT_FALSE(not_found.ok());
  EXPECT_EQ(not_found.error().code(), dispatch::Code::not_found);
  EXPECT_NE(not_found.error().message().find("no order 'o-none'"), std::string::npos) << not_found.error().what();
  auto invalid = bad.wait(20s);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(invalid.error().message().find("not a customer number"), std::string::npos) << invalid.error().what();

  // A void function, then its effect seen by the next call on the same server.
  auto charged = remote::charge.dispatch(dc, *placed).value();
  EXPECT_TRUE(charged.wait(20s).ok());
  auto paid = remote::get_order.dispatch(dc, placed->id).value().wait(20s);
  ASSERT_TRUE(paid.ok()) << paid.error().what();
  EXPECT_EQ(paid->status, shop::Status::paid);

  // Each call ran once: one completed or failed row per dispatch.
  const auto calls = list();
  EXPECT_EQ(calls.size(), 6u);
  for (const auto& c : calls) EXPECT_EQ(c.attempts(), 1u) << c.function();

  // The server did verify: it said so at start and refused nothing of
  // dispatchd's.
  const std::string log = read_file(dir_ + "shop.log");
  EXPECT_EQ(log.find("DISPATCH_VERIFICATION_KEY is not set"), std::string::npos) << log;
  EXPECT_EQ(log.find("rejected"), std::string::npos) << log;
}

TEST_F(DurableShop, RunCallsSignedWithAnotherKeyOrUnsignedAreRefused) {
  // Straight to the server: unsigned is 401, another key 403, the right key runs.
  const sec::SigningKey other = sec::SigningKey::generate();
  auto unsigned_run = run_add_directly(nullptr);
  ASSERT_FALSE(unsigned_run.ok());
  EXPECT_EQ(unsigned_run.error().code(), dispatch::Code::unauthenticated);
  EXPECT_NE(unsigned_run.error().message().find("missing Signature-Input header"), std::string::npos)
      << unsigned_run.error().what();
  auto wrong_run = run_add_directly(&other);
  ASSERT_FALSE(wrong_run.ok());
  EXPECT_EQ(wrong_run.error().code(), dispatch::Code::permission_denied);
  EXPECT_NE(wrong_run.error().message().find("signature does not verify"), std::string::npos)
      << wrong_run.error().what();
  auto right_run = run_add_directly(&key_);
  ASSERT_TRUE(right_run.ok()) << right_run.error().what();
  dispatch::sdk::v1::RunResponse response;
  ASSERT_TRUE(response.ParseFromString(*right_run));
  EXPECT_EQ(response.status(), dispatch::sdk::v1::STATUS_OK);

  // Through a scheduler signing with another key: delivered, refused, final.
  other_scheduler_ = start_dispatchd(other, "other");
  ASSERT_NE(other_scheduler_.pid, -1);
  dispatch::DispatchClient& wrong = *other_scheduler_.client;
  auto refused = remote::add.dispatch(wrong, 1, 2).value().wait(20s);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), dispatch::Code::permission_denied) << refused.error().what();

  // The server logged each refusal, and no refused request ran a function:
  // the only Run it served is the rightly signed one, and the right
  // scheduler's calls still go through.
  dispatch::DispatchClient& dc = *scheduler_.client;
  EXPECT_EQ(remote::add.dispatch(dc, 20, 22).value().wait(20s).value(), 42);
  const std::string log = read_file(dir_ + "shop.log");
  EXPECT_NE(log.find("rejected POST /dispatch.sdk.v1.FunctionService/Run: 401"), std::string::npos) << log;
  EXPECT_NE(log.find("rejected POST /dispatch.sdk.v1.FunctionService/Run: 403"), std::string::npos) << log;
  std::size_t runs = 0;
  for (std::size_t at = log.find("executing: shop.add"); at != std::string::npos;
       at = log.find("executing: shop.add", at + 1)) {
    ++runs;
  }
  EXPECT_EQ(runs, 2u) << log;  // the rightly signed direct Run, and 20 + 22
}

TEST_F(DurableShop, CallsPendingWhenTheServerIsKilledCompleteOnceItIsBack) {
  dispatch::DispatchClient& dc = *scheduler_.client;
  constexpr int kSlow = 6, kDelayed = 6;
  std::vector<dispatch::Dispatched<std::string>> slow;
  std::vector<dispatch::Dispatched<int64_t>> delayed;
  std::set<std::string> ids;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(remote::slow.dispatch(dc, 800 + i).value());
    ids.insert(slow.back().id());
  }
  // Killed while the slow calls run in the server.
  for (int i = 0; i < 500 && list(admin::CALL_STATE_RUNNING).empty(); ++i) std::this_thread::sleep_for(5ms);
  ASSERT_FALSE(list(admin::CALL_STATE_RUNNING).empty());
  // These come due while the server is down (if dispatching them takes
  // less than their delay, which it does by far but for a machine stalled).
  dispatch::DispatchOptions later;
  later.delay = 600ms;
  const auto dispatching = std::chrono::steady_clock::now();
  for (int i = 0; i < kDelayed; ++i) {
    delayed.push_back(remote::add.dispatch(dc, i, int64_t{i} * i, later).value());
    ids.insert(delayed.back().id());
  }
  stop(shop_, SIGKILL);
  const bool killed_before_due = std::chrono::steady_clock::now() - dispatching < *later.delay;
  std::this_thread::sleep_for(1200ms);
  start_shop();

  for (int i = 0; i < kSlow; ++i) {
    EXPECT_EQ(slow[i].wait(30s).value(), "slept " + std::to_string(800 + i) + " ms");
  }
  for (int i = 0; i < kDelayed; ++i) EXPECT_EQ(delayed[i].wait(30s).value(), i + i * i);

  // Nothing lost, nothing twice: one completed row per dispatched call. The
  // kill interrupted every slow call (800 ms long) and the outage came
  // before every delayed one's first attempt, so each was delivered more
  // than once and recorded once.
  const auto calls = list();
  ASSERT_EQ(calls.size(), static_cast<std::size_t>(kSlow + kDelayed));
  std::set<std::string> listed;
  for (const auto& c : calls) {
    listed.insert(c.id());
    EXPECT_EQ(c.state(), admin::CALL_STATE_COMPLETED) << c.id();
    if (c.function() == "shop.slow" || killed_before_due) {
      EXPECT_GE(c.attempts(), 2u) << c.function() << " " << c.id();
    }
  }
  EXPECT_EQ(listed, ids);
  std::printf("shop-server SIGKILLed with %d slow calls running and %d delayed ones due during the outage; "
              "all %zu completed once, attempts:",
              kSlow, kDelayed, calls.size());
  for (const auto& c : calls) std::printf(" %u", c.attempts());
  std::printf("\n");
}

}  // namespace
