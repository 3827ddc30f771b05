// The JetStream store beyond the common contract (store_conformance_test
// holds it to that): several stores on one bucket, as several dispatchd
// processes are (one lease at a time, lapsed leases taken over, each sees
// the others' calls); effects left by a process that died between its
// steps, applied by another; bad input (servers unreachable, a bucket with
// a TTL, URLs that are not nats://host:port).
#include "dispatch/jetstream/jetstream_store.h"

#include <gtest/gtest.h>

#include <nats/nats.h>

#include <chrono>
#include <set>
#include <thread>

#include "jetstream/testing/nats_server.h"

namespace dispatch::scheduler {
namespace {

using testing::NatsServer;

class JetStreamStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
    ASSERT_TRUE(nats_.start()) << nats_.failure();
  }
  JetStreamOptions options(std::string bucket = "calls") {
    JetStreamOptions o;
    o.servers = {nats_.url()};
    o.bucket = std::move(bucket);
    o.timeout = std::chrono::milliseconds(2000);
    return o;
  }
  std::unique_ptr<Store> open(const JetStreamOptions& o) {
    auto s = open_jetstream_store(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static NewCall call(std::string function) {
    NewCall c;
    c.function = std::move(function);
    c.endpoint = "http://127.0.0.1:1";
    c.input_type_url = "type.googleapis.com/t.R";
    c.input = "in";
    return c;
  }
  static ClaimOptions at(int64_t now, int64_t lease_ms = 60'000) {
    ClaimOptions o;
    o.now_ms = now;
    o.lease_until_ms = now + lease_ms;
    return o;
  }
  // Waits (up to 5 s) until `store`'s index has `n` pending calls: the
  // watcher brings the other processes' writes a moment later.
  static void wait_pending(Store& store, int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (store.count_by_state().value()[static_cast<int>(CallState::pending)] != n &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(store.count_by_state().value()[static_cast<int>(CallState::pending)], n);
  }
  NatsServer nats_;
};

TEST_F(JetStreamStoreTest, ACallIsLeasedByExactlyOneOfTwoProcesses) {
  auto a = open(options());
  auto b = open(options());
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->shared());
  std::vector<NewCall> calls;
  for (int i = 0; i < 40; ++i) calls.push_back(call("t.f" + std::to_string(i % 4)));
  auto ids = a->enqueue_sync(std::move(calls), 1000);
  ASSERT_TRUE(ids.ok()) << ids.error().what();
  wait_pending(*b, 40);
  // Both claim at once, from their own indexes; the compare-and-set decides.
  std::vector<CallRecord> got_a, got_b;
  std::thread ta([&] {
    for (int i = 0; i < 10; ++i) {
      auto r = a->claim_sync(at(2000)).value();
      got_a.insert(got_a.end(), r.begin(), r.end());
    }
  });
  std::thread tb([&] {
    for (int i = 0; i < 10; ++i) {
      auto r = b->claim_sync(at(2000)).value();
      got_b.insert(got_b.end(), r.begin(), r.end());
    }
  });
  ta.join();
  tb.join();
  std::set<std::string> leased;
  for (const auto& r : got_a) EXPECT_TRUE(leased.insert(r.id).second) << r.id << " leased twice";
  for (const auto& r : got_b) EXPECT_TRUE(leased.insert(r.id).second) << r.id << " leased twice";
  EXPECT_EQ(leased.size(), 40u);
  // A finish is accepted only from the holder of the lease.
  const CallRecord& one = got_a.empty() ? got_b.at(0) : got_a.at(0);
  Store& holder = got_a.empty() ? *b : *a;
  Store& other = got_a.empty() ? *a : *b;
  Outcome done;
  done.state = CallState::completed;
  EXPECT_FALSE(other.finish_sync(one.id, one.lease + 2, done, 2100).value());
  EXPECT_TRUE(other.finish_sync(one.id, one.lease, done, 2100).value());  // the lease is the token, not the process
  EXPECT_FALSE(holder.finish_sync(one.id, one.lease, done, 2100).value());
  EXPECT_EQ(a->get(one.id).value()->state, CallState::completed);
}

TEST_F(JetStreamStoreTest, ALapsedLeaseIsTakenOverByAnotherProcess) {
  auto a = open(options());
  auto b = open(options());
  ASSERT_TRUE(a && b);
  std::vector<NewCall> one;
  one.push_back(call("t.f"));
  const std::string id = a->enqueue_sync(std::move(one), 1000).value().at(0);
  auto leased = a->claim_sync(at(1000, 500)).value();
  ASSERT_EQ(leased.size(), 1u);
  // b sees it running; before the lease lapses it stays a's.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (b->count_by_state().value()[static_cast<int>(CallState::running)] != 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(b->release_leases_sync(1400, false).value(), 0u);
  EXPECT_TRUE(b->claim_sync(at(1400)).value().empty());
  // Lapsed: b releases it and leases it itself; a's late finish is refused.
  EXPECT_EQ(b->release_leases_sync(1600, false).value(), 1u);
  auto taken = b->claim_sync(at(1600)).value();
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].id, id);
  EXPECT_EQ(taken[0].attempts, 2u);
  Outcome done;
  done.state = CallState::completed;
  EXPECT_FALSE(a->finish_sync(id, leased[0].lease, done, 1700).value());
  EXPECT_TRUE(b->finish_sync(id, taken[0].lease, done, 1700).value());
}

TEST_F(JetStreamStoreTest, AnotherProcessSeesTheCallsAndTheirChanges) {
  auto a = open(options());
  auto b = open(options());
  ASSERT_TRUE(a && b);
  std::vector<NewCall> one;
  one.push_back(call("t.f"));
  const std::string id = a->enqueue_sync(std::move(one), 1000).value().at(0);
  EXPECT_EQ(b->get(id).value()->state, CallState::pending);  // reads ask the server
  EXPECT_EQ(b->cancel_sync(id, 1100).value().state, CallState::cancelled);
  EXPECT_EQ(a->get(id).value()->state, CallState::cancelled);
  auto retried = a->retry_sync(id, 1200);
  ASSERT_TRUE(retried.ok()) << retried.error().what();
  EXPECT_EQ(retried->state, CallState::pending);
}

TEST_F(JetStreamStoreTest, AnIdempotencyKeyHoldsAcrossProcesses) {
  auto a = open(options());
  auto b = open(options());
  ASSERT_TRUE(a && b);
  NewCall c = call("t.f");
  c.idempotency_key = "order-1 / \xff";
  std::vector<NewCall> v1{c}, v2{c};
  const std::string first = a->enqueue_sync(std::move(v1), 1000).value().at(0);
  EXPECT_EQ(b->enqueue_sync(std::move(v2), 1000).value().at(0), first);
}

TEST_F(JetStreamStoreTest, AStoreOpenedLaterSeesEveryCall) {
  std::string id;
  {
    auto a = open(options());
    ASSERT_TRUE(a);
    std::vector<NewCall> one;
    NewCall later = call("t.f");
    later.not_before_ms = 5000;
    one.push_back(later);
    id = a->enqueue_sync(std::move(one), 1000).value().at(0);
  }
  auto b = open(options());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->next_due_ms().value(), std::optional<int64_t>(5000));
  EXPECT_EQ(b->list(CallState::pending, 10, "").value().at(0).id, id);
}

TEST_F(JetStreamStoreTest, UnreachableServersAreAClearError) {
  JetStreamOptions o = options();
  nats_.stop();
  o.timeout = std::chrono::milliseconds(300);
  auto s = open_jetstream_store(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Code::unavailable);
  EXPECT_NE(s.error().message().find(nats_.url()), std::string::npos) << s.error().message();
}

TEST_F(JetStreamStoreTest, ABucketWithATtlIsRefusedNamingIt) {
  // Someone else's bucket, made with a TTL that would expire calls.
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, nats_.url().c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = "theirs";
  cfg.TTL = 60'000'000'000LL;
  kvStore* kv = nullptr;
  ASSERT_EQ(js_CreateKeyValue(&kv, js, &cfg), NATS_OK);
  kvStore_Destroy(kv);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  auto s = open_jetstream_store(options("theirs"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Code::failed_precondition);
  EXPECT_NE(s.error().message().find("TTL"), std::string::npos) << s.error().message();
}

TEST(ParseNatsServers, AcceptsOneOrManyHostPorts) {
  EXPECT_EQ(parse_nats_servers("nats://127.0.0.1:4222").value(), std::vector<std::string>{"nats://127.0.0.1:4222"});
  EXPECT_EQ(parse_nats_servers("nats://a:1,b:2,nats://c:3").value(),
            (std::vector<std::string>{"nats://a:1", "nats://b:2", "nats://c:3"}));
  for (const char* bad : {"127.0.0.1:4222", "nats://", "nats://host", "nats://h:x", "nats://h:99999", "nats://a:1,",
                          "nats://h:123456789012345678901234"}) {
    auto r = parse_nats_servers(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), Code::invalid_argument);
    }
  }
}

}  // namespace
}  // namespace dispatch::scheduler
