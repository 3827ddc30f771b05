// dispatchd on NATS JetStream (--store nats://...), as processes over
// loopback: two dispatchd share one bucket on a nats-server of the test's
// own and deliver calls to an endpoint, each call once, whichever of them
// took the dispatch and whichever is asked for the result; a workflow's
// children and timer run across them; while the server is away the API
// answers unavailable, and it carries on by itself when the server is back;
// with --nats-tls-ca it connects to a server requiring TLS and refuses one
// whose certificate that CA did not sign; servers that cannot be reached at
// start, or a
// --store that is not nats://, end dispatchd at once with a clear error.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/transport/http_client.h"
#include "jetstream/testing/nats_server.h"
#include "transport/test_certificate.h"

namespace {

using namespace std::chrono_literals;
using dispatch::scheduler::testing::NatsServer;
using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;

using durable_test::Output;
using durable_test::run;

class DispatchdOnJetStream : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
    ASSERT_TRUE(nats_.start()) << nats_.failure();
    dir_ = ::testing::TempDir() + "dispatchd_js_" + std::to_string(::getpid()) + "/";
    ASSERT_EQ(::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    ep_port_ = free_port();
    ep_url_ = "http://127.0.0.1:" + std::to_string(ep_port_);
    endpoint_ = spawn({DURABLE_ENDPOINT, "--listen", "127.0.0.1:" + std::to_string(ep_port_), "--log",
                       dir_ + "seen.log"},
                      dir_ + "endpoint.log");
    for (int i = 0; i < 2; ++i) {
      api_ports_[i] = free_port();
      schedulers_[i] = spawn({DISPATCHD, "--store", nats_.url(), "--nats-bucket", "e2e", "--nats-marker-grace", "1s",
                              "--listen", "127.0.0.1:" + std::to_string(api_ports_[i]), "--api-key", "k1"},
                             dir_ + "dispatchd" + std::to_string(i) + ".log");
    }
    for (int i = 0; i < 500 && !(port_open(api_ports_[0]) && port_open(api_ports_[1]) && port_open(ep_port_)); ++i) {
      std::this_thread::sleep_for(10ms);
    }
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(port_open(api_ports_[i])) << "dispatchd " << i << " is not listening on " << api_ports_[i]
                                            << "; its log:\n" << log_of("dispatchd" + std::to_string(i));
    }
    ASSERT_TRUE(port_open(ep_port_)) << "the endpoint is not listening on " << ep_port_ << "; its log:\n"
                                     << log_of("endpoint");
  }
  void TearDown() override {
    for (pid_t pid : {schedulers_[0], schedulers_[1], endpoint_}) {
      if (pid <= 0) continue;
      ::kill(pid, SIGTERM);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
    if (!HasFailure() && !dir_.empty()) ::system(("rm -rf " + dir_).c_str());
  }
  std::string log_of(const std::string& name) {
    std::ifstream in(dir_ + name + ".log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::unique_ptr<dispatch::HttpClient> api(int i) {
    dispatch::HttpClientOptions o;
    o.api_key = "k1";
    return std::make_unique<dispatch::HttpClient>("http://127.0.0.1:" + std::to_string(api_ports_[i]), o);
  }
  // Deliveries the endpoint saw, per dispatch ID.
  std::map<std::string, int> seen() {
    std::map<std::string, int> out;
    std::ifstream in(dir_ + "seen.log");
    std::string id, attempt;
    while (in >> id >> attempt) out[id]++;
    return out;
  }

  NatsServer nats_;
  std::string dir_, ep_url_;
  uint16_t ep_port_ = 0;
  std::array<uint16_t, 2> api_ports_{};
  std::array<pid_t, 2> schedulers_{-1, -1};
  pid_t endpoint_ = -1;
};

// A batch that fits a group is one record. A bigger one is cut into
// groups, written after a record of its own, removed once they are
// written, which leaves a delete marker in the bucket's stream; dispatchd
// deletes it after --nats-marker-grace: the stream then holds the groups.
TEST_F(DispatchdOnJetStream, ABatchLeavesNoDeleteMarkerAfterTheGrace) {
  auto a = api(0);
  dispatch::DispatchClient da(*a, ep_url_);
  std::vector<std::string> all;
  for (const int size : {10, 300}) {
    std::vector<dispatch::PendingCall> batch;
    for (int i = 0; i < size; ++i) {
      batch.push_back({"durable.record", "durable.RecordRequest", "b" + std::to_string(i), {}});
    }
    auto ids = da.dispatch_batch(std::move(batch));
    ASSERT_TRUE(ids.ok()) << ids.error().what();
    ASSERT_EQ(ids->size(), static_cast<std::size_t>(size));
    all.insert(all.end(), ids->begin(), ids->end());
  }
  for (const std::string& id : all) ASSERT_TRUE(da.await_result(id, 20s).ok()) << id;
  EXPECT_EQ(dispatch::scheduler::testing::await_bucket_stream_messages(nats_.url(), "e2e", 6), 6u)
      << "the batch record's delete marker stayed in the stream; dispatchd 0's log:\n" << log_of("dispatchd0");
}

TEST_F(DispatchdOnJetStream, TwoDispatchdShareTheCallsAndEachIsDeliveredOnce) {
  auto a = api(0);
  auto b = api(1);
  dispatch::DispatchClient da(*a, ep_url_), db(*b, ep_url_);
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    auto id = (i % 2 == 0 ? da : db).dispatch("durable.record", "durable.RecordRequest", "m" + std::to_string(i));
    ASSERT_TRUE(id.ok()) << id.error().what();
    ids.push_back(*id);
  }
  // Results are asked of the other process than the one that took the call.
  for (int i = 0; i < 30; ++i) {
    auto result = (i % 2 == 0 ? db : da).await_result(ids[i], 20s);
    ASSERT_TRUE(result.ok()) << ids[i] << ": " << result.error().what();
    EXPECT_EQ(*result, "m" + std::to_string(i));
  }
  const auto deliveries = seen();
  for (const std::string& id : ids) {
    auto it = deliveries.find(id);
    ASSERT_NE(it, deliveries.end()) << id << " was never delivered";
    EXPECT_EQ(it->second, 1) << id << " was delivered " << it->second << " times";
  }
  // A workflow: its children and its timer are leased by either process.
  auto fan = da.dispatch("durable.fan", "durable.FanRequest", "5");
  ASSERT_TRUE(fan.ok()) << fan.error().what();
  auto joined = db.await_result(*fan, 20s);
  ASSERT_TRUE(joined.ok()) << joined.error().what();
  EXPECT_EQ(*joined, "r0,r1,r2,r3,r4");
  // The store's rounds of writes are counted at GET /metrics, as SQLite's
  // group commits are.
  auto shown = durable_test::run("curl -s http://127.0.0.1:" + std::to_string(api_ports_[0]) + "/metrics");
  ASSERT_EQ(shown.status, 0) << shown.out;
  EXPECT_NE(shown.out.find("# TYPE dispatch_store_commit_writes histogram"), std::string::npos) << shown.out;
  EXPECT_EQ(shown.out.find("dispatch_store_commit_duration_seconds_count 0\n"), std::string::npos) << shown.out;
}

TEST_F(DispatchdOnJetStream, WhileNatsIsAwayTheApiAnswersUnavailableAndRecoversByItself) {
  auto a = api(0);
  dispatch::DispatchClient da(*a, ep_url_);
  auto before = da.dispatch("durable.record", "durable.RecordRequest", "before");
  ASSERT_TRUE(before.ok()) << before.error().what();
  ASSERT_TRUE(da.await_result(*before, 20s).ok());
  nats_.stop();
  const auto stopped = std::chrono::steady_clock::now();
  auto during = da.dispatch("durable.record", "durable.RecordRequest", "during");
  ASSERT_FALSE(during.ok()) << "accepted with NATS away: " << *during;
  EXPECT_EQ(during.error().code(), dispatch::Code::unavailable) << during.error().what();
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, 15s);
  auto status = da.await_result(*before, 5s);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code(), dispatch::Code::unavailable) << status.error().what();
  // The same server back on its port and storage: dispatchd carries on by
  // itself, within the reconnect's time.
  ASSERT_TRUE(nats_.start()) << nats_.failure();
  const auto back = std::chrono::steady_clock::now();
  dispatch::Result<std::string> after = dispatch::Error(dispatch::Code::unavailable, "not tried");
  while (std::chrono::steady_clock::now() - back < 30s) {
    after = da.dispatch("durable.record", "durable.RecordRequest", "after");
    if (after.ok()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(after.ok()) << "not recovered 30 s after NATS came back: " << after.error().what();
  std::printf("dispatchd recovered %lld ms after NATS came back\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - back)
                      .count()));
  auto result = da.await_result(*after, 20s);
  ASSERT_TRUE(result.ok()) << result.error().what();
  EXPECT_EQ(*result, "after");
  EXPECT_EQ(da.await_result(*before, 5s).value(), "before");
}

TEST(DispatchdJetStreamTls, ConnectsWithTheCaGivenAndRefusesAServerItDoesNotTrust) {
  if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
  const std::string dir = ::testing::TempDir() + "dispatchd_js_tls_" + std::to_string(::getpid()) + "/";
  ASSERT_EQ(::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  const auto server = dispatch::testing::TestCertificate::make();
  const std::string cert = server.write_cert(dir + "server.pem");
  std::ofstream(dir + "server.key") << server.key_pem;
  const std::string stranger = dispatch::testing::TestCertificate::make().write_cert(dir + "stranger.pem");
  NatsServer nats;
  nats.set_tls(cert, dir + "server.key");
  ASSERT_TRUE(nats.start()) << nats.failure();

  // Trusting the server's CA: it serves, on the bucket over TLS.
  const uint16_t port = free_port();
  pid_t pid = spawn({DISPATCHD, "--store", nats.url(), "--nats-tls-ca", cert, "--listen",
                     "127.0.0.1:" + std::to_string(port)},
                    dir + "dispatchd.log");
  for (int i = 0; i < 500 && !port_open(port); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(port_open(port)) << "see " << dir << "dispatchd.log";
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);

  const std::string listen = " --listen 127.0.0.1:0";
  Output untrusted = run(std::string(DISPATCHD) + " --store " + nats.url() + " --nats-tls-ca " + stranger + listen);
  EXPECT_EQ(untrusted.status, 2) << untrusted.out;
  EXPECT_NE(untrusted.out.find("over TLS"), std::string::npos) << untrusted.out;
  Output plain = run(std::string(DISPATCHD) + " --store " + nats.url() + listen);
  EXPECT_EQ(plain.status, 2) << plain.out;
  EXPECT_NE(plain.out.find("cannot connect to NATS"), std::string::npos) << plain.out;
  Output env = run("DISPATCH_NATS_TLS_CA=" + dir + "absent.pem " + DISPATCHD + " --store " + nats.url() + listen);
  EXPECT_EQ(env.status, 2) << env.out;
  EXPECT_NE(env.out.find("absent.pem"), std::string::npos) << env.out;
  Output half = run(std::string(DISPATCHD) + " --store " + nats.url() + " --nats-tls-cert " + cert + listen);
  EXPECT_EQ(half.status, 2) << half.out;
  EXPECT_NE(half.out.find("needs both its chain and its key"), std::string::npos) << half.out;
  nats.stop();
  if (!::testing::Test::HasFailure()) ::system(("rm -rf " + dir).c_str());
}

TEST(DispatchdJetStreamFlags, UnreachableServersAndBadStoresEndItAtOnce) {
  const std::string listen = " --listen 127.0.0.1:0";
  const auto start = std::chrono::steady_clock::now();
  Output down = run(std::string(DISPATCHD) + " --store nats://127.0.0.1:" + std::to_string(free_port()) + listen);
  EXPECT_EQ(down.status, 2) << down.out;
  EXPECT_NE(down.out.find("cannot connect to NATS at nats://127.0.0.1:"), std::string::npos) << down.out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  Output scheme = run(std::string(DISPATCHD) + " --store redis://127.0.0.1:6379" + listen);
  EXPECT_EQ(scheme.status, 2);
  EXPECT_NE(scheme.out.find("must start with nats://"), std::string::npos) << scheme.out;
  EXPECT_NE(scheme.out.find("for SQLite use --db PATH"), std::string::npos) << scheme.out;
  Output port = run(std::string(DISPATCHD) + " --store nats://h:notaport" + listen);
  EXPECT_EQ(port.status, 2);
  EXPECT_NE(port.out.find("'h:notaport'"), std::string::npos) << port.out;
  // The store from the environment, as from the flag; the flag wins.
  Output env_down = run("DISPATCH_STORE=nats://127.0.0.1:" + std::to_string(free_port()) + " " + DISPATCHD + listen);
  EXPECT_EQ(env_down.status, 2) << env_down.out;
  EXPECT_NE(env_down.out.find("cannot connect to NATS at nats://127.0.0.1:"), std::string::npos) << env_down.out;
  Output env_scheme = run("DISPATCH_STORE=redis://127.0.0.1:6379 " + std::string(DISPATCHD) + listen);
  EXPECT_EQ(env_scheme.status, 2);
  EXPECT_NE(env_scheme.out.find("DISPATCH_STORE: "), std::string::npos) << env_scheme.out;
  EXPECT_NE(env_scheme.out.find("must start with nats://"), std::string::npos) << env_scheme.out;
  Output flag_wins = run("DISPATCH_STORE=redis://127.0.0.1:6379 " + std::string(DISPATCHD) + " --store nats://h:notaport" + listen);
  EXPECT_EQ(flag_wins.status, 2);
  EXPECT_NE(flag_wins.out.find("'h:notaport'"), std::string::npos) << flag_wins.out;
  const std::string db = ::testing::TempDir() + "dispatchd_env_db_" + std::to_string(::getpid()) + "/";
  ASSERT_EQ(::system(("rm -rf " + db + " && mkdir -p " + db).c_str()), 0);
  Output db_wins = run("DISPATCH_STORE=redis://127.0.0.1:6379 " + std::string(DISPATCHD) + " --db " + db +
                       "nested/missing/x.db" + listen);
  EXPECT_EQ(db_wins.status, 2);
  EXPECT_EQ(db_wins.out.find("DISPATCH_STORE"), std::string::npos) << db_wins.out;
  ::system(("rm -rf " + db).c_str());
  Output replicas = run(std::string(DISPATCHD) + " --store nats://127.0.0.1:1 --nats-replicas 2" + listen);
  EXPECT_EQ(replicas.status, 2);
  EXPECT_NE(replicas.out.find("--nats-replicas must be 1, 3 or 5, not 2"), std::string::npos) << replicas.out;
  // --replicas is the same flag.
  Output short_flag = run(std::string(DISPATCHD) + " --store nats://127.0.0.1:1 --replicas 4" + listen);
  EXPECT_EQ(short_flag.status, 2);
  EXPECT_NE(short_flag.out.find("--nats-replicas must be 1, 3 or 5, not 4"), std::string::npos) << short_flag.out;
  Output grace = run(std::string(DISPATCHD) + " --store nats://127.0.0.1:1 --nats-marker-grace soon" + listen);
  EXPECT_EQ(grace.status, 2);
  EXPECT_NE(grace.out.find("--nats-marker-grace needs a duration such as 7d, 36h, 90m or 45s (0 keeps markers), got "
                           "'soon'"),
            std::string::npos)
      << grace.out;
}

}  // namespace
