// The SQLite store beyond the Store contract (store_conformance_test holds
// every backend to that): group commit, durability across reopen,
// migrations, time-ordered IDs, every write reported once at close,
// acknowledgements after the log sync (and the synchronous=FULL fallback),
// outcomes held for company.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

#include "dispatch/metrics/registry.h"
#include "dispatch/sqlite/sqlite_store.h"

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
  Store& open(const std::function<void(SqliteOptions&)>& adjust = nullptr) {
    store_.reset();
    SqliteOptions o;
    o.path = path_;
    if (adjust) adjust(o);
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

TEST_F(StoreTest, CommitsAreMeasuredWhenGivenARegistry) {
  auto registry = std::make_shared<metrics::Registry>();
  open([&](SqliteOptions& o) { o.metrics = registry; });
  enqueue(call("f"));
  enqueue(call("g"));
  const std::string text = registry->expose();
  EXPECT_NE(text.find("# TYPE dispatch_store_commit_duration_seconds histogram"), std::string::npos) << text;
  EXPECT_NE(text.find("dispatch_store_commit_duration_seconds_count 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dispatch_store_commit_writes_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
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

TEST_F(StoreTest, SecondOwnerIsRefused) {
  open();
  SqliteOptions o;
  o.path = path_;
  auto second = open_sqlite_store(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), Code::failed_precondition);
  EXPECT_NE(second.error().message().find("another scheduler"), std::string::npos);
  EXPECT_NE(second.error().message().find("stop it first"), std::string::npos) << second.error().message();
}

TEST_F(StoreTest, ALockFileThatCannotBeMadeSaysWhy) {
  SqliteOptions o;
  o.path = ::testing::TempDir() + "no-such-directory/dispatch.db";
  auto s = open_sqlite_store(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("no-such-directory/dispatch.db-owner: No such file or directory"),
            std::string::npos)
      << s.error().message();
  EXPECT_NE(s.error().message().find("must exist and be writable"), std::string::npos) << s.error().message();
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
  // The last step is the calls' restart count.
  EXPECT_EQ(sqlite_schema_version(), 9);
  EXPECT_EQ(raw_user_version(path_), 9);
  // Pretend the file was written by a build that knew only step 1.
  EXPECT_EQ(raw_user_version(path_,
                             "DROP INDEX calls_suspended; DROP INDEX calls_children; DROP TABLE results; "
                             "ALTER TABLE calls DROP COLUMN correlation_id; ALTER TABLE calls DROP COLUMN polled; "
                             "ALTER TABLE calls DROP COLUMN poll_state; ALTER TABLE calls DROP COLUMN poll_state_type; "
                             "ALTER TABLE calls DROP COLUMN min_results; ALTER TABLE calls DROP COLUMN max_results; "
                             "ALTER TABLE calls DROP COLUMN poll_error_type; "
                             "ALTER TABLE calls DROP COLUMN poll_error_message; "
                             "ALTER TABLE calls DROP COLUMN outstanding; ALTER TABLE calls DROP COLUMN ready; "
                             "DROP INDEX calls_pending; DROP INDEX calls_pending_seq; "
                             "DROP INDEX calls_running_seq; DROP INDEX calls_failed_seq; "
                             "DROP INDEX calls_cancelled_seq; "
                             "CREATE INDEX calls_due ON calls(state, fair_key, next_attempt_at); "
                             "ALTER TABLE calls DROP COLUMN traceparent; "
                             "ALTER TABLE calls DROP COLUMN tracestate; "
                             "ALTER TABLE calls DROP COLUMN restarts; "
                             "DROP TABLE sf_inbox; DROP TABLE sf_entities; DROP TABLE sf_state; "
                             "DROP TABLE sf_specs; DROP TABLE sf_delayed; DROP TABLE sf_egress; "
                             "DROP TABLE sf_egress_acks; DROP TABLE sf_dead_letters; "
                             "DROP TABLE sf_ingress_keys; DROP TABLE sf_sequences; DROP TABLE sf_names; "
                             "PRAGMA user_version=1"),
            1);
  open();
  EXPECT_TRUE(store_->get(id).value().has_value());
  // The pending call made before the migration is in the new indexes.
  EXPECT_EQ(store_->next_due_ms().value().value_or(-1), 1000);
  EXPECT_EQ(store_->list(CallState::pending, 10, "").value().size(), 1u);
  auto claimed = store_->claim_sync(at(1000)).value();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, id);
  EXPECT_EQ(claimed[0].traceparent, "");  // step 4's column, empty for calls made before it
  EXPECT_EQ(claimed[0].restarts, 0u);     // step 9's, 0 likewise
  store_.reset();
  EXPECT_EQ(raw_user_version(path_), sqlite_schema_version());
  sqlite3* db = nullptr;
  sqlite3_open(path_.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master "
                     "WHERE type = 'index' AND name LIKE 'calls_%' ORDER BY name)", -1, &s, nullptr);
  sqlite3_step(s);
  const auto* names = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  EXPECT_STREQ(names, "calls_cancelled_seq calls_children calls_failed_seq calls_idempotency calls_pending "
                      "calls_pending_seq calls_running_seq calls_suspended")
      << "steps 2 to 4 were not applied";
  sqlite3_finalize(s);
  sqlite3_close(db);
}

// A sync_log hook that holds every sync until released, and counts them.
struct SyncGate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = true;
  int entered = 0;
  int returned = 0;
  int error = 0;  // what the sync returns

  std::function<int(int)> hook() {
    return [this](int) {
      std::unique_lock<std::mutex> lock(mu);
      ++entered;
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
      ++returned;
      return error;
    };
  }
  void set_open(bool o) {
    std::lock_guard<std::mutex> lock(mu);
    open = o;
    cv.notify_all();
  }
  void wait_entered(int n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered >= n; });
  }
};

TEST_F(StoreTest, EnqueueIsAcknowledgedOnlyAfterTheLogSync) {
  SyncGate gate;
  open([&](SqliteOptions& o) { o.sync_log = gate.hook(); });
  const std::string first = enqueue(call("f"));  // gate open: one sync
  EXPECT_EQ(store_->stats().log_syncs, 1u);
  {
    std::lock_guard<std::mutex> lock(gate.mu);
    EXPECT_EQ(gate.returned, 1);
  }

  gate.set_open(false);
  std::promise<Result<std::vector<std::string>>> acked;
  std::atomic<int> syncs_done_at_ack{-1};
  store_->enqueue({call("f")}, 1000, [&](Result<std::vector<std::string>> r) {
    {
      std::lock_guard<std::mutex> lock(gate.mu);
      syncs_done_at_ack = gate.returned;
    }
    acked.set_value(std::move(r));
  });
  gate.wait_entered(2);  // committed; its sync is held
  auto ack = acked.get_future();
  EXPECT_EQ(ack.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "acknowledged before the log was synced";
  // Leases and outcomes need no sync: they go through while it is held.
  auto leased = store_->claim_sync(at(1000, 1)).value();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].id, first);
  EXPECT_TRUE(store_->finish_sync(first, leased[0].lease, Outcome{}, 1001).value());
  EXPECT_EQ(ack.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);

  gate.set_open(true);
  auto r = ack.get();
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(syncs_done_at_ack.load(), 2);
  EXPECT_EQ(store_->stats().log_syncs, 2u);
}

TEST_F(StoreTest, FailedLogSyncFailsTheAcknowledgement) {
  SyncGate gate;
  gate.error = EIO;
  open([&](SqliteOptions& o) { o.sync_log = gate.hook(); });
  std::vector<NewCall> v{call("f")};
  auto r = store_->enqueue_sync(std::move(v), 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unavailable);
  EXPECT_NE(r.error().message().find("syncing"), std::string::npos) << r.error().message();
  // The store keeps working once the disk does.
  gate.error = 0;
  std::vector<NewCall> again{call("f")};
  EXPECT_TRUE(store_->enqueue_sync(std::move(again), 1000).ok());
}

TEST_F(StoreTest, WithoutTheSyncThreadCommitsSyncThemselves) {
  // sync_thread = false: synchronous=FULL for the commits that must be
  // durable, no sync thread (the hook is never called).
  SyncGate gate;
  gate.error = EIO;  // would fail every enqueue, were it used
  auto no_thread = [&](SqliteOptions& o) {
    o.sync_log = gate.hook();
    o.sync_thread = false;
  };
  open(no_thread);
  std::string id = enqueue(call("f"));
  auto leased = store_->claim_sync(at(1000)).value();
  ASSERT_EQ(leased.size(), 1u);
  Outcome o;
  o.output = "kept";
  EXPECT_TRUE(store_->finish_sync(id, leased[0].lease, o, 1001).value());
  EXPECT_TRUE(store_->cancel_sync(id, 1002).error().code() == Code::failed_precondition);
  EXPECT_EQ(store_->stats().log_syncs, 0u);
  {
    std::lock_guard<std::mutex> lock(gate.mu);
    EXPECT_EQ(gate.entered, 0);
  }
  open(no_thread);
  auto r = store_->get(id).value();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->state, CallState::completed);
  EXPECT_EQ(r->output, "kept");
}

TEST_F(StoreTest, OutcomesWaitForCompanyUpToTheHold) {
  // An outcome queued alone waits (here up to a minute) for another write
  // to share its commit; a lease ends the wait, and so does closing.
  open([](SqliteOptions& o) { o.outcome_hold = std::chrono::seconds(60); });
  for (int i = 0; i < 3; ++i) enqueue(call("f"));
  auto leased = store_->claim_sync(at(1000, 2)).value();
  ASSERT_EQ(leased.size(), 2u);
  const uint64_t commits_before = store_->stats().commits;
  std::promise<Result<bool>> recorded;
  store_->finish(leased[0].id, leased[0].lease, Outcome{}, 1001,
                 [&](Result<bool> r) { recorded.set_value(std::move(r)); });
  auto outcome = recorded.get_future();
  EXPECT_EQ(outcome.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "the outcome did not wait";
  auto more = store_->claim_sync(at(1000, 1)).value();  // shares the commit
  ASSERT_EQ(more.size(), 1u);
  ASSERT_EQ(outcome.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_TRUE(outcome.get().value());
  EXPECT_EQ(store_->stats().commits, commits_before + 1);
  // Held when the store closes: committed and reported, not lost.
  std::promise<Result<bool>> last;
  store_->finish(leased[1].id, leased[1].lease, Outcome{}, 1002,
                 [&](Result<bool> r) { last.set_value(std::move(r)); });
  store_.reset();
  auto r = last.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  open();
  EXPECT_EQ(store_->get(leased[1].id).value()->state, CallState::completed);
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

TEST_F(StoreTest, AFileThatIsNotADatabaseIsRefusedByName) {
  {
    std::ofstream f(path_);
    f << std::string(4096, 'x');
  }
  SqliteOptions o;
  o.path = path_;
  auto s = open_sqlite_store(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Code::failed_precondition);
  EXPECT_NE(s.error().message().find(path_), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("not a SQLite database"), std::string::npos) << s.error().message();
}

TEST_F(StoreTest, ATruncatedStoreIsRefusedAsDamagedByName) {
  open();
  for (int i = 0; i < 200; ++i) enqueue(call("f"));
  store_.reset();
  // Checkpointed into the file (no log left), then cut short.
  {
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  ASSERT_EQ(::truncate(path_.c_str(), 5000), 0);
  SqliteOptions o;
  o.path = path_;
  auto s = open_sqlite_store(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Code::data_loss) << s.error().message();
  EXPECT_NE(s.error().message().find(path_), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("damaged"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find(".recover"), std::string::npos) << s.error().message();
}

}  // namespace
}  // namespace dispatch::scheduler
