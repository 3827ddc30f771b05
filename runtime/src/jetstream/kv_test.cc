// Kv, the store's one way to a bucket: compare-and-set writes tell a lost
// race (nullopt) from a failure (an error) by the server's answer, whatever
// the thread did before; a deleted or purged key can be created again.
#include "jetstream/kv.h"

#include <gtest/gtest.h>

#include <chrono>

#include "jetstream/testing/nats_server.h"

namespace dispatch::scheduler::jetstream {
namespace {

using testing::NatsServer;

class KvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
    ASSERT_TRUE(nats_.start()) << nats_.failure();
    JetStreamOptions o;
    o.servers = {nats_.url()};
    o.bucket = "kv";
    o.timeout = std::chrono::milliseconds(1000);
    auto kv = Kv::open(o);
    ASSERT_TRUE(kv.ok()) << kv.error().what();
    kv_ = std::move(kv).value();
  }
  NatsServer nats_;
  std::unique_ptr<Kv> kv_;
};

TEST_F(KvTest, CreateWritesOnceAndUpdateNeedsTheLatestRevision) {
  auto first = kv_->create("k", "one");
  ASSERT_TRUE(first.ok()) << first.error().what();
  ASSERT_TRUE(first->has_value());
  auto again = kv_->create("k", "two");
  ASSERT_TRUE(again.ok()) << again.error().what();
  EXPECT_FALSE(again->has_value()) << "a second create of one key was written";

  auto updated = kv_->update("k", "three", **first);
  ASSERT_TRUE(updated.ok()) << updated.error().what();
  ASSERT_TRUE(updated->has_value());
  EXPECT_GT(**updated, **first);
  auto stale = kv_->update("k", "four", **first);
  ASSERT_TRUE(stale.ok()) << stale.error().what();
  EXPECT_FALSE(stale->has_value()) << "an update at an old revision was written";
  EXPECT_EQ(kv_->get("k").value()->value, "three");
}

TEST_F(KvTest, APurgedKeyCanBeCreatedAgain) {
  ASSERT_TRUE(kv_->create("k", "one").value().has_value());
  ASSERT_TRUE(kv_->purge("k").ok());
  EXPECT_FALSE(kv_->get("k").value().has_value());
  auto again = kv_->create("k", "two");
  ASSERT_TRUE(again.ok()) << again.error().what();
  ASSERT_TRUE(again->has_value()) << "the purge marker was taken for a value";
  EXPECT_EQ(kv_->get("k").value()->value, "two");
  // And a create over the new value is refused again.
  EXPECT_FALSE(kv_->create("k", "three").value().has_value());
}

// nats.c keeps a thread's last error text across calls, and a request to
// servers that are away can fail without setting one: the lost race's
// "wrong last sequence" must not be read as this failure's cause (it made
// dispatchd answer "call ID is taken", internal, while NATS was away).
TEST_F(KvTest, AFailureAfterALostRaceOnTheSameThreadIsAFailure) {
  ASSERT_TRUE(kv_->create("k", "one").value().has_value());
  ASSERT_FALSE(kv_->create("k", "two").value().has_value());
  auto rev = kv_->get("k").value()->revision;
  ASSERT_FALSE(kv_->update("k", "x", rev + 7).value().has_value());
  nats_.stop();
  auto created = kv_->create("other", "v");
  ASSERT_FALSE(created.ok()) << "a create answered " << (created->has_value() ? "written" : "taken")
                             << " with the server away";
  EXPECT_EQ(created.error().code(), Code::unavailable) << created.error().what();
  auto updated = kv_->update("k", "y", rev);
  ASSERT_FALSE(updated.ok()) << "an update answered " << (updated->has_value() ? "written" : "lost race")
                             << " with the server away";
  EXPECT_EQ(updated.error().code(), Code::unavailable) << updated.error().what();
}

}  // namespace
}  // namespace dispatch::scheduler::jetstream
