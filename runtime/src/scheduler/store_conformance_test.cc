// What every Store backend must do (store.h): enqueue with idempotency
// keys, leases that end an attempt once, fair claims, retries at their
// time, cancel and retry, lapsed leases, deletion of ended calls, lists and
// counts; and for calls that make calls: delayed calls, a Poll stored with
// its children in one write, results waiting per parent and handed over at
// most max_results a time, wake-ups on min_results, max_wait and
// expiration, cascades of cancellation, tail calls, restarts and retries.
// Each test runs on every backend (SQLite on disk, memory, JetStream on a
// nats-server of the test's own; the basics also on a 3-node cluster with
// three replicas), so the scheduler engine gets the same
// answers from all. What one backend does beyond the contract is tested
// beside it (sqlite_store_test, jetstream_store_test).
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "dispatch/jetstream/jetstream_store.h"
#include "dispatch/memory/memory_store.h"
#include "dispatch/scheduler/store.h"
#include "dispatch/sqlite/sqlite_store.h"
#include "jetstream/testing/nats_server.h"

namespace dispatch::scheduler {
namespace {

using Factory = std::function<std::unique_ptr<Store>(const std::string& path)>;

struct Backend {
  const char* name;
  Factory open;
  // Why this backend cannot run here (empty: it can).
  std::function<std::string()> missing = [] { return std::string(); };
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
    if (std::string why = GetParam().missing(); !why.empty()) GTEST_SKIP() << why;
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

  static NewCall call(std::string function, std::string key = "") {
    NewCall c;
    c.function = std::move(function);
    c.endpoint = "http://127.0.0.1:1";
    c.input_type_url = "type.googleapis.com/t.R";
    c.input = "in";
    c.idempotency_key = std::move(key);
    return c;
  }
  static ClaimOptions at(int64_t now, std::size_t max = 64) {
    ClaimOptions o;
    o.now_ms = now;
    o.max = max;
    o.lease_until_ms = now + 60000;
    return o;
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
    o.leased_as(leased);
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
        back.leased_as(c);
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

// The count of restarts spans the call's life: a Poll resets attempts but
// keeps restarts (the scheduler bounds restarts with it); a tail call and a
// retry start it again from 0.
TEST_P(StoreConformance, RestartsAreCountedAcrossPollsUntilATailCallOrARetry) {
  const std::string id = enqueue(call("t.workflow"));
  // Runs `id` from its input to a Poll for one child, completes the child
  // and answers the resume with a restart.
  auto poll_then_restart = [&](int64_t now) {
    auto kids = start_parent(id, 1, 1, 1, now);
    EXPECT_EQ(get(id).attempts, 0u);
    complete(kids.back(), "a", now + 1);  // this run's child (the list holds earlier runs' too)
    CallRecord p = claim_one(id, now + 2);
    EXPECT_TRUE(p.polled);
    Outcome restart;
    restart.state = CallState::pending;
    restart.status = 8;  // INCOMPATIBLE_STATE
    restart.restart = true;
    restart.next_attempt_at_ms = now + 3;
    for (const ChildResult& r : p.results) restart.consumed.push_back(r.seq);
    EXPECT_TRUE(finish(p, restart, now + 2));
  };
  EXPECT_EQ(get(id).restarts, 0u);
  poll_then_restart(1000);
  EXPECT_EQ(get(id).restarts, 1u);
  EXPECT_EQ(get(id).attempts, 1u);  // the resume's delivery
  poll_then_restart(2000);
  EXPECT_EQ(get(id).restarts, 2u);  // the Poll between the two kept it
  // A tail call: another function's life, counted from 0.
  CallRecord fresh = claim_one(id, 3000);
  EXPECT_FALSE(fresh.polled);
  EXPECT_EQ(fresh.restarts, 2u);
  Outcome tail;
  tail.state = CallState::pending;
  tail.status = 1;
  tail.tail_call = call("t.workflow2");
  ASSERT_TRUE(finish(fresh, tail, 3000));
  EXPECT_EQ(get(id).restarts, 0u);
  poll_then_restart(4000);
  EXPECT_EQ(get(id).restarts, 1u);
  // Failed, then retried by hand: counted from 0 again.
  CallRecord last = claim_one(id, 5000);
  Outcome failed;
  failed.state = CallState::failed;
  failed.status = 8;
  failed.error_type = "test";
  ASSERT_TRUE(finish(last, failed, 5000));
  EXPECT_EQ(get(id).restarts, 1u);
  EXPECT_EQ(store_->retry_sync(id, 6000).value().restarts, 0u);
  EXPECT_EQ(get(id).restarts, 0u);
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

// An attempt that lost its lease (released, the call leased again) changes
// nothing in the tree with its outcome: no result for the parent, no
// children, no results consumed.
TEST_P(StoreConformance, AnOutcomeUnderALostLeaseChangesNothingInTheTree) {
  const std::string parent = enqueue(call("t.workflow"));
  auto kids = start_parent(parent, 1, 1, 1);
  CallRecord lost_child = claim_one(kids[0], 2000);
  ASSERT_EQ(store_->release_leases_sync(2001, true).value(), 1u);
  CallRecord child = claim_one(kids[0], 2002);
  EXPECT_FALSE(finish(lost_child, completed("late"), 2003));
  EXPECT_EQ(get(parent).ready, 0u);
  EXPECT_EQ(get(parent).outstanding, 1u);
  ASSERT_TRUE(finish(child, completed("a"), 2004));
  EXPECT_EQ(get(parent).ready, 1u);

  CallRecord lost_parent = claim_one(parent, 2100);
  ASSERT_EQ(lost_parent.results.size(), 1u);
  ASSERT_EQ(store_->release_leases_sync(2101, true).value(), 1u);
  CallRecord resumed = claim_one(parent, 2102);
  EXPECT_FALSE(finish(lost_parent, poll(lost_parent, 2, 1, 1, 0, "lost"), 2103));
  EXPECT_FALSE(finish(lost_parent, completed("lost"), 2103));
  CallRecord unchanged = get(parent);
  EXPECT_EQ(unchanged.state, CallState::running);
  EXPECT_EQ(unchanged.poll_state, "state-1");
  EXPECT_EQ(unchanged.ready, 1u);
  EXPECT_EQ(children(parent).size(), 1u);
  ASSERT_EQ(resumed.results.size(), 1u);
  ASSERT_TRUE(finish(resumed, poll(resumed, 1, 1, 1, 0, "state-2"), 2104));
  CallRecord after = get(parent);
  EXPECT_EQ(after.state, CallState::suspended);
  EXPECT_EQ(after.poll_state, "state-2");
  EXPECT_EQ(after.ready, 0u);
  EXPECT_EQ(after.outstanding, 1u);
  EXPECT_EQ(children(parent).size(), 2u);
}

// ---- the basic contract: one call at a time ----

TEST_P(StoreConformance, EnqueueThenGet) {
  NewCall c = call("shop.add");
  c.input = std::string("\x00\x01", 2);
  std::string id = enqueue(c);
  EXPECT_EQ(id.size(), 32u);
  const CallRecord r = get(id);
  EXPECT_EQ(r.function, "shop.add");
  EXPECT_EQ(r.state, CallState::pending);
  EXPECT_EQ(r.input, std::string("\x00\x01", 2));
  EXPECT_EQ(r.root_id, id);  // a call without a root is its own root
  EXPECT_EQ(r.created_at_ms, 1000);
  EXPECT_FALSE(store_->get("nope").value().has_value());
}

TEST_P(StoreConformance, TraceContextIsKeptWithTheCall) {
  NewCall c = call("f");
  c.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  c.tracestate = "rojo=1";
  const std::string id = enqueue(c);
  EXPECT_EQ(get(id).traceparent, c.traceparent);
  EXPECT_EQ(get(id).tracestate, "rojo=1");
  auto claimed = claim(2000);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].traceparent, c.traceparent);
}

TEST_P(StoreConformance, IdempotencyKeyReturnsTheFirstCall) {
  std::string a = enqueue(call("f", "order-1"));
  std::string b = enqueue(call("f", "order-1"));
  EXPECT_EQ(a, b);
  std::vector<NewCall> batch{call("f", "order-2"), call("f", "order-2"), call("f")};
  auto ids = store_->enqueue_sync(std::move(batch), 2000).value();
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_NE(ids[0], ids[2]);
  EXPECT_EQ(store_->count_by_state().value()[1], 3);  // order-1, order-2, and one without key
  // Any bytes make a key.
  const std::string odd = enqueue(call("f", std::string("k\x00/\xff .*>", 9)));
  EXPECT_EQ(enqueue(call("f", std::string("k\x00/\xff .*>", 9))), odd);
  EXPECT_NE(enqueue(call("f", std::string("k\x00/\xff .*", 8))), odd);
  EXPECT_EQ(store_->enqueue_sync({}, 1000).error().code(), Code::invalid_argument);
}

TEST_P(StoreConformance, AttemptEndsExactlyOnceUnderItsLease) {
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
  const CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::completed);
  EXPECT_EQ(r.output, "out");
  EXPECT_EQ(r.updated_at_ms, 1100);
  EXPECT_FALSE(store_->finish_sync("nope", claimed[0].lease, done, 1200).value());
}

TEST_P(StoreConformance, RetryOutcomeWaitsForItsTime) {
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

TEST_P(StoreConformance, CancelAndRetryTransitions) {
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
  EXPECT_EQ(store_->retry_sync("missing", 1).error().code(), Code::not_found);

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
  EXPECT_EQ(get(id2).state, CallState::cancelled);
}

TEST_P(StoreConformance, ClaimIsFairAcrossKeys) {
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

TEST_P(StoreConformance, ClaimSkipsSaturatedEndpoints) {
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

TEST_P(StoreConformance, LapsedLeasesReturnToPending) {
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

TEST_P(StoreConformance, ListPagesByState) {
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

TEST_P(StoreConformance, EveryStateListsAndCounts) {
  // A call moving through the states shows in exactly one.
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

TEST_P(StoreConformance, NextDueIsTheEarliestAcrossKeys) {
  EXPECT_EQ(store_->next_due_ms().value(), std::nullopt);
  for (auto [function, due] : {std::make_pair("b", 7000), std::make_pair("a", 9000), std::make_pair("c", 8000)}) {
    enqueue(call(function), due);
  }
  EXPECT_EQ(store_->next_due_ms().value().value(), 7000);
  auto leased = store_->claim_sync(at(7000)).value();  // takes b's call
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].function, "b");
  EXPECT_EQ(store_->next_due_ms().value().value(), 8000);
}

TEST_P(StoreConformance, DeleteEndedTakesEndedCallsAndTheirKeysOnly) {
  // Ends every due call at `now` as `state`.
  auto end_all = [&](int64_t now, CallState state) {
    const std::vector<CallRecord> due = store_->claim_sync(at(now, 1000)).value();
    for (const CallRecord& c : due) {
      Outcome o;
      o.state = state;
      ASSERT_TRUE(store_->finish_sync(c.id, c.lease, o, now).value());
    }
  };
  const std::string completed = enqueue(call("f", "order-1"), 1000);
  end_all(2000, CallState::completed);
  const std::string failed = enqueue(call("f"), 1000);
  end_all(4999, CallState::failed);
  const std::string cancelled = enqueue(call("f"), 1000);
  ASSERT_TRUE(store_->cancel_sync(cancelled, 3000).ok());
  const std::string at_cutoff = enqueue(call("f", "order-2"), 1000);
  end_all(5000, CallState::completed);  // not before the cutoff
  // A retried call is pending again, and stays.
  const std::string retried = enqueue(call("f"), 1000);
  end_all(1000, CallState::failed);
  ASSERT_TRUE(store_->retry_sync(retried, 1500).ok());
  const std::string running = enqueue(call("f"), 1000);
  ASSERT_EQ(claim(1000).size(), 1u);
  NewCall later = call("f");
  later.not_before_ms = 90'000;
  const std::string pending = enqueue(later, 1000);

  EXPECT_EQ(store_->delete_ended_sync(5000).value(), 3u);
  EXPECT_FALSE(store_->get(completed).value().has_value());
  EXPECT_FALSE(store_->get(failed).value().has_value());
  EXPECT_FALSE(store_->get(cancelled).value().has_value());
  for (const std::string& id : {at_cutoff, pending, running, retried}) {
    EXPECT_TRUE(store_->get(id).value().has_value()) << id;
  }
  EXPECT_EQ(store_->list(std::nullopt, 100, "").value().size(), 4u);
  EXPECT_EQ(store_->stats().deleted, 3u);
  EXPECT_EQ(store_->delete_ended_sync(5000).value(), 0u);
  // The deleted call's key makes a new call; the kept one's still deduplicates.
  const std::string again = enqueue(call("f", "order-1"), 10'000);
  EXPECT_NE(again, completed);
  EXPECT_EQ(enqueue(call("f", "order-2"), 10'000), at_cutoff);
  // A page goes on past a deleted call.
  EXPECT_TRUE(store_->list(std::nullopt, 100, completed).ok());
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
    {"jetstream",
     [](const std::string& path) -> std::unique_ptr<Store> {
       // One server for the whole run; a bucket per test, named after it.
       static testing::NatsServer nats;
       static const bool started = nats.start();
       EXPECT_TRUE(started) << nats.failure();
       if (!started) return nullptr;
       JetStreamOptions o;
       o.servers = {nats.url()};
       const std::size_t slash = path.rfind('/');
       o.bucket = path.substr(slash + 1, path.size() - slash - 1 - 3);  // conformance_<test>_<n>
       // Delete markers leave the stream while the contract runs.
       o.marker_grace = std::chrono::milliseconds(200);
       auto s = open_jetstream_store(o);
       EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
       return s.ok() ? std::move(s).value() : nullptr;
     },
     [] { return testing::NatsServer::available() ? std::string() : testing::NatsServer::kMissing; }},
    {"jetstream_r3",
     [](const std::string& path) -> std::unique_ptr<Store> {
       // Three clustered servers for the whole run; a bucket per test with
       // three replicas. jetstream_store_test kills nodes under it.
       static testing::NatsCluster cluster;
       static const bool started = cluster.start();
       EXPECT_TRUE(started) << cluster.failure();
       if (!started) return nullptr;
       JetStreamOptions o;
       o.servers = cluster.urls();
       o.replicas = 3;
       const std::size_t slash = path.rfind('/');
       o.bucket = path.substr(slash + 1, path.size() - slash - 1 - 3);
       auto s = open_jetstream_store(o);
       EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
       return s.ok() ? std::move(s).value() : nullptr;
     },
     [] {
       if (!testing::NatsServer::available()) return std::string(testing::NatsServer::kMissing);
       // The basics only on R3: the store's code is the same as on R1, and
       // a replicated write costs a round of the cluster's consensus.
       static const std::set<std::string> kBasics = {
           "EnqueueThenGet", "IdempotencyKeyReturnsTheFirstCall", "AttemptEndsExactlyOnceUnderItsLease",
           "LapsedLeasesReturnToPending", "ADelayedCallIsNotLeasedBeforeItsTime",
           "APollKeepsTheStateAndMakesTheChildrenInOneWrite", "CancelAndRetryTransitions"};
       std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
       name = name.substr(0, name.find('/'));
       return kBasics.count(name) != 0 ? std::string()
                                       : std::string("R3 runs the basics only (the R1 backend runs every test)");
     }},
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::ValuesIn(kBackends), PrintBackend);

}  // namespace
}  // namespace dispatch::scheduler
