// The SQLite store: transitions guarded by state and lease, idempotency keys,
// fair claims, group commit, durability across reopen, migrations,
// time-ordered IDs, every write reported once at close.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "store_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    remove_files();
  }
  void TearDown() override {
    store_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((path_ + suffix).c_str());
  }
  Store& open() {
    store_.reset();
    SqliteOptions o;
    o.path = path_;
    auto s = open_sqlite_store(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
    store_ = std::move(s).value();
    return *store_;
  }
  static NewCall call(std::string function, std::string key = "") {
    NewCall c;
    c.function = std::move(function);
    c.endpoint = "http://127.0.0.1:1";
    c.input_type_url = "type.googleapis.com/t.R";
    c.input = std::string("\x00\x01", 2);
    c.idempotency_key = std::move(key);
    return c;
  }
  std::string enqueue(NewCall c, int64_t now = 1000) {
    std::vector<NewCall> v;
    v.push_back(std::move(c));
    auto ids = store_->enqueue_sync(std::move(v), now);
    EXPECT_TRUE(ids.ok());
    return ids.value().at(0);
  }
  static ClaimOptions at(int64_t now, std::size_t max = 64) {
    ClaimOptions o;
    o.now_ms = now;
    o.max = max;
    o.lease_until_ms = now + 60000;
    return o;
  }
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, EnqueueThenGet) {
  open();
  std::string id = enqueue(call("shop.add"));
  EXPECT_EQ(id.size(), 32u);
  auto r = store_->get(id);
  ASSERT_TRUE(r.ok() && r->has_value());
  const CallRecord& c = **r;
  EXPECT_EQ(c.function, "shop.add");
  EXPECT_EQ(c.state, CallState::pending);
  EXPECT_EQ(c.input, std::string("\x00\x01", 2));
  EXPECT_EQ(c.root_id, id);  // a call without a root is its own root
  EXPECT_EQ(c.created_at_ms, 1000);
  EXPECT_FALSE(store_->get("nope").value().has_value());
}

TEST_F(StoreTest, IdsAreTimeOrdered) {
  // Creation ms (12 hex digits) then 80 random bits: inserts append to the
  // ID index instead of dirtying a random page of it per call.
  open();
  auto first = store_->enqueue_sync({call("f"), call("f")}, 1000).value();
  auto later = store_->enqueue_sync({call("f")}, 0x123456789ab).value();
  EXPECT_EQ(first[0].substr(0, 12), "0000000003e8");
  EXPECT_EQ(first[1].substr(0, 12), "0000000003e8");
  EXPECT_NE(first[0], first[1]);
  EXPECT_EQ(later[0].substr(0, 12), "0123456789ab");
  EXPECT_LT(first[0], later[0]);
  for (const auto& id : {first[0], first[1], later[0]}) {
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
}

TEST_F(StoreTest, ClosingReportsEveryQueuedWriteOnce) {
  // Enqueues still waiting for the log's sync when the store closes are
  // synced and reported, once each, and are there after reopening.
  open();
  constexpr int kCalls = 300;
  std::mutex mu;
  std::map<int, int> reports;
  std::vector<std::string> acknowledged;
  for (int i = 0; i < kCalls; ++i) {
    store_->enqueue({call("f")}, 1000 + i, [&, i](Result<std::vector<std::string>> ids) {
      std::lock_guard<std::mutex> lock(mu);
      reports[i]++;
      if (ids.ok()) acknowledged.push_back(ids->at(0));
    });
  }
  store_.reset();
  ASSERT_EQ(reports.size(), static_cast<std::size_t>(kCalls));
  for (auto& [i, n] : reports) EXPECT_EQ(n, 1) << "enqueue " << i;
  EXPECT_EQ(acknowledged.size(), static_cast<std::size_t>(kCalls));
  open();
  for (const auto& id : acknowledged) EXPECT_TRUE(store_->get(id).value().has_value()) << id;
}

TEST_F(StoreTest, IdempotencyKeyReturnsTheFirstCall) {
  open();
  std::string a = enqueue(call("f", "order-1"));
  std::string b = enqueue(call("f", "order-1"));
  EXPECT_EQ(a, b);
  std::vector<NewCall> batch{call("f", "order-2"), call("f", "order-2"), call("f")};
  auto ids = store_->enqueue_sync(std::move(batch), 2000).value();
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_NE(ids[0], ids[2]);
  EXPECT_EQ(store_->count_by_state().value()[1], 3);  // order-1, order-2, and one without key
}

TEST_F(StoreTest, AttemptEndsExactlyOnceUnderItsLease) {
  open();
  std::string id = enqueue(call("f"));
  auto claimed = store_->claim_sync(at(1000)).value();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].state, CallState::running);
  EXPECT_EQ(claimed[0].attempts, 1u);
  EXPECT_TRUE(store_->claim_sync(at(1000)).value().empty());  // leased already
  Outcome done;
  done.state = CallState::completed;
  done.status = 1;
  done.output = "out";
  EXPECT_FALSE(store_->finish_sync(id, claimed[0].lease + 1, done, 1100).value());  // wrong lease
  EXPECT_TRUE(store_->finish_sync(id, claimed[0].lease, done, 1100).value());
  EXPECT_FALSE(store_->finish_sync(id, claimed[0].lease, done, 1200).value());  // only once
  auto r = store_->get(id).value().value();
  EXPECT_EQ(r.state, CallState::completed);
  EXPECT_EQ(r.output, "out");
  EXPECT_EQ(r.updated_at_ms, 1100);
}

TEST_F(StoreTest, RetryOutcomeWaitsForItsTime) {
  open();
  std::string id = enqueue(call("f"));
  auto c = store_->claim_sync(at(1000)).value().at(0);
  Outcome again;
  again.state = CallState::pending;
  again.status = 6;
  again.error_message = "try later";
  again.next_attempt_at_ms = 5000;
  ASSERT_TRUE(store_->finish_sync(id, c.lease, again, 1000).value());
  EXPECT_EQ(store_->next_due_ms().value().value(), 5000);
  EXPECT_TRUE(store_->claim_sync(at(4999)).value().empty());
  auto second = store_->claim_sync(at(5000)).value();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempts, 2u);
  EXPECT_EQ(second[0].error_message, "try later");
}

TEST_F(StoreTest, CancelAndRetryTransitions) {
  open();
  std::string id = enqueue(call("f"));
  auto cancelled = store_->cancel_sync(id, 1500);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, CallState::cancelled);
  EXPECT_TRUE(store_->claim_sync(at(2000)).value().empty());
  auto again = store_->cancel_sync(id, 1600);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::failed_precondition);
  EXPECT_NE(again.error().message().find("cancelled"), std::string::npos);
  EXPECT_EQ(store_->cancel_sync("missing", 1).error().code(), Code::not_found);

  auto retried = store_->retry_sync(id, 3000);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->state, CallState::pending);
  EXPECT_EQ(retried->attempts, 0u);
  EXPECT_EQ(store_->retry_sync(id, 3000).error().code(), Code::failed_precondition);
  EXPECT_EQ(store_->claim_sync(at(3000)).value().size(), 1u);

  // A running call can be cancelled, and its late finish is then refused.
  std::string id2 = enqueue(call("g"));
  auto c = store_->claim_sync(at(3000)).value().at(0);
  ASSERT_EQ(c.id, id2);
  ASSERT_TRUE(store_->cancel_sync(id2, 3100).ok());
  EXPECT_FALSE(store_->finish_sync(id2, c.lease, Outcome{}, 3200).value());
  EXPECT_EQ(store_->get(id2).value()->state, CallState::cancelled);
}

TEST_F(StoreTest, ClaimIsFairAcrossKeys) {
  open();
  std::vector<NewCall> flood;
  for (int i = 0; i < 100; ++i) flood.push_back(call("flood"));
  ASSERT_TRUE(store_->enqueue_sync(std::move(flood), 1000).ok());
  std::vector<NewCall> small;
  for (int i = 0; i < 5; ++i) small.push_back(call("small"));
  NewCall tenant = call("flood");
  tenant.tenant = "acme";  // its own fairness key
  small.push_back(tenant);
  ASSERT_TRUE(store_->enqueue_sync(std::move(small), 1001).ok());

  auto claimed = store_->claim_sync(at(2000, 9)).value();
  ASSERT_EQ(claimed.size(), 9u);
  std::map<std::string, int> per_key;
  for (const auto& c : claimed) per_key[c.tenant.empty() ? c.function : c.tenant]++;
  EXPECT_EQ(per_key["flood"], 4);
  EXPECT_EQ(per_key["small"], 4);
  EXPECT_EQ(per_key["acme"], 1);  // it had only one; the others share its rest
  // Interleaved: the first three come from three different keys.
  std::set<std::string> first;
  for (int i = 0; i < 3; ++i) first.insert(claimed[i].tenant.empty() ? claimed[i].function : "acme");
  EXPECT_EQ(first.size(), 3u);
}

TEST_F(StoreTest, ClaimSkipsSaturatedEndpoints) {
  open();
  NewCall a = call("f");
  a.endpoint = "http://a";
  NewCall b = call("f");
  b.endpoint = "http://b";
  enqueue(a);
  enqueue(b);
  ClaimOptions o = at(2000);
  o.skip_endpoints = {"http://a"};
  auto claimed = store_->claim_sync(o).value();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].endpoint, "http://b");
}

TEST_F(StoreTest, LapsedLeasesReturnToPending) {
  open();
  enqueue(call("f"));
  enqueue(call("g"));
  ClaimOptions o = at(1000, 1);
  o.lease_until_ms = 2000;
  ASSERT_EQ(store_->claim_sync(o).value().size(), 1u);
  o.lease_until_ms = 9000;
  ASSERT_EQ(store_->claim_sync(o).value().size(), 1u);
  EXPECT_EQ(store_->release_leases_sync(2000, false).value(), 1u);  // only the lapsed one
  EXPECT_EQ(store_->release_leases_sync(2000, true).value(), 1u);   // start-up: all
  EXPECT_EQ(store_->count_by_state().value()[1], 2);
}

TEST_F(StoreTest, GroupCommitFoldsConcurrentWrites) {
  open();
  constexpr int kWrites = 2000;
  std::atomic<int> acked{0};
  std::promise<void> all;
  for (int i = 0; i < kWrites; ++i) {
    std::vector<NewCall> v{call("f")};
    store_->enqueue(std::move(v), 1000, [&](Result<std::vector<std::string>> r) {
      EXPECT_TRUE(r.ok());
      if (++acked == kWrites) all.set_value();
    });
  }
  all.get_future().wait();
  auto stats = store_->stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kWrites));
  EXPECT_LT(stats.commits, static_cast<uint64_t>(kWrites / 4)) << "writes were not batched";
  EXPECT_EQ(store_->count_by_state().value()[1], kWrites);
}

TEST_F(StoreTest, AcknowledgedWritesSurviveReopen) {
  open();
  std::string id = enqueue(call("f", "k"));
  auto c = store_->claim_sync(at(1000)).value().at(0);
  Outcome o;
  o.output = "result";
  ASSERT_TRUE(store_->finish_sync(id, c.lease, o, 1100).value());
  open();  // closes, then opens the same file
  auto r = store_->get(id).value();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->state, CallState::completed);
  EXPECT_EQ(r->output, "result");
  EXPECT_EQ(enqueue(call("f", "k")), id);  // the key survived too
}

TEST_F(StoreTest, ListPagesByState) {
  open();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(enqueue(call("f")));
  ASSERT_TRUE(store_->cancel_sync(ids[1], 1).ok());
  auto pending = store_->list(CallState::pending, 2, "").value();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].id, ids[0]);
  EXPECT_EQ(pending[1].id, ids[2]);
  auto next = store_->list(CallState::pending, 10, pending[1].id).value();
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[1].id, ids[4]);
  EXPECT_EQ(store_->list(std::nullopt, 10, "").value().size(), 5u);
  EXPECT_EQ(store_->list(std::nullopt, 10, "bogus").error().code(), Code::not_found);
}

TEST_F(StoreTest, SecondOwnerIsRefused) {
  open();
  SqliteOptions o;
  o.path = path_;
  auto second = open_sqlite_store(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), Code::failed_precondition);
  EXPECT_NE(second.error().message().find("another scheduler"), std::string::npos);
}

int64_t raw_user_version(const std::string& path, const char* sql = nullptr) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  if (sql) sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
  sqlite3_step(s);
  int64_t v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

TEST_F(StoreTest, MigrationsApplyMissingSteps) {
  open();
  std::string id = enqueue(call("f"));
  store_.reset();
  EXPECT_EQ(raw_user_version(path_), sqlite_schema_version());
  // Pretend the file was written by a build that knew only step 1.
  EXPECT_EQ(raw_user_version(path_, "DROP INDEX calls_state_seq; PRAGMA user_version=1"), 1);
  open();
  EXPECT_TRUE(store_->get(id).value().has_value());
  store_.reset();
  EXPECT_EQ(raw_user_version(path_), sqlite_schema_version());
  sqlite3* db = nullptr;
  sqlite3_open(path_.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'calls_state_seq'", -1,
                     &s, nullptr);
  sqlite3_step(s);
  EXPECT_EQ(sqlite3_column_int(s, 0), 1) << "step 2 was not applied again";
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(StoreTest, NewerSchemaIsRefused) {
  open();
  store_.reset();
  raw_user_version(path_, "PRAGMA user_version=99");
  SqliteOptions o;
  o.path = path_;
  auto s = open_sqlite_store(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("newer than this build"), std::string::npos);
}

}  // namespace
}  // namespace dispatch::scheduler
