// The SQLite EntityStore's entity-keyed inbox (schema step 7): message seqs
// come from sf_sequences and are never handed out twice, not after the inbox
// emptied and the store reopened, not across the migration from the
// rowid inbox of step 5; a file of step 6 keeps its queued messages, their
// ids and their order. Names as ids (step 8): a file of step 7 keeps its
// messages, entities and state values, names and all. Backend-neutral
// behaviour is in entity_store_test.cc.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <string>
#include <vector>

#include "dispatch/scheduler/entity_store.h"
#include "dispatch/sqlite/sqlite_store.h"

namespace dispatch::scheduler {
namespace {

class EntityInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "inbox_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
            ".db";
    remove_files();
    open();
  }
  void TearDown() override {
    store_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((path_ + suffix).c_str());
  }
  EntityStore& open() {
    store_.reset();
    SqliteOptions o;
    o.path = path_;
    o.fsync_commits = false;
    auto s = open_sqlite_store(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
    store_ = std::move(s).value();
    return es();
  }
  EntityStore& es() { return *store_->entities(); }

  static EntityMessage msg(std::string id, std::string value) {
    EntityMessage m;
    m.target = {"c/count", std::move(id)};
    m.type_name = "io.statefun.types/string";
    m.value = std::move(value);
    return m;
  }
  std::vector<EntityBatch> claim(int64_t now = 1000) {
    EntityClaimOptions o;
    o.now_ms = now;
    o.lease_until_ms = now + 60'000;
    auto b = es().claim_entities_sync(o);
    EXPECT_TRUE(b.ok()) << b.error().what();
    return b.ok() ? std::move(*b) : std::vector<EntityBatch>{};
  }
  // Runs SQL on the file with a connection of its own (the store closed).
  void raw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // The store closed, its entity tables as step 7 left them (names as
  // text, no sf_names), empty, calls without step 9's restarts, and the
  // file at version 7.
  void back_to_step_seven() {
    store_.reset();
    raw("DROP TABLE sf_inbox; DROP TABLE sf_entities; DROP TABLE sf_state; DROP TABLE sf_names; "
        "CREATE TABLE sf_inbox (fn_type TEXT NOT NULL, entity_id TEXT NOT NULL, seq INTEGER NOT NULL, "
        "caller_type TEXT NOT NULL DEFAULT '', caller_id TEXT NOT NULL DEFAULT '', type_name TEXT NOT NULL, "
        "has_value INTEGER NOT NULL, value BLOB NOT NULL, created_at INTEGER NOT NULL, "
        "PRIMARY KEY (fn_type, entity_id, seq)) WITHOUT ROWID; "
        "CREATE TABLE sf_entities (fn_type TEXT NOT NULL, entity_id TEXT NOT NULL, status INTEGER NOT NULL, "
        "next_attempt_at INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
        "lease INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0, "
        "last_error TEXT NOT NULL DEFAULT '', PRIMARY KEY (fn_type, entity_id)) WITHOUT ROWID; "
        "CREATE INDEX sf_entities_ready ON sf_entities(fn_type, next_attempt_at) WHERE status = 1; "
        "CREATE INDEX sf_entities_leased ON sf_entities(lease_until) WHERE status = 2; "
        "CREATE TABLE sf_state (fn_type TEXT NOT NULL, entity_id TEXT NOT NULL, name TEXT NOT NULL, "
        "type_name TEXT NOT NULL, value BLOB NOT NULL, expires_at INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (fn_type, entity_id, name)) WITHOUT ROWID; "
        "CREATE INDEX sf_state_expiry ON sf_state(expires_at) WHERE expires_at > 0; "
        "ALTER TABLE calls DROP COLUMN restarts; "
        "PRAGMA user_version = 7;");
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(EntityInboxTest, SeqsIncreaseWithinASendAndAcrossSendsRepliesAndRedrives) {
  auto first = es().send_sync({msg("a", "1"), msg("b", "2"), msg("a", "3")}, 1000).value();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_LT(first[0], first[1]);
  EXPECT_LT(first[1], first[2]);
  auto batches = claim();
  ASSERT_EQ(batches.size(), 2u);
  // A reply's outgoing message takes the next seq too.
  BatchResult r;
  r.outgoing.push_back(msg("c", "from a"));
  const EntityBatch& a = batches[0].address.id == "a" ? batches[0] : batches[1];
  ASSERT_TRUE(es().complete_sync(a.address, a.lease, a.messages.back().seq, r, 1001).value());
  auto view = es().entity({"c/count", "c"}, 10).value();
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->backlog.size(), 1u);
  EXPECT_EQ(view->backlog[0].seq, first[2] + 1);
  const EntityBatch& b = batches[0].address.id == "b" ? batches[0] : batches[1];
  ASSERT_TRUE(es().dead_letter_sync(b.address, b.lease, b.messages.back().seq, "test", 1002).value());
  auto dead = es().dead_letters(0, 10).value();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message.seq, first[1]);
  EXPECT_EQ(es().redrive_sync(dead[0].seq, 1003).value(), first[2] + 2);
  EXPECT_EQ(es().send_sync({msg("d", "4")}, 1004).value().front(), first[2] + 3);
}

TEST_F(EntityInboxTest, ASeqIsNeverHandedOutTwiceAfterTheInboxEmptiedAndTheStoreReopened) {
  const uint64_t last = es().send_sync({msg("a", "1"), msg("a", "2")}, 1000).value().back();
  auto batches = claim();
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_TRUE(es().complete_sync(batches[0].address, batches[0].lease, last, {}, 1001).value());
  ASSERT_TRUE(es().entity({"c/count", "a"}, 10).value()->backlog.empty());
  open();
  EXPECT_EQ(es().send_sync({msg("a", "3")}, 1002).value().front(), last + 1);
}

TEST_F(EntityInboxTest, AFileOfStepSixKeepsItsQueuedMessagesAndItsSeqsMoveOnFromItsHighWaterMark) {
  back_to_step_seven();
  // The inbox as step 5 made it, with two messages waiting for "a" and a
  // high-water mark (sqlite_sequence) above them: seq 9 went already.
  raw("DROP TABLE sf_inbox; DROP TABLE sf_sequences; "
      "CREATE TABLE sf_inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, fn_type TEXT NOT NULL, "
      "entity_id TEXT NOT NULL, caller_type TEXT NOT NULL DEFAULT '', caller_id TEXT NOT NULL DEFAULT '', "
      "type_name TEXT NOT NULL, has_value INTEGER NOT NULL, value BLOB NOT NULL, created_at INTEGER NOT NULL); "
      "CREATE INDEX sf_inbox_entity ON sf_inbox(fn_type, entity_id, seq); "
      "INSERT INTO sf_inbox (seq, fn_type, entity_id, type_name, has_value, value, created_at) VALUES "
      "(7, 'c/count', 'a', 'io.statefun.types/string', 1, 'x', 900), "
      "(4, 'c/count', 'a', 'io.statefun.types/string', 1, 'w', 900); "
      "UPDATE sqlite_sequence SET seq = 9 WHERE name = 'sf_inbox'; "
      "INSERT INTO sf_entities (fn_type, entity_id, status, next_attempt_at) VALUES ('c/count', 'a', 1, 900); "
      "PRAGMA user_version = 6;");
  open();
  auto batches = claim();
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].messages.size(), 2u);
  EXPECT_EQ(batches[0].messages[0].seq, 4u);
  EXPECT_EQ(batches[0].messages[0].message.value, "w");
  EXPECT_EQ(batches[0].messages[1].seq, 7u);
  EXPECT_EQ(batches[0].messages[1].created_at_ms, 900);
  EXPECT_EQ(es().send_sync({msg("b", "new")}, 1000).value().front(), 10u);
}

TEST_F(EntityInboxTest, AFileOfStepSevenKeepsItsMessagesEntitiesAndStateWithTheirNames) {
  back_to_step_seven();
  // Two function types; "a" has two messages (one from a caller, one
  // without a value) and two values (one expiring later); "b" one message;
  // "quiet" is idle with a value; "busy" is leased and its lease lapses at
  // 950. The last seq handed out was 5.
  raw("INSERT INTO sf_inbox VALUES "
      "('c/count', 'a', 3, 'c/other', 'x', 'io.statefun.types/string', 1, 'hi', 900), "
      "('c/count', 'a', 5, '', '', 'io.statefun.types/string', 0, '', 901), "
      "('c/other', 'b', 4, '', '', 'example/Ping', 1, 'ping', 902), "
      "('c/count', 'busy', 2, '', '', 'io.statefun.types/string', 1, 'held', 800); "
      "INSERT INTO sf_entities (fn_type, entity_id, status, next_attempt_at, attempts, lease, lease_until, "
      "last_error) VALUES ('c/count', 'a', 1, 900, 0, 0, 0, ''), ('c/other', 'b', 1, 902, 0, 0, 0, ''), "
      "('c/count', 'quiet', 0, 0, 0, 0, 0, ''), ('c/count', 'busy', 2, 0, 1, 77, 950, 'timeout'); "
      "INSERT INTO sf_state VALUES ('c/count', 'a', 'count', 'io.statefun.types/int', x'08', 0), "
      "('c/count', 'a', 'seen', 'io.statefun.types/string', 'old', 5000), "
      "('c/count', 'quiet', 'count', 'io.statefun.types/int', x'02', 0); "
      "UPDATE sf_sequences SET seq = 5 WHERE name = 'sf_inbox';");
  open();
  // The reader sees them by name.
  auto quiet = es().entity({"c/count", "quiet"}, 10).value();
  ASSERT_TRUE(quiet.has_value());
  EXPECT_FALSE(quiet->in_flight);
  ASSERT_EQ(quiet->state.size(), 1u);
  EXPECT_EQ(quiet->state[0].name, "count");
  EXPECT_EQ(quiet->state[0].type_name, "io.statefun.types/int");
  EXPECT_EQ(quiet->state[0].value, std::string("\x02"));
  auto busy = es().entity({"c/count", "busy"}, 10).value();
  ASSERT_TRUE(busy.has_value());
  EXPECT_TRUE(busy->in_flight);
  EXPECT_EQ(busy->last_error, "timeout");
  ASSERT_EQ(busy->backlog.size(), 1u);
  EXPECT_EQ(busy->backlog[0].message.target.type, "c/count");
  EXPECT_EQ(busy->backlog[0].message.value, "held");
  // The ready entities are claimed with their messages and values.
  auto batches = claim(1000);
  ASSERT_EQ(batches.size(), 2u);
  const EntityBatch& a = batches[0].address.id == "a" ? batches[0] : batches[1];
  const EntityBatch& b = batches[0].address.id == "b" ? batches[0] : batches[1];
  EXPECT_EQ(a.address.type, "c/count");
  ASSERT_EQ(a.messages.size(), 2u);
  EXPECT_EQ(a.messages[0].seq, 3u);
  EXPECT_EQ(a.messages[0].message.caller.type, "c/other");
  EXPECT_EQ(a.messages[0].message.caller.id, "x");
  EXPECT_EQ(a.messages[0].message.type_name, "io.statefun.types/string");
  EXPECT_TRUE(a.messages[0].message.has_value);
  EXPECT_EQ(a.messages[0].message.value, "hi");
  EXPECT_EQ(a.messages[0].created_at_ms, 900);
  EXPECT_EQ(a.messages[1].seq, 5u);
  EXPECT_EQ(a.messages[1].message.caller.type, "");
  EXPECT_FALSE(a.messages[1].message.has_value);
  ASSERT_EQ(a.state.size(), 2u);
  const StateValue& count = a.state[0].name == "count" ? a.state[0] : a.state[1];
  const StateValue& seen = a.state[0].name == "seen" ? a.state[0] : a.state[1];
  EXPECT_EQ(count.type_name, "io.statefun.types/int");
  EXPECT_EQ(count.value, std::string("\x08"));
  EXPECT_EQ(seen.value, "old");
  EXPECT_EQ(seen.expires_at_ms, 5000);
  EXPECT_EQ(b.address.type, "c/other");
  ASSERT_EQ(b.messages.size(), 1u);
  EXPECT_EQ(b.messages[0].seq, 4u);
  EXPECT_EQ(b.messages[0].message.type_name, "example/Ping");
  // A reply applies to the migrated rows: a value replaced, one removed.
  BatchResult r;
  r.mutations.push_back({"count", false, "io.statefun.types/int", std::string("\x0a"), 0});
  r.mutations.push_back({"seen", true, "", "", 0});
  ASSERT_TRUE(es().complete_sync(a.address, a.lease, 5, r, 1001).value());
  auto after = es().entity({"c/count", "a"}, 10).value();
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->backlog.empty());
  ASSERT_EQ(after->state.size(), 1u);
  EXPECT_EQ(after->state[0].name, "count");
  EXPECT_EQ(after->state[0].value, std::string("\x0a"));
  // A dead letter keeps the migrated message's names.
  ASSERT_TRUE(es().dead_letter_sync(b.address, b.lease, 4, "test", 1002).value());
  auto dead = es().dead_letters(0, 10).value();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message.message.target.type, "c/other");
  EXPECT_EQ(dead[0].message.message.type_name, "example/Ping");
  EXPECT_EQ(dead[0].message.message.value, "ping");
  // The leased entity's lease lapses and its message is delivered.
  EXPECT_EQ(es().release_entity_leases_sync(1003, false).value(), 1u);
  auto again = claim(1004);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].address.id, "busy");
  ASSERT_EQ(again[0].messages.size(), 1u);
  EXPECT_EQ(again[0].messages[0].seq, 2u);
  // Seqs move on from the file's high-water mark.
  EXPECT_EQ(es().send_sync({msg("a", "new")}, 1005).value().front(), 6u);
}

TEST_F(EntityInboxTest, NamesAWriteAddedBeforeItFailedAreAddedAgainNotTakenFromMemory) {
  es().send_sync({msg("a", "1"), msg("b", "2")}, 1000).value();
  auto batches = claim();
  ASSERT_EQ(batches.size(), 2u);
  const EntityBatch& a = batches[0].address.id == "a" ? batches[0] : batches[1];
  const EntityBatch& b = batches[0].address.id == "b" ? batches[0] : batches[1];
  auto delayed = [](std::string token) {
    NewDelayedMessage d;
    d.due_at_ms = 1'000'000;
    d.message = msg("c", "later");
    d.message.caller = {"c/count", "a"};
    d.cancellation_token = std::move(token);
    return d;
  };
  BatchResult first;
  first.delayed.push_back(delayed("t"));
  ASSERT_TRUE(es().complete_sync(a.address, a.lease, a.messages.back().seq, first, 1001).value());
  // b's reply adds two names, then fails on the token "a" holds already:
  // the names go with the rest of the reply.
  BatchResult failing;
  failing.mutations.push_back({"fresh", false, "new/type", "v1", 0});
  failing.delayed.push_back(delayed("t"));
  auto failed = es().complete_sync(b.address, b.lease, b.messages.back().seq, failing, 1002);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), Code::failed_precondition);
  // The same names again, and others that would take the ids they had.
  BatchResult ok;
  ok.mutations.push_back({"other", false, "other/type", "v2", 0});
  ok.mutations.push_back({"fresh", false, "new/type", "v1", 0});
  ASSERT_TRUE(es().complete_sync(b.address, b.lease, b.messages.back().seq, ok, 1003).value());
  auto view = es().entity({"c/count", "b"}, 10).value();
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->state.size(), 2u);
  EXPECT_EQ(view->state[0].name, "fresh");
  EXPECT_EQ(view->state[0].type_name, "new/type");
  EXPECT_EQ(view->state[0].value, "v1");
  EXPECT_EQ(view->state[1].name, "other");
  EXPECT_EQ(view->state[1].type_name, "other/type");
  EXPECT_EQ(view->state[1].value, "v2");
}

TEST_F(EntityInboxTest, MoreNamesThanTheWriterKeepsInMemoryAllComeBackAsSent) {
  // Typenames are the clients' to choose: 5,000 distinct ones (more than
  // the writer's cache holds), sent to 50 entities.
  constexpr int kNames = 5000;
  std::vector<EntityMessage> messages;
  for (int i = 0; i < kNames; ++i) {
    EntityMessage m = msg("e" + std::to_string(i % 50), std::to_string(i));
    m.type_name = "example/T" + std::to_string(i);
    messages.push_back(std::move(m));
  }
  ASSERT_TRUE(es().send_sync(std::move(messages), 1000).ok());
  int seen = 0;
  for (int round = 0; round < 3 && seen < kNames; ++round) {
    EntityClaimOptions o;
    o.now_ms = 1000 + round;
    o.lease_until_ms = o.now_ms + 60'000;
    o.max_messages = kNames;
    auto batches = es().claim_entities_sync(o).value();
    for (const EntityBatch& b : batches) {
      for (const QueuedMessage& q : b.messages) {
        EXPECT_EQ(q.message.type_name, "example/T" + q.message.value);
        ++seen;
      }
      ASSERT_TRUE(es().complete_sync(b.address, b.lease, b.messages.back().seq, {}, o.now_ms).value());
    }
  }
  EXPECT_EQ(seen, kNames);
}

}  // namespace
}  // namespace dispatch::scheduler
