// The SQLite store's delete_ended: calls that ended before the cutoff go
// with their idempotency keys, pending and running calls stay whatever
// their age, transactions are bounded and other writes commit between
// them, listing goes on past a deleted call, and a child outlives its
// parent. Times are the store's own (now_ms arguments): no sleeping.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "dispatch/sqlite/sqlite_store.h"

namespace dispatch::scheduler {
namespace {

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "retention_" +
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
  static NewCall call(std::string key = "") {
    NewCall c;
    c.function = "f";
    c.endpoint = "http://127.0.0.1:1";
    c.input_type_url = "type.googleapis.com/t.R";
    c.input = "in";
    c.idempotency_key = std::move(key);
    return c;
  }
  std::vector<std::string> enqueue(std::vector<NewCall> calls, int64_t now) {
    auto ids = store_->enqueue_sync(std::move(calls), now);
    EXPECT_TRUE(ids.ok()) << (ids.ok() ? "" : ids.error().what());
    return ids.ok() ? *ids : std::vector<std::string>{};
  }
  std::string enqueue(NewCall c, int64_t now) {
    std::vector<NewCall> v;
    v.push_back(std::move(c));
    return enqueue(std::move(v), now).at(0);
  }
  // Leases every due call at `now` and ends each in `state` at `ended`.
  void end_all(int64_t now, int64_t ended, CallState state = CallState::completed) {
    ClaimOptions o;
    o.now_ms = now;
    o.max = 100000;
    o.per_key_max = 100000;
    o.lease_until_ms = now + 60000;
    const auto claimed = store_->claim_sync(o).value();
    // All at once: they share commits.
    std::vector<std::future<Result<bool>>> finished;
    for (const CallRecord& c : claimed) {
      Outcome out;
      out.state = state;
      auto p = std::make_shared<std::promise<Result<bool>>>();
      finished.push_back(p->get_future());
      store_->finish(c.id, c.lease, out, ended, [p](Result<bool> r) { p->set_value(std::move(r)); });
    }
    for (auto& f : finished) ASSERT_TRUE(f.get().value());
  }
  // `n` calls created at `created`, ended (completed) at `ended`.
  std::vector<std::string> ended_calls(int n, int64_t created, int64_t ended) {
    std::vector<NewCall> v(static_cast<std::size_t>(n), call());
    auto ids = enqueue(std::move(v), created);
    end_all(created, ended);
    return ids;
  }
  bool exists(const std::string& id) { return store_->get(id).value().has_value(); }
  int64_t total() {
    auto counts = store_->count_by_state().value();
    int64_t n = 0;
    for (int64_t c : counts) n += c;
    return n;
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(RetentionTest, CallsThatEndedBeforeTheCutoffGoTheOthersStay) {
  open();
  const std::string completed = ended_calls(1, 1000, 2000).at(0);
  const std::string failed = enqueue(call(), 1000);
  end_all(1000, 4999, CallState::failed);
  const std::string cancelled = enqueue(call(), 1000);
  ASSERT_TRUE(store_->cancel_sync(cancelled, 3000).ok());
  const std::string at_cutoff = ended_calls(1, 1000, 5000).at(0);  // not before it
  const std::string recent = ended_calls(1, 1000, 9000).at(0);     // created before, ended after

  EXPECT_EQ(store_->delete_ended_sync(5000).value(), 3u);
  EXPECT_FALSE(exists(completed));
  EXPECT_FALSE(exists(failed));
  EXPECT_FALSE(exists(cancelled));
  EXPECT_TRUE(exists(at_cutoff));
  EXPECT_TRUE(exists(recent));
  EXPECT_EQ(total(), 2);
  EXPECT_EQ(store_->stats().deleted, 3u);
  // Nothing more is due: a second sweep finds nothing.
  EXPECT_EQ(store_->delete_ended_sync(5000).value(), 0u);
  // Nothing has ended before the epoch.
  EXPECT_EQ(store_->delete_ended_sync(0).value(), 0u);
  EXPECT_EQ(total(), 2);
}

TEST_F(RetentionTest, PendingAndRunningCallsStayWhateverTheirAge) {
  open();
  auto lease_one = [&](int64_t now) {
    ClaimOptions o;
    o.now_ms = now;
    o.max = 1;
    o.lease_until_ms = now + 1;  // lapses at once: still running until released
    auto claimed = store_->claim_sync(o).value();
    EXPECT_EQ(claimed.size(), 1u);
    return claimed.at(0);
  };
  const std::string running = enqueue(call(), 2);
  lease_one(2);
  // Failed long ago, then retried: pending again.
  const std::string retried = enqueue(call(), 3);
  Outcome failed;
  failed.state = CallState::failed;
  ASSERT_TRUE(store_->finish_sync(retried, lease_one(3).lease, failed, 4).value());
  ASSERT_TRUE(store_->retry_sync(retried, 5).ok());
  // A temporary failure long ago: pending again, waiting for its attempt.
  const std::string backing_off = enqueue(call(), 3);
  Outcome again;
  again.state = CallState::pending;
  again.next_attempt_at_ms = 6;
  ASSERT_TRUE(store_->finish_sync(backing_off, lease_one(3).lease, again, 4).value());
  const std::string pending = enqueue(call(), 1);

  // A hundred years later.
  EXPECT_EQ(store_->delete_ended_sync(int64_t{100} * 365 * 24 * 3600 * 1000).value(), 0u);
  EXPECT_EQ(store_->get(running).value()->state, CallState::running);
  EXPECT_EQ(store_->get(retried).value()->state, CallState::pending);
  EXPECT_EQ(store_->get(backing_off).value()->state, CallState::pending);
  EXPECT_EQ(store_->get(pending).value()->state, CallState::pending);
}

TEST_F(RetentionTest, AnExpiredKeyMakesANewCallAnUnexpiredOneStillDeduplicates) {
  open();
  const std::string old_call = enqueue(call("order-1"), 1000);
  end_all(1000, 2000);
  const std::string kept_call = enqueue(call("order-2"), 3000);
  end_all(3000, 8000);
  ASSERT_EQ(store_->delete_ended_sync(5000).value(), 1u);

  const std::string again = enqueue(call("order-1"), 10000);
  EXPECT_NE(again, old_call) << "the key outlived its call";
  EXPECT_EQ(store_->get(again).value()->state, CallState::pending);
  EXPECT_EQ(enqueue(call("order-2"), 10000), kept_call);
  EXPECT_EQ(enqueue(call("order-1"), 10001), again);  // the new call owns the key now
}

TEST_F(RetentionTest, TransactionsAreBoundedAndOtherWritesCommitBetweenThem) {
  std::mutex mu;
  std::vector<std::size_t> per_commit;
  std::vector<bool> enqueued_visible;  // at each deleting commit: the enqueue below committed
  std::promise<Result<std::vector<std::string>>> acked;
  open([&](SqliteOptions& o) {
    o.delete_batch = 50;
    o.on_delete_commit = [&](std::size_t deleted) {
      std::lock_guard<std::mutex> lock(mu);
      per_commit.push_back(deleted);
      // The reads see what committed before this commit.
      enqueued_visible.push_back(store_->count_by_state().value()[1] == 1);
      if (per_commit.size() == 1) {
        // A dispatch arriving while the sweep runs.
        std::vector<NewCall> v{call()};
        store_->enqueue(std::move(v), 20000, [&](Result<std::vector<std::string>> ids) {
          acked.set_value(std::move(ids));
        });
      }
    };
  });
  ended_calls(1000, 1000, 2000);
  EXPECT_EQ(store_->delete_ended_sync(5000).value(), 1000u);

  EXPECT_TRUE(acked.get_future().get().ok());
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(per_commit.size(), 20u);
  for (std::size_t n : per_commit) EXPECT_LE(n, 50u);
  std::size_t sum = 0;
  for (std::size_t n : per_commit) sum += n;
  EXPECT_EQ(sum, 1000u);
  // The dispatch committed while batches were still to come: it did not
  // wait for the whole sweep.
  const auto first_seen = std::find(enqueued_visible.begin(), enqueued_visible.end(), true);
  ASSERT_NE(first_seen, enqueued_visible.end()) << "the dispatch never committed during the sweep";
  EXPECT_LT(first_seen - enqueued_visible.begin(), 5);
  EXPECT_EQ(total(), 1);
}

TEST_F(RetentionTest, ASweepGoesPastManyLiveCallsInBoundedSteps) {
  // 300 old calls still running, then 100 that ended: each batch looks at
  // 4 * delete_batch calls at most, and the sweep still finds them all.
  std::vector<std::size_t> per_commit;
  open([&](SqliteOptions& o) {
    o.delete_batch = 10;
    o.on_delete_commit = [&](std::size_t deleted) { per_commit.push_back(deleted); };
  });
  enqueue(std::vector<NewCall>(300, call()), 1000);
  auto ended = enqueue(std::vector<NewCall>(100, call()), 1001);
  ClaimOptions o;
  o.now_ms = 1001;
  o.max = 100000;
  o.per_key_max = 100000;
  o.lease_until_ms = 1001 + 60000;
  const auto claimed = store_->claim_sync(o).value();
  for (const CallRecord& c : claimed) {
    if (c.created_at_ms == 1001) {
      ASSERT_TRUE(store_->finish_sync(c.id, c.lease, Outcome{}, 2000).value());
    }
  }
  EXPECT_EQ(store_->delete_ended_sync(5000).value(), 100u);
  for (const auto& id : ended) EXPECT_FALSE(exists(id));
  EXPECT_EQ(store_->count_by_state().value()[static_cast<int>(CallState::running)], 300);
  EXPECT_EQ(per_commit.size(), 10u);
  for (std::size_t n : per_commit) EXPECT_EQ(n, 10u);
}

TEST_F(RetentionTest, AChildOutlivesItsParent) {
  open();
  const std::string parent = ended_calls(1, 1000, 2000).at(0);
  NewCall child = call();
  child.parent_id = parent;
  child.root_id = parent;
  const std::string child_id = enqueue(std::move(child), 3000);
  ASSERT_EQ(store_->delete_ended_sync(5000).value(), 1u);
  EXPECT_FALSE(exists(parent));
  auto c = store_->get(child_id).value();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->parent_id, parent);  // a reference for the endpoint, never looked up
  EXPECT_EQ(c->root_id, parent);
  ClaimOptions o;
  o.now_ms = 6000;
  o.lease_until_ms = 7000;
  auto claimed = store_->claim_sync(o).value();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].parent_id, parent);
  EXPECT_EQ(store_->list(std::nullopt, 10, "").value().size(), 1u);
}

TEST_F(RetentionTest, ListingGoesOnPastADeletedCall) {
  open();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(enqueue(call(), 1000 + i));
  // ids[2] ends first, the others later.
  ClaimOptions o;
  o.now_ms = 2000;
  o.lease_until_ms = 90000;
  const auto claimed = store_->claim_sync(o).value();
  for (const CallRecord& c : claimed) {
    ASSERT_TRUE(store_->finish_sync(c.id, c.lease, Outcome{}, c.id == ids[2] ? 2000 : 9000).value());
  }
  auto first = store_->list(CallState::completed, 3, "").value();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[2].id, ids[2]);
  ASSERT_EQ(store_->delete_ended_sync(5000).value(), 1u);
  auto second = store_->list(CallState::completed, 3, ids[2]).value();
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(second[0].id, ids[3]);
  EXPECT_EQ(second[2].id, ids[5]);
  // After the last call: an empty page. A malformed ID is still unknown.
  EXPECT_TRUE(store_->list(std::nullopt, 3, ids[5]).value().empty());
  EXPECT_EQ(store_->list(std::nullopt, 3, "nope").error().code(), Code::not_found);

}

TEST_F(RetentionTest, ListingGoesOnPastADeletedCallOfTheSameMillisecond) {
  // IDs of one millisecond are random: the page may list some of its calls
  // again, never skips one.
  open();
  enqueue(std::vector<NewCall>(6, call()), 1000);
  ClaimOptions o;
  o.now_ms = 1000;
  o.lease_until_ms = 90000;
  auto running = store_->claim_sync(o).value();
  auto page = store_->list(std::nullopt, 3, "").value();
  ASSERT_EQ(page.size(), 3u);
  const std::string gone = page[2].id;
  for (const CallRecord& c : running) {
    ASSERT_TRUE(store_->finish_sync(c.id, c.lease, Outcome{}, c.id == gone ? 2000 : 9000).value());
  }
  ASSERT_EQ(store_->delete_ended_sync(5000).value(), 1u);
  std::set<std::string> listed;
  const auto next = store_->list(std::nullopt, 10, gone).value();
  for (const auto& r : next) listed.insert(r.id);
  std::set<std::string> after;  // the calls the next page must hold
  const auto all = store_->list(std::nullopt, 10, "").value();
  for (const auto& r : all) after.insert(r.id);
  for (const auto& r : page) after.erase(r.id);
  ASSERT_EQ(after.size(), 3u);
  for (const auto& id : after) EXPECT_TRUE(listed.count(id)) << id << " was skipped";
}

TEST_F(RetentionTest, ClosingTheStoreEndsASweepEarlyAndTheNextOneFinishes) {
  // Each batch waits up to outcome_hold for company: the sweep takes 50 of
  // them, a second in all, unless the store closes meanwhile.
  open([](SqliteOptions& o) {
    o.delete_batch = 10;
    o.outcome_hold = std::chrono::milliseconds(20);
  });
  ended_calls(500, 1000, 2000);
  std::mutex mu;
  int reports = 0;
  std::size_t deleted_first = 0;
  store_->delete_ended(5000, [&](Result<std::size_t> n) {
    std::lock_guard<std::mutex> lock(mu);
    reports++;
    if (n.ok()) deleted_first = *n;
  });
  store_.reset();
  EXPECT_EQ(reports, 1);
  EXPECT_LT(deleted_first, 500u) << "closing waited for the whole sweep";
  open([](SqliteOptions& o) { o.delete_batch = 10; });
  EXPECT_EQ(deleted_first + store_->delete_ended_sync(5000).value(), 500u);
  EXPECT_EQ(total(), 0);
}

TEST_F(RetentionTest, ABatchOfNoneIsRefused) {
  SqliteOptions o;
  o.path = path_;
  o.delete_batch = 0;
  auto s = open_sqlite_store(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Code::invalid_argument);
  EXPECT_NE(s.error().message().find("delete_batch must be at least 1"), std::string::npos);
}

}  // namespace
}  // namespace dispatch::scheduler
