// What every EntityStore backend must do (entity_store.h): inboxes in
// arrival order, one leased batch per entity, a reply applied whole under its
// lease, retries that shrink the batch to its head, dead letters and their
// redrive, delayed messages fired once and cancelled by their sender's token,
// expiration sweeps, egress order and acknowledgements, idempotent ingress,
// fairness across function types, and everything kept across a reopen. Each
// test runs on every backend (SQLite on disk, JetStream on a nats-server of
// the test's own), so the StateFun runtime gets the same answers from both.
// What one backend does beyond the contract is tested beside it
// (jetstream/entity_store_test: several processes on one bucket).
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "dispatch/jetstream/jetstream_store.h"
#include "dispatch/scheduler/entity_store.h"
#include "dispatch/sqlite/sqlite_store.h"
#include "jetstream/testing/nats_server.h"

namespace dispatch::scheduler {
namespace {

// Opens the store named `name` (a file, a bucket): opening the same name
// again sees what was written before.
using Factory = std::function<std::unique_ptr<Store>(const std::string& dir, const std::string& name)>;

struct Backend {
  const char* name;
  Factory open;
  // Why this backend cannot run here (empty: it can).
  std::function<std::string()> missing = [] { return std::string(); };
};

std::string PrintBackend(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

class EntityStoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    name_ = std::string("entities_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (auto& c : name_) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    remove_files();
    if (std::string why = GetParam().missing(); !why.empty()) GTEST_SKIP() << why;
    open();
  }
  void TearDown() override {
    store_.reset();
    remove_files();
  }
  void remove_files() {
    const std::string path = ::testing::TempDir() + name_ + ".db";
    for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((path + suffix).c_str());
  }
  EntityStore& open() {
    store_.reset();
    store_ = GetParam().open(::testing::TempDir(), name_);
    EXPECT_NE(store_, nullptr);
    EXPECT_NE(store_->entities(), nullptr);
    return es();
  }
  EntityStore& es() { return *store_->entities(); }

  static EntityMessage msg(std::string type, std::string id, std::string value, std::string key = "") {
    EntityMessage m;
    m.target = {std::move(type), std::move(id)};
    m.type_name = "io.statefun.types/string";
    m.value = std::move(value);
    m.idempotency_key = std::move(key);
    return m;
  }
  uint64_t send(EntityMessage m, int64_t now = 1000) {
    auto ids = es().send_sync({std::move(m)}, now);
    EXPECT_TRUE(ids.ok()) << ids.error().what();
    return ids.ok() ? ids->front() : 0;
  }
  std::vector<EntityBatch> claim(int64_t now = 1000, std::size_t max = 64, std::size_t per_batch = 1000) {
    EntityClaimOptions o;
    o.now_ms = now;
    o.max_batches = max;
    o.max_messages = per_batch;
    o.lease_until_ms = now + 60'000;
    auto b = es().claim_entities_sync(o);
    EXPECT_TRUE(b.ok()) << b.error().what();
    return b.ok() ? std::move(*b) : std::vector<EntityBatch>{};
  }
  static std::vector<std::string> values(const EntityBatch& b) {
    std::vector<std::string> out;
    for (const QueuedMessage& q : b.messages) out.push_back(q.message.value);
    return out;
  }

  std::string name_;
  std::unique_ptr<Store> store_;
};

TEST_P(EntityStoreConformance, ABatchIsTheInboxInArrivalOrderAndOnlyOneIsLeasedPerEntity) {
  send(msg("g/greet", "alice", "1"));
  send(msg("g/greet", "alice", "2"));
  send(msg("g/greet", "bob", "x"));
  auto batches = claim();
  ASSERT_EQ(batches.size(), 2u);
  std::map<std::string, EntityBatch> by_id;
  for (auto& b : batches) by_id[b.address.id] = b;
  EXPECT_EQ(values(by_id["alice"]), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(values(by_id["bob"]), (std::vector<std::string>{"x"}));
  // A message arriving while alice's batch is out waits for the next batch.
  send(msg("g/greet", "alice", "3"));
  EXPECT_TRUE(claim().empty());
  const EntityBatch& a = by_id["alice"];
  ASSERT_TRUE(es().complete_sync(a.address, a.lease, a.messages.back().seq, {}, 1001).value());
  auto next = claim(1001);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(values(next[0]), (std::vector<std::string>{"3"}));
}

TEST_P(EntityStoreConformance, AReplyIsAppliedWholeUnderItsLeaseOnly) {
  ASSERT_TRUE(es().register_specs_sync("g/greet", {{"seen", "io.statefun.types/int", ExpireMode::none, 0}}).value());
  send(msg("g/greet", "alice", "hi"));
  auto b = claim();
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(b[0].specs.size(), 1u);
  EXPECT_EQ(b[0].specs[0].name, "seen");
  EXPECT_TRUE(b[0].state.empty());
  BatchResult r;
  r.mutations.push_back({"seen", false, "io.statefun.types/int", std::string("\x0d\x01\x00\x00\x00", 5), 0});
  r.outgoing.push_back(msg("g/other", "carol", "fwd"));
  r.egress.push_back({"e/out", "io.statefun.types/string", "rec1"});
  r.egress.push_back({"e/out", "io.statefun.types/string", "rec2"});
  // A stale lease changes nothing.
  EXPECT_FALSE(es().complete_sync(b[0].address, b[0].lease + 2, b[0].messages.back().seq, r, 1001).value());
  EXPECT_TRUE(es().read_egress("e/out", 0, 10)->empty());
  ASSERT_TRUE(es().complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1001).value());
  // Applied once: the same lease is spent.
  EXPECT_FALSE(es().complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1002).value());
  auto egress = es().read_egress("e/out", 0, 10).value();
  ASSERT_EQ(egress.size(), 2u);
  EXPECT_EQ(egress[0].value, "rec1");
  EXPECT_EQ(egress[1].value, "rec2");
  EXPECT_LT(egress[0].seq, egress[1].seq);
  EXPECT_EQ(es().read_egress("e/out", egress[0].seq, 10)->size(), 1u);
  auto view = es().entity({"g/greet", "alice"}, 10).value();
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->state.size(), 1u);
  EXPECT_EQ(view->state[0].value, std::string("\x0d\x01\x00\x00\x00", 5));
  EXPECT_TRUE(view->backlog.empty());
  EXPECT_FALSE(view->in_flight);
  // The forwarded message is carol's next batch; alice's state comes with
  // her next one.
  send(msg("g/greet", "alice", "again"));
  auto next = claim(1002);
  ASSERT_EQ(next.size(), 2u);
  for (auto& n : next) {
    if (n.address.id == "carol") {
      EXPECT_EQ(values(n), (std::vector<std::string>{"fwd"}));
    } else {
      ASSERT_EQ(n.state.size(), 1u);
      EXPECT_EQ(n.state[0].name, "seen");
    }
  }
}

TEST_P(EntityStoreConformance, AFailedBatchIsRetriedAsItsHeadAloneThenDeadLetteredAndRedriven) {
  send(msg("g/greet", "alice", "poison"));
  send(msg("g/greet", "alice", "fine"));
  auto b = claim();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].messages.size(), 2u);
  ASSERT_TRUE(es().fail_sync(b[0].address, b[0].lease, 5000, "HTTP 500").value());
  EXPECT_TRUE(claim(4999).empty());  // not before its backoff
  auto again = claim(5000);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 1u);
  EXPECT_EQ(again[0].last_error, "HTTP 500");
  EXPECT_EQ(values(again[0]), (std::vector<std::string>{"poison"}));
  ASSERT_TRUE(es().dead_letter_sync(again[0].address, again[0].lease, again[0].messages.back().seq,
                                    "gave up after 2 attempts: HTTP 500", 5001)
                  .value());
  auto letters = es().dead_letters(0, 10).value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].message.message.value, "poison");
  EXPECT_EQ(letters[0].reason, "gave up after 2 attempts: HTTP 500");
  EXPECT_EQ(letters[0].attempts, 2u);
  // The address moves on, with a full batch again.
  auto next = claim(5001);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].attempts, 0u);
  EXPECT_EQ(values(next[0]), (std::vector<std::string>{"fine"}));
  ASSERT_TRUE(es().complete_sync(next[0].address, next[0].lease, next[0].messages.back().seq, {}, 5002).value());
  // Redriven: back at the end of the inbox, and gone from the letters.
  ASSERT_TRUE(es().redrive_sync(letters[0].seq, 5003).ok());
  EXPECT_TRUE(es().dead_letters(0, 10)->empty());
  auto redriven = claim(5003);
  ASSERT_EQ(redriven.size(), 1u);
  EXPECT_EQ(values(redriven[0]), (std::vector<std::string>{"poison"}));
  auto unknown = es().redrive_sync(letters[0].seq, 5004);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::not_found);
}

TEST_P(EntityStoreConformance, DelayedMessagesFireOnceAndTheSendersTokenCancelsThem) {
  send(msg("g/timer", "t1", "start"));
  auto b = claim();
  ASSERT_EQ(b.size(), 1u);
  BatchResult r;
  EntityMessage later = msg("g/timer", "t1", "tick");
  later.caller = {"g/timer", "t1"};
  r.delayed.push_back({3000, later, "tok"});
  EntityMessage other = later;
  other.value = "tock";
  r.delayed.push_back({4000, other, ""});
  ASSERT_TRUE(es().complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1001).value());
  EXPECT_EQ(es().next_entity_due_ms().value(), std::optional<int64_t>(3000));
  EXPECT_EQ(es().entity({"g/timer", "t1"}, 10).value()->delayed.size(), 2u);
  // Cancelling the token from another sender does nothing; the sender's own
  // token cancels.
  send(msg("g/timer", "t2", "x"));
  auto b2 = claim(1002);
  ASSERT_EQ(b2.size(), 1u);
  BatchResult foreign;
  foreign.cancellations.push_back("tok");
  ASSERT_TRUE(es().complete_sync(b2[0].address, b2[0].lease, b2[0].messages.back().seq, foreign, 1003).value());
  EXPECT_EQ(es().entity({"g/timer", "t1"}, 10).value()->delayed.size(), 2u);
  send(msg("g/timer", "t1", "cancel"));
  auto b3 = claim(1004);
  ASSERT_EQ(b3.size(), 1u);
  BatchResult own;
  own.cancellations.push_back("tok");
  ASSERT_TRUE(es().complete_sync(b3[0].address, b3[0].lease, b3[0].messages.back().seq, own, 1005).value());
  EXPECT_EQ(es().entity({"g/timer", "t1"}, 10).value()->delayed.size(), 1u);
  EXPECT_EQ(es().fire_delayed_sync(3999, 100).value(), 0u);
  EXPECT_EQ(es().fire_delayed_sync(4000, 100).value(), 1u);
  EXPECT_EQ(es().fire_delayed_sync(5000, 100).value(), 0u);  // once
  auto fired = claim(4000);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(values(fired[0]), (std::vector<std::string>{"tock"}));
  EXPECT_EQ(fired[0].messages[0].message.caller, (EntityAddress{"g/timer", "t1"}));
}

TEST_P(EntityStoreConformance, ATokenPendingTwiceFromOneSenderFailsTheWholeReply) {
  send(msg("g/timer", "t1", "start"));
  auto b = claim();
  BatchResult r;
  EntityMessage later = msg("g/timer", "t1", "tick");
  later.caller = {"g/timer", "t1"};
  r.delayed.push_back({3000, later, "tok"});
  r.delayed.push_back({3000, later, "tok"});
  r.egress.push_back({"e/out", "t", "must not stay"});
  auto done = es().complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1001);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.error().code(), Code::failed_precondition);
  EXPECT_NE(done.error().message().find("'tok'"), std::string::npos) << done.error().message();
  EXPECT_TRUE(es().read_egress("e/out", 0, 10)->empty());
  // Still leased: the runtime dead-letters it with that reason.
  ASSERT_TRUE(es().dead_letter_sync(b[0].address, b[0].lease, b[0].messages.back().seq,
                                    done.error().message(), 1002)
                  .value());
  EXPECT_EQ(es().dead_letters(0, 10)->size(), 1u);
}

TEST_P(EntityStoreConformance, ExpiredValuesAreNotHandedOutAndSweepsDeleteThem) {
  send(msg("g/c", "a", "1"));
  auto b = claim();
  BatchResult r;
  r.mutations.push_back({"short", false, "t", "v1", 2000});
  r.mutations.push_back({"long", false, "t", "v2", 0});
  ASSERT_TRUE(es().complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1001).value());
  send(msg("g/c", "a", "2"), 1999);
  auto before = claim(1999);
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].state.size(), 2u);
  BatchResult touch;
  touch.touched.push_back({"short", 2500});
  ASSERT_TRUE(es().complete_sync(before[0].address, before[0].lease, before[0].messages.back().seq, touch, 1999)
                  .value());
  send(msg("g/c", "a", "3"), 2400);
  auto moved = claim(2400);
  EXPECT_EQ(moved[0].state.size(), 2u);  // touched: now 2500
  ASSERT_TRUE(es().complete_sync(moved[0].address, moved[0].lease, moved[0].messages.back().seq, {}, 2400).value());
  send(msg("g/c", "a", "4"), 2500);
  auto after = claim(2500);
  ASSERT_EQ(after[0].state.size(), 1u);
  EXPECT_EQ(after[0].state[0].name, "long");
  auto swept = es().sweep_sync(2500, 0).value();
  EXPECT_EQ(swept.state_values, 1u);
  EXPECT_EQ(es().entity({"g/c", "a"}, 10).value()->state.size(), 1u);
}

TEST_P(EntityStoreConformance, IngressKeysDeduplicateUntilSwept) {
  const uint64_t first = send(msg("g/c", "a", "1", "key-1"), 1000);
  EXPECT_EQ(send(msg("g/c", "a", "1", "key-1"), 1001), first);
  EXPECT_EQ(es().entity({"g/c", "a"}, 10).value()->backlog.size(), 1u);
  // A batch with a repeated key inside it too.
  auto ids = es().send_sync({msg("g/c", "a", "2", "key-2"), msg("g/c", "a", "2", "key-2")}, 1002).value();
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(es().entity({"g/c", "a"}, 10).value()->backlog.size(), 2u);
  EXPECT_EQ(es().sweep_sync(1002, 1001).value().ingress_keys, 1u);
  EXPECT_NE(send(msg("g/c", "a", "1", "key-1"), 1003), first);
  EXPECT_EQ(send(msg("g/c", "a", "2", "key-2"), 1003), ids[0]);
}

TEST_P(EntityStoreConformance, EgressRecordsWaitForTheirHttpAcknowledgementBeforeSweeping) {
  send(msg("g/c", "a", "1"));
  auto b = claim();
  BatchResult r;
  r.egress.push_back({"e/http", "t", "1"});
  r.egress.push_back({"e/http", "t", "2"});
  r.egress.push_back({"e/kept", "t", "3"});
  ASSERT_TRUE(es().ack_egress_sync("e/http", 0).value());
  ASSERT_TRUE(es().complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1000).value());
  auto recs = es().read_egress("e/http", 0, 10).value();
  ASSERT_EQ(recs.size(), 2u);
  ASSERT_TRUE(es().ack_egress_sync("e/http", recs[0].seq).value());
  EXPECT_EQ(es().egress_cursor("e/http").value(), recs[0].seq);
  auto swept = es().sweep_sync(1000, 2000).value();
  EXPECT_EQ(swept.egress_records, 2u);  // the acknowledged one and e/kept's
  EXPECT_EQ(es().read_egress("e/http", 0, 10)->size(), 1u);
}

TEST_P(EntityStoreConformance, LeasesLapseAndAreAllReleasedAtStart) {
  send(msg("g/c", "a", "1"));
  auto b = claim(1000);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(es().release_entity_leases_sync(1000 + 59'999, false).value(), 0u);
  EXPECT_EQ(es().release_entity_leases_sync(1000 + 60'000, false).value(), 1u);
  auto again = claim(61'000);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_FALSE(es().complete_sync(b[0].address, b[0].lease, 1, {}, 61'001).value());
  EXPECT_EQ(es().release_entity_leases_sync(61'001, true).value(), 1u);
}

TEST_P(EntityStoreConformance, EverythingSurvivesAReopenAndARunningBatchIsHandedOutAgain) {
  ASSERT_TRUE(es().register_specs_sync("g/c", {{"n", "io.statefun.types/int", ExpireMode::after_write, 10}}).value());
  send(msg("g/c", "a", "1"));
  auto b = claim();
  BatchResult r;
  r.mutations.push_back({"n", false, "io.statefun.types/int", "v", 0});
  ASSERT_TRUE(es().complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1000).value());
  send(msg("g/c", "a", "2"));
  ASSERT_EQ(claim().size(), 1u);  // leased when the process "dies"
  open();
  EXPECT_EQ(es().release_entity_leases_sync(1000, true).value(), 1u);
  auto again = claim(1000);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(values(again[0]), (std::vector<std::string>{"2"}));
  ASSERT_EQ(again[0].state.size(), 1u);
  ASSERT_EQ(again[0].specs.size(), 1u);
  EXPECT_EQ(again[0].specs[0].mode, ExpireMode::after_write);
  EXPECT_EQ(again[0].specs[0].ttl_ms, 10);
}

TEST_P(EntityStoreConformance, BackloggedFunctionTypesShareTheBatchesOfAClaim) {
  for (int i = 0; i < 100; ++i) send(msg("f/flood", "e" + std::to_string(i), "x"));
  for (int i = 0; i < 10; ++i) send(msg("f/small", "e" + std::to_string(i), "x"));
  auto b = claim(1000, 20);
  ASSERT_EQ(b.size(), 20u);
  int small = 0;
  for (auto& x : b) small += x.address.type == "f/small" ? 1 : 0;
  EXPECT_EQ(small, 10);
}

const Backend kBackends[] = {
    {"sqlite",
     [](const std::string& dir, const std::string& name) -> std::unique_ptr<Store> {
       SqliteOptions o;
       o.path = dir + name + ".db";
       o.fsync_commits = false;
       auto s = open_sqlite_store(o);
       EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
       return s.ok() ? std::move(s).value() : nullptr;
     }},
    {"jetstream",
     [](const std::string&, const std::string& name) -> std::unique_ptr<Store> {
       // One server for the whole run; buckets named after the test.
       static testing::NatsServer nats;
       static const bool started = nats.start();
       EXPECT_TRUE(started) << nats.failure();
       if (!started) return nullptr;
       JetStreamOptions o;
       o.servers = {nats.url()};
       o.bucket = name;
       // Delete markers leave the stream while the contract runs.
       o.marker_grace = std::chrono::milliseconds(200);
       auto s = open_jetstream_store(o);
       EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
       return s.ok() ? std::move(s).value() : nullptr;
     },
     [] { return testing::NatsServer::available() ? std::string() : testing::NatsServer::kMissing; }},
};

INSTANTIATE_TEST_SUITE_P(Backends, EntityStoreConformance, ::testing::ValuesIn(kBackends), PrintBackend);

}  // namespace
}  // namespace dispatch::scheduler
