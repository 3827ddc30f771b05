// The JetStream EntityStore beyond the contract (entity_store_conformance_test
// holds it to that): several stores on one bucket, as several dispatchd
// processes are. An address's batch is claimed by exactly one of them, a
// lapsed lease is taken over by another, a reply under the lost lease is
// refused, each address's messages go out in the order they came, and a
// StateFun runtime starting on a shared store leaves the others' leases; a
// reply whose effects a dead process left unapplied has them applied by the
// next store to start, once however often that happens; a store whose
// watcher numbers revisions apart from the leader's delivers nothing again
// from that index, and rebuilds it.
#include "dispatch/jetstream/entity_store.h"

#include <gtest/gtest.h>

#include <nats/nats.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/jetstream/v1/entities.pb.h"
#include "dispatch/statefun_runtime/runtime.h"
#include "jetstream/entity_store_testing.h"
#include "jetstream/kv.h"
#include "jetstream/testing/nats_server.h"

namespace dispatch::scheduler {
namespace {

class JetStreamEntityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::NatsServer::available()) GTEST_SKIP() << testing::NatsServer::kMissing;
    ASSERT_TRUE(nats_.start()) << nats_.failure();
    a_ = open();
    b_ = open();
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }
  std::unique_ptr<EntityStore> open(std::chrono::milliseconds marker_grace = std::chrono::minutes(2)) {
    JetStreamOptions o;
    o.servers = {nats_.url()};
    o.bucket = "two_processes";
    o.marker_grace = marker_grace;
    auto s = open_jetstream_entity_store(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static EntityMessage msg(std::string id, std::string value) {
    EntityMessage m;
    m.target = {"g/count", std::move(id)};
    m.type_name = "io.statefun.types/string";
    m.value = std::move(value);
    return m;
  }
  static EntityClaimOptions at(int64_t now, std::size_t per_batch = 1000) {
    EntityClaimOptions o;
    o.now_ms = now;
    o.max_messages = per_batch;
    o.lease_until_ms = now + 1000;
    return o;
  }

  testing::NatsServer nats_;
  std::unique_ptr<EntityStore> a_, b_;
};

TEST_F(JetStreamEntityStoreTest, EachAddressIsClaimedByExactlyOneStore) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(a_->send_sync({msg("e" + std::to_string(i), "x")}, 1000).ok());
  // b has not necessarily seen a's sends yet; it sees them in a moment.
  std::map<std::string, int> claimed;
  for (int round = 0; round < 50 && claimed.size() < 20; ++round) {
    for (EntityStore* s : {a_.get(), b_.get()}) {
      auto got = s->claim_entities_sync(at(1000)).value();
      for (const EntityBatch& b : got) claimed[b.address.id]++;
    }
  }
  ASSERT_EQ(claimed.size(), 20u);
  for (const auto& [id, times] : claimed) EXPECT_EQ(times, 1) << id;
}

TEST_F(JetStreamEntityStoreTest, ALapsedLeaseIsTakenOverAndTheOldReplyRefused) {
  ASSERT_TRUE(a_->send_sync({msg("e", "1")}, 1000).ok());
  auto first = a_->claim_entities_sync(at(1000)).value();
  ASSERT_EQ(first.size(), 1u);
  // b sees the lease a moment later (its watcher); meanwhile and after,
  // it has nothing to claim.
  auto leased = [&] {
    auto v = b_->entity({"g/count", "e"}, 10).value();
    return v && v->in_flight;
  };
  for (int i = 0; i < 1000 && !leased(); ++i) EXPECT_TRUE(b_->claim_entities_sync(at(1500)).value().empty());
  ASSERT_TRUE(leased());
  EXPECT_TRUE(b_->claim_entities_sync(at(1500)).value().empty());
  EXPECT_EQ(b_->release_entity_leases_sync(1999, false).value(), 0u);
  EXPECT_EQ(b_->release_entity_leases_sync(2000, false).value(), 1u);
  auto second = b_->claim_entities_sync(at(2000)).value();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].messages[0].message.value, "1");
  BatchResult r;
  r.mutations.push_back({"n", false, "t", "from-a", 0});
  EXPECT_FALSE(a_->complete_sync(first[0].address, first[0].lease, first[0].messages.back().seq, r, 2001).value());
  r.mutations[0].value = "from-b";
  ASSERT_TRUE(b_->complete_sync(second[0].address, second[0].lease, second[0].messages.back().seq, r, 2001).value());
  auto view = a_->entity({"g/count", "e"}, 10).value();
  // a's view catches up with b's write.
  for (int i = 0; i < 400 && view && (view->state.empty() || view->in_flight); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    view = a_->entity({"g/count", "e"}, 10).value();
  }
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->state.size(), 1u);
  EXPECT_EQ(view->state[0].value, "from-b");
  EXPECT_TRUE(view->backlog.empty());
}

TEST_F(JetStreamEntityStoreTest, OrderPerAddressHoldsWhateverStoreSendsAndClaims) {
  // Both stores send to one address, alternately; both claim, one message a
  // batch, and each batch completes before the next is claimed.
  constexpr int kMessages = 40;
  for (int i = 0; i < kMessages; ++i) {
    EntityStore* s = i % 2 == 0 ? a_.get() : b_.get();
    ASSERT_TRUE(s->send_sync({msg("e", std::to_string(i))}, 1000).ok());
  }
  std::vector<std::string> seen;
  uint64_t last_seq = 0;
  int64_t now = 1000;
  for (int round = 0; round < 2000 && static_cast<int>(seen.size()) < kMessages; ++round) {
    EntityStore* s = round % 3 == 0 ? a_.get() : b_.get();
    auto got = s->claim_entities_sync(at(now, 1)).value();
    for (const EntityBatch& b : got) {
      for (const QueuedMessage& q : b.messages) {
        EXPECT_GT(q.seq, last_seq);
        last_seq = q.seq;
        seen.push_back(q.message.value);
      }
      ASSERT_TRUE(s->complete_sync(b.address, b.lease, b.messages.back().seq, {}, now).value());
    }
  }
  ASSERT_EQ(static_cast<int>(seen.size()), kMessages);
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(seen[i], std::to_string(i));
}

// A send of several messages goes through a record of its own, removed
// once its messages are queued (as consumed messages, heartbeats and
// settled delayed messages are removed later), and each removal leaves a
// delete marker in the bucket's stream: after the grace the stream holds
// live records only.
TEST_F(JetStreamEntityStoreTest, RemovedRecordsLeaveNoMarkersAfterTheGrace) {
  a_.reset();  // their heartbeats' markers too are found listing the bucket, and deleted
  b_.reset();
  a_ = open(std::chrono::milliseconds(200));
  b_ = open(std::chrono::milliseconds(200));
  constexpr int kSends = 15;
  for (int i = 0; i < kSends; ++i) {
    EntityStore* s = i % 2 == 0 ? a_.get() : b_.get();
    ASSERT_TRUE(s->send_sync({msg("e", std::to_string(i)), msg("f", std::to_string(i))}, 1000).ok());
  }
  // What a new watcher lists, until no marker is left.
  JetStreamOptions o;
  o.servers = {nats_.url()};
  o.bucket = "two_processes_entities";  // open_jetstream_entity_store's bucket for "two_processes"
  o.marker_grace = std::chrono::milliseconds(0);
  auto kv = jetstream::Kv::open(o).value();
  uint64_t live = 0, messages = 0, markers = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto watch = kv->watch_all().value();
    live = messages = markers = 0;
    jetstream::Kv::Change change;
    while (watch->next(change, 2000) == jetstream::Kv::Watch::Next::change) {
      if (change.deleted) {
        ++markers;
      } else {
        ++live;
        messages += change.key.rfind("m.", 0) == 0;
      }
    }
    if (markers == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(markers, 0u) << "delete markers of removed records stayed in the stream";
  EXPECT_EQ(messages, 2u * kSends);
  EXPECT_EQ(testing::bucket_stream_messages(nats_.url(), "two_processes_entities"), live);
}

// Consumed messages are removed by recovery once past the grace (20 s at
// least; shortened here), many per pass and in rounds, so that a load
// that consumes faster than one removal at a time would keep up with
// does not grow the bucket; their delete markers go after marker_grace.
TEST_F(JetStreamEntityStoreTest, ConsumedMessagesAreRemovedAndTheirMarkersDeleted) {
  a_.reset();
  b_.reset();
  a_ = open(std::chrono::milliseconds(200));
  constexpr int kMessages = 1500;
  std::vector<EntityMessage> sends;
  for (int i = 0; i < kMessages; ++i) sends.push_back(msg("e" + std::to_string(i % 6), std::to_string(i)));
  ASSERT_TRUE(a_->send_sync(std::move(sends), 1000).ok());
  int consumed = 0;
  for (int round = 0; round < 2000 && consumed < kMessages; ++round) {
    for (const EntityBatch& b : a_->claim_entities_sync(at(1000)).value()) {
      consumed += static_cast<int>(b.messages.size());
      ASSERT_TRUE(a_->complete_sync(b.address, b.lease, b.messages.back().seq, {}, 1000).value());
    }
  }
  ASSERT_EQ(consumed, kMessages);
  testing::set_entity_record_grace(*a_, std::chrono::milliseconds(0));
  JetStreamOptions o;
  o.servers = {nats_.url()};
  o.bucket = "two_processes_entities";
  o.marker_grace = std::chrono::milliseconds(0);
  auto kv = jetstream::Kv::open(o).value();
  uint64_t messages = 0, markers = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto watch = kv->watch_all().value();
    messages = markers = 0;
    jetstream::Kv::Change change;
    while (watch->next(change, 2000) == jetstream::Kv::Watch::Next::change) {
      if (change.deleted) {
        ++markers;
      } else if (change.key.rfind("m.", 0) == 0) {
        ++messages;  // other records (entities, heartbeats) stay
      }
    }
    if (messages == 0 && markers == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(messages, 0u) << "consumed messages stayed in the bucket";
  EXPECT_EQ(markers, 0u) << "their delete markers stayed in the stream";
}

TEST_F(JetStreamEntityStoreTest, ADelayedMessageFiresOnceWhicheverStoresFireIt) {
  ASSERT_TRUE(a_->send_sync({msg("t", "start")}, 1000).ok());
  auto b = a_->claim_entities_sync(at(1000)).value();
  ASSERT_EQ(b.size(), 1u);
  BatchResult r;
  for (int i = 0; i < 10; ++i) {
    EntityMessage later = msg("t", "tick" + std::to_string(i));
    later.caller = {"g/count", "t"};
    r.delayed.push_back({2000, later, ""});
  }
  ASSERT_TRUE(a_->complete_sync(b[0].address, b[0].lease, b[0].messages.back().seq, r, 1001).value());
  // b sees them in a moment; both fire, racing.
  for (int i = 0; i < 400 && b_->entity({"g/count", "t"}, 100).value()->delayed.size() < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::size_t fired = 0;
  for (int i = 0; i < 5; ++i) {
    fired += a_->fire_delayed_sync(2000, 3).value();
    fired += b_->fire_delayed_sync(2000, 3).value();
  }
  EXPECT_EQ(fired, 10u);
  std::set<std::string> delivered;
  std::size_t count = 0;
  for (int i = 0; i < 100 && count < 10; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // b's fired ones, seen by a
    std::vector<EntityBatch> batches = a_->claim_entities_sync(at(2000)).value();
    for (const EntityBatch& got : batches) {
      for (const QueuedMessage& q : got.messages) {
        delivered.insert(q.message.value);
        ++count;
      }
      ASSERT_TRUE(a_->complete_sync(got.address, got.lease, got.messages.back().seq, {}, 2000).value());
    }
  }
  EXPECT_EQ(count, 10u);
  EXPECT_EQ(delivered.size(), 10u);
}

TEST_F(JetStreamEntityStoreTest, ARuntimeStartingOnTheSharedStoreKeepsAnotherProcesssLeases) {
  EXPECT_TRUE(b_->shared());
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  ASSERT_TRUE(a_->send_sync({msg("e", "1")}, now).ok());
  EntityClaimOptions o = at(now);
  o.lease_until_ms = now + 60'000;
  auto held = a_->claim_entities_sync(o).value();
  ASSERT_EQ(held.size(), 1u);
  auto leased = [&] {
    auto v = b_->entity({"g/count", "e"}, 10).value();
    return v && v->in_flight;
  };
  for (int i = 0; i < 400 && !leased(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(leased());
  statefun::RuntimeOptions ro;
  ro.modules = statefun::ModuleConfig::parse(
                   "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: g/*\n"
                   "  urlPathTemplate: http://127.0.0.1:1/statefun\n")
                   .value();
  ro.store = b_.get();
  auto runtime = statefun::Runtime::open(std::move(ro));
  ASSERT_TRUE(runtime.ok()) << runtime.error().what();
  EXPECT_TRUE(leased());
  EXPECT_TRUE(a_->complete_sync(held[0].address, held[0].lease, held[0].messages.back().seq, {}, now).value());
}

// A process whose watcher reads a replica numbered ahead of the stream's
// leader (nats-server 2.9.10, a node of three SIGKILLed and restarted: five
// revisions ahead) has in its index the messages another process consumed
// at seqs above the consumed_seq that process wrote. Its claim must not
// deliver them again: it reads the batch's last message from the leader,
// finds it at another revision, gives the lease back and rebuilds its
// index, after which the message is consumed and the next one is delivered
// once, at the leader's seq.
TEST_F(JetStreamEntityStoreTest, AnIndexNumberedApartFromTheLeaderIsRebuiltAndDeliversNothingAgain) {
  testing::shift_entity_index_revisions(*b_, 5);
  ASSERT_TRUE(a_->send_sync({msg("e", "1")}, 1000).ok());
  auto first = a_->claim_entities_sync(at(1000)).value();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(a_->complete_sync(first[0].address, first[0].lease, first[0].messages.back().seq, {}, 1000).value());
  // b sees a's reply: consumed up to the message's seq, the message itself
  // five above it, so in b's backlog.
  auto shifted = [&] {
    auto v = b_->entity({"g/count", "e"}, 10);
    return v.ok() && v->has_value() && !(*v)->in_flight && (*v)->backlog.size() == 1;
  };
  for (int i = 0; i < 400 && !shifted(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(shifted());
  std::size_t again = 0;
  for (int round = 0; round < 50; ++round) {
    auto got = b_->claim_entities_sync(at(2000));
    if (!got.ok()) {
      EXPECT_EQ(got.error().code(), Code::unavailable) << got.error().what();
      continue;
    }
    for (const EntityBatch& batch : *got) {
      again += batch.messages.size();
      ASSERT_TRUE(b_->complete_sync(batch.address, batch.lease, batch.messages.back().seq, {}, 2000).ok());
    }
  }
  EXPECT_EQ(again, 0u) << "a consumed message delivered again from an index numbered apart from the leader";
  EXPECT_GE(testing::entity_index_rebuilds(*b_), 1u);
  auto view = b_->entity({"g/count", "e"}, 10).value();
  ASSERT_TRUE(view.has_value());
  EXPECT_TRUE(view->backlog.empty());
  // The next message: delivered once, at the seq the leader gave it.
  auto sent = a_->send_sync({msg("e", "2")}, 2000).value();
  ASSERT_EQ(sent.size(), 1u);
  std::vector<QueuedMessage> delivered;
  for (int round = 0; round < 400 && delivered.empty(); ++round) {
    if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const EntityBatch& batch : b_->claim_entities_sync(at(3000)).value()) {
      delivered.insert(delivered.end(), batch.messages.begin(), batch.messages.end());
      ASSERT_TRUE(b_->complete_sync(batch.address, batch.lease, batch.messages.back().seq, {}, 3000).value());
    }
  }
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].message.value, "2");
  EXPECT_EQ(delivered[0].seq, sent[0]);
}

std::string hex(std::string_view s);

// The key of the one inbox message in the bucket ("" when not one).
std::string only_inbox_key(const std::string& url, const std::string& bucket) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  kvStore* kv = nullptr;
  kvKeysList keys{};
  std::string out;
  int found = 0;
  if (natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK && natsConnection_JetStream(&js, nc, nullptr) == NATS_OK &&
      js_KeyValue(&kv, js, bucket.c_str()) == NATS_OK && kvStore_Keys(&keys, kv, nullptr) == NATS_OK) {
    for (int i = 0; i < keys.Count; ++i) {
      if (std::string_view(keys.Keys[i]).substr(0, 2) == "m.") {
        out = keys.Keys[i];
        ++found;
      }
    }
    kvKeysList_Destroy(&keys);
  }
  if (kv != nullptr) kvStore_Destroy(kv);
  if (js != nullptr) jsCtx_Destroy(js);
  if (nc != nullptr) natsConnection_Destroy(nc);
  return found == 1 ? out : "";
}

// A message consumed, then found again under its key at a higher seq than
// the entity consumed up to: written a second time by a create that won
// twice (nats-io/nats-server#4320 on R3 before 2.9.21), or numbered anew by
// a leader whose numbering differs (seen on 2.9.10 after a node was
// SIGKILLed and restarted). It is passed over, not delivered again; the
// next message is.
TEST_F(JetStreamEntityStoreTest, AMessageFoundAgainUnderItsKeyAboveTheConsumedSeqIsNotDeliveredAgain) {
  ASSERT_TRUE(a_->send_sync({msg("e", "1")}, 1000).ok());
  auto first = a_->claim_entities_sync(at(1000)).value();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(a_->complete_sync(first[0].address, first[0].lease, first[0].messages.back().seq, {}, 1000).value());
  // The message's record written again, as the second winner of its create
  // leaves it: the same key and value at a new revision.
  JetStreamOptions o;
  o.servers = {nats_.url()};
  o.bucket = "two_processes_entities";
  auto kv = jetstream::Kv::open(o).value();
  const std::string key = only_inbox_key(nats_.url(), o.bucket);
  ASSERT_FALSE(key.empty());
  auto there = kv->get(key).value();
  ASSERT_TRUE(there.has_value());
  ASSERT_EQ(there->revision, first[0].messages[0].seq);
  ASSERT_TRUE(kv->update(key, there->value, there->revision).value().has_value());
  auto found_again = [&] {
    auto v = a_->entity({"g/count", "e"}, 10).value();
    return v.has_value() && !v->backlog.empty();
  };
  for (int i = 0; i < 400 && !found_again(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(found_again());  // above consumed_seq now
  std::size_t again = 0;
  for (int round = 0; round < 20; ++round) {
    for (const EntityBatch& b : a_->claim_entities_sync(at(2000)).value()) {
      again += b.messages.size();
      ASSERT_TRUE(a_->complete_sync(b.address, b.lease, b.messages.back().seq, {}, 2000).value());
    }
  }
  EXPECT_EQ(again, 0u) << "a consumed message delivered again";
  auto view = a_->entity({"g/count", "e"}, 10).value();
  ASSERT_TRUE(view.has_value());
  EXPECT_TRUE(view->backlog.empty());
  ASSERT_TRUE(a_->send_sync({msg("e", "2")}, 3000).ok());
  std::vector<std::string> delivered;
  for (int round = 0; round < 100 && delivered.empty(); ++round) {
    for (const EntityBatch& b : a_->claim_entities_sync(at(3000)).value()) {
      for (const QueuedMessage& q : b.messages) delivered.push_back(q.message.value);
      ASSERT_TRUE(a_->complete_sync(b.address, b.lease, b.messages.back().seq, {}, 3000).value());
    }
  }
  EXPECT_EQ(delivered, std::vector<std::string>{"2"});
}

std::string hex(std::string_view s) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

TEST_F(JetStreamEntityStoreTest, EffectsADeadProcessLeftAreAppliedAtStartOnceHoweverOften) {
  a_.reset();
  b_.reset();
  // A reply recorded (state, inbox consumed) with its effects not yet
  // applied, as a process that died between the two steps leaves it.
  JetStreamOptions o;
  o.servers = {nats_.url()};
  o.bucket = "two_processes_entities";
  auto kv = jetstream::Kv::open(o).value();
  namespace pb = ::dispatch::jetstream::v1;
  pb::Entity e;
  e.mutable_address()->set_type("g/count");
  e.mutable_address()->set_id("dead");
  e.set_consumed_seq(1);
  pb::EntityEffects* fx = e.mutable_effects();
  fx->set_id(0x1234);
  fx->set_written_at_ms(1);
  fx->set_now_ms(1000);
  pb::EntityMsg* out = fx->add_outgoing();
  out->mutable_target()->set_type("g/count");
  out->mutable_target()->set_id("next");
  out->set_type_name("io.statefun.types/string");
  out->set_has_value(true);
  out->set_value("forwarded");
  pb::NewEgress* g = fx->add_egress();
  g->set_egress("e/out");
  g->set_type_name("io.statefun.types/string");
  g->set_value("record");
  const std::string key = "e.t" + hex("g/count") + ".i" + hex("dead");
  std::string bytes;
  e.SerializeToString(&bytes);
  ASSERT_TRUE(kv->create(key, bytes).value().has_value());
  for (int start = 0; start < 2; ++start) {
    if (start == 1) {
      // Applied, then the same effects found again (a second process's
      // recovery that read the record before they were cleared).
      auto now = kv->get(key).value();
      ASSERT_TRUE(now.has_value());
      ASSERT_TRUE(kv->update(key, bytes, now->revision).value().has_value());
    }
    auto store = open();
    ASSERT_NE(store, nullptr);
    auto egress = store->read_egress("e/out", 0, 10).value();
    ASSERT_EQ(egress.size(), 1u) << "start " << start;
    EXPECT_EQ(egress[0].value, "record");
    auto next = store->entity({"g/count", "next"}, 10).value();
    ASSERT_TRUE(next.has_value());
    ASSERT_EQ(next->backlog.size(), 1u) << "start " << start;
    EXPECT_EQ(next->backlog[0].message.value, "forwarded");
    auto cleared = kv->get(key).value();
    ASSERT_TRUE(cleared.has_value());
    pb::Entity after;
    ASSERT_TRUE(after.ParseFromString(cleared->value));
    EXPECT_FALSE(after.has_effects());
  }
}

}  // namespace
}  // namespace dispatch::scheduler
