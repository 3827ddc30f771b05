// What every Store backend must do for calls that make calls (store.h):
// delayed calls, a Poll stored with its children in one write, results
// waiting per parent and handed over at most max_results a time, wake-ups
// on min_results, max_wait and expiration, cascades of cancellation, tail
// calls, restarts and retries. Each test runs on every backend (SQLite on
// disk, memory), so the scheduler engine gets the same answers from both.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "dispatch/memory/memory_store.h"
#include "dispatch/scheduler/store.h"
#include "dispatch/sqlite/sqlite_store.h"

namespace dispatch::scheduler {
namespace {

using Factory = std::function<std::unique_ptr<Store>(const std::string& path)>;

struct Backend {
  const char* name;
  Factory open;
};

std::string PrintBackend(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (auto& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    path_ = ::testing::TempDir() + "conformance_" + name + ".db";
    remove_files();
    store_ = GetParam().open(path_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((path_ + suffix).c_str());
  }

  static NewCall call(std::string function) {
    NewCall c;
    c.function = std::move(function);
    c.endpoint = "http://127.0.0.1:1";
    c.input_type_url = "type.googleapis.com/t.R";
    c.input = "in";
    return c;
  }
  std::string enqueue(NewCall c, int64_t now = 1000) {
    std::vector<NewCall> v;
    v.push_back(std::move(c));
    auto ids = store_->enqueue_sync(std::move(v), now);
    EXPECT_TRUE(ids.ok()) << (ids.ok() ? "" : ids.error().what());
    return ids.value().at(0);
  }
  std::vector<CallRecord> claim(int64_t now, std::size_t max = 64) {
    ClaimOptions o;
    o.now_ms = now;
    o.max = max;
    o.per_key_max = max;
    o.lease_until_ms = now + 60'000;
    return store_->claim_sync(o).value();
  }
  // Claims one call at `now`, which must be `id`.
  CallRecord claim_one(const std::string& id, int64_t now) {
    auto got = claim(now, 1);
    EXPECT_EQ(got.size(), 1u);
    if (got.empty()) return {};
    EXPECT_EQ(got[0].id, id);
    return got[0];
  }
  CallRecord get(const std::string& id) {
    auto r = store_->get(id).value();
    EXPECT_TRUE(r.has_value()) << id;
    return r.value_or(CallRecord{});
  }
  bool finish(const CallRecord& leased, Outcome o, int64_t now) {
    o.parent_id = leased.parent_id;
    o.had_outstanding = leased.outstanding > 0;
    return store_->finish_sync(leased.id, leased.lease, std::move(o), now).value();
  }
  static Outcome completed(std::string output) {
    Outcome o;
    o.state = CallState::completed;
    o.status = 1;
    o.output_type_url = "type.googleapis.com/t.Out";
    o.output = std::move(output);
    return o;
  }
  // A Poll of `children` calls (correlation IDs 1..n) with these limits.
  static Outcome poll(const CallRecord& parent, int n, int32_t min_results, int32_t max_results,
                      int64_t wake_at = 0, std::string state = "state-1") {
    Outcome o;
    o.state = CallState::suspended;
    o.status = 1;
    PollOutcome p;
    p.state = std::move(state);
    p.min_results = min_results;
    p.max_results = max_results;
    p.wake_at_ms = wake_at;
    for (int i = 1; i <= n; ++i) {
      NewCall c = call("t.child");
      c.parent_id = parent.id;
      c.root_id = parent.root_id;
      c.correlation_id = static_cast<uint64_t>(i);
      c.input = "child-" + std::to_string(i);
      p.calls.push_back(std::move(c));
    }
    o.poll = std::move(p);
    for (const ChildResult& r : parent.results) o.consumed.push_back(r.seq);
    return o;
  }
  std::vector<CallRecord> children(const std::string& id) {
    return store_->list_children(id, 1000, "").value();
  }
  // Starts `parent`, which polls for `n` children; returns the children's
  // IDs in order.
  std::vector<std::string> start_parent(const std::string& parent, int n, int32_t min_results,
                                        int32_t max_results, int64_t now = 1000, int64_t wake_at = 0) {
    CallRecord p = claim_one(parent, now);
    EXPECT_TRUE(finish(p, poll(p, n, min_results, max_results, wake_at), now));
    std::vector<std::string> ids;
    for (const CallRecord& c : children(parent)) ids.push_back(c.id);
    return ids;
  }
  // Runs child `id` to completion with `output`.
  void complete(const std::string& id, std::string output, int64_t now) {
    ClaimOptions o;
    o.now_ms = now;
    o.max = 1000;
    o.per_key_max = 1000;
    o.lease_until_ms = now + 60'000;
    // Leases everything due; finishes `id`, hands the rest back.
    std::vector<CallRecord> due = store_->claim_sync(o).value();
    for (CallRecord& c : due) {
      if (c.id == id) {
        EXPECT_TRUE(finish(c, completed(output), now));
      } else {
        Outcome back;
        back.state = CallState::pending;
        back.next_attempt_at_ms = now;
        back.parent_id = c.parent_id;
        back.had_outstanding = c.outstanding > 0;
        EXPECT_TRUE(store_->finish_sync(c.id, c.lease, std::move(back), now).value());
      }
    }
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformance, ADelayedCallIsNotLeasedBeforeItsTime) {
  NewCall later = call("t.later");
  later.not_before_ms = 5000;
  const std::string id = enqueue(later, 1000);
  EXPECT_EQ(get(id).next_attempt_at_ms, 5000);
  EXPECT_EQ(get(id).state, CallState::pending);
  EXPECT_TRUE(claim(4999).empty());
  EXPECT_EQ(store_->next_due_ms().value(), std::optional<int64_t>(5000));
  EXPECT_EQ(claim(5000).size(), 1u);
  // Cancelled while it waits, it never runs.
  NewCall again = call("t.later");
  again.not_before_ms = 9000;
  const std::string other = enqueue(again, 1000);
  EXPECT_EQ(store_->cancel_sync(other, 2000).value().state, CallState::cancelled);
  EXPECT_TRUE(claim(10'000).empty());
}

TEST_P(StoreConformance, APollKeepsTheStateAndMakesTheChildrenInOneWrite) {
  const std::string parent = enqueue(call("t.workflow"));
  CallRecord p = claim_one(parent, 1000);
  EXPECT_EQ(p.attempts, 1u);
  EXPECT_FALSE(p.polled);
  ASSERT_TRUE(finish(p, poll(p, 3, 3, 10, 0, std::string("\0state\xff", 7)), 1100));
  CallRecord after = get(parent);
  EXPECT_EQ(after.state, CallState::suspended);
  EXPECT_TRUE(after.polled);
  EXPECT_EQ(after.poll_state, std::string("\0state\xff", 7));
  EXPECT_EQ(after.attempts, 0u);  // each resume starts counting again
  EXPECT_EQ(after.outstanding, 3u);
  EXPECT_EQ(after.min_results, 3);
  EXPECT_EQ(after.max_results, 10);
  auto kids = children(parent);
  ASSERT_EQ(kids.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(kids[i].parent_id, parent);
    EXPECT_EQ(kids[i].root_id, parent);
    EXPECT_EQ(kids[i].correlation_id, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(kids[i].input, "child-" + std::to_string(i + 1));
    EXPECT_EQ(kids[i].state, CallState::pending);
  }
  EXPECT_EQ(store_->count_by_state().value()[static_cast<int>(CallState::suspended)], 1);
  EXPECT_EQ(store_->list(CallState::suspended, 10, "").value().size(), 1u);
  // Paging through the children.
  auto first = store_->list_children(parent, 2, "").value();
  ASSERT_EQ(first.size(), 2u);
  auto rest = store_->list_children(parent, 2, first[1].id).value();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].id, kids[2].id);
  // A grandchild's root is the root.
  CallRecord child = claim(1200).at(0);
  ASSERT_TRUE(finish(child, poll(child, 1, 1, 1), 1200));
  EXPECT_EQ(children(child.id).at(0).root_id, parent);
}

TEST_P(StoreConformance, ResultsWaitForTheParentUntilMinResults) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 3, 2, 10);
  complete(kids[1], "second", 2000);
  EXPECT_EQ(get(parent).state, CallState::suspended);
  EXPECT_EQ(get(parent).ready, 1u);
  EXPECT_EQ(get(parent).outstanding, 2u);
  EXPECT_EQ(get(parent).next_attempt_at_ms, std::numeric_limits<int64_t>::max());  // not due
  complete(kids[0], "first", 3000);
  CallRecord resumed = claim_one(parent, 3001);
  EXPECT_TRUE(resumed.polled);
  EXPECT_EQ(resumed.poll_state, "state-1");
  ASSERT_EQ(resumed.results.size(), 2u);
  // In the order they arrived, with what each child answered.
  EXPECT_EQ(resumed.results[0].correlation_id, 2u);
  EXPECT_EQ(resumed.results[0].output, "second");
  EXPECT_EQ(resumed.results[0].dispatch_id, kids[1]);
  EXPECT_EQ(resumed.results[1].correlation_id, 1u);
  EXPECT_EQ(resumed.results[1].output, "first");
  EXPECT_EQ(resumed.results[1].status, 1);
}

TEST_P(StoreConformance, AResumeTakesAtMostMaxResultsAndTheRestWait) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 5, 5, 2);
  for (int i = 0; i < 5; ++i) complete(kids[i], "r" + std::to_string(i), 2000 + i);
  for (int round = 0; round < 3; ++round) {
    CallRecord p = claim_one(parent, 3000 + round);
    ASSERT_EQ(p.results.size(), round < 2 ? 2u : 1u) << "round " << round;
    EXPECT_EQ(p.results[0].output, "r" + std::to_string(round * 2));
    // Taken: the rest wait, and make the parent due at once (min 1 now).
    ASSERT_TRUE(finish(p, poll(p, 0, 1, 2), 3000 + round));
  }
  EXPECT_EQ(get(parent).ready, 0u);
  EXPECT_EQ(get(parent).outstanding, 0u);
}

TEST_P(StoreConformance, AResumeWithNoResultsWhenMaxWaitPasses) {
  const std::string parent = enqueue(call("t.workflow"));
  start_parent(parent, 1, 1, 1, 1000, /*wake_at=*/61'000);
  EXPECT_EQ(store_->next_due_ms().value().value_or(0), 1000);  // the child
  claim(1000);  // the child runs, and is never heard of again
  EXPECT_EQ(store_->next_due_ms().value(), std::optional<int64_t>(61'000));
  EXPECT_TRUE(claim(60'999).empty());
  CallRecord p = claim_one(parent, 61'000);
  EXPECT_TRUE(p.results.empty());
  EXPECT_EQ(p.poll_state, "state-1");
}

TEST_P(StoreConformance, AWaitEndsAtTheCallsExpiration) {
  NewCall c = call("t.workflow");
  c.expiration_at_ms = 30'000;
  const std::string parent = enqueue(c);
  start_parent(parent, 1, 1, 1, 1000);
  EXPECT_EQ(get(parent).next_attempt_at_ms, 30'000);
  claim(1000);
  EXPECT_TRUE(claim(29'999).empty());
  claim_one(parent, 30'000);
}

TEST_P(StoreConformance, ARetriedResumeIsHandedTheSameResultsAgain) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 1);
  complete(kids[0], "out", 2000);
  CallRecord p = claim_one(parent, 2001);
  ASSERT_EQ(p.results.size(), 1u);
  Outcome retry;
  retry.state = CallState::pending;
  retry.status = 6;
  retry.next_attempt_at_ms = 2500;
  retry.consumed.push_back(p.results[0].seq);  // not consumed: the attempt failed
  ASSERT_TRUE(finish(p, retry, 2002));
  EXPECT_EQ(get(parent).state, CallState::pending);
  EXPECT_TRUE(get(parent).polled);
  CallRecord again = claim_one(parent, 2500);
  ASSERT_EQ(again.results.size(), 1u);
  EXPECT_EQ(again.results[0].output, "out");
  EXPECT_EQ(again.attempts, 2u);
  // A stale lease cannot record anything.
  EXPECT_FALSE(finish(p, completed("x"), 2600));
}

TEST_P(StoreConformance, AResultArrivingWhileTheParentRunsWaitsForItsNextPoll) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 2, 1, 10);
  complete(kids[0], "a", 2000);
  CallRecord p = claim_one(parent, 2001);  // running, resumed with "a"
  complete(kids[1], "b", 2002);            // arrives meanwhile
  ASSERT_TRUE(finish(p, poll(p, 0, 1, 10), 2003));
  // Due at once: "b" is already there.
  CallRecord next = claim_one(parent, 2003);
  ASSERT_EQ(next.results.size(), 1u);
  EXPECT_EQ(next.results[0].output, "b");
}

TEST_P(StoreConformance, RefusedCallsResumeTheParentAtOnceWithTheError) {
  const std::string parent = enqueue(call("t.workflow"));
  CallRecord p = claim_one(parent, 1000);
  Outcome o = poll(p, 0, 1, 1);
  o.poll->error_type = "invalid_argument";
  o.poll->error_message = "call 0: endpoint 'ftp://x' is not an http:// or https:// URL";
  ASSERT_TRUE(finish(p, o, 1000));
  CallRecord again = claim_one(parent, 1000);
  EXPECT_EQ(again.poll_error_type, "invalid_argument");
  EXPECT_NE(again.poll_error_message.find("ftp://x"), std::string::npos);
  // The next Poll clears it.
  ASSERT_TRUE(finish(again, poll(again, 1, 1, 1), 1001));
  EXPECT_TRUE(get(parent).poll_error_type.empty());
}

TEST_P(StoreConformance, AParentThatEndsCancelsWhatItLeftUnfinished) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 3, 1, 10);
  complete(kids[0], "done", 2000);
  // Then the parent resumes; kids[1] is running, kids[2] pending, when the
  // parent ends.
  CallRecord p, k1;
  for (CallRecord& c : claim(2001)) {
    if (c.id == parent) {
      p = c;
    } else if (c.id == kids[1]) {
      k1 = c;
    } else {
      Outcome back;
      back.state = CallState::pending;
      back.next_attempt_at_ms = 2001;
      back.parent_id = c.parent_id;
      ASSERT_TRUE(store_->finish_sync(c.id, c.lease, back, 2001).value());
    }
  }
  ASSERT_EQ(p.id, parent);
  ASSERT_EQ(k1.id, kids[1]);
  Outcome end = completed("the end");
  for (const ChildResult& r : p.results) end.consumed.push_back(r.seq);
  ASSERT_TRUE(finish(p, end, 2002));
  EXPECT_EQ(get(parent).state, CallState::completed);
  EXPECT_EQ(get(kids[0]).state, CallState::completed);  // ended before: stays
  EXPECT_EQ(get(kids[1]).state, CallState::cancelled);  // was running
  EXPECT_EQ(get(kids[2]).state, CallState::cancelled);  // was pending
  EXPECT_EQ(get(kids[2]).error_type, "canceled");
  // The running child's late outcome is refused.
  EXPECT_FALSE(finish(k1, completed("late"), 2003));
  EXPECT_TRUE(claim(3000).empty());
  // A grandchild goes too.
  const std::string other = enqueue(call("t.workflow"));
  auto level1 = start_parent(other, 1, 1, 1, 4000);
  CallRecord mid = claim_one(level1[0], 4001);
  ASSERT_TRUE(finish(mid, poll(mid, 1, 1, 1), 4002));
  const std::string grandchild = children(level1[0]).at(0).id;
  EXPECT_EQ(store_->cancel_sync(other, 4003).value().state, CallState::cancelled);
  EXPECT_EQ(get(level1[0]).state, CallState::cancelled);
  EXPECT_EQ(get(grandchild).state, CallState::cancelled);
  EXPECT_EQ(get(grandchild).root_id, other);
}

TEST_P(StoreConformance, ACancelledChildIsAResultForItsParent) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 2, 1, 10);
  EXPECT_EQ(store_->cancel_sync(kids[1], 1500).value().state, CallState::cancelled);
  CallRecord p = claim_one(parent, 1500);
  ASSERT_EQ(p.results.size(), 1u);
  EXPECT_EQ(p.results[0].correlation_id, 2u);
  EXPECT_EQ(p.results[0].error_type, "canceled");
  EXPECT_EQ(p.results[0].dispatch_id, kids[1]);
  EXPECT_EQ(get(parent).outstanding, 1u);
}

TEST_P(StoreConformance, AFailedChildIsAResultWithItsError) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 10);
  CallRecord child = claim_one(kids[0], 1500);
  Outcome failed;
  failed.state = CallState::failed;
  failed.status = 15;
  failed.error_type = "not_found";
  failed.error_message = "no order o-1";
  ASSERT_TRUE(finish(child, failed, 1500));
  CallRecord p = claim_one(parent, 1500);
  ASSERT_EQ(p.results.size(), 1u);
  EXPECT_EQ(p.results[0].status, 15);
  EXPECT_EQ(p.results[0].error_type, "not_found");
  EXPECT_EQ(p.results[0].error_message, "no order o-1");
  EXPECT_TRUE(p.results[0].output.empty());
}

TEST_P(StoreConformance, ATailCallGoesOnAsAnotherCallWithTheSameId) {
  NewCall first = call("t.loop");
  first.idempotency_key = "loop-1";
  const std::string id = enqueue(first, 1000);
  auto kids = start_parent(id, 2, 2, 2);
  complete(kids[0], "one", 2000);
  EXPECT_EQ(store_->cancel_sync(kids[1], 2002).value().state, CallState::cancelled);  // both in: due
  CallRecord resumed = claim_one(id, 2003);
  Outcome tail;
  tail.state = CallState::pending;
  tail.status = 1;
  NewCall next = call("t.loop2");
  next.input = "round-2";
  next.expiration_at_ms = 99'000;
  tail.tail_call = next;
  for (const ChildResult& r : resumed.results) tail.consumed.push_back(r.seq);
  ASSERT_TRUE(finish(resumed, tail, 2004));
  CallRecord after = get(id);
  EXPECT_EQ(after.state, CallState::pending);
  EXPECT_EQ(after.function, "t.loop2");
  EXPECT_EQ(after.input, "round-2");
  EXPECT_EQ(after.expiration_at_ms, 99'000);
  EXPECT_EQ(after.created_at_ms, 1000);
  EXPECT_EQ(after.idempotency_key, "loop-1");
  EXPECT_EQ(after.attempts, 0u);
  EXPECT_FALSE(after.polled);
  EXPECT_EQ(after.ready, 0u);
  EXPECT_EQ(after.outstanding, 0u);
  CallRecord fresh = claim_one(id, 2004);
  EXPECT_FALSE(fresh.polled);
  EXPECT_TRUE(fresh.results.empty());
  EXPECT_EQ(fresh.function, "t.loop2");
  // The key still names the same call.
  EXPECT_EQ(enqueue(first, 3000), id);
}

TEST_P(StoreConformance, ARestartForgetsTheStateTheChildrenAndTheResults) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 2, 1, 10);
  complete(kids[0], "a", 2000);
  CallRecord p = claim_one(parent, 2001);
  Outcome restart;
  restart.state = CallState::pending;
  restart.status = 8;  // INCOMPATIBLE_STATE
  restart.restart = true;
  restart.next_attempt_at_ms = 2100;
  for (const ChildResult& r : p.results) restart.consumed.push_back(r.seq);
  ASSERT_TRUE(finish(p, restart, 2002));
  EXPECT_EQ(get(kids[1]).state, CallState::cancelled);
  CallRecord again = claim_one(parent, 2100);
  EXPECT_FALSE(again.polled);
  EXPECT_TRUE(again.poll_state.empty());
  EXPECT_TRUE(again.results.empty());
  EXPECT_EQ(again.input, "in");
}

TEST_P(StoreConformance, RetryingAFailedWorkflowStartsItFromItsInput) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 1);
  complete(kids[0], "a", 2000);
  CallRecord p = claim_one(parent, 2001);
  Outcome failed;
  failed.state = CallState::failed;
  failed.status = 7;
  failed.error_type = "internal";
  for (const ChildResult& r : p.results) failed.consumed.push_back(r.seq);
  ASSERT_TRUE(finish(p, failed, 2002));
  CallRecord retried = store_->retry_sync(parent, 3000).value();
  EXPECT_EQ(retried.state, CallState::pending);
  EXPECT_FALSE(retried.polled);
  CallRecord fresh = claim_one(parent, 3000);
  EXPECT_FALSE(fresh.polled);
  EXPECT_TRUE(fresh.results.empty());
}

TEST_P(StoreConformance, AChildOfAnEndedParentLeavesNoResult) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 1);
  CallRecord child = claim_one(kids[0], 1500);
  EXPECT_EQ(store_->cancel_sync(parent, 1600).value().state, CallState::cancelled);
  EXPECT_FALSE(finish(child, completed("late"), 1700));  // cancelled with its parent
  EXPECT_EQ(get(parent).ready, 0u);
}

TEST_P(StoreConformance, ResumesAreLeasedBeforeNewCalls) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 1);
  complete(kids[0], "a", 2000);
  for (int i = 0; i < 5; ++i) enqueue(call("t.other"), 2000);
  auto first = claim(2001, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].id, parent);
}

TEST_P(StoreConformance, AResumeForASaturatedEndpointWaits) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 1);
  complete(kids[0], "a", 2000);
  ClaimOptions o;
  o.now_ms = 2001;
  o.max = 10;
  o.per_key_max = 10;
  o.lease_until_ms = 9000;
  o.skip_endpoints.push_back("http://127.0.0.1:1");
  EXPECT_TRUE(store_->claim_sync(o).value().empty());
  o.skip_endpoints.clear();
  EXPECT_EQ(store_->claim_sync(o).value().size(), 1u);
}

TEST_P(StoreConformance, AReleasedResumeKeepsItsStateAndResults) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 1);
  complete(kids[0], "a", 2000);
  CallRecord p = claim_one(parent, 2001);
  ASSERT_EQ(store_->release_leases_sync(2002, true).value(), 1u);
  CallRecord again = claim_one(parent, 2003);
  EXPECT_EQ(again.poll_state, "state-1");
  ASSERT_EQ(again.results.size(), 1u);
  EXPECT_EQ(again.results[0].output, "a");
}

const Backend kBackends[] = {
    {"sqlite",
     [](const std::string& path) {
       SqliteOptions o;
       o.path = path;
       o.fsync_commits = false;
       o.outcome_hold = std::chrono::microseconds(0);
       auto s = open_sqlite_store(o);
       EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
       return s.ok() ? std::move(s).value() : nullptr;
     }},
    {"memory", [](const std::string&) { return open_memory_store(); }},
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::ValuesIn(kBackends), PrintBackend);

}  // namespace
}  // namespace dispatch::scheduler
