// dispatch::ClientLoops: many clients on one loop thread, clients spread
// over the loops and none started before a client needs it, a client
// destroyed with calls in flight (its own calls canceled, its neighbours'
// untouched), the group outliving its clients or released before them,
// idle connections closed after the idle timeout, and https:// calls on
// the loops (and the blocking path's TLS, which had no success test).
#include "dispatch/transport/client_loops.h"

#include <dirent.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "transport/test_multi_port_server.h"
#include "transport/test_service.h"

namespace dispatch {
namespace {

using std::chrono::milliseconds;

// This process's threads named `name` (the loops are dispatch-client).
int threads_named(const std::string& name) {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string line;
    if (std::getline(comm, line) && line == name) ++n;
  }
  ::closedir(dir);
  return n;
}
int loop_threads() { return threads_named("dispatch-client"); }
int all_threads() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(dir)) n += e->d_name[0] != '.';
  ::closedir(dir);
  return n;
}

// Waits up to `limit` for `done()`; true if it came.
template <typename F>
bool eventually(F done, milliseconds limit = milliseconds(5000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// Counts callbacks and keeps their results by key.
struct Results {
  std::mutex mu;
  std::condition_variable cv;
  std::map<int, std::vector<Result<std::string>>> by_key;
  int count = 0;

  Client::Callback slot(int key) {
    return [this, key](Result<std::string> r) {
      std::lock_guard lock(mu);
      by_key[key].push_back(std::move(r));
      ++count;
      cv.notify_all();
    };
  }
  void wait(int n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return count >= n; });
  }
};

std::string echo(const std::string&, const std::string& body) { return body; }

ServerOptions quiet_options() {
  ServerOptions options;
  options.port = 0;
  options.logger = Logger(LogLevel::off);
  return options;
}

TEST(ClientLoops, ManyClientsShareOneLoopThread) {
  constexpr int kClients = 50, kCalls = 3;
  testing::MultiPortServer server(kClients, echo);
  ClientLoopsOptions o;
  o.threads = 1;
  auto loops = std::make_shared<ClientLoops>(o);
  EXPECT_EQ(loop_threads(), 0) << "a loop started before any client needed it";
  HttpClientOptions options;
  options.loops = loops;
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<HttpClient>(server.url(i), options));
  Results results;
  for (int c = 0; c < kCalls; ++c) {
    for (int i = 0; i < kClients; ++i) {
      clients[i]->call_async("/e", "to " + std::to_string(i), {}, results.slot(i));
    }
  }
  results.wait(kClients * kCalls);
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(results.by_key[i].size(), static_cast<std::size_t>(kCalls));
    for (auto& r : results.by_key[i]) {
      ASSERT_TRUE(r.ok()) << r.error().what();
      EXPECT_EQ(*r, "to " + std::to_string(i));
    }
    EXPECT_GE(clients[i]->stats().connections_opened, 1u);
  }
  EXPECT_EQ(loop_threads(), 1);
  EXPECT_EQ(server.requests(), kClients * kCalls);
}

TEST(ClientLoops, ClientsSpreadOverTheLoopsUpToTheirNumber) {
  testing::MultiPortServer server(10, echo);
  ClientLoopsOptions o;
  o.threads = 3;
  auto loops = std::make_shared<ClientLoops>(o);
  EXPECT_EQ(loops->options().threads, 3u);
  HttpClientOptions options;
  options.loops = loops;
  std::vector<std::unique_ptr<HttpClient>> clients;
  Results results;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::make_unique<HttpClient>(server.url(i), options));
    // A client is placed on a loop by its first call, not when made.
    if (i == 0) {
      EXPECT_EQ(loop_threads(), 0);
    }
    clients.back()->call_async("/e", "x", {}, results.slot(i));
    // (A loop thread names itself as it starts.)
    EXPECT_TRUE(eventually([&] { return loop_threads() == std::min(i + 1, 3); })) << loop_threads();
  }
  results.wait(10);
  EXPECT_EQ(loop_threads(), 3);
  EXPECT_GE(ClientLoops().options().threads, 1u);  // 0: one per core
}

TEST(ClientLoops, AClientDestroyedWithCallsInFlightCancelsOnlyItsOwn) {
  DispatchTable table{&testing::test_service()};
  Server server(table, quiet_options());
  ASSERT_TRUE(server.start().ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  ClientLoopsOptions o;
  o.threads = 1;
  auto loops = std::make_shared<ClientLoops>(o);
  HttpClientOptions options;
  options.loops = loops;
  options.max_connections = 2;
  HttpClient neighbour(url, options);
  testing::gate().reset();
  Results held;
  {
    HttpClient doomed(url, options);
    // Two on the wire, held by the gate; three waiting for a connection.
    for (int i = 0; i < 5; ++i) doomed.call_async("/t.TService/gate", "", {}, held.slot(i));
    testing::gate().wait_entered(2);
    // The neighbour on the same loop is served meanwhile.
    Results before;
    neighbour.call_async("/t.TService/add", testing::varint_field(1, 1), {}, before.slot(0));
    before.wait(1);
    ASSERT_TRUE(before.by_key[0].front().ok()) << before.by_key[0].front().error().what();
  }
  {
    std::lock_guard lock(held.mu);
    EXPECT_EQ(held.count, 5);  // all completed by the time the destructor returned
    for (auto& [i, results] : held.by_key) {
      ASSERT_EQ(results.size(), 1u) << "call " << i;
      EXPECT_EQ(results.front().error().code(), Code::canceled) << results.front().error().what();
    }
  }
  testing::gate().release();
  Results after;
  neighbour.call_async("/t.TService/add", testing::varint_field(1, 2), {}, after.slot(0));
  after.wait(1);
  ASSERT_TRUE(after.by_key[0].front().ok()) << after.by_key[0].front().error().what();
  EXPECT_EQ(testing::read_varints(*after.by_key[0].front())[1], 2u);
  EXPECT_EQ(loop_threads(), 1);
}

TEST(ClientLoops, TheGroupOutlivesItsClientsOrIsReleasedBeforeThem) {
  testing::MultiPortServer server(4, echo);
  ClientLoopsOptions o;
  o.threads = 2;
  // Destroyed after its clients.
  {
    auto loops = std::make_shared<ClientLoops>(o);
    HttpClientOptions options;
    options.loops = loops;
    Results results;
    {
      HttpClient a(server.url(0), options), b(server.url(1), options);
      a.call_async("/e", "a", {}, results.slot(0));
      b.call_async("/e", "b", {}, results.slot(1));
      results.wait(2);
      EXPECT_EQ(loop_threads(), 2);
    }
    EXPECT_EQ(loop_threads(), 2) << "the loops belong to the group, not to a client";
  }
  EXPECT_EQ(loop_threads(), 0);
  // Released by its owner first: the clients keep it until the last goes.
  {
    auto loops = std::make_shared<ClientLoops>(o);
    HttpClientOptions options;
    options.loops = loops;
    auto a = std::make_unique<HttpClient>(server.url(2), options);
    auto b = std::make_unique<HttpClient>(server.url(3), options);
    options.loops.reset();
    loops.reset();
    Results results;
    a->call_async("/e", "a", {}, results.slot(0));
    b->call_async("/e", "b", {}, results.slot(1));
    results.wait(2);
    for (int i : {0, 1}) ASSERT_TRUE(results.by_key[i].front().ok()) << results.by_key[i].front().error().what();
    a.reset();
    EXPECT_EQ(loop_threads(), 2);
    b.reset();
    EXPECT_EQ(loop_threads(), 0);
  }
}

TEST(ClientLoops, IdleConnectionsCloseAfterTheIdleTimeout) {
  constexpr int kClients = 20;
  testing::MultiPortServer server(kClients, echo);
  ClientLoopsOptions o;
  o.threads = 2;
  o.idle_timeout = milliseconds(300);
  HttpClientOptions options;
  options.loops = std::make_shared<ClientLoops>(o);
  std::vector<std::unique_ptr<HttpClient>> clients;
  Results results;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<HttpClient>(server.url(i), options));
    clients.back()->call_async("/e", "x", {}, results.slot(i));
  }
  results.wait(kClients);
  EXPECT_EQ(server.accepted(), kClients);
  // Closed by the client (the server never closes one), no sooner than the
  // timeout allows.
  const auto idle_from = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return server.open() == 0; })) << server.open() << " connections still open";
  EXPECT_GE(std::chrono::steady_clock::now() - idle_from, milliseconds(150));
  // A client whose connections timed out opens a new one.
  clients[0]->call_async("/e", "again", {}, results.slot(0));
  results.wait(kClients + 1);
  ASSERT_TRUE(results.by_key[0].back().ok()) << results.by_key[0].back().error().what();
  EXPECT_EQ(clients[0]->stats().connections_opened, 2u);
}

TEST(ClientLoops, IdleConnectionsInUseStayOpen) {
  testing::MultiPortServer server(1, echo);
  ClientLoopsOptions o;
  o.threads = 1;
  o.idle_timeout = milliseconds(300);
  HttpClientOptions options;
  options.loops = std::make_shared<ClientLoops>(o);
  // A call every 50 ms for 600 ms, twice the timeout: the connection never
  // sits idle for the timeout, so it is the only one. A loaded machine can
  // stall this thread past the timeout between two calls, and then a second
  // connection is right; such a run is not evidence, so it is run again
  // (with a new client) until one has no gap over half the timeout.
  for (int attempt = 1;; ++attempt) {
    HttpClient client(server.url(0), options);
    auto gap = milliseconds(0);
    auto last = std::chrono::steady_clock::now();
    for (int i = 0; i < 12; ++i) {
      Results results;
      const auto start = std::chrono::steady_clock::now();
      if (i > 0) gap = std::max(gap, std::chrono::duration_cast<milliseconds>(start - last));
      client.call_async("/e", "x", {}, results.slot(0));
      results.wait(1);
      ASSERT_TRUE(results.by_key[0].front().ok());
      last = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(milliseconds(50));
    }
    if (gap < o.idle_timeout / 2) {
      EXPECT_EQ(client.stats().connections_opened, 1u) << "longest gap between calls " << gap.count() << " ms";
      return;
    }
    ASSERT_LT(attempt, 10) << "every run stalled past half the idle timeout (last: " << gap.count() << " ms)";
  }
}

class ClientLoopsTls : public ::testing::Test {
 protected:
  void SetUp() override {
    certificate_ = testing::TestCertificate::make();
    ca_file_ = certificate_.write_cert(::testing::TempDir() + "client_loops_ca_" + std::to_string(::getpid()) +
                                       ".pem");
  }
  void TearDown() override { std::remove(ca_file_.c_str()); }

  testing::TestCertificate certificate_;
  std::string ca_file_;
};

TEST_F(ClientLoopsTls, HttpsCallsRunOnTheLoopsWithoutThreadsOfTheirOwn) {
  constexpr int kClients = 8, kCalls = 6;
  testing::MultiPortServer server(kClients, echo, &certificate_);
  ClientLoopsOptions o;
  o.threads = 1;
  HttpClientOptions options;
  options.loops = std::make_shared<ClientLoops>(o);
  options.ca_file = ca_file_;
  options.max_connections = 3;
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<HttpClient>(server.url(i), options));
  Results warm;
  clients[0]->call_async("/e", "warm", {}, warm.slot(0));
  warm.wait(1);
  ASSERT_TRUE(warm.by_key[0].front().ok()) << warm.by_key[0].front().error().what();
  // Threads now: the test's, the server's and one loop. More https clients
  // with calls in flight add none.
  const int threads_before = all_threads();
  Results results;
  for (int c = 0; c < kCalls; ++c) {
    for (int i = 0; i < kClients; ++i) clients[i]->call_async("/e", std::to_string(i), {}, results.slot(i));
  }
  results.wait(kClients * kCalls);
  for (int i = 0; i < kClients; ++i) {
    for (auto& r : results.by_key[i]) {
      ASSERT_TRUE(r.ok()) << r.error().what();
      EXPECT_EQ(*r, std::to_string(i));
    }
    EXPECT_LE(clients[i]->stats().connections_opened, 3u);
  }
  EXPECT_EQ(all_threads(), threads_before);
  EXPECT_EQ(loop_threads(), 1);
}

TEST_F(ClientLoopsTls, BlockingHttpsCallsAndAnUntrustedServer) {
  testing::MultiPortServer server(1, echo, &certificate_);
  HttpClientOptions options;
  options.ca_file = ca_file_;
  HttpClient trusting(server.url(0), options);
  auto r = trusting.call("/e", "blocking", {});
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, "blocking");
  // Without the CA, the certificate is refused on both paths.
  HttpClient wary(server.url(0));
  r = wary.call("/e", "x", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_NE(r.error().message().find("TLS handshake with https://127.0.0.1:"), std::string::npos)
      << r.error().message();
  Results results;
  wary.call_async("/e", "x", {}, results.slot(0));
  results.wait(1);
  auto& a = results.by_key[0].front();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), Code::unavailable);
  EXPECT_NE(a.error().message().find("TLS handshake with https://127.0.0.1:"), std::string::npos)
      << a.error().message();
  EXPECT_NE(a.error().message().find("certificate verify failed"), std::string::npos) << a.error().message();
  // verify_tls off accepts it.
  HttpClientOptions lax;
  lax.verify_tls = false;
  HttpClient trusting_anything(server.url(0), lax);
  Results ok;
  trusting_anything.call_async("/e", "lax", {}, ok.slot(0));
  ok.wait(1);
  ASSERT_TRUE(ok.by_key[0].front().ok()) << ok.by_key[0].front().error().what();
}

}  // namespace
}  // namespace dispatch
