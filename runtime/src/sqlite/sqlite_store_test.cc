// The SQLite store: transitions guarded by state and lease, idempotency keys,
// fair claims, group commit, durability across reopen, migrations,
// time-ordered IDs, every write reported once at close, acknowledgements
// after the log sync (and the synchronous=FULL fallback), partial indexes,
// outcomes held for company.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

TEST_F(StoreTest, TraceContextIsKeptWithTheCall) {
  open();
  NewCall c = call("f");
  c.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  c.tracestate = "rojo=1";
  const std::string id = enqueue(c);
  auto got = store_->get(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->traceparent, c.traceparent);
  EXPECT_EQ((*got)->tracestate, "rojo=1");
  auto claimed = store_->claim_sync(at(2000));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].traceparent, c.traceparent);
}

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
  // The last step is the Poll columns and the results table.
  EXPECT_EQ(sqlite_schema_version(), 6);
  EXPECT_EQ(raw_user_version(path_), 6);
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
                             "DROP TABLE sf_inbox; DROP TABLE sf_entities; DROP TABLE sf_state; "
                             "DROP TABLE sf_specs; DROP TABLE sf_delayed; DROP TABLE sf_egress; "
                             "DROP TABLE sf_egress_acks; DROP TABLE sf_dead_letters; "
                             "DROP TABLE sf_ingress_keys; "
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

TEST_F(StoreTest, EveryStateListsAndCounts) {
  // Each state has its own statement (and, but for completed, its own
  // partial index): a call moving through the states shows in exactly one.
  open();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(enqueue(call("f"), 1000));
  auto leased = store_->claim_sync(at(1000, 4)).value();  // ids 0..3 running
  ASSERT_EQ(leased.size(), 4u);
  Outcome done;  // completed
  ASSERT_TRUE(store_->finish_sync(ids[0], leased[0].lease, done, 1001).value());
  ASSERT_TRUE(store_->finish_sync(ids[1], leased[1].lease, done, 1001).value());
  Outcome failed;
  failed.state = CallState::failed;
  failed.error_message = "no";
  ASSERT_TRUE(store_->finish_sync(ids[2], leased[2].lease, failed, 1001).value());
  ASSERT_TRUE(store_->cancel_sync(ids[4], 1001).ok());
  // One more, suspended (it answered Poll; waits for a minute).
  ids.push_back(enqueue(call("g"), 1002));
  auto polling = store_->claim_sync(at(1002, 2)).value();  // 5 and 6
  ASSERT_EQ(polling.size(), 2u);
  for (const CallRecord& r : polling) {
    Outcome o;
    if (r.id == ids[6]) {
      o.state = CallState::suspended;
      o.poll.emplace();
      o.poll->state = "s";
      o.poll->wake_at_ms = 61'002;
    } else {
      o.state = CallState::pending;  // 5 goes back
      o.next_attempt_at_ms = 1002;
    }
    ASSERT_TRUE(store_->finish_sync(r.id, r.lease, o, 1002).value());
  }
  // running: 3; pending: 5; completed: 0, 1; failed: 2; cancelled: 4; suspended: 6.
  const std::map<CallState, std::vector<std::string>> want = {
      {CallState::pending, {ids[5]}},         {CallState::running, {ids[3]}},
      {CallState::completed, {ids[0], ids[1]}}, {CallState::failed, {ids[2]}},
      {CallState::cancelled, {ids[4]}},       {CallState::suspended, {ids[6]}}};
  auto counts = store_->count_by_state().value();
  ASSERT_EQ(counts.size(), 7u);
  for (const auto& [state, expected] : want) {
    std::vector<std::string> got;
    const auto listed = store_->list(state, 10, "").value();
    for (const auto& r : listed) got.push_back(r.id);
    EXPECT_EQ(got, expected) << state_name(state);
    EXPECT_EQ(counts[static_cast<std::size_t>(state)], static_cast<int64_t>(expected.size()))
        << state_name(state);
  }
  // Paging through completed calls (the table scan).
  auto first = store_->list(CallState::completed, 1, "").value();
  ASSERT_EQ(first.size(), 1u);
  auto rest = store_->list(CallState::completed, 10, first[0].id).value();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].id, ids[1]);
  // A retried call leaves failed for pending.
  ASSERT_TRUE(store_->retry_sync(ids[2], 1002).ok());
  EXPECT_TRUE(store_->list(CallState::failed, 10, "").value().empty());
  EXPECT_EQ(store_->list(CallState::pending, 10, "").value().size(), 2u);
  // A bad state number is refused, not a crash.
  EXPECT_EQ(store_->list(static_cast<CallState>(9), 10, "").error().code(), Code::invalid_argument);
}

TEST_F(StoreTest, NextDueIsTheEarliestAcrossKeys) {
  open();
  auto at_time = [](std::string function, int64_t due) {
    NewCall c = call(std::move(function));
    c.tenant = "";
    return std::make_pair(c, due);
  };
  for (auto [c, due] : {at_time("b", 7000), at_time("a", 9000), at_time("c", 8000)}) {
    store_->enqueue_sync({c}, due).value();
  }
  EXPECT_EQ(store_->next_due_ms().value().value(), 7000);
  auto leased = store_->claim_sync(at(7000)).value();  // takes b's call
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].function, "b");
  EXPECT_EQ(store_->next_due_ms().value().value(), 8000);
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

TEST_F(StoreTest, OutcomesThatMakeCallsDueDoNotWaitForCompany) {
  // A Poll with calls makes its children due, a child's end may make its
  // parent due: the next lease waits for them, so they commit at once even
  // with a hold of a minute, and the parent is due as soon as its result is.
  open([](SqliteOptions& o) { o.outcome_hold = std::chrono::seconds(60); });
  const std::string parent = enqueue(call("workflow"));
  auto leased = store_->claim_sync(at(1000, 1)).value();
  ASSERT_EQ(leased.size(), 1u);
  auto finish_within_seconds = [&](const std::string& id, uint64_t lease, Outcome o) {
    std::promise<Result<bool>> recorded;
    store_->finish(id, lease, std::move(o), 1001, [&](Result<bool> r) { recorded.set_value(std::move(r)); });
    auto f = recorded.get_future();
    EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready) << "the outcome waited for company";
    return f.valid() && f.wait_for(std::chrono::seconds(0)) == std::future_status::ready && f.get().value();
  };
  Outcome poll;
  poll.state = CallState::suspended;
  poll.poll.emplace();
  NewCall child = call("child");
  child.parent_id = parent;
  child.root_id = parent;
  child.correlation_id = 7;
  poll.poll->calls.push_back(child);
  ASSERT_TRUE(finish_within_seconds(parent, leased[0].lease, std::move(poll)));
  auto children = store_->claim_sync(at(1001, 1)).value();
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].parent_id, parent);
  Outcome done;
  done.status = 1;  // STATUS_OK
  done.parent_id = parent;
  ASSERT_TRUE(finish_within_seconds(children[0].id, children[0].lease, std::move(done)));
  auto resumed = store_->claim_sync(at(1002, 1)).value();
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].id, parent);
  ASSERT_EQ(resumed[0].results.size(), 1u);
  EXPECT_EQ(resumed[0].results[0].correlation_id, 7u);
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
