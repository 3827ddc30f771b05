// The SQLite EntityStore's complete_and_claim(): a reply applied and its
// entity's next batch claimed in one transaction (the entity stays leased),
// the entity idle when nothing waits, an entity of the same type that waits
// going first, a stale lease changing nothing, and next.max_messages == 0
// behaving as complete(). Backend-neutral behaviour
// is in entity_store_test.cc.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "dispatch/scheduler/entity_store.h"
#include "dispatch/sqlite/sqlite_store.h"

namespace dispatch::scheduler {
namespace {

class ClaimNextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "claim_next_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    remove_files();
    SqliteOptions o;
    o.path = path_;
    o.fsync_commits = false;
    auto s = open_sqlite_store(o);
    ASSERT_TRUE(s.ok()) << s.error().what();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((path_ + suffix).c_str());
  }
  EntityStore& es() { return *store_->entities(); }

  uint64_t send(std::string id, std::string value, int64_t now = 1000) {
    EntityMessage m;
    m.target = {"c/count", std::move(id)};
    m.type_name = "io.statefun.types/string";
    m.value = std::move(value);
    return es().send_sync({std::move(m)}, now).value().front();
  }
  std::vector<EntityBatch> claim(int64_t now = 1000) {
    EntityClaimOptions o;
    o.now_ms = now;
    o.lease_until_ms = now + 60'000;
    return es().claim_entities_sync(o).value();
  }
  static EntityClaimOptions next(std::size_t max_messages, int64_t now = 1001) {
    EntityClaimOptions o;
    o.now_ms = now;
    o.max_messages = max_messages;
    o.lease_until_ms = now + 60'000;
    return o;
  }
  static BatchResult count(std::string value) {
    BatchResult r;
    r.mutations.push_back({"count", false, "io.statefun.types/int", std::move(value), 0});
    return r;
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(ClaimNextTest, MessagesThatArrivedMeanwhileComeBackAsTheNextBatchWithTheAppliedState) {
  send("a", "1");
  auto first = claim();
  ASSERT_EQ(first.size(), 1u);
  const uint64_t s2 = send("a", "2");
  const uint64_t s3 = send("a", "3");
  const uint64_t s4 = send("a", "4");
  auto c = es().complete_and_claim_sync(first[0].address, first[0].lease, first[0].messages.back().seq,
                                        count("x"), 1001, next(2))
               .value();
  EXPECT_TRUE(c.applied);
  ASSERT_TRUE(c.next.has_value());
  ASSERT_EQ(c.next->messages.size(), 2u);  // up to next.max_messages
  EXPECT_EQ(c.next->messages[0].seq, s2);
  EXPECT_EQ(c.next->messages[1].seq, s3);
  ASSERT_EQ(c.next->state.size(), 1u);  // the reply's write, in the same transaction
  EXPECT_EQ(c.next->state[0].value, "x");
  EXPECT_NE(c.next->lease, first[0].lease);
  // Still leased: no claim hands it out, and the old lease is gone.
  EXPECT_TRUE(claim(1002).empty());
  auto view = es().entity({"c/count", "a"}, 10).value();
  ASSERT_TRUE(view.has_value());
  EXPECT_TRUE(view->in_flight);
  EXPECT_FALSE(es().complete_sync(first[0].address, first[0].lease, s3, {}, 1002).value());
  // The next batch completes under its own lease; s4 is then the next one.
  auto c2 = es().complete_and_claim_sync(c.next->address, c.next->lease, s3, count("y"), 1003, next(10)).value();
  EXPECT_TRUE(c2.applied);
  ASSERT_TRUE(c2.next.has_value());
  ASSERT_EQ(c2.next->messages.size(), 1u);
  EXPECT_EQ(c2.next->messages[0].seq, s4);
  EXPECT_EQ(c2.next->state[0].value, "y");
}

TEST_F(ClaimNextTest, AnEntityWithNothingWaitingGoesIdleAndASendMakesItReadyAgain) {
  send("a", "1");
  auto first = claim();
  ASSERT_EQ(first.size(), 1u);
  auto c = es().complete_and_claim_sync(first[0].address, first[0].lease, first[0].messages.back().seq, {},
                                        1001, next(10))
               .value();
  EXPECT_TRUE(c.applied);
  EXPECT_FALSE(c.next.has_value());
  auto view = es().entity({"c/count", "a"}, 10).value();
  ASSERT_TRUE(view.has_value());
  EXPECT_FALSE(view->in_flight);
  EXPECT_TRUE(view->backlog.empty());
  EXPECT_TRUE(claim(1002).empty());
  send("a", "2", 1003);
  auto again = claim(1003);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].messages.size(), 1u);
}

TEST_F(ClaimNextTest, AnotherEntityOfTheTypeThatWaitsGoesFirst) {
  send("a", "1");
  auto first = claim();
  ASSERT_EQ(first.size(), 1u);
  send("a", "2", 1001);
  send("b", "1", 1001);  // ready and due, not claimed yet
  auto c = es().complete_and_claim_sync(first[0].address, first[0].lease, first[0].messages.back().seq, {},
                                        1002, next(10, 1002))
               .value();
  EXPECT_TRUE(c.applied);
  EXPECT_FALSE(c.next.has_value());
  // Both ready now; the claim hands out b (waiting since 1001) and a.
  auto again = claim(1003);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].address.id, "b");
  EXPECT_EQ(again[1].address.id, "a");
}

TEST_F(ClaimNextTest, AStaleLeaseChangesNothingAndClaimsNothing) {
  send("a", "1");
  auto first = claim();
  ASSERT_EQ(first.size(), 1u);
  send("a", "2");
  auto c = es().complete_and_claim_sync(first[0].address, first[0].lease + 2, first[0].messages.back().seq,
                                        count("x"), 1001, next(10))
               .value();
  EXPECT_FALSE(c.applied);
  EXPECT_FALSE(c.next.has_value());
  auto view = es().entity({"c/count", "a"}, 10).value();
  ASSERT_TRUE(view.has_value());
  EXPECT_TRUE(view->state.empty());
  EXPECT_EQ(view->backlog.size(), 2u);
}

TEST_F(ClaimNextTest, NoRoomForANextBatchLeavesTheEntityReadyAsCompleteDoes) {
  send("a", "1");
  auto first = claim();
  ASSERT_EQ(first.size(), 1u);
  send("a", "2");
  auto c = es().complete_and_claim_sync(first[0].address, first[0].lease, first[0].messages.back().seq, {},
                                        1001, next(0))
               .value();
  EXPECT_TRUE(c.applied);
  EXPECT_FALSE(c.next.has_value());
  auto again = claim(1002);
  ASSERT_EQ(again.size(), 1u);
  ASSERT_EQ(again[0].messages.size(), 1u);
  EXPECT_EQ(again[0].messages[0].message.value, "2");
}

}  // namespace
}  // namespace dispatch::scheduler
