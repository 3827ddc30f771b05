// The SQLite EntityStore's entity-keyed inbox (schema step 7): message seqs
// come from sf_sequences and are never handed out twice, not after the inbox
// emptied and the store reopened, not across the migration from the
// rowid inbox of step 5; a file of step 6 keeps its queued messages, their
// ids and their order. Backend-neutral behaviour is in entity_store_test.cc.
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
  store_.reset();
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

}  // namespace
}  // namespace dispatch::scheduler
