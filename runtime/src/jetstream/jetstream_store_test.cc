// The JetStream store beyond the common contract (store_conformance_test
// holds it to that): several stores on one bucket, as several dispatchd
// processes are (one lease at a time, lapsed leases taken over, each sees
// the others' calls); effects left by a process that died between its
// steps, applied by another; on a 3-node cluster with three replicas, the
// loss of one node loses nothing acknowledged, and on a 5-node cluster with
// five the loss of two (without a quorum, reads and writes are
// unavailable); TLS to the servers; bad input (servers unreachable, a bucket with
// a TTL, URLs that are not nats://host:port).
#include "dispatch/jetstream/jetstream_store.h"

#include <gtest/gtest.h>

#include <nats/nats.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <condition_variable>
#include <future>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "dispatch/jetstream/v1/records.pb.h"
#include "dispatch/metrics/registry.h"
#include "jetstream/jetstream_store_testing.h"
#include "jetstream/records.h"
#include "jetstream/records.h"
#include "jetstream/testing/nats_server.h"
#include "transport/test_certificate.h"

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

// Finishes queued together are written together, and each callback gets
// its own call's answer: true for the holder of the lease, false for a
// lease that is not the call's, and a second finish of one call in the
// same queue is decided after the first (false: no longer running).
TEST_F(JetStreamStoreTest, FinishesQueuedTogetherEachGetTheirOwnAnswer) {
  auto a = open(options());
  ASSERT_TRUE(a);
  std::vector<NewCall> calls;
  for (int i = 0; i < 60; ++i) calls.push_back(call("t.f"));
  ASSERT_TRUE(a->enqueue_sync(std::move(calls), 1000).ok());
  ClaimOptions o = at(2000);
  o.max = 100;
  auto leased = a->claim_sync(o).value();
  ASSERT_EQ(leased.size(), 60u);
  std::mutex mu;
  std::map<std::string, std::vector<bool>> answers;  // ID -> each finish's answer, in callback order
  std::atomic<int> pending{0};
  auto record = [&](const std::string& id) {
    return [&, id](Result<bool> r) {
      ASSERT_TRUE(r.ok()) << r.error().what();
      std::lock_guard<std::mutex> lock(mu);
      answers[id].push_back(*r);
      --pending;
    };
  };
  Outcome done;
  done.state = CallState::completed;
  for (std::size_t i = 0; i < leased.size(); ++i) {
    const CallRecord& c = leased[i];
    const uint64_t lease = i % 10 == 3 ? c.lease + 2 : c.lease;  // every tenth with a lease not its own
    pending += 1;
    a->finish(c.id, lease, done, 2100, record(c.id));
    if (i == 7) {  // the same call twice in a row
      pending += 1;
      a->finish(c.id, c.lease, done, 2100, record(c.id));
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pending > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(pending.load(), 0);
  for (std::size_t i = 0; i < leased.size(); ++i) {
    const CallRecord& c = leased[i];
    const bool own = i % 10 != 3;
    std::vector<bool> expected{own};
    if (i == 7) expected.push_back(false);
    EXPECT_EQ(answers[c.id], expected) << c.id;
    EXPECT_EQ(a->get(c.id).value()->state, own ? CallState::completed : CallState::running) << c.id;
  }
}

// Each round of writes is counted as a commit, with the writes in it.
TEST_F(JetStreamStoreTest, RoundsAreMeasuredAsCommitsWhenGivenARegistry) {
  auto registry = std::make_shared<metrics::Registry>();
  JetStreamOptions o = options();
  o.metrics = registry;
  auto a = open(o);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->enqueue_sync({call("f")}, 1000).ok());                       // one round of one write
  ASSERT_TRUE(a->enqueue_sync({call("f"), call("g"), call("h")}, 1000).ok());  // one group: one write
  // A batch too big for one group: its record, then its five groups (and
  // the record's removal, in a round of its own after the answer).
  std::vector<NewCall> many;
  for (int i = 0; i < 300; ++i) many.push_back(call("f"));
  ASSERT_TRUE(a->enqueue_sync(std::move(many), 1000).ok());
  const std::string text = registry->expose();
  EXPECT_NE(text.find("# TYPE dispatch_store_commit_duration_seconds histogram"), std::string::npos) << text;
  // Four or five rounds so far, one of them of five writes.
  const auto count = text.find("dispatch_store_commit_writes_count ");
  ASSERT_NE(count, std::string::npos) << text;
  const int rounds = std::stoi(text.substr(count + std::string("dispatch_store_commit_writes_count ").size()));
  EXPECT_TRUE(rounds == 4 || rounds == 5) << text;
  for (const auto& [le, n] : {std::pair<std::string, int>{"1", rounds - 1}, {"4", rounds - 1}, {"8", rounds}}) {
    EXPECT_NE(text.find("dispatch_store_commit_writes_bucket{le=\"" + le + "\"} " + std::to_string(n) + "\n"),
              std::string::npos)
        << le << "\n" << text;
  }
}

// Writes queued together go in one round: the enqueues' calls, and a
// claim among them writes calls created in that round already leased to
// it (one write each, not a create and a lease), after the due calls it
// picked from the index and only as far as it has room; a delayed call, a
// call for an endpoint it skips, and those past its room are created
// pending. Another store on the bucket cannot lease those it took.
TEST_F(JetStreamStoreTest, AClaimInTheRoundOfAnEnqueueTakesItsNewCallsWithOneWriteEach) {
  auto a = open(options());
  auto b = open(options());
  ASSERT_TRUE(a && b);
  const std::string old = a->enqueue_sync({call("t.old")}, 1000).value().at(0);
  // The writer runs callbacks: while this one waits, the writes below
  // queue up behind it and then go in one round.
  std::mutex mu;
  std::condition_variable cv;
  bool blocked = false, release = false;
  std::string first;
  a->enqueue({call("t.first")}, 1000, [&](Result<std::vector<std::string>> ids) {
    std::unique_lock<std::mutex> lock(mu);
    first = ids.ok() ? ids->at(0) : "";
    blocked = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return blocked; }));
  }
  ASSERT_FALSE(first.empty());
  const uint64_t commits_before = a->stats().commits;
  std::vector<std::string> made(6);
  std::atomic<int> answered{0};
  auto enqueue = [&](NewCall c, int i) {
    a->enqueue({std::move(c)}, 1001, [&, i](Result<std::vector<std::string>> ids) {
      if (ids.ok()) made[i] = ids->at(0);
      ++answered;
    });
  };
  NewCall delayed = call("t.delayed");
  delayed.not_before_ms = 60'000;
  NewCall elsewhere = call("t.elsewhere");
  elsewhere.endpoint = "http://127.0.0.1:2";
  enqueue(call("t.n0"), 0);
  enqueue(std::move(delayed), 1);
  enqueue(std::move(elsewhere), 2);
  enqueue(call("t.n1"), 3);
  enqueue(call("t.n2"), 4);  // past the claim's room
  ClaimOptions o = at(1000);  // a clock a moment behind the enqueues'
  o.max = 4;
  o.skip_endpoints = {"http://127.0.0.1:2"};
  std::promise<Result<std::vector<CallRecord>>> claimed;
  a->claim(o, [&](Result<std::vector<CallRecord>> r) { claimed.set_value(std::move(r)); });
  enqueue(call("t.after"), 5);  // queued after the claim: same round, room left
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  auto leased = claimed.get_future().get();
  ASSERT_TRUE(leased.ok()) << leased.error().what();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (answered < 6 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(answered.load(), 6);
  // Picked from the index first (old, first), then the round's new calls
  // in queue order while room lasts: n0, n1.
  std::set<std::string> got;
  for (const CallRecord& r : *leased) {
    got.insert(r.id);
    EXPECT_EQ(r.state, CallState::running) << r.id;
    EXPECT_EQ(r.attempts, 1u) << r.id;
    EXPECT_EQ(r.lease, leased->front().lease) << r.id;
  }
  EXPECT_EQ(got, (std::set<std::string>{old, first, made[0], made[3]}));
  // One write per new call and per lease of an indexed call: 6 creates, 2
  // leases.
  EXPECT_EQ(a->stats().commits - commits_before, 8u);
  for (int i : {1, 2, 4, 5}) EXPECT_EQ(a->get(made[i]).value()->state, CallState::pending) << i;
  EXPECT_EQ(a->get(made[0]).value()->state, CallState::running);
  // The other process sees them leased: it gets only what was left due.
  wait_pending(*b, 4);
  ClaimOptions later = at(2000);
  later.max = 10;
  std::set<std::string> rest;
  for (const CallRecord& r : b->claim_sync(later).value()) rest.insert(r.id);
  EXPECT_EQ(rest, (std::set<std::string>{made[2], made[4], made[5]}));
}

// A claim writes its leases together from the index's copies; a copy that
// another process made stale meanwhile loses its race, and that call is
// read again and leased (or left) one at a time.
TEST_F(JetStreamStoreTest, AClaimFromAStaleIndexLeasesEachCallOnce) {
  auto a = open(options());
  auto b = open(options());
  ASSERT_TRUE(a && b);
  std::vector<NewCall> calls;
  for (int i = 0; i < 30; ++i) calls.push_back(call("t.f"));
  auto ids = a->enqueue_sync(std::move(calls), 1000).value();
  wait_pending(*b, 30);
  // b leases ten, finishes five (pending again via a retry), so a's index
  // is stale for those until its watcher catches up: a claims at once.
  ClaimOptions ten = at(2000);
  ten.max = 10;
  auto by_b = b->claim_sync(ten).value();
  ASSERT_EQ(by_b.size(), 10u);
  for (std::size_t i = 0; i < 5; ++i) {
    Outcome retry;
    retry.state = CallState::pending;
    retry.next_attempt_at_ms = 2000;
    ASSERT_TRUE(b->finish_sync(by_b[i].id, by_b[i].lease, retry, 2000).value());
  }
  ClaimOptions all = at(2000);
  all.max = 100;
  auto by_a = a->claim_sync(all).value();
  std::set<std::string> got;
  for (const CallRecord& r : by_a) {
    EXPECT_TRUE(got.insert(r.id).second) << r.id << " leased twice in one claim";
    EXPECT_EQ(a->get(r.id).value()->lease, r.lease) << r.id;
  }
  for (std::size_t i = 5; i < 10; ++i) EXPECT_EQ(got.count(by_b[i].id), 0u) << by_b[i].id << " leased by both";
  // Every call b never touched; the five b retried only once a's watcher
  // has brought the retry (else a's index has them running).
  std::set<std::string> touched;
  for (const CallRecord& r : by_b) touched.insert(r.id);
  for (const std::string& id : ids) {
    if (touched.count(id) == 0) {
      EXPECT_EQ(got.count(id), 1u) << id << " was not leased";
    }
  }
  EXPECT_GE(got.size(), 20u);
  EXPECT_LE(got.size(), 25u);
}

// A batch holding one idempotency key twice gives one call, both places
// answered with its ID; its keys and its calls are written together.
TEST_F(JetStreamStoreTest, ABatchWithAKeyTwiceMakesOneCall) {
  auto a = open(options());
  ASSERT_TRUE(a);
  std::vector<NewCall> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(call("t.f"));
    if (i == 1 || i == 4) calls.back().idempotency_key = "same";
    if (i == 2) calls.back().idempotency_key = "other";
  }
  auto ids = a->enqueue_sync(std::move(calls), 1000);
  ASSERT_TRUE(ids.ok()) << ids.error().what();
  ASSERT_EQ(ids->size(), 6u);
  EXPECT_EQ((*ids)[1], (*ids)[4]);
  EXPECT_EQ(std::set<std::string>(ids->begin(), ids->end()).size(), 5u);
  EXPECT_EQ(a->count_by_state().value()[static_cast<int>(CallState::pending)], 5);
  for (const std::string& id : *ids) EXPECT_TRUE(a->get(id).value().has_value()) << id;
  // Again: every key answers its call.
  std::vector<NewCall> again{call("t.f"), call("t.f")};
  again[0].idempotency_key = "same";
  again[1].idempotency_key = "other";
  auto ids2 = a->enqueue_sync(std::move(again), 1000).value();
  EXPECT_EQ(ids2[0], (*ids)[1]);
  EXPECT_EQ(ids2[1], (*ids)[2]);
}

// A record larger than the servers' max_payload (1 MB by default) never
// fits: out_of_range, saying what bounds it, and nothing written, so that
// the scheduler can fail the call instead of delivering it again forever.
TEST_F(JetStreamStoreTest, ARecordLargerThanTheServersTakeIsOutOfRange) {
  auto a = open(options());
  ASSERT_TRUE(a);
  NewCall big = call("t.f");
  big.input = std::string(2 * 1024 * 1024, 'x');
  auto refused = a->enqueue_sync({big}, 1000);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::out_of_range) << refused.error().what();
  EXPECT_NE(refused.error().message().find("max_payload"), std::string::npos) << refused.error().what();

  const std::string id = a->enqueue_sync({call("t.f")}, 1000).value().at(0);
  auto leased = a->claim_sync(at(1000)).value();
  ASSERT_EQ(leased.size(), 1u);
  Outcome o;
  o.status = 1;
  o.output_type_url = "type.googleapis.com/t.Out";
  o.output = std::string(2 * 1024 * 1024, 'y');
  auto recorded = a->finish_sync(id, leased[0].lease, o, 1001);
  ASSERT_FALSE(recorded.ok());
  EXPECT_EQ(recorded.error().code(), Code::out_of_range) << recorded.error().what();
  EXPECT_NE(recorded.error().message().find("max_payload"), std::string::npos) << recorded.error().what();
  EXPECT_EQ(a->get(id).value()->state, CallState::running);
  // A smaller outcome under the same lease is recorded.
  o.output = "small";
  EXPECT_TRUE(a->finish_sync(id, leased[0].lease, o, 1002).value());
  EXPECT_EQ(a->get(id).value()->state, CallState::completed);
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

// Retention deletes ended calls; on JetStream each removal leaves a
// delete marker, and batches leave theirs: after the grace the stream
// holds the live calls only, and another process's index lists none of
// the deleted ones.
TEST_F(JetStreamStoreTest, DeletedCallsLeaveNothingInTheStreamAfterTheGrace) {
  JetStreamOptions o = options("retained");
  o.marker_grace = std::chrono::milliseconds(300);
  auto a = open(o);
  auto b = open(o);
  ASSERT_TRUE(a && b);
  std::vector<NewCall> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(call("f"));
  ASSERT_EQ(a->enqueue_sync(std::move(batch), 1000).value().size(), 40u);
  ClaimOptions claim = at(2000);
  claim.max = 100;
  auto leased = a->claim_sync(claim).value();
  ASSERT_EQ(leased.size(), 40u);
  for (const CallRecord& c : leased) {
    ASSERT_TRUE(a->finish_sync(c.id, c.lease, Outcome{}, 3000).value());
  }
  ASSERT_TRUE(a->enqueue_sync({call("kept")}, 4000).ok());
  EXPECT_EQ(a->delete_ended_sync(5000).value(), 40u);
  EXPECT_EQ(testing::await_bucket_stream_messages(nats_.url(), "retained", 1), 1u)
      << "delete markers of deleted calls and of the batch stayed in the stream";
  wait_pending(*b, 1);
  EXPECT_EQ(b->count_by_state().value()[static_cast<int>(CallState::completed)], 0);
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

TEST_F(JetStreamStoreTest, ABucketWithSettingsTheStoreCannotUseIsRefusedNamingTheSetting) {
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, nats_.url().c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  struct Theirs {
    const char* bucket;
    void (*set)(kvConfig&);
    const char* named;
  };
  const Theirs kTheirs[] = {
      {"in_memory", [](kvConfig& c) { c.StorageType = js_MemoryStorage; }, "storage type"},
      {"with_history", [](kvConfig& c) { c.History = 5; }, "history of 5"},
      {"small_values", [](kvConfig& c) { c.MaxValueSize = 1024; }, "max value size"},
  };
  for (const Theirs& t : kTheirs) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = t.bucket;
    cfg.History = 1;
    t.set(cfg);
    kvStore* kv = nullptr;
    ASSERT_EQ(js_CreateKeyValue(&kv, js, &cfg), NATS_OK) << t.bucket;
    kvStore_Destroy(kv);
    auto s = open_jetstream_store(options(t.bucket));
    ASSERT_FALSE(s.ok()) << t.bucket;
    EXPECT_EQ(s.error().code(), Code::failed_precondition);
    EXPECT_NE(s.error().message().find(t.named), std::string::npos) << s.error().message();
    EXPECT_NE(s.error().message().find(t.bucket), std::string::npos) << s.error().message();
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

// The bucket as another process sees it, to write what a process that died
// between the steps of a write would have left.
class RawBucket {
 public:
  RawBucket(const std::string& url, const std::string& bucket) {
    EXPECT_EQ(natsConnection_ConnectTo(&nc_, url.c_str()), NATS_OK);
    EXPECT_EQ(natsConnection_JetStream(&js_, nc_, nullptr), NATS_OK);
    EXPECT_EQ(js_KeyValue(&kv_, js_, bucket.c_str()), NATS_OK);
  }
  ~RawBucket() {
    kvStore_Destroy(kv_);
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  // A call as its record has it (its group's, for a member), and the
  // record's revision.
  std::pair<::dispatch::jetstream::v1::Call, uint64_t> call(const std::string& id) {
    const std::string group = jetstream::group_of(id);
    kvEntry* e = nullptr;
    ::dispatch::jetstream::v1::Call c;
    EXPECT_EQ(kvStore_Get(&e, kv_, (group.empty() ? "c." + id : group).c_str()), NATS_OK);
    if (e == nullptr) return {c, 0};
    if (group.empty()) {
      EXPECT_TRUE(c.ParseFromArray(kvEntry_Value(e), kvEntry_ValueLen(e)));
    } else {
      ::dispatch::jetstream::v1::Group g;
      EXPECT_TRUE(g.ParseFromArray(kvEntry_Value(e), kvEntry_ValueLen(e)));
      for (const auto& member : g.calls()) {
        if (member.id() == id) c = member;
      }
    }
    const uint64_t rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    return {c, rev};
  }
  // Writes call `c` over its record at `rev` (in its group, for a member).
  void update_call(const std::string& id, const ::dispatch::jetstream::v1::Call& c, uint64_t rev) {
    const std::string group = jetstream::group_of(id);
    if (group.empty()) return update("c." + id, c, rev);
    kvEntry* e = nullptr;
    ASSERT_EQ(kvStore_Get(&e, kv_, group.c_str()), NATS_OK);
    ::dispatch::jetstream::v1::Group g;
    EXPECT_TRUE(g.ParseFromArray(kvEntry_Value(e), kvEntry_ValueLen(e)));
    kvEntry_Destroy(e);
    for (auto& member : *g.mutable_calls()) {
      if (member.id() == id) member = c;
    }
    update(group, g, rev);
  }
  void update(const std::string& key, const google::protobuf::MessageLite& m, uint64_t rev) {
    const std::string bytes = m.SerializeAsString();
    EXPECT_EQ(kvStore_Update(nullptr, kv_, key.c_str(), bytes.data(), static_cast<int>(bytes.size()), rev), NATS_OK);
  }
  void create(const std::string& key, const google::protobuf::MessageLite& m) {
    const std::string bytes = m.SerializeAsString();
    EXPECT_EQ(kvStore_Create(nullptr, kv_, key.c_str(), bytes.data(), static_cast<int>(bytes.size())), NATS_OK);
  }
  void create_raw(const std::string& key, const std::string& value) {
    EXPECT_EQ(kvStore_CreateString(nullptr, kv_, key.c_str(), value.c_str()), NATS_OK);
  }
  bool has(const std::string& key) {
    kvEntry* e = nullptr;
    const natsStatus s = kvStore_Get(&e, kv_, key.c_str());
    if (e != nullptr) kvEntry_Destroy(e);
    return s == NATS_OK;
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  kvStore* kv_ = nullptr;
};

// A process whose watcher reads a replica numbered apart from the stream's
// leader (nats-server 2.9.10, a node of three SIGKILLed and restarted: five
// revisions ahead) would keep those revisions in its index, and every
// compare-and-set decided on them would be lost and read again. Its own
// writes' echoes tell it: it lists the bucket again from a new watcher,
// after which its index holds the leader's revisions, and its calls went
// on meanwhile, each leased once and finished.
TEST_F(JetStreamStoreTest, AnIndexNumberedApartFromTheLeaderIsListedAgain) {
  auto a = open(options());
  JetStreamOptions with_metrics = options();
  auto registry = std::make_shared<metrics::Registry>();
  with_metrics.metrics = registry;
  auto b = open(with_metrics);
  ASSERT_TRUE(a && b);
  RawBucket raw(nats_.url(), "calls");
  testing::shift_index_revisions(*b, 5);
  std::vector<NewCall> calls;
  for (int i = 0; i < 20; ++i) calls.push_back(call("t.f"));
  auto ids = a->enqueue_sync(std::move(calls), 1000);
  ASSERT_TRUE(ids.ok()) << ids.error().what();
  wait_pending(*b, 20);
  // b claims from its index, five revisions ahead for every call: its
  // leases lose their races, are read from the leader and written again,
  // and their echoes come five ahead too.
  std::set<std::string> leased;
  Outcome done;
  done.state = CallState::completed;
  for (int round = 0; round < 200 && leased.size() < 20; ++round) {
    auto got = b->claim_sync(at(2000));
    if (!got.ok()) {
      EXPECT_EQ(got.error().code(), Code::unavailable) << got.error().what();
      continue;
    }
    for (const CallRecord& r : *got) {
      EXPECT_TRUE(leased.insert(r.id).second) << r.id << " leased twice";
      EXPECT_TRUE(b->finish_sync(r.id, r.lease, done, 2100).value());
    }
    if (got->empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(leased.size(), 20u);
  for (int i = 0; i < 400 && testing::index_rebuilds(*b) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(testing::index_rebuilds(*b), 1u);
  EXPECT_EQ(testing::index_rebuilds(*a), 0u);
  EXPECT_EQ(registry->counter("dispatch_store_index_rebuilds_total", "").value(), testing::index_rebuilds(*b));
  // After the rebuild (and the watcher's last echoes), b's index numbers as
  // the leader does.
  const auto numbered_as_leader = [&] {
    for (const std::string& id : *ids) {
      if (testing::index_revision(*b, id) != raw.call(id).second) return false;
    }
    return true;
  };
  for (int i = 0; i < 400 && !numbered_as_leader(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(numbered_as_leader());
  for (const std::string& id : *ids) EXPECT_EQ(a->get(id).value()->state, CallState::completed) << id;
  // A new call: one claim leases it at the first try.
  auto next = a->enqueue_sync({call("t.g")}, 3000);
  ASSERT_TRUE(next.ok());
  wait_pending(*b, 1);
  const uint64_t commits = b->stats().commits;
  auto got = b->claim_sync(at(3000)).value();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(b->stats().commits - commits, 1u) << "the lease was decided on a stale copy and written again";
}

TEST_F(JetStreamStoreTest, WhatADeadProcessLeftUnappliedIsAppliedByAnother) {
  namespace pb = ::dispatch::jetstream::v1;
  std::string parent, grandparent;
  {
    auto a = open(options());
    ASSERT_TRUE(a);
    std::vector<NewCall> two{call("t.parent"), call("t.grandparent")};
    auto ids = a->enqueue_sync(std::move(two), 1000).value();
    parent = ids[0];
    grandparent = ids[1];
  }
  RawBucket raw(nats_.url(), "calls");
  // The parent's Poll was decided (suspended, waiting for a child) but the
  // child was never written: the process died after the first step.
  auto [p, rev] = raw.call(parent);
  p.set_state(static_cast<int>(CallState::suspended));
  p.set_polled(true);
  p.set_min_results(1);
  p.set_max_results(1);
  p.set_next_attempt_at_ms(std::numeric_limits<int64_t>::max());
  const std::string child = "0000000003e8ffffffff000000000001";
  p.add_outstanding(child);
  pb::Effects* fx = p.mutable_effects();
  fx->set_id(7);
  fx->set_written_at_ms(1);
  fx->set_now_ms(1000);
  pb::NewCall* n = fx->add_create();
  n->set_id(child);
  n->set_function("t.child");
  n->set_parent_id(parent);
  n->set_root_id(parent);
  n->set_correlation_id(9);
  n->set_now_ms(1000);
  raw.update_call(parent, p, rev);
  // A batch of two calls written, none applied.
  pb::Batch batch;
  batch.set_written_at_ms(1);
  for (const char* id : {"0000000003e8ffffffff000000000002", "0000000003e8ffffffff000000000003"}) {
    pb::NewCall* c = batch.add_calls();
    c->set_id(id);
    c->set_function("t.batched");
    c->set_now_ms(1000);
  }
  raw.create("b.0000000003e8ffffffff000000000002", batch);

  // Another process, starting, applies both.
  auto b = open(options());
  ASSERT_TRUE(b);
  auto made = b->get(child).value();
  ASSERT_TRUE(made.has_value());
  EXPECT_EQ(made->state, CallState::pending);
  EXPECT_EQ(made->parent_id, parent);
  EXPECT_FALSE(raw.call(parent).first.has_effects());
  EXPECT_TRUE(b->get("0000000003e8ffffffff000000000002").value().has_value());
  EXPECT_TRUE(b->get("0000000003e8ffffffff000000000003").value().has_value());
  EXPECT_FALSE(raw.has("b.0000000003e8ffffffff000000000002"));
  // The child's end reaches its parent, which is due at once.
  auto leased = b->claim_sync(at(2000)).value();
  std::optional<CallRecord> kid;
  for (const auto& r : leased) {
    if (r.id == child) kid = r;
  }
  ASSERT_TRUE(kid.has_value());
  Outcome done;
  done.state = CallState::completed;
  done.output = "out";
  done.parent_id = parent;
  ASSERT_TRUE(b->finish_sync(child, kid->lease, done, 2001).value());
  auto resumed = b->claim_sync(at(2002)).value();
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].id, parent);
  ASSERT_EQ(resumed[0].results.size(), 1u);
  EXPECT_EQ(resumed[0].results[0].correlation_id, 9u);
  EXPECT_EQ(resumed[0].results[0].output, "out");

  // A running process applies effects left long enough by another, too.
  auto [g, grev] = raw.call(grandparent);
  g.set_state(static_cast<int>(CallState::cancelled));
  pb::Effects* gfx = g.mutable_effects();
  gfx->set_id(8);
  gfx->set_written_at_ms(1);
  gfx->set_now_ms(3000);
  gfx->add_cancel(parent);
  gfx->set_cancel_reason("cancelled with its grandparent");
  raw.update_call(grandparent, g, grev);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (b->get(parent).value()->state != CallState::cancelled && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(b->get(parent).value()->state, CallState::cancelled);
  EXPECT_EQ(b->get(parent).value()->error_message, "cancelled with its grandparent");
}

// A parent's record that lost an ended child's result to a concurrent write
// (as nats-server before 2.9.21 allows on a replicated bucket: two
// compare-and-sets from one revision both accepted) still lists the child
// as outstanding although the child's effects were applied. Recovery, at
// start and while running, delivers the result again, once.
TEST_F(JetStreamStoreTest, AResultAParentLostToAConcurrentWriteIsDeliveredAgain) {
  namespace pb = ::dispatch::jetstream::v1;
  auto wall = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  std::unique_ptr<Store> a = open(options());  // makes the bucket
  ASSERT_TRUE(a);
  RawBucket raw(nats_.url(), "calls");
  // Writes `parent` suspended, waiting for two children of which `lost`
  // ended completed (its effects applied) and `kept` is already in.
  auto lose = [&](const std::string& parent, const std::string& lost, const std::string& kept) {
    auto [p, rev] = raw.call(parent);
    p.set_state(static_cast<int>(CallState::suspended));
    p.set_polled(true);
    p.set_min_results(2);
    p.set_max_results(2);
    p.set_next_attempt_at_ms(std::numeric_limits<int64_t>::max());
    p.clear_outstanding();
    p.clear_results();
    p.add_outstanding(lost);
    pb::ChildResult* in = p.add_results();
    in->set_correlation_id(2);
    in->set_dispatch_id(kept);
    in->set_output("two");
    in->set_seq(1);
    p.set_result_seq(1);
    raw.update_call(parent, p, rev);
    for (const auto& [id, correlation, output] :
         {std::tuple{lost, 1, "one"}, std::tuple{kept, 2, "two"}}) {
      pb::Call c;
      c.set_id(id);
      c.set_function("t.child");
      c.set_endpoint("http://127.0.0.1:1");
      c.set_state(static_cast<int>(CallState::completed));
      c.set_parent_id(parent);
      c.set_root_id(parent);
      c.set_correlation_id(correlation);
      c.set_output(output);
      c.set_updated_at_ms(1);
      raw.create("c." + id, c);
    }
  };
  // Waits (up to 10 s) for `parent` to be due with both results.
  auto resumed = [&](Store& store, const std::string& parent) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::vector<CallRecord> claimed = store.claim_sync(at(wall())).value();
      for (const CallRecord& r : claimed) {
        if (r.id != parent) continue;
        EXPECT_EQ(r.results.size(), 2u);
        std::multiset<std::string> outputs;
        for (const auto& result : r.results) outputs.insert(result.output);
        EXPECT_EQ(outputs, (std::multiset<std::string>{"one", "two"}));
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  std::vector<NewCall> two{call("t.parent"), call("t.parent")};
  auto ids = a->enqueue_sync(std::move(two), 1000).value();
  const std::string first = ids[0], second = ids[1];
  a.reset();
  lose(first, "0000000003e8ffffffff0000000000a1", "0000000003e8ffffffff0000000000a2");
  // A process starting finds it.
  auto b = open(options());
  ASSERT_TRUE(b);
  EXPECT_TRUE(resumed(*b, first)) << "the lost result was not delivered again at start";
  // A running process finds it too, once the child ended a while ago.
  lose(second, "0000000003e8ffffffff0000000000b1", "0000000003e8ffffffff0000000000b2");
  EXPECT_TRUE(resumed(*b, second)) << "the lost result was not delivered again by a running process";
}

// A process that died (or lost the servers) between an idempotency key and
// its call leaves the key naming a call that is only in a batch record.
// Another process asked for the same key answers unavailable (try again),
// not an ID that reads as unknown, until recovery has written the call; then
// it answers that call's ID.
TEST_F(JetStreamStoreTest, AKeyWhoseCallIsNotWrittenYetIsUnavailableUntilRecoveryWritesIt) {
  namespace pb = ::dispatch::jetstream::v1;
  JetStreamOptions o = options();
  o.recover_after = std::chrono::milliseconds(1500);
  auto a = open(o);
  ASSERT_TRUE(a);
  RawBucket raw(nats_.url(), "calls");
  const std::string id = "0000000003e8ffffffff0000000000a1";
  pb::Batch batch;
  batch.set_written_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  pb::NewCall* n = batch.add_calls();
  n->set_id(id);
  n->set_function("t.keyed");
  n->set_idempotency_key("k1");
  n->set_now_ms(1000);
  raw.create("b." + id, batch);
  raw.create_raw(jetstream::idempotency_key("k1"), id);

  NewCall again = call("t.keyed");
  again.idempotency_key = "k1";
  auto refused = a->enqueue_sync({again}, 1000);
  ASSERT_FALSE(refused.ok()) << "answered " << refused.value().at(0) << ", a call not written";
  EXPECT_EQ(refused.error().code(), Code::unavailable);
  EXPECT_NE(refused.error().message().find(id), std::string::npos) << refused.error().message();
  EXPECT_FALSE(a->get(id).value().has_value());

  // Recovery (after recover_after) writes the call; then the key answers it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Result<std::vector<std::string>> answered = refused;
  while (!answered.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    answered = a->enqueue_sync({again}, 1000);
  }
  ASSERT_TRUE(answered.ok()) << answered.error().what();
  EXPECT_EQ(answered.value(), std::vector<std::string>{id});
  EXPECT_TRUE(a->get(id).value().has_value());
  EXPECT_FALSE(raw.has("b." + id));
}

TEST_F(JetStreamStoreTest, ClosingReportsEveryQueuedWriteOnce) {
  constexpr int kCalls = 200;
  std::mutex mu;
  std::map<int, int> reports;
  std::vector<std::string> acknowledged;
  {
    auto a = open(options());
    ASSERT_TRUE(a);
    for (int i = 0; i < kCalls; ++i) {
      a->enqueue({call("f")}, 1000 + i, [&, i](Result<std::vector<std::string>> ids) {
        std::lock_guard<std::mutex> lock(mu);
        reports[i]++;
        if (ids.ok()) acknowledged.push_back(ids->at(0));
      });
    }
  }
  ASSERT_EQ(reports.size(), static_cast<std::size_t>(kCalls));
  for (auto& [i, n] : reports) EXPECT_EQ(n, 1) << "enqueue " << i;
  EXPECT_EQ(acknowledged.size(), static_cast<std::size_t>(kCalls));
  auto b = open(options());
  ASSERT_TRUE(b);
  for (const auto& id : acknowledged) EXPECT_TRUE(b->get(id).value().has_value()) << id;
}

// An enqueue of several calls without keys is one group record: one write
// to create, one to lease the calls a claim takes from it, one for the
// finishes that come together; `get` reads a member from its group; the
// group goes once retention has deleted every member (a member retried
// meanwhile stays, and the group with it).
TEST_F(JetStreamStoreTest, ABatchIsOneGroupRecordAndItsMembersChangeInOneWriteEach) {
  auto a = open(options());
  ASSERT_TRUE(a);
  RawBucket raw(nats_.url(), "calls");
  std::vector<NewCall> calls;
  for (int i = 0; i < 10; ++i) calls.push_back(call("t.f" + std::to_string(i % 3)));
  uint64_t commits = a->stats().commits;
  const std::vector<std::string> ids = a->enqueue_sync(std::move(calls), 1000).value();
  EXPECT_EQ(a->stats().commits - commits, 1u) << "a group is one create";
  const std::string group = jetstream::group_of(ids[0]);
  ASSERT_FALSE(group.empty()) << ids[0];
  for (const std::string& id : ids) {
    EXPECT_EQ(jetstream::group_of(id), group) << id;
    EXPECT_FALSE(raw.has("c." + id)) << id;
    EXPECT_EQ(raw.call(id).first.id(), id);
  }
  EXPECT_TRUE(raw.has(group));
  // Ten leases, one write.
  commits = a->stats().commits;
  const std::vector<CallRecord> leased = a->claim_sync(at(2000)).value();
  ASSERT_EQ(leased.size(), 10u);
  EXPECT_EQ(a->stats().commits - commits, 1u);
  // Finishes queued together: one write; each answered for its own call.
  commits = a->stats().commits;
  // The writer runs callbacks: while this claim's (of nothing) waits, the
  // finishes below queue up behind it, and then go in one round.
  std::mutex block_mu;
  std::condition_variable block_cv;
  bool blocked = false, release = false;
  ClaimOptions nothing = at(2050);
  nothing.max = 0;
  a->claim(nothing, [&](Result<std::vector<CallRecord>>) {
    std::unique_lock<std::mutex> lock(block_mu);
    blocked = true;
    block_cv.notify_all();
    block_cv.wait(lock, [&] { return release; });
  });
  {
    std::unique_lock<std::mutex> lock(block_mu);
    ASSERT_TRUE(block_cv.wait_for(lock, std::chrono::seconds(10), [&] { return blocked; }));
  }
  std::promise<void> all;
  std::atomic<int> left{static_cast<int>(leased.size())};
  std::map<std::string, bool> answers;
  std::mutex mu;
  for (std::size_t i = 0; i < leased.size(); ++i) {
    Outcome o;
    o.state = i == 0 ? CallState::failed : CallState::completed;
    o.output = "out" + std::to_string(i);
    const uint64_t lease = i == 1 ? leased[i].lease + 2 : leased[i].lease;  // not its lease: refused
    a->finish(leased[i].id, lease, o, 2100, [&, id = leased[i].id](Result<bool> r) {
      {
        std::lock_guard<std::mutex> lock(mu);
        answers[id] = r.ok() && *r;
      }
      if (--left == 0) all.set_value();
    });
  }
  {
    std::lock_guard<std::mutex> lock(block_mu);
    release = true;
  }
  block_cv.notify_all();
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(a->stats().commits - commits, 1u) << "finishes of one group's calls queued together are one write";
  for (std::size_t i = 0; i < leased.size(); ++i) EXPECT_EQ(answers[leased[i].id], i != 1) << i;
  EXPECT_EQ(a->get(leased[2].id).value()->output, "out2");
  EXPECT_EQ(raw.call(leased[2].id).first.output(), "out2");
  EXPECT_EQ(a->get(leased[1].id).value()->state, CallState::running);
  // Another process sees the members as the group has them.
  auto b = open(options());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->count_by_state().value()[static_cast<int>(CallState::completed)], 8);
  // Retention: the ended members leave the group; the running one stays,
  // and a failed one retried first stays too.
  ASSERT_EQ(b->retry_sync(leased[0].id, 2200).value().state, CallState::pending);
  EXPECT_EQ(a->delete_ended_sync(3000).value(), 8u);
  for (std::size_t i = 2; i < leased.size(); ++i) EXPECT_FALSE(a->get(leased[i].id).value().has_value()) << i;
  EXPECT_TRUE(a->get(leased[0].id).value().has_value());
  EXPECT_TRUE(a->get(leased[1].id).value().has_value());
  EXPECT_TRUE(raw.has(group));
  // Once every member ended and was deleted, the record goes.
  ASSERT_TRUE(a->finish_sync(leased[1].id, leased[1].lease, Outcome{}, 3100).value());
  const std::vector<CallRecord> again = a->claim_sync(at(3200)).value();
  ASSERT_EQ(again.size(), 1u);
  ASSERT_TRUE(a->finish_sync(again[0].id, again[0].lease, Outcome{}, 3300).value());
  EXPECT_EQ(a->delete_ended_sync(4000).value(), 2u);
  EXPECT_FALSE(raw.has(group));
  for (int i = 0; i < 400 && b->count_by_state().value()[static_cast<int>(CallState::completed)] != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(b->list(std::nullopt, 100, "").value().size(), 0u);
}

// A batch bigger than a group is cut into groups (64 calls at most, and a
// call too big for a group is a call of its own), written after a batch
// record; a batch record of groups that a dead process left is applied as
// groups by another.
TEST_F(JetStreamStoreTest, ABigBatchIsCutIntoGroupsAndALeftBatchOfGroupsIsApplied) {
  namespace pb = ::dispatch::jetstream::v1;
  auto a = open(options());
  ASSERT_TRUE(a);
  RawBucket raw(nats_.url(), "calls");
  std::vector<NewCall> calls;
  for (int i = 0; i < 150; ++i) calls.push_back(call("t.f"));
  calls[70].input = std::string(40 * 1024, 'x');  // too big for a group: alone
  const std::vector<std::string> ids = a->enqueue_sync(std::move(calls), 1000).value();
  ASSERT_EQ(ids.size(), 150u);
  std::map<std::string, int> per_group;
  for (const std::string& id : ids) per_group[jetstream::group_of(id)]++;
  EXPECT_EQ(per_group[""], 1) << "the big call";
  EXPECT_TRUE(jetstream::group_of(ids[70]).empty());
  // Groups of 64 and 6, the big call alone, groups of 64 and 15.
  EXPECT_EQ(per_group.size(), 5u);
  EXPECT_EQ(per_group[jetstream::group_of(ids[0])], 64);
  EXPECT_EQ(per_group[jetstream::group_of(ids[69])], 6);
  EXPECT_EQ(per_group[jetstream::group_of(ids[71])], 64);
  EXPECT_EQ(per_group[jetstream::group_of(ids[149])], 15);
  for (const auto& [key, n] : per_group) {
    if (!key.empty()) {
      EXPECT_TRUE(raw.has(key)) << key;
    }
  }
  for (const std::string& id : ids) EXPECT_TRUE(a->get(id).value().has_value()) << id;
  EXPECT_FALSE(raw.has("b." + ids[0]));
  // A batch record of two groups, none written: another process applies it.
  pb::Batch batch;
  batch.set_written_at_ms(1);
  std::vector<std::string> left;
  for (uint64_t seq : {7, 8}) {
    for (std::size_t i = 0; i < 3; ++i) {
      pb::NewCall* c = batch.add_calls();
      c->set_id(jetstream::member_id("0000000003e8ffffffff", seq, i));
      c->set_function("t.left");
      c->set_now_ms(1000);
      left.push_back(c->id());
    }
  }
  raw.create("b." + left[0], batch);
  auto b = open(options());
  ASSERT_TRUE(b);
  for (const std::string& id : left) {
    auto got = b->get(id).value();
    ASSERT_TRUE(got.has_value()) << id;
    EXPECT_EQ(got->function, "t.left");
  }
  EXPECT_TRUE(raw.has(jetstream::group_of(left[0])));
  EXPECT_TRUE(raw.has(jetstream::group_of(left[3])));
  EXPECT_NE(jetstream::group_of(left[0]), jetstream::group_of(left[3]));
  EXPECT_FALSE(raw.has("b." + left[0]));
}

// Members of a group as workflows: a member's Poll makes its children
// (calls of their own), their ends are results for the member, which
// resumes with them; cancelling another member cancels its children too;
// the other members are untouched by all of it.
TEST_F(JetStreamStoreTest, GroupMembersRunWorkflowsAndAreCancelledWithTheirChildren) {
  auto a = open(options());
  ASSERT_TRUE(a);
  std::vector<NewCall> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(call("t.wf" + std::to_string(i)));
  const std::vector<std::string> ids = a->enqueue_sync(std::move(calls), 1000).value();
  ASSERT_FALSE(jetstream::group_of(ids[0]).empty());
  std::map<std::string, CallRecord> leased;
  for (const CallRecord& r : a->claim_sync(at(2000)).value()) leased[r.id] = r;
  ASSERT_EQ(leased.size(), 4u);
  // Members 0 and 1 poll for two children each.
  auto poll = [&](const CallRecord& parent) {
    Outcome o;
    o.state = CallState::suspended;
    o.leased_as(parent);
    PollOutcome p;
    p.state = "s-" + parent.id;
    p.min_results = 2;
    p.max_results = 2;
    for (int i = 1; i <= 2; ++i) {
      NewCall c = call("t.child");
      c.parent_id = parent.id;
      c.root_id = parent.id;
      c.correlation_id = static_cast<uint64_t>(i);
      p.calls.push_back(std::move(c));
    }
    o.poll = std::move(p);
    return o;
  };
  ASSERT_TRUE(a->finish_sync(ids[0], leased[ids[0]].lease, poll(leased[ids[0]]), 2100).value());
  ASSERT_TRUE(a->finish_sync(ids[1], leased[ids[1]].lease, poll(leased[ids[1]]), 2100).value());
  const auto kids0 = a->list_children(ids[0], 10, "").value();
  const auto kids1 = a->list_children(ids[1], 10, "").value();
  ASSERT_EQ(kids0.size(), 2u);
  ASSERT_EQ(kids1.size(), 2u);
  for (const auto& k : kids0) EXPECT_TRUE(jetstream::group_of(k.id).empty()) << "children are calls of their own";
  // Member 0's children end: it is due with both results.
  ClaimOptions o = at(2200);
  o.max = 10;
  std::map<std::string, CallRecord> children;
  for (const CallRecord& r : a->claim_sync(o).value()) children[r.id] = r;
  ASSERT_EQ(children.size(), 4u);
  for (const auto& k : kids0) {
    Outcome done;
    done.state = CallState::completed;
    done.output = "out-" + std::to_string(children[k.id].correlation_id);
    done.leased_as(children[k.id]);
    ASSERT_TRUE(a->finish_sync(k.id, children[k.id].lease, done, 2300).value());
  }
  // Resumed by another process, which has the group as the server does.
  auto b = open(options());
  ASSERT_TRUE(b);
  std::vector<CallRecord> resumed;
  for (int i = 0; i < 200 && resumed.empty(); ++i) {
    resumed = b->claim_sync(at(2400)).value();
    if (resumed.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].id, ids[0]);
  std::set<std::string> outputs;
  for (const auto& r : resumed[0].results) outputs.insert(r.output);
  EXPECT_EQ(outputs, (std::set<std::string>{"out-1", "out-2"}));
  // Member 1 cancelled: its children with it.
  EXPECT_EQ(a->cancel_sync(ids[1], 2500).value().state, CallState::cancelled);
  for (const auto& k : kids1) {
    for (int i = 0; i < 200 && a->get(k.id).value()->state != CallState::cancelled; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(a->get(k.id).value()->state, CallState::cancelled) << k.id;
  }
  // Members 2 and 3 are still running under their leases, and finish.
  for (int i = 2; i < 4; ++i) {
    EXPECT_EQ(a->get(ids[i]).value()->state, CallState::running);
    EXPECT_TRUE(a->finish_sync(ids[i], leased[ids[i]].lease, Outcome{}, 2600).value());
  }
  // Another process sees the same tree.
  auto c = open(options());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get(ids[0]).value()->state, CallState::running);
  EXPECT_EQ(c->get(ids[1]).value()->state, CallState::cancelled);
  EXPECT_EQ(c->get(ids[3]).value()->state, CallState::completed);
  EXPECT_EQ(c->list_children(ids[1], 10, "").value().size(), 2u);
}

// Two processes that lease and finish members of one group at once race
// for the group record: every call is leased once and finished once.
TEST_F(JetStreamStoreTest, TwoProcessesChangingOneGroupEachChangeEveryCallOnce) {
  auto a = open(options());
  auto b = open(options());
  ASSERT_TRUE(a && b);
  std::vector<NewCall> calls;
  for (int i = 0; i < 60; ++i) calls.push_back(call("t.f" + std::to_string(i % 5)));
  const std::vector<std::string> ids = a->enqueue_sync(std::move(calls), 1000).value();
  ASSERT_FALSE(jetstream::group_of(ids[0]).empty());
  wait_pending(*b, 60);
  std::mutex mu;
  std::map<std::string, int> leases, finishes;
  auto work = [&](Store& store) {
    for (int round = 0; round < 200; ++round) {
      ClaimOptions o = at(2000);
      o.max = 7;
      auto got = store.claim_sync(o);
      ASSERT_TRUE(got.ok()) << got.error().what();
      if (got->empty()) {
        std::lock_guard<std::mutex> lock(mu);
        if (finishes.size() == ids.size()) return;
      }
      std::vector<std::future<Result<bool>>> done;
      for (const CallRecord& r : *got) {
        {
          std::lock_guard<std::mutex> lock(mu);
          leases[r.id]++;
        }
        auto p = std::make_shared<std::promise<Result<bool>>>();
        done.push_back(p->get_future());
        store.finish(r.id, r.lease, Outcome{}, 2100, [p](Result<bool> r) { p->set_value(std::move(r)); });
      }
      for (std::size_t i = 0; i < done.size(); ++i) {
        auto r = done[i].get();
        ASSERT_TRUE(r.ok()) << r.error().what();
        EXPECT_TRUE(*r);
        std::lock_guard<std::mutex> lock(mu);
        finishes[(*got)[i].id]++;
      }
      if (got->empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  };
  std::thread ta([&] { work(*a); });
  std::thread tb([&] { work(*b); });
  ta.join();
  tb.join();
  EXPECT_EQ(leases.size(), ids.size());
  for (const auto& [id, n] : leases) EXPECT_EQ(n, 1) << id << " leased " << n << " times";
  for (const auto& [id, n] : finishes) EXPECT_EQ(n, 1) << id;
  for (const std::string& id : ids) EXPECT_EQ(b->get(id).value()->state, CallState::completed) << id;
}

// Clustered servers and a bucket with a replica on each: a minority of the
// nodes may die (SIGKILL) without losing an acknowledged write, and the
// store goes on writing through the others once JetStream has moved the
// bucket's leader.
class JetStreamStoreOnCluster : public ::testing::Test {
 protected:
  explicit JetStreamStoreOnCluster(int nodes) : cluster_(nodes) {}
  void SetUp() override {
    if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
    ASSERT_TRUE(cluster_.start()) << cluster_.failure();
  }
  JetStreamOptions options() {
    JetStreamOptions o;
    o.servers = cluster_.urls();
    o.bucket = "calls_r" + std::to_string(cluster_.size());
    o.replicas = cluster_.size();
    o.timeout = std::chrono::milliseconds(2000);
    return o;
  }
  std::string stream() { return "KV_" + options().bucket; }
  // A store on the nodes still running, opened again while it is
  // unavailable: opening makes a watcher (a consumer), which waits for the
  // meta leader when a killed node held it.
  Result<std::unique_ptr<Store>> open_on_survivors() {
    JetStreamOptions survivors = options();
    survivors.servers.clear();
    for (int i = 0; i < cluster_.size(); ++i) {
      if (cluster_.running(i)) survivors.servers.push_back(cluster_.urls()[static_cast<std::size_t>(i)]);
    }
    auto reader = open_jetstream_store(survivors);
    for (int tries = 0; !reader.ok() && reader.error().code() == Code::unavailable && tries < 10; ++tries) {
      reader = open_jetstream_store(survivors);
    }
    return reader;
  }
  // Calls leased before the nodes were lost are finished under their
  // leases after, and read back completed.
  static void expect_leases_finish(Store& store, const std::vector<CallRecord>& leased) {
    for (const auto& r : leased) {
      Outcome done;
      done.state = CallState::completed;
      done.output = "done";
      auto finished = store.finish_sync(r.id, r.lease, done, 9000);
      ASSERT_TRUE(finished.ok()) << finished.error().what();
      EXPECT_TRUE(*finished);
      EXPECT_EQ(store.get(r.id).value()->state, CallState::completed);
    }
  }
  // Every call in `acknowledged` (id -> key) read back through a store on
  // the running nodes, each with its key as input; `when` names the moment
  // for a failure's message.
  void expect_all_present(const std::map<std::string, std::string>& acknowledged, const std::string& when) {
    auto reader = open_on_survivors();
    ASSERT_TRUE(reader.ok()) << when << ": " << reader.error().what();
    for (const auto& [id, key] : acknowledged) {
      auto got = get_retrying(**reader, id);
      ASSERT_TRUE(got.ok()) << when << ": " << id << ": " << got.error().what();
      ASSERT_TRUE(got->has_value()) << when << ": acknowledged call " << key << " lost";
      EXPECT_EQ((*got)->input, key);
    }
  }
  // Enqueues one call under `key`, retrying while the cluster is without a
  // leader for the bucket (unavailable); the key makes retries one call. Up
  // to a minute: under ctest -j2 a new leader once took over 20 s.
  static Result<std::string> enqueue_retrying(Store& store, const std::string& key, int64_t now,
                                              std::chrono::seconds within = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      NewCall c = keyed_call(key);
      auto r = store.enqueue_sync({c}, now);
      if (r.ok()) return r->at(0);
      if (std::chrono::steady_clock::now() >= deadline) return r.error();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  // Reads call `id`, retrying while it is unavailable (the bucket's
  // leader moving), up to a minute as enqueue_retrying().
  static Result<std::optional<CallRecord>> get_retrying(Store& store, const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      auto got = store.get(id);
      if (got.ok() || got.error().code() != Code::unavailable || std::chrono::steady_clock::now() >= deadline) {
        return got;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  static NewCall keyed_call(const std::string& key) {
    NewCall c;
    c.function = "t.f";
    c.endpoint = "http://127.0.0.1:1";
    c.input_type_url = "type.googleapis.com/t.R";
    c.input = key;
    c.idempotency_key = key;
    return c;
  }
  testing::NatsCluster cluster_;
};

// Three servers, R3: one node may be lost.
class JetStreamStoreOnR3 : public JetStreamStoreOnCluster {
 protected:
  JetStreamStoreOnR3() : JetStreamStoreOnCluster(3) {}
};

// Five servers, R5: two nodes may be lost, together or one after the
// other.
class JetStreamStoreOnR5 : public JetStreamStoreOnCluster {
 protected:
  JetStreamStoreOnR5() : JetStreamStoreOnCluster(5) {}
};

// Direct gets are answered by any replica, a follower that lags too: with
// replicas the store reads its records from the bucket's leader only, even
// in a bucket made with direct gets before.
TEST_F(JetStreamStoreOnR3, ABucketIsMadeWithThreeReplicasReadFromItsLeaderAndRefusedWithOne) {
  natsConnection* nc = nullptr;
  const std::string url = cluster_.urls()[0];
  ASSERT_EQ(natsConnection_ConnectTo(&nc, url.c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = "calls_r3";
  cfg.History = 1;
  cfg.Replicas = 3;
  kvStore* made = nullptr;
  ASSERT_EQ(js_CreateKeyValue(&made, js, &cfg), NATS_OK);
  kvStore_Destroy(made);
  auto direct = [&] {
    jsStreamInfo* si = nullptr;
    EXPECT_EQ(js_GetStreamInfo(&si, js, "KV_calls_r3", nullptr, nullptr), NATS_OK);
    const bool allowed = si != nullptr && si->Config->AllowDirect;
    if (si != nullptr) jsStreamInfo_Destroy(si);
    return allowed;
  };
  EXPECT_TRUE(direct());  // as nats.c makes buckets
  auto store = open_jetstream_store(options());
  ASSERT_TRUE(store.ok()) << store.error().what();
  EXPECT_FALSE(direct());
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  JetStreamOptions one = options();
  one.replicas = 1;
  auto refused = open_jetstream_store(one);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::failed_precondition);
  EXPECT_NE(refused.error().message().find("3 replicas"), std::string::npos) << refused.error().message();
}

TEST_F(JetStreamStoreOnR3, LosingOneNodeOfThreeLosesNothingAcknowledged) {
  auto opened = open_jetstream_store(options());
  ASSERT_TRUE(opened.ok()) << opened.error().what();
  std::unique_ptr<Store> store = std::move(opened).value();
  std::map<std::string, std::string> acknowledged;  // id -> key
  int next = 0;
  auto write = [&](int n) {
    for (int i = 0; i < n; ++i, ++next) {
      const std::string key = "k" + std::to_string(next);
      auto id = enqueue_retrying(*store, key, 1000 + next);
      ASSERT_TRUE(id.ok()) << key << ": " << id.error().what();
      acknowledged[*id] = key;
    }
  };
  write(60);
  // A call leased before the loss is finished after it, under its lease.
  ClaimOptions claim;
  claim.now_ms = 5000;
  claim.max = 5;
  claim.lease_until_ms = 10'000'000;
  auto leased = store->claim_sync(claim).value();
  ASSERT_EQ(leased.size(), 5u);
  for (int victim = 0; victim < cluster_.size(); ++victim) {
    cluster_.kill(victim);
    const auto killed = std::chrono::steady_clock::now();
    write(1);
    const auto failover =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
    write(30);
    // Everything acknowledged so far, read by a store opened on the two
    // nodes left.
    expect_all_present(acknowledged, "node " + std::to_string(victim) + " down");
    if (HasFatalFailure()) return;
    std::printf("R3 node %d killed: first write after %lld ms; %zu acknowledged calls all present\n", victim,
                static_cast<long long>(failover.count()), acknowledged.size());
    ASSERT_TRUE(cluster_.restart(victim)) << cluster_.failure();
  }
  expect_leases_finish(*store, leased);
}

// Two nodes of three gone: the bucket has no quorum, and a read says so as
// `unavailable` (to be retried), not `internal`, whichever way nats.c
// reports it (no responders, a timeout, or JetStream's "temporarily
// unavailable").
TEST_F(JetStreamStoreOnR3, AReadWithoutQuorumIsUnavailable) {
  auto opened = open_jetstream_store(options());
  ASSERT_TRUE(opened.ok()) << opened.error().what();
  auto id = enqueue_retrying(**opened, "k", 1000);
  ASSERT_TRUE(id.ok()) << id.error().what();
  cluster_.kill(1);
  cluster_.kill(2);
  // A leader left alone answers reads until it notices it has lost its
  // quorum and steps down (its election timeout); a read that fails, from
  // then on, must say unavailable.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int answered = 0;
  for (;;) {
    auto got = (*opened)->get(*id);
    if (!got.ok()) {
      EXPECT_EQ(got.error().code(), Code::unavailable) << got.error().what();
      std::printf("a read without quorum, after %d answered ones: %s\n", answered, got.error().what());
      break;
    }
    ++answered;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "reads were still answered a minute after the quorum was lost";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// A bucket asked for with more replicas than the cluster has nodes cannot
// be made: refused with the server's reason. The message does not name
// the replicas setting yet (docs/scheduler.md, "Not yet").
TEST_F(JetStreamStoreOnR3, ABucketWithMoreReplicasThanNodesIsRefused) {
  JetStreamOptions five = options();
  five.bucket = "calls_r5_on_3";
  five.replicas = 5;
  auto refused = open_jetstream_store(five);
  ASSERT_FALSE(refused.ok());
  std::printf("R5 on 3 nodes: %s\n", refused.error().what());
  EXPECT_EQ(refused.error().code(), Code::failed_precondition) << refused.error().what();
  EXPECT_NE(refused.error().message().find("calls_r5_on_3"), std::string::npos) << refused.error().message();
  EXPECT_NE(refused.error().message().find("no suitable peers for placement"), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("with 5 replicas: that needs at least 5 JetStream servers"),
            std::string::npos)
      << refused.error().message();
  EXPECT_EQ(refused.error().message().find("nats-server -js"), std::string::npos) << refused.error().message();
  // Nothing was made: the name is free for a bucket the cluster can hold.
  JetStreamOptions three = five;
  three.replicas = 3;
  auto made = open_jetstream_store(three);
  EXPECT_TRUE(made.ok()) << made.error().what();
}

// Writes go on in a thread while two nodes of five die: at once (the
// bucket's leader and another), then one after the other (the leader, then
// the one that took over); each time the dead are restarted. Every write
// acknowledged before, during and after is there, read through the nodes
// left; a call leased before the losses is finished after them.
TEST_F(JetStreamStoreOnR5, LosingTwoNodesOfFiveAtOnceOrInTurnLosesNothingAcknowledged) {
  auto opened = open_jetstream_store(options());
  ASSERT_TRUE(opened.ok()) << opened.error().what();
  std::unique_ptr<Store> store = std::move(opened).value();
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;  // id -> key
  std::atomic<int> written{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int n = 0; !stop; ++n) {
      const std::string key = "k" + std::to_string(n);
      auto id = enqueue_retrying(*store, key, 1000 + n);
      if (!id.ok()) {
        ADD_FAILURE() << key << ": " << id.error().what();
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        acknowledged[*id] = key;
        ++written;
      }
      // About 50 writes a second: enough to be in flight at every kill,
      // few enough to read back quickly.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      t.join();
    }
  } join{stop, writer};
  // Waits (up to a minute) until `more` writes past the present are
  // acknowledged; how long the first took.
  auto await_writes = [&](int more) {
    const int target = written + more;
    const auto from = std::chrono::steady_clock::now();
    const auto deadline = from + std::chrono::seconds(60);
    std::chrono::milliseconds first{-1};
    const int first_target = written + 1;
    while (written < target && std::chrono::steady_clock::now() < deadline) {
      if (first.count() < 0 && written >= first_target) {
        first = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - from);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GE(written, target) << "writes stalled";
    if (first.count() < 0) {
      first = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - from);
    }
    return first;
  };
  auto snapshot = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acknowledged;
  };
  auto leader = [&] {
    std::string why;
    int l = -1;
    for (int tries = 0; l < 0 && tries < 300; ++tries) {
      l = cluster_.leader_of(stream(), &why);
      if (l < 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_GE(l, 0) << why;
    return l;
  };
  await_writes(40);
  ClaimOptions claim;
  claim.now_ms = 1030;
  claim.max = 5;
  claim.lease_until_ms = 10'000'000;
  auto leased = store->claim_sync(claim).value();
  ASSERT_EQ(leased.size(), 5u);

  // Two at once: the leader and the next node.
  const int first = leader();
  ASSERT_GE(first, 0);
  const int second = (first + 1) % cluster_.size();
  cluster_.kill(first);
  cluster_.kill(second);
  auto failover = await_writes(30);
  expect_all_present(snapshot(), "nodes " + std::to_string(first) + " and " + std::to_string(second) + " down");
  if (HasFatalFailure()) return;
  std::printf("R5 nodes %d (leader) and %d killed at once: first write after %lld ms; %zu acknowledged calls all "
              "present\n",
              first, second, static_cast<long long>(failover.count()), snapshot().size());
  ASSERT_TRUE(cluster_.restart(first)) << cluster_.failure();
  ASSERT_TRUE(cluster_.restart(second)) << cluster_.failure();

  // One after the other: the leader, then the node that took over.
  const int third = leader();
  ASSERT_GE(third, 0);
  cluster_.kill(third);
  failover = await_writes(20);
  const int fourth = leader();
  ASSERT_GE(fourth, 0);
  ASSERT_NE(fourth, third);
  cluster_.kill(fourth);
  const auto again = await_writes(20);
  expect_all_present(snapshot(), "nodes " + std::to_string(third) + " then " + std::to_string(fourth) + " down");
  if (HasFatalFailure()) return;
  std::printf("R5 node %d (leader) killed, first write after %lld ms; then node %d (the new leader), first write "
              "after %lld ms; %zu acknowledged calls all present\n",
              third, static_cast<long long>(failover.count()), fourth, static_cast<long long>(again.count()),
              snapshot().size());
  ASSERT_TRUE(cluster_.restart(third)) << cluster_.failure();
  ASSERT_TRUE(cluster_.restart(fourth)) << cluster_.failure();
  await_writes(10);
  stop = true;
  expect_all_present(snapshot(), "all five back");
  if (HasFatalFailure()) return;
  expect_leases_finish(*store, leased);
}

// Three nodes of five gone, the bucket's leader among them: no quorum, and
// reads and writes say so as `unavailable` (to be retried), not
// `internal`; a write is not acknowledged. One node back makes a quorum
// again: what was written before is there, and writes go on.
TEST_F(JetStreamStoreOnR5, ThreeNodesOfFiveDownAreUnavailableUntilOneIsBack) {
  auto opened = open_jetstream_store(options());
  ASSERT_TRUE(opened.ok()) << opened.error().what();
  Store& store = **opened;
  auto id = enqueue_retrying(store, "before", 1000);
  ASSERT_TRUE(id.ok()) << id.error().what();
  std::string why;
  const int leader = cluster_.leader_of(stream(), &why);
  ASSERT_GE(leader, 0) << why;
  const int n = cluster_.size();
  const std::array<int, 3> down{leader, (leader + 1) % n, (leader + 2) % n};
  for (int node : down) cluster_.kill(node);
  // A leader left alone may answer reads until its election timeout; from
  // its first refusal on, reads fail as unavailable.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int answered = 0;
  for (;;) {
    auto got = store.get(*id);
    if (!got.ok()) {
      EXPECT_EQ(got.error().code(), Code::unavailable) << got.error().what();
      std::printf("R5, 3 of 5 down: a read without quorum, after %d answered ones: %s\n", answered,
                  got.error().what());
      break;
    }
    ++answered;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "reads were still answered a minute after the quorum was lost";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  auto refused = store.enqueue_sync({keyed_call("during")}, 2000);
  ASSERT_FALSE(refused.ok()) << "a write was acknowledged without a quorum";
  EXPECT_EQ(refused.error().code(), Code::unavailable) << refused.error().what();
  std::printf("R5, 3 of 5 down: a write without quorum: %s\n", refused.error().what());
  ASSERT_TRUE(cluster_.restart(down[0])) << cluster_.failure();
  auto got = get_retrying(store, *id);
  ASSERT_TRUE(got.ok()) << got.error().what();
  ASSERT_TRUE(got->has_value()) << "the call written before the loss is gone";
  EXPECT_EQ((*got)->input, "before");
  auto after = enqueue_retrying(store, "after", 3000);
  ASSERT_TRUE(after.ok()) << after.error().what();
}

// A nats-server that requires TLS, with a certificate made for 127.0.0.1.
TEST(JetStreamStoreTls, ConnectsOverTlsAndRefusesAServerItDoesNotTrust) {
  if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
  const std::string dir = testing::fresh_temp_dir("dispatch-nats-tls");
  ASSERT_FALSE(dir.empty());
  const auto server_cert = ::dispatch::testing::TestCertificate::make();
  const auto stranger = ::dispatch::testing::TestCertificate::make();
  const std::string cert = server_cert.write_cert(dir + "/server.pem");
  std::ofstream(dir + "/server.key") << server_cert.key_pem;
  const std::string untrusted = stranger.write_cert(dir + "/stranger.pem");
  NatsServer nats;
  nats.set_tls(cert, dir + "/server.key");
  ASSERT_TRUE(nats.start()) << nats.failure();

  JetStreamOptions o;
  o.servers = {nats.url()};
  o.bucket = "tls";
  o.timeout = std::chrono::milliseconds(2000);
  o.tls_ca_file = cert;
  auto store = open_jetstream_store(o);
  ASSERT_TRUE(store.ok()) << store.error().what();
  NewCall c;
  c.function = "t.f";
  c.endpoint = "http://127.0.0.1:1";
  c.input = "over tls";
  auto ids = (*store)->enqueue_sync({c}, 1000);
  ASSERT_TRUE(ids.ok()) << ids.error().what();
  EXPECT_EQ((*store)->get(ids->at(0)).value()->input, "over tls");

  JetStreamOptions wrong_ca = o;
  wrong_ca.tls_ca_file = untrusted;
  auto refused = open_jetstream_store(wrong_ca);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::unavailable);
  EXPECT_NE(refused.error().message().find("over TLS"), std::string::npos) << refused.error().message();

  JetStreamOptions plain = o;
  plain.tls_ca_file.clear();
  auto no_tls = open_jetstream_store(plain);
  ASSERT_FALSE(no_tls.ok());
  EXPECT_NE(no_tls.error().message().find(nats.url()), std::string::npos) << no_tls.error().message();

  JetStreamOptions no_key = o;
  no_key.tls_cert_file = cert;
  auto half = open_jetstream_store(no_key);
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().code(), Code::invalid_argument);
  EXPECT_NE(half.error().message().find("the key is missing"), std::string::npos) << half.error().message();

  JetStreamOptions missing = o;
  missing.tls_ca_file = dir + "/absent.pem";
  auto absent = open_jetstream_store(missing);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code(), Code::invalid_argument);
  EXPECT_NE(absent.error().message().find("absent.pem"), std::string::npos) << absent.error().message();
  store->reset();
  nats.stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
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
