// Scheduler logic with fake endpoints and a manual clock: results recorded,
// permanent errors not retried, backoff within its jitter caps, max attempts,
// expiration, AIMD on 429, fairness share, cancel, idempotency, batch through
// the Dispatch route, admin routes, recovery after a restart; Poll: children,
// resumes with results, timers, refused calls, tail calls, restarts (and
// their bound and backoff, however many Polls come between them); bad
// Polls (out-of-range bounds, 10,000 calls, oversized or empty states, an
// unreachable child endpoint) on the in-memory store.
#include "dispatch/scheduler/scheduler.h"

#include <google/protobuf/duration.pb.h>
#include <gtest/gtest.h>

#include <dirent.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "dispatch/core/in_process.h"
#include "dispatch/metrics/registry.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/memory/memory_store.h"
#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/sqlite/sqlite_store.h"
#include "dispatch/transport/server.h"
#include "durable/protocol.h"
#include "scheduler/coroutine.h"
#include "scheduler/policy.h"
#include "scheduler/trace.h"
#include "transport/test_multi_port_server.h"

namespace dispatch::scheduler {
namespace {

namespace sdk = ::dispatch::sdk::v1;
namespace admin = ::dispatch::scheduler::v1;
using namespace std::string_literals;

class ManualClock final : public Clock {
 public:
  int64_t now_ms() override { return t.load(); }
  std::atomic<int64_t> t{1'000'000};
};

struct Delivery {
  std::string function;
  std::string id;
  std::string attempt;
  std::string traceparent;
};

// An endpoint answering inline with whatever `answer` says.
class FakeEndpoint final : public Client {
 public:
  using Answer = std::function<Result<std::string>(const sdk::RunRequest&)>;
  explicit FakeEndpoint(Answer answer) : answer_(std::move(answer)) {}
  void call_async(std::string_view path, std::string request, const CallOptions& options,
                  Callback done) override {
    EXPECT_EQ(path, kRunPath);
    sdk::RunRequest req;
    EXPECT_TRUE(req.ParseFromString(request));
    Delivery d{req.function(), req.dispatch_id(), "", ""};
    for (auto& [k, v] : options.headers) {
      if (k == "dispatch-attempt") d.attempt = v;
      if (k == "traceparent") d.traceparent = v;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      deliveries_.push_back(d);
    }
    if (hold_) {
      std::lock_guard<std::mutex> lock(mu_);
      held_.push_back(std::move(done));
      return;
    }
    done(answer_(req));
  }
  std::vector<Delivery> deliveries() {
    std::lock_guard<std::mutex> lock(mu_);
    return deliveries_;
  }
  bool hold_ = false;  // never answer (a crash mid-delivery)

 private:
  Answer answer_;
  std::mutex mu_;
  std::vector<Delivery> deliveries_;
  std::vector<Callback> held_;
};

std::string run_response(sdk::Status status, std::string output = "", std::string message = "") {
  sdk::RunResponse res;
  res.set_status(status);
  if (status == sdk::STATUS_OK) {
    protocol::pack_any("t.Out", std::move(output), res.mutable_exit()->mutable_result()->mutable_output());
  } else {
    res.mutable_exit()->mutable_result()->mutable_error()->set_type("test");
    res.mutable_exit()->mutable_result()->mutable_error()->set_message(std::move(message));
  }
  return res.SerializeAsString();
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "sched_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    remove_files();
  }
  void TearDown() override {
    scheduler_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((path_ + suffix).c_str());
  }
  Scheduler& open(std::shared_ptr<Client> endpoint, FunctionPolicy policy = {},
                  std::function<void(SchedulerOptions&)> tweak = {}) {
    scheduler_.reset();
    SchedulerOptions o;
    o.clock = &clock_;
    o.seed = 42;
    o.default_policy = policy;
    o.logger = Logger(LogLevel::off);
    o.client_factory = [endpoint](const std::string&) -> Result<std::shared_ptr<Client>> {
      return endpoint;
    };
    if (tweak) tweak(o);
    if (!o.store) {
      SqliteOptions so;
      so.path = path_;
      auto store = open_sqlite_store(so);
      EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().what());
      if (store.ok()) o.store = std::move(store).value();
    }
    auto s = Scheduler::open(std::move(o));
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
    scheduler_ = std::move(s).value();
    return *scheduler_;
  }
  static NewCall call(std::string function, std::string input = "in") {
    NewCall c;
    c.function = std::move(function);
    c.endpoint = "http://fake";
    c.input_type_url = "type.googleapis.com/t.In";
    c.input = std::move(input);
    return c;
  }
  std::string dispatch(NewCall c) {
    std::vector<NewCall> v;
    v.push_back(std::move(c));
    return scheduler_->dispatch(std::move(v)).value().at(0);
  }
  std::size_t round() {
    auto n = scheduler_->step();
    EXPECT_TRUE(n.ok());
    scheduler_->wait_idle();
    return n.ok() ? *n : 0;
  }
  CallRecord get(const std::string& id) { return scheduler_->get(id).value(); }

  std::string path_;
  ManualClock clock_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, DeliversAndRecordsTheResult) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest& r) {
    EXPECT_EQ(r.input().type_url(), "type.googleapis.com/t.In");
    EXPECT_EQ(r.root_dispatch_id(), r.dispatch_id());
    EXPECT_TRUE(r.has_creation_time());
    EXPECT_TRUE(r.has_expiration_time());
    return run_response(sdk::STATUS_OK, "out:" + r.input().value());
  });
  open(ep);
  std::string id = dispatch(call("shop.add", "x"));
  EXPECT_EQ(round(), 1u);
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::completed);
  EXPECT_EQ(r.output, "out:x");
  EXPECT_EQ(r.output_type_url, "type.googleapis.com/t.Out");
  EXPECT_EQ(r.attempts, 1u);
  ASSERT_EQ(ep->deliveries().size(), 1u);
  EXPECT_EQ(ep->deliveries()[0].id, id);
  EXPECT_EQ(ep->deliveries()[0].attempt, "1");
  EXPECT_EQ(round(), 0u);  // nothing more to do
  EXPECT_EQ(scheduler_->stats().completed, 1u);
}

// end_waits() (a server's drain) answers a Get waiting for a call's end at
// once with the call as it is, and later Gets do not wait.
TEST_F(SchedulerTest, EndWaitsAnswersWaitingGetsAtOnce) {
  open(std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK, ""); }));
  const std::string id = dispatch(call("t.f"));  // never delivered: no round
  std::promise<Result<CallRecord>> got;
  std::thread waiter([&] { got.set_value(scheduler_->get(id, std::chrono::seconds(30))); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto began = std::chrono::steady_clock::now();
  scheduler_->end_waits();
  auto answer = got.get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the Get still waits";
  waiter.join();
  auto r = answer.get();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->state, CallState::pending);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(5));
  const auto later = std::chrono::steady_clock::now();
  EXPECT_EQ(scheduler_->get(id, std::chrono::seconds(30)).value().state, CallState::pending);
  EXPECT_LT(std::chrono::steady_clock::now() - later, std::chrono::seconds(5));
}

TEST_F(SchedulerTest, TheDispatchRequestsTraceGoesWithTheCallToItsRun) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK, "x"); });
  open(ep);
  sdk::DispatchRequest req;
  sdk::Call* c = req.add_calls();
  c->set_function("f");
  c->set_endpoint("http://fake");
  protocol::pack_any("t.In", "in", c->mutable_input());
  CallContext context;
  context.trace = start_call_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rojo=1");
  const Method* route = scheduler_->table().find("/dispatch.sdk.v1.DispatchService/Dispatch");
  ASSERT_NE(route, nullptr);
  auto answer = scheduler_->table().invoke(*route, req.SerializeAsString(), context);
  ASSERT_TRUE(answer.ok()) << answer.error().what();
  sdk::DispatchResponse ids;
  ASSERT_TRUE(ids.ParseFromString(*answer));
  // Kept with the call (it survives a restart), and sent with its Run.
  CallRecord stored = get(ids.dispatch_ids(0));
  EXPECT_EQ(stored.traceparent, context.trace.traceparent());
  EXPECT_EQ(stored.tracestate, "rojo=1");
  round();
  ASSERT_EQ(ep->deliveries().size(), 1u);
  auto sent = parse_traceparent(ep->deliveries()[0].traceparent);
  ASSERT_TRUE(sent);
  EXPECT_EQ(context.trace.trace_id, sent->trace_id);
  // A call dispatched with no trace sends none.
  dispatch(call("g"));
  round();
  ASSERT_EQ(ep->deliveries().size(), 2u);
  EXPECT_TRUE(ep->deliveries()[1].traceparent.empty());
}

TEST(CarryTrace, AChildContinuesItsParentsTraceUnlessItHasOne) {
  CallRecord parent;
  parent.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  parent.tracestate = "a=1";
  NewCall child;
  carry_trace(parent, child);
  EXPECT_EQ(child.traceparent, parent.traceparent);
  EXPECT_EQ(child.tracestate, "a=1");
  NewCall own;
  own.traceparent = "00-11111111111111111111111111111111-2222222222222222-00";
  carry_trace(parent, own);
  EXPECT_EQ(own.traceparent, "00-11111111111111111111111111111111-2222222222222222-00");
}

TEST_F(SchedulerTest, MetricsCountDeliveriesRetriesAndShowStatesAndLimits) {
  int answers = 0;
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest&) {
    return ++answers == 1 ? run_response(sdk::STATUS_TEMPORARY_ERROR, "", "later") : run_response(sdk::STATUS_OK, "x");
  });
  FunctionPolicy policy;
  policy.max_backoff = std::chrono::milliseconds(1);
  policy.min_backoff = std::chrono::milliseconds(1);
  open(ep, policy);
  dispatch(call("f"));
  round();
  clock_.t += 1000;
  round();
  const std::string text = scheduler_->metrics()->expose();
  EXPECT_NE(text.find("dispatch_scheduler_deliveries_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dispatch_scheduler_retries_total{status=\"STATUS_TEMPORARY_ERROR\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("dispatch_scheduler_outcomes_total{outcome=\"completed\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dispatch_scheduler_calls{state=\"completed\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dispatch_scheduler_endpoint_concurrency_limit{endpoint=\"http://fake\"}"), std::string::npos)
      << text;
  EXPECT_NE(text.find("dispatch_scheduler_queue_delay_seconds_count 2\n"), std::string::npos) << text;
}

TEST_F(SchedulerTest, PermanentErrorsAreNotRetried) {
  auto ep = std::make_shared<FakeEndpoint>(
      [](const sdk::RunRequest&) { return run_response(sdk::STATUS_PERMANENT_ERROR, "", "bad order"); });
  open(ep);
  std::string id = dispatch(call("f"));
  round();
  clock_.t += 3'600'000;
  round();
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::failed);
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.status, static_cast<int>(RunStatus::permanent_error));
  EXPECT_EQ(r.error_message, "bad order");
  EXPECT_EQ(ep->deliveries().size(), 1u);
}

TEST_F(SchedulerTest, TemporaryErrorsBackOffWithinJitterCapsUntilMaxAttempts) {
  auto ep = std::make_shared<FakeEndpoint>(
      [](const sdk::RunRequest&) { return run_response(sdk::STATUS_TEMPORARY_ERROR, "", "busy"); });
  FunctionPolicy p;
  p.min_backoff = std::chrono::milliseconds(100);
  p.max_backoff = std::chrono::milliseconds(1000);
  p.max_attempts = 8;
  open(ep, p);
  std::string id = dispatch(call("f"));
  const int64_t caps[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (uint32_t attempt = 1; attempt <= 7; ++attempt) {
    ASSERT_EQ(round(), 1u) << "attempt " << attempt;
    CallRecord r = get(id);
    ASSERT_EQ(r.state, CallState::pending);
    EXPECT_EQ(r.attempts, attempt);
    const int64_t wait = r.next_attempt_at_ms - clock_.t;
    EXPECT_GE(wait, 0);
    EXPECT_LE(wait, caps[attempt - 1]) << "attempt " << attempt;
    if (wait > 0) {
      clock_.t += wait - 1;
      EXPECT_EQ(round(), 0u) << "delivered before its backoff elapsed";
      clock_.t += 1;
    }
  }
  ASSERT_EQ(round(), 1u);
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::failed);
  EXPECT_EQ(r.attempts, 8u);
  EXPECT_NE(r.error_message.find("gave up after 8 attempts: busy"), std::string::npos) << r.error_message;
  EXPECT_EQ(ep->deliveries().size(), 8u);
  EXPECT_EQ(ep->deliveries().back().attempt, "8");
}

TEST(Backoff, CapsDoubleAndJitterSpansTheRange) {
  FunctionPolicy p;
  p.min_backoff = std::chrono::milliseconds(50);
  p.max_backoff = std::chrono::milliseconds(30'000);
  EXPECT_EQ(policy::backoff_cap_ms(1, p), 50);
  EXPECT_EQ(policy::backoff_cap_ms(2, p), 100);
  EXPECT_EQ(policy::backoff_cap_ms(10, p), 25'600);
  EXPECT_EQ(policy::backoff_cap_ms(11, p), 30'000);
  EXPECT_EQ(policy::backoff_cap_ms(1000, p), 30'000);
  std::mt19937_64 rng(7);
  int64_t lo = 1 << 30, hi = -1;
  for (int i = 0; i < 10'000; ++i) {
    int64_t v = policy::full_jitter_ms(1000, rng);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_LT(lo, 10);
  EXPECT_GT(hi, 990);
  EXPECT_LE(hi, 1000);
}

TEST_F(SchedulerTest, ExpiredCallsGetAFinalStatus) {
  auto ep = std::make_shared<FakeEndpoint>(
      [](const sdk::RunRequest&) { return run_response(sdk::STATUS_THROTTLED, "", "slow down"); });
  FunctionPolicy p;
  p.max_attempts = 0;
  p.min_backoff = std::chrono::milliseconds(1000);
  p.max_backoff = std::chrono::milliseconds(1000);
  open(ep, p);
  // Never delivered: expired while waiting.
  NewCall late = call("f");
  late.expiration_at_ms = clock_.t + 10;
  std::string a = dispatch(late);
  clock_.t += 20;
  round();
  CallRecord ra = get(a);
  EXPECT_EQ(ra.state, CallState::failed);
  EXPECT_EQ(ra.status, static_cast<int>(RunStatus::timeout));
  EXPECT_EQ(ra.error_type, "expired");
  EXPECT_TRUE(ep->deliveries().empty());
  // Retried until its next attempt would fall past the expiration.
  NewCall b = call("f");
  b.expiration_at_ms = clock_.t + 5000;
  std::string id = dispatch(b);
  for (int i = 0; i < 20 && !is_final(get(id).state); ++i) {
    round();
    clock_.t += 1000;
  }
  CallRecord rb = get(id);
  EXPECT_EQ(rb.state, CallState::failed);
  EXPECT_NE(rb.error_message.find("slow down"), std::string::npos);
  EXPECT_LE(rb.attempts, 6u);
  EXPECT_GE(rb.attempts, 1u);
}

// A store that passes every operation to another; tests override one.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
  void enqueue(std::vector<NewCall> calls, int64_t now_ms, Done<std::vector<std::string>> done) override {
    inner_->enqueue(std::move(calls), now_ms, std::move(done));
  }
  void claim(ClaimOptions options, Done<std::vector<CallRecord>> done) override {
    inner_->claim(std::move(options), std::move(done));
  }
  void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms, Done<bool> done) override {
    inner_->finish(std::move(id), lease, std::move(outcome), now_ms, std::move(done));
  }
  void cancel(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    inner_->cancel(std::move(id), now_ms, std::move(done));
  }
  void retry(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    inner_->retry(std::move(id), now_ms, std::move(done));
  }
  void release_leases(int64_t now_ms, bool all, Done<std::size_t> done) override {
    inner_->release_leases(now_ms, all, std::move(done));
  }
  void delete_ended(int64_t ended_before_ms, Done<std::size_t> done) override {
    inner_->delete_ended(ended_before_ms, std::move(done));
  }
  Result<std::optional<CallRecord>> get(std::string_view id) override { return inner_->get(id); }
  Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                       std::string_view after_id) override {
    return inner_->list(state, limit, after_id);
  }
  Result<std::vector<CallRecord>> list_children(std::string_view parent_id, std::size_t limit,
                                                std::string_view after_id) override {
    return inner_->list_children(parent_id, limit, after_id);
  }
  Result<std::optional<int64_t>> next_due_ms() override { return inner_->next_due_ms(); }
  Result<std::vector<int64_t>> count_by_state() override { return inner_->count_by_state(); }
  Stats stats() const override { return inner_->stats(); }

 protected:
  std::unique_ptr<Store> inner_;
};

// A store whose finish() reports only when told to (a slow commit).
class SlowFinishStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms, Done<bool> done) override {
    auto recorded = inner_->finish_sync(std::move(id), lease, std::move(outcome), now_ms);
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back([done = std::move(done), recorded = std::move(recorded)]() mutable { done(std::move(recorded)); });
  }

  std::size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  void report_all() {
    std::vector<std::function<void()>> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
    }
    for (auto& f : held) f();
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> held_;
};

// A store that takes outcomes of at most `max_output` bytes, as a
// JetStream server takes records up to its max_payload: a larger one is
// refused out_of_range, every time.
class SmallRecordStore final : public ForwardingStore {
 public:
  SmallRecordStore(std::unique_ptr<Store> inner, std::size_t max_output)
      : ForwardingStore(std::move(inner)), max_output_(max_output) {}
  void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms, Done<bool> done) override {
    if (outcome.output.size() > max_output_) {
      refused_++;
      done(Error(Code::out_of_range, "updating c." + id + ": payload too large for the servers' max_payload"));
      return;
    }
    inner_->finish(std::move(id), lease, std::move(outcome), now_ms, std::move(done));
  }
  std::atomic<int> refused_{0};

 private:
  std::size_t max_output_;
};

TEST_F(SchedulerTest, EndpointSlotIsFreedWhenTheReplyArrivesNotWhenItIsRecorded) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK); });
  SlowFinishStore* slow = nullptr;
  open(ep, {}, [&](SchedulerOptions& o) {
    SqliteOptions so;
    so.path = path_;
    auto inner = open_sqlite_store(so);
    ASSERT_TRUE(inner.ok());
    auto store = std::make_unique<SlowFinishStore>(std::move(inner).value());
    slow = store.get();
    o.store = std::move(store);
    o.initial_endpoint_concurrency = 1;
    o.max_endpoint_concurrency = 1;
  });
  ASSERT_NE(slow, nullptr);
  std::string a = dispatch(call("f", "a"));
  std::string b = dispatch(call("f", "b"));
  // One slot: the first round starts one call, which is answered at once
  // but whose outcome is not yet reported by the store.
  EXPECT_EQ(scheduler_->step().value(), 1u);
  EXPECT_EQ(slow->held(), 1u);
  // The endpoint is free again: the second call starts now.
  EXPECT_EQ(scheduler_->step().value(), 1u);
  EXPECT_EQ(ep->deliveries().size(), 2u);
  slow->report_all();
  scheduler_->wait_idle();
  EXPECT_EQ(get(a).state, CallState::completed);
  EXPECT_EQ(get(b).state, CallState::completed);
  EXPECT_EQ(scheduler_->stats().completed, 2u);
}

// An outcome the store can never keep (out_of_range: a reply larger than
// a JetStream server's max_payload) fails the call at once, final, with the
// store's reason; it was left running, delivered again each time its lease
// lapsed, its function run again each time, max attempts never reached.
TEST_F(SchedulerTest, AnOutcomeTheStoreCannotKeepFailsTheCall) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest& r) {
    return run_response(sdk::STATUS_OK, r.input().value() == "big" ? std::string(5000, 'x') : "ok");
  });
  SmallRecordStore* small = nullptr;
  open(ep, {}, [&](SchedulerOptions& o) {
    SqliteOptions so;
    so.path = path_;
    auto inner = open_sqlite_store(so);
    ASSERT_TRUE(inner.ok());
    auto store = std::make_unique<SmallRecordStore>(std::move(inner).value(), 1000);
    small = store.get();
    o.store = std::move(store);
    o.lease = std::chrono::seconds(10);
  });
  ASSERT_NE(small, nullptr);
  std::string big = dispatch(call("f", "big"));
  std::string fine = dispatch(call("f", "fine"));
  round();
  CallRecord r = get(big);
  EXPECT_EQ(r.state, CallState::failed);
  EXPECT_EQ(r.status, static_cast<int>(RunStatus::invalid_response));
  EXPECT_EQ(r.error_type, "invalid_response");
  EXPECT_NE(r.error_message.find("the store cannot keep"), std::string::npos) << r.error_message;
  EXPECT_NE(r.error_message.find("max_payload"), std::string::npos) << r.error_message;
  EXPECT_TRUE(r.output.empty());
  EXPECT_EQ(get(fine).state, CallState::completed);
  EXPECT_EQ(small->refused_.load(), 1);
  // Not delivered again once its lease would have lapsed.
  clock_.t += 60'000;
  round();
  EXPECT_EQ(ep->deliveries().size(), 2u);
  EXPECT_EQ(scheduler_->stats().failed, 1u);
  EXPECT_EQ(scheduler_->stats().stale, 0u);
}

TEST_F(SchedulerTest, ConcurrencyHalvesOn429AndGrowsOnSuccess) {
  std::atomic<int> throttle{3};
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest&) -> Result<std::string> {
    if (throttle-- > 0) return Error(Code::resource_exhausted, "HTTP 429 Too Many Requests");
    return run_response(sdk::STATUS_OK);
  });
  FunctionPolicy p;
  p.min_backoff = p.max_backoff = std::chrono::milliseconds(1);
  open(ep, p);
  EXPECT_EQ(scheduler_->endpoint_concurrency("http://fake"), 16);
  std::string id = dispatch(call("f"));
  round();
  EXPECT_EQ(scheduler_->endpoint_concurrency("http://fake"), 8);
  clock_.t += 1;
  round();
  EXPECT_EQ(scheduler_->endpoint_concurrency("http://fake"), 4);
  clock_.t += 1;
  round();
  EXPECT_EQ(scheduler_->endpoint_concurrency("http://fake"), 2);
  EXPECT_EQ(get(id).status, static_cast<int>(RunStatus::throttled));
  clock_.t += 1;
  round();
  EXPECT_EQ(scheduler_->endpoint_concurrency("http://fake"), 3);
  EXPECT_EQ(get(id).state, CallState::completed);
}

TEST_F(SchedulerTest, BackloggedFunctionsShareDeliveries) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK); });
  open(ep, {}, [](SchedulerOptions& o) {
    o.initial_endpoint_concurrency = 2;
    o.max_endpoint_concurrency = 2;
    o.max_in_flight = 4;
  });
  std::vector<NewCall> flood, small;
  for (int i = 0; i < 300; ++i) flood.push_back(call("flood"));
  for (int i = 0; i < 50; ++i) small.push_back(call("small"));
  ASSERT_TRUE(scheduler_->dispatch(std::move(flood)).ok());  // first, and six times as many
  ASSERT_TRUE(scheduler_->dispatch(std::move(small)).ok());
  while (ep->deliveries().size() < 60) ASSERT_GT(round(), 0u);
  int small_share = 0;
  for (std::size_t i = 0; i < 60; ++i) small_share += ep->deliveries()[i].function == "small";
  std::printf("fairness: 'small' got %d of the first 60 deliveries (flood backlog 300, small 50)\n",
              small_share);
  EXPECT_GE(small_share, 27);
  EXPECT_LE(small_share, 33);
}

TEST_F(SchedulerTest, CancelledCallsAreNotDelivered) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK); });
  open(ep);
  std::string id = dispatch(call("f"));
  auto c = scheduler_->cancel(id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state, CallState::cancelled);
  EXPECT_EQ(round(), 0u);
  EXPECT_TRUE(ep->deliveries().empty());
  EXPECT_EQ(scheduler_->cancel(id).error().code(), Code::failed_precondition);
  // Retry brings it back.
  ASSERT_TRUE(scheduler_->retry(id).ok());
  round();
  EXPECT_EQ(get(id).state, CallState::completed);
}

TEST_F(SchedulerTest, IdempotencyKeyDeliversOnce) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK); });
  open(ep);
  NewCall c = call("f");
  c.idempotency_key = "charge-42";
  std::string a = dispatch(c);
  std::string b = dispatch(c);
  EXPECT_EQ(a, b);
  round();
  std::string after = dispatch(c);  // also once completed
  EXPECT_EQ(after, a);
  round();
  EXPECT_EQ(ep->deliveries().size(), 1u);
}

TEST_F(SchedulerTest, RestartDeliversWhatWasRunning) {
  auto stuck = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK); });
  stuck->hold_ = true;  // the delivery never answers: the process "dies" mid-call
  open(stuck);
  std::string id = dispatch(call("f"));
  ASSERT_EQ(scheduler_->step().value(), 1u);
  EXPECT_EQ(get(id).state, CallState::running);
  scheduler_.reset();

  auto ok = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK, "done"); });
  open(ok);
  EXPECT_EQ(get(id).state, CallState::pending);
  round();
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::completed);
  EXPECT_EQ(r.attempts, 2u);
  ASSERT_EQ(ok->deliveries().size(), 1u);
  EXPECT_EQ(ok->deliveries()[0].attempt, "2");
}

// A real endpoint table behind the fake transport: the Run route itself.
std::string add_one(std::string_view in) { return std::string(in) + "+1"; }
Result<std::string> add_handler(const MethodCall& call) { return add_one(call.request); }
const Method kShop[] = {{"add", "/shop.Api/add", "shop.AddRequest", "shop.AddResponse", &add_handler}};
const Service kShopService{"shop", "Api", kShop, 1, {}};

TEST_F(SchedulerTest, DispatchRouteBatchAdminRoutesAndUnknownFunctions) {
  DispatchTable endpoint_table{&kShopService, &function_service()};
  auto endpoint = std::make_shared<InProcessClient>(endpoint_table);
  open(endpoint);
  InProcessClient api(scheduler_->table());
  DispatchClient client(api, "http://127.0.0.1:8000");

  std::vector<PendingCall> batch(3);
  for (int i = 0; i < 3; ++i) {
    batch[i].function = "shop.add";
    batch[i].request_type = "shop.AddRequest";
    batch[i].request = std::to_string(i);
  }
  batch[2].function = "shop.missing";
  auto ids = client.dispatch_batch(std::move(batch));
  ASSERT_TRUE(ids.ok()) << ids.error().what();
  ASSERT_EQ(ids->size(), 3u);
  round();

  admin::GetRequest get_req;
  get_req.set_id((*ids)[1]);
  auto got = api.call("/dispatch.scheduler.v1.AdminService/Get", get_req.SerializeAsString(), {});
  ASSERT_TRUE(got.ok());
  admin::CallInfo info;
  ASSERT_TRUE(info.ParseFromString(*got));
  EXPECT_EQ(info.state(), admin::CALL_STATE_COMPLETED);
  EXPECT_EQ(info.output_value(), "1+1");
  EXPECT_EQ(info.output_type_url(), "type.googleapis.com/shop.AddResponse");
  EXPECT_EQ(info.status_name(), "STATUS_OK");

  // The await form.
  auto awaited = client.await_result((*ids)[1], std::chrono::milliseconds(1000));
  ASSERT_TRUE(awaited.ok()) << awaited.error().what();
  EXPECT_EQ(*awaited, "1+1");
  auto awaited_missing = client.await_result((*ids)[2], std::chrono::milliseconds(1000));
  ASSERT_FALSE(awaited_missing.ok());
  EXPECT_EQ(awaited_missing.error().code(), Code::not_found);
  EXPECT_NE(awaited_missing.error().message().find("'shop.missing' is not registered"), std::string::npos);
  EXPECT_EQ(client.await_result("nope", std::chrono::milliseconds(10)).error().code(), Code::not_found);
  auto waiting = client.dispatch("shop.add", "shop.AddRequest", "5");  // not delivered: no round
  ASSERT_TRUE(waiting.ok());
  EXPECT_EQ(client.await_result(*waiting, std::chrono::milliseconds(50)).error().code(),
            Code::deadline_exceeded);
  ASSERT_TRUE(scheduler_->cancel(*waiting).ok());
  EXPECT_EQ(client.await_result(*waiting, std::chrono::milliseconds(50)).error().code(), Code::canceled);

  CallRecord missing = get((*ids)[2]);
  EXPECT_EQ(missing.state, CallState::failed);
  EXPECT_EQ(missing.status, static_cast<int>(RunStatus::not_found));
  EXPECT_EQ(missing.attempts, 1u);

  admin::ListRequest list_req;
  list_req.set_state(admin::CALL_STATE_FAILED);
  admin::ListResponse listed;
  ASSERT_TRUE(listed.ParseFromString(
      api.call("/dispatch.scheduler.v1.AdminService/List", list_req.SerializeAsString(), {}).value()));
  ASSERT_EQ(listed.calls_size(), 1);
  EXPECT_EQ(listed.calls(0).id(), (*ids)[2]);

  admin::RetryRequest retry_req;
  retry_req.set_id((*ids)[2]);
  auto retried = api.call("/dispatch.scheduler.v1.AdminService/Retry", retry_req.SerializeAsString(), {});
  ASSERT_TRUE(retried.ok());
  retry_req.set_id((*ids)[0]);  // completed: cannot be retried
  EXPECT_EQ(api.call("/dispatch.scheduler.v1.AdminService/Retry", retry_req.SerializeAsString(), {})
                .error().code(),
            Code::failed_precondition);

  get_req.set_id("nope");
  EXPECT_EQ(api.call("/dispatch.scheduler.v1.AdminService/Get", get_req.SerializeAsString(), {})
                .error().code(),
            Code::not_found);

  // Bad Dispatch input: clear errors, and the scheduler keeps serving.
  sdk::DispatchRequest bad;
  sdk::Call* c = bad.add_calls();
  c->set_function("shop.add");
  c->set_endpoint("ftp://x");
  protocol::pack_any("shop.AddRequest", "", c->mutable_input());
  auto refused = api.call("/dispatch.sdk.v1.DispatchService/Dispatch", bad.SerializeAsString(), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::invalid_argument);
  EXPECT_NE(refused.error().message().find("not an http:// or https:// URL"), std::string::npos);
  c->set_endpoint("http://x");
  c->clear_input();
  EXPECT_EQ(api.call("/dispatch.sdk.v1.DispatchService/Dispatch", bad.SerializeAsString(), {})
                .error().code(),
            Code::invalid_argument);
  EXPECT_EQ(api.call("/dispatch.sdk.v1.DispatchService/Dispatch", "\xff\xff", {}).error().code(),
            Code::invalid_argument);
  EXPECT_TRUE(client.dispatch("shop.add", "shop.AddRequest", "9").ok());
}

TEST_F(SchedulerTest, ADelayedCallWaitsItsTimeAcrossARestartAndCanBeCancelled) {
  DispatchTable endpoint_table{&kShopService, &function_service()};
  auto endpoint = std::make_shared<InProcessClient>(endpoint_table);
  FunctionPolicy policy;
  policy.expiration = std::chrono::hours(1);
  open(endpoint, policy);
  {
    InProcessClient api(scheduler_->table());
    DispatchClient client(api, "http://127.0.0.1:8000");
    DispatchOptions later;
    later.delay = std::chrono::hours(2);  // longer than the expiration: it counts from the start
    auto id = client.dispatch("shop.add", "shop.AddRequest", "1", later);
    ASSERT_TRUE(id.ok()) << id.error().what();
    DispatchOptions at;
    at.start_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(clock_.t.load() + 60'000));
    auto at_id = client.dispatch("shop.add", "shop.AddRequest", "2", at);
    ASSERT_TRUE(at_id.ok());
    auto doomed = client.dispatch("shop.add", "shop.AddRequest", "3", later);
    ASSERT_TRUE(doomed.ok());
    // dispatchctl shows it pending with its due time.
    admin::GetRequest get_req;
    get_req.set_id(*id);
    admin::CallInfo info;
    ASSERT_TRUE(info.ParseFromString(*api.call("/dispatch.scheduler.v1.AdminService/Get", get_req.SerializeAsString(), {})));
    EXPECT_EQ(info.state(), admin::CALL_STATE_PENDING);
    EXPECT_EQ(info.attempts(), 0u);
    EXPECT_EQ(protocol::from_timestamp(info.next_attempt_time()), clock_.t.load() + 2 * 3600 * 1000);
    EXPECT_EQ(protocol::from_timestamp(info.expiration_time()), clock_.t.load() + 3 * 3600 * 1000);
    round();
    EXPECT_EQ(get(*id).attempts, 0u);
    EXPECT_EQ(get(*at_id).attempts, 0u);
    ASSERT_TRUE(scheduler_->cancel(*doomed).ok());
    // Bad delays are refused with what was wrong.
    sdk::DispatchRequest bad;
    sdk::Call* c = bad.add_calls();
    c->set_function("shop.add");
    c->set_endpoint("http://127.0.0.1:8000");
    protocol::pack_any("shop.AddRequest", "", c->mutable_input());
    c->mutable_delay()->set_seconds(-5);
    auto refused = api.call(protocol::kDispatchPath, bad.SerializeAsString(), {});
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("the delay must be between 0 and 10 years"), std::string::npos)
        << refused.error().message();
    c->clear_delay();
    c->mutable_start_time()->set_seconds(clock_.t.load() / 1000 + 20LL * 366 * 24 * 3600);
    refused = api.call(protocol::kDispatchPath, bad.SerializeAsString(), {});
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("within 10 years"), std::string::npos);
    c->mutable_delay()->set_seconds(5);
    refused = api.call(protocol::kDispatchPath, bad.SerializeAsString(), {});
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("not both"), std::string::npos);

    clock_.t += 60'000;
    round();
    EXPECT_EQ(get(*at_id).state, CallState::completed);
    EXPECT_EQ(get(*id).state, CallState::pending);
    scheduler_.reset();  // a restart while it waits
    open(endpoint, policy);
    clock_.t += 2 * 3600 * 1000;
    round();
    EXPECT_EQ(get(*id).state, CallState::completed);
    EXPECT_EQ(get(*id).output, "1+1");
    EXPECT_EQ(get(*doomed).state, CallState::cancelled);
  }
}

TEST_F(SchedulerTest, RealHttp429HalvesConcurrencyAndIsRetried) {
  DispatchTable endpoint_table{&kShopService, &function_service()};
  std::atomic<int> refuse{2};
  ServerOptions so;
  so.port = 0;
  so.logger = Logger(LogLevel::off);
  so.authenticate = [&refuse](const RequestInfo&) -> Result<void> {
    if (refuse-- > 0) return Error(Code::resource_exhausted, "slow down");  // HTTP 429
    return {};
  };
  Server server(endpoint_table, so);
  ASSERT_TRUE(server.start().ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  FunctionPolicy p;
  p.min_backoff = p.max_backoff = std::chrono::milliseconds(1);
  open(nullptr, p, [](SchedulerOptions& o) { o.client_factory = nullptr; });  // real HttpClient
  NewCall c = call("shop.add", "7");
  c.endpoint = url;
  c.input_type_url = "type.googleapis.com/shop.AddRequest";
  std::string id = dispatch(c);
  round();
  EXPECT_EQ(scheduler_->endpoint_concurrency(url), 8);
  EXPECT_EQ(get(id).status, static_cast<int>(RunStatus::throttled));
  clock_.t += 1;
  round();
  EXPECT_EQ(scheduler_->endpoint_concurrency(url), 4);
  clock_.t += 1;
  round();
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::completed);
  EXPECT_EQ(r.output, "7+1");
  EXPECT_EQ(r.attempts, 3u);
  EXPECT_EQ(scheduler_->endpoint_concurrency(url), 5);
  server.stop();
}

TEST_F(SchedulerTest, MalformedEndpointFailsAtOnce) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK); });
  open(ep, {}, [](SchedulerOptions& o) { o.client_factory = nullptr; });  // the real HttpClient
  NewCall c = call("f");
  c.endpoint = "http://";
  std::string id = dispatch(c);
  round();
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::failed);
  EXPECT_EQ(r.error_type, "invalid_endpoint");
  EXPECT_NE(r.error_message.find("cannot reach endpoint 'http://'"), std::string::npos) << r.error_message;
}

TEST_F(SchedulerTest, UnreachableEndpointRetriesAsTcpError) {
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) -> Result<std::string> {
    return Error(Code::unavailable, "cannot connect to 127.0.0.1:9: Connection refused");
  });
  open(ep);
  std::string id = dispatch(call("f"));
  round();
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::pending);
  EXPECT_EQ(r.status, static_cast<int>(RunStatus::tcp_error));
  EXPECT_NE(r.error_message.find("Connection refused"), std::string::npos);
}

TEST_F(SchedulerTest, EndedCallsAreDeletedOnceTheirRetentionPassed) {
  using namespace std::chrono_literals;
  constexpr int64_t kMinute = 60'000;
  clock_.t = 100LL * 24 * 60 * kMinute;  // day 100
  // "g" keeps failing for a while: an old call that is still live.
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest& r) {
    return r.function() == "g" ? run_response(sdk::STATUS_TEMPORARY_ERROR, "", "busy")
                               : run_response(sdk::STATUS_OK);
  });
  FunctionPolicy policy;
  policy.max_attempts = 0;
  open(ep, policy, [](SchedulerOptions& o) { o.retention = 1h; });
  NewCall keyed = call("f");
  keyed.idempotency_key = "order-7";
  const std::string ended = dispatch(keyed);
  const std::string live = dispatch(call("g"));
  round();
  ASSERT_EQ(get(ended).state, CallState::completed);

  clock_.t += 30 * kMinute;  // ended half an hour ago: kept
  round();
  EXPECT_EQ(get(ended).state, CallState::completed);
  EXPECT_EQ(dispatch(keyed), ended);

  clock_.t += 31 * kMinute;  // an hour and a minute: deleted
  round();
  auto gone = scheduler_->get(ended);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), Code::not_found);
  EXPECT_EQ(gone.error().message(), "no call has ID " + ended +
                                        ": it was never dispatched to this scheduler, or it ended "
                                        "more than 1h ago and was deleted (retention)");
  EXPECT_EQ(scheduler_->cancel(ended).error().message(), gone.error().message());
  EXPECT_EQ(scheduler_->retry(ended).error().code(), Code::not_found);
  EXPECT_EQ(scheduler_->store().stats().deleted, 1u);
  // Created over an hour ago, never ended: kept.
  EXPECT_FALSE(is_final(get(live).state));
  // The key went with its call.
  const std::string again = dispatch(keyed);
  EXPECT_NE(again, ended);
  EXPECT_EQ(get(again).state, CallState::pending);
}

TEST_F(SchedulerTest, RetentionZeroKeepsEveryCall) {
  using namespace std::chrono_literals;
  clock_.t = 100LL * 24 * 3600 * 1000;
  auto ep = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) { return run_response(sdk::STATUS_OK); });
  open(ep, {}, [](SchedulerOptions& o) { o.retention = 0ms; });
  const std::string id = dispatch(call("f"));
  round();
  clock_.t += 1000LL * 24 * 3600 * 1000;  // a thousand days later
  round();
  EXPECT_EQ(get(id).state, CallState::completed);
  EXPECT_EQ(scheduler_->store().stats().deleted, 0u);
  // Nothing was deleted, so an unknown ID was never dispatched here.
  EXPECT_EQ(scheduler_->get("0123").error().message(), "no call has ID 0123");

  SchedulerOptions negative;
  negative.retention = -1ms;
  SqliteOptions so;
  so.path = path_ + "-negative";
  negative.store = open_sqlite_store(so).value();
  auto refused = Scheduler::open(std::move(negative));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::invalid_argument);
  EXPECT_NE(refused.error().message().find("retention is negative"), std::string::npos);
  for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((so.path + suffix).c_str());
}

// Calls that make calls: what the engine does with a Poll, a resume, a
// timer, refused calls, a tail call and a restart.
namespace poll {

sdk::Call child(uint64_t correlation_id, std::string function, std::string input) {
  sdk::Call c;
  c.set_correlation_id(correlation_id);
  c.set_function(std::move(function));
  protocol::pack_any("t.In", std::move(input), c.mutable_input());
  return c;
}

sdk::Call sleep_for(uint64_t correlation_id, int64_t seconds) {
  sdk::Call c;
  c.set_correlation_id(correlation_id);
  c.set_function(std::string(kSleepFunction));
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  protocol::pack_any("google.protobuf.Duration", d.SerializeAsString(), c.mutable_input());
  return c;
}

std::string poll_response(std::string state, std::vector<sdk::Call> calls, int min_results, int max_results) {
  sdk::RunResponse res;
  res.set_status(sdk::STATUS_OK);
  res.mutable_poll()->set_coroutine_state(std::move(state));
  for (auto& c : calls) *res.mutable_poll()->add_calls() = std::move(c);
  res.mutable_poll()->set_min_results(min_results);
  res.mutable_poll()->set_max_results(max_results);
  return res.SerializeAsString();
}

}  // namespace poll

TEST_F(SchedulerTest, APollMakesChildrenAndResumesWithTheirResultsOnceEnoughAreThere) {
  std::atomic<int> resumes{0};
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "shop.add") return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    EXPECT_EQ(r.function(), "wf.main");
    if (r.has_input()) {
      return poll::poll_response("state\0one"s, {poll::child(7, "shop.add", "a"), poll::sleep_for(8, 3600)}, 2, 10);
    }
    resumes++;
    EXPECT_EQ(r.poll_result().coroutine_state(), "state\0one"s);  // byte for byte
    std::map<uint64_t, const sdk::CallResult*> by_id;
    for (const auto& res : r.poll_result().results()) by_id[res.correlation_id()] = &res;
    EXPECT_EQ(by_id.size(), 2u);
    if (by_id.count(7) != 0) {
      EXPECT_EQ(by_id[7]->output().value(), "out:a");
      EXPECT_FALSE(by_id[7]->dispatch_id().empty());
    }
    EXPECT_EQ(by_id.count(8), 1u);
    return run_response(sdk::STATUS_OK, "done");
  });
  open(ep);
  const std::string id = dispatch(call("wf.main"));
  round();
  CallRecord parent = get(id);
  EXPECT_EQ(parent.state, CallState::suspended);
  auto kids = scheduler_->children(id, 10, "").value();
  ASSERT_EQ(kids.size(), 2u);
  EXPECT_EQ(kids[0].function, "shop.add");
  EXPECT_EQ(kids[0].parent_id, id);
  EXPECT_EQ(kids[0].root_id, id);
  EXPECT_EQ(kids[0].correlation_id, 7u);
  EXPECT_EQ(kids[0].endpoint, "http://fake");  // the parent's, as none was given
  EXPECT_EQ(kids[1].function, kSleepFunction);
  EXPECT_EQ(kids[1].next_attempt_at_ms, clock_.t.load() + 3600 * 1000);
  for (int i = 0; i < 3; ++i) round();
  EXPECT_EQ(get(kids[0].id).state, CallState::completed);
  EXPECT_EQ(get(id).state, CallState::suspended);  // one result of the two it waits for
  EXPECT_EQ(resumes.load(), 0);
  clock_.t += 3600 * 1000;
  for (int i = 0; i < 4 && get(id).state != CallState::completed; ++i) round();
  EXPECT_EQ(get(kids[1].id).state, CallState::completed);
  EXPECT_EQ(get(id).state, CallState::completed);
  EXPECT_EQ(get(id).output, "done");
  EXPECT_EQ(resumes.load(), 1);
  EXPECT_EQ(scheduler_->stats().polls, 1u);
}

// A timer ends at its time also while its workflow's endpoint is full
// (its calls slow): race(call, sleep) is a timeout exactly then.
TEST_F(SchedulerTest, ATimerEndsOnTimeWhileItsWorkflowsEndpointIsFull) {
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.has_input()) {
      // Three slow calls: more than the endpoint's limit (1, and 2 once
      // this Poll succeeded) lets through.
      return poll::poll_response("s",
                                 {poll::child(7, "shop.slow", "a"), poll::child(9, "shop.slow", "b"),
                                  poll::child(10, "shop.slow", "c"), poll::sleep_for(8, 1)},
                                 1, 10);
    }
    return run_response(sdk::STATUS_OK, "done");
  });
  open(ep, {}, [](SchedulerOptions& o) { o.initial_endpoint_concurrency = 1; });
  const std::string id = dispatch(call("wf.main"));
  round();
  ASSERT_EQ(get(id).state, CallState::suspended);
  auto kids = scheduler_->children(id, 10, "").value();
  ASSERT_EQ(kids.size(), 4u);
  EXPECT_EQ(kids[3].endpoint, "");  // a timer is delivered nowhere
  ep->hold_ = true;                 // shop.slow never answers: the endpoint is full
  // step(), not round(): a held call never lets the scheduler be idle.
  ASSERT_TRUE(scheduler_->step().ok());
  EXPECT_EQ(get(kids[0].id).state, CallState::running);
  clock_.t += 1000;
  for (int i = 0; i < 200 && get(kids[3].id).state != CallState::completed; ++i) {
    ASSERT_TRUE(scheduler_->step().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(get(kids[3].id).state, CallState::completed);
  EXPECT_EQ(get(kids[0].id).state, CallState::running);
}

TEST_F(SchedulerTest, CallsAPollCannotMakeAreRefusedAndTheFunctionResumesWithTheError) {
  sdk::PollResult seen;
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.has_input()) {
      sdk::Call bad = poll::child(1, "shop.add", "a");
      bad.set_endpoint("ftp://nowhere");
      return poll::poll_response("s", {poll::child(2, "shop.add", "b"), bad}, 1, 1);
    }
    seen = r.poll_result();
    return run_response(sdk::STATUS_PERMANENT_ERROR, "", "gave up");
  });
  open(ep);
  const std::string id = dispatch(call("wf.main"));
  for (int i = 0; i < 3; ++i) round();
  EXPECT_EQ(get(id).state, CallState::failed);
  EXPECT_TRUE(scheduler_->children(id, 10, "").value().empty());  // none of them was made
  EXPECT_EQ(seen.results_size(), 0);
  EXPECT_EQ(seen.error().type(), "invalid_argument");
  EXPECT_NE(seen.error().message().find("call 1 ('shop.add') of the Poll: endpoint 'ftp://nowhere'"),
            std::string::npos)
      << seen.error().message();
}

TEST_F(SchedulerTest, APollThatCannotBeFollowedFailsTheCallSayingWhy) {
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "wf.greedy") return poll::poll_response("s", {poll::child(1, "shop.add", "a")}, 1, 5000);
    return poll::poll_response("s", {}, 1, 1);  // waits for nothing, forever
  });
  open(ep);
  const std::string greedy = dispatch(call("wf.greedy"));
  const std::string idle = dispatch(call("wf.idle"));
  round();
  EXPECT_EQ(get(greedy).state, CallState::failed);
  EXPECT_EQ(get(greedy).error_type, "invalid_response");
  EXPECT_NE(get(greedy).error_message.find("max_results 5000"), std::string::npos) << get(greedy).error_message;
  EXPECT_EQ(get(idle).state, CallState::failed);
  EXPECT_NE(get(idle).error_message.find("would never resume"), std::string::npos) << get(idle).error_message;
}

TEST_F(SchedulerTest, ATailCallGoesOnAsTheNextCallWithTheSameId) {
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "shop.add") return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    sdk::RunResponse res;
    res.set_status(sdk::STATUS_OK);
    *res.mutable_exit()->mutable_tail_call() = poll::child(0, "shop.add", "next");
    return res.SerializeAsString();
  });
  open(ep);
  const std::string id = dispatch(call("wf.main"));
  for (int i = 0; i < 3; ++i) round();
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::completed);
  EXPECT_EQ(r.function, "shop.add");
  EXPECT_EQ(r.output, "out:next");
  ASSERT_EQ(ep->deliveries().size(), 2u);
  EXPECT_EQ(ep->deliveries()[1].id, id);
}

TEST_F(SchedulerTest, AResumeTheFunctionCannotTakeStartsItAgainFromItsInput) {
  std::atomic<int> runs{0};
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "shop.add") return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    if (r.has_input()) {
      EXPECT_EQ(r.input().value(), "in");
      return ++runs == 1 ? poll::poll_response("old", {poll::child(1, "shop.add", "a")}, 1, 1)
                         : run_response(sdk::STATUS_OK, "fresh");
    }
    return run_response(sdk::STATUS_INCOMPATIBLE_STATE, "", "state from another version");
  });
  open(ep);
  const std::string id = dispatch(call("wf.main"));
  for (int i = 0; i < 4; ++i) round();
  clock_.t += 60'000;  // past the backoff
  for (int i = 0; i < 3; ++i) round();
  EXPECT_EQ(get(id).state, CallState::completed);
  EXPECT_EQ(get(id).output, "fresh");
  EXPECT_EQ(runs.load(), 2);
}

// A replica that can never take a resume (a rolling deploy, a broken
// build): each run from the input polls one child, and each resume is
// answered INCOMPATIBLE_STATE. The call runs from its input max_attempts
// times (so it is restarted max_attempts - 1 times) and fails with that
// status, though every Poll reset its attempts.
TEST_F(SchedulerTest, AFunctionThatCanNeverTakeItsResumeFailsAfterMaxAttemptsRunsFromItsInput) {
  std::atomic<int> runs{0}, resumes{0};
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "shop.add") return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    if (r.has_input()) {
      ++runs;
      return poll::poll_response("old", {poll::child(1, "shop.add", "a")}, 1, 1);
    }
    ++resumes;
    return run_response(sdk::STATUS_INCOMPATIBLE_STATE, "", "state from another version");
  });
  FunctionPolicy policy;
  policy.max_attempts = 4;
  policy.min_backoff = std::chrono::milliseconds(100);
  policy.max_backoff = std::chrono::milliseconds(100'000);
  open(ep, policy);
  const std::string id = dispatch(call("wf.main"));
  for (int i = 0; i < 100 && !is_final(get(id).state); ++i) {
    round();
    clock_.t += 1000;  // past any backoff here (the third restart waits at most 400 ms)
  }
  CallRecord r = get(id);
  EXPECT_EQ(r.state, CallState::failed);
  EXPECT_EQ(r.status, static_cast<int>(RunStatus::incompatible_state));
  EXPECT_EQ(r.error_type, "test");
  EXPECT_NE(r.error_message.find("gave up after 4 runs from its input, each ended by a resume it could not take: "
                                 "state from another version"),
            std::string::npos)
      << r.error_message;
  EXPECT_EQ(r.restarts, 3u);
  EXPECT_EQ(runs.load(), 4);
  EXPECT_EQ(resumes.load(), 4);
  EXPECT_EQ(scheduler_->children(id, 100, "").value().size(), 4u);  // one child per run
  // Nothing is left to deliver.
  clock_.t += 3600 * 1000;
  round();
  EXPECT_EQ(runs.load(), 4);
}

// Restarts back off as retries do: the n-th waits up to min_backoff *
// 2^(n-1), not min_backoff each time (which let such a call spin).
TEST_F(SchedulerTest, RestartsBackOffLikeRetries) {
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "shop.add") return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    if (r.has_input()) return poll::poll_response("old", {poll::child(1, "shop.add", "a")}, 1, 1);
    return run_response(sdk::STATUS_INCOMPATIBLE_STATE, "", "state from another version");
  });
  FunctionPolicy policy;
  policy.max_attempts = 0;  // no limit: only the backoff is looked at
  policy.min_backoff = std::chrono::milliseconds(100);
  policy.max_backoff = std::chrono::milliseconds(100'000);
  open(ep, policy);
  const std::string id = dispatch(call("wf.main"));
  int64_t waited = 0;
  for (uint32_t n = 1; n <= 8; ++n) {
    // From the input to the Poll, the child, the resume that restarts it.
    for (int i = 0; i < 10 && get(id).restarts < n; ++i) round();
    CallRecord r = get(id);
    ASSERT_EQ(r.restarts, n);
    ASSERT_EQ(r.state, CallState::pending);
    const int64_t wait = r.next_attempt_at_ms - clock_.t;
    EXPECT_GE(wait, 0);
    EXPECT_LE(wait, int64_t{100} << (n - 1)) << "restart " << n;
    waited += wait;
    clock_.t += wait;
  }
  // Eight waits of at most 100 ms each would be 800 ms at most; the caps
  // sum to 25,500 ms.
  EXPECT_GT(waited, 800);
}

// Many Polls, more than max_attempts, each resume failing temporarily
// until its last allowed delivery, after a restart (a rolling deploy): the
// workflow completes. A Poll resets attempts, and a restart does not eat
// into later steps' deliveries.
TEST_F(SchedulerTest, AWorkflowThatPollsManyMoreTimesThanMaxAttemptsCompletes) {
  constexpr int kSteps = 12;
  std::atomic<bool> restarted{false};
  std::map<std::string, int> failed_resumes;  // by state: the step it resumes
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "shop.add") return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    if (r.has_input()) return poll::poll_response("0", {poll::child(1, "shop.add", "0")}, 1, 1);
    if (!restarted.exchange(true)) {
      return run_response(sdk::STATUS_INCOMPATIBLE_STATE, "", "state from another version");
    }
    const std::string state = r.poll_result().coroutine_state();
    // Two temporary failures, then the third (last allowed) delivery goes on.
    if (failed_resumes[state]++ < 2) return run_response(sdk::STATUS_TEMPORARY_ERROR, "", "busy");
    const int step = std::stoi(state) + 1;
    if (step == kSteps) return run_response(sdk::STATUS_OK, "done after " + state);
    const std::string next = std::to_string(step);
    return poll::poll_response(next, {poll::child(1, "shop.add", next)}, 1, 1);
  });
  FunctionPolicy policy;
  policy.max_attempts = 3;
  policy.min_backoff = std::chrono::milliseconds(10);
  policy.max_backoff = std::chrono::milliseconds(10);
  open(ep, policy);
  const std::string id = dispatch(call("wf.main"));
  for (int i = 0; i < 500 && !is_final(get(id).state); ++i) {
    round();
    clock_.t += 10;
  }
  CallRecord r = get(id);
  ASSERT_EQ(r.state, CallState::completed) << r.error_message;
  EXPECT_EQ(r.output, "done after " + std::to_string(kSteps - 1));
  EXPECT_EQ(r.restarts, 1u);
  EXPECT_EQ(scheduler_->stats().polls, static_cast<uint64_t>(kSteps + 1));  // the run before the restart too
  EXPECT_EQ(failed_resumes.size(), static_cast<std::size_t>(kSteps));
}

// Bad input from an endpoint's Poll, on the in-memory store: each such call
// ends with a final status naming what was wrong, nothing else is lost, and
// the scheduler goes on serving other calls (docs/workflows.md, "Limits and
// bad input").
namespace badpoll {

std::string poll_with(std::string state, const std::function<void(sdk::Poll&)>& shape) {
  sdk::RunResponse res;
  res.set_status(sdk::STATUS_OK);
  sdk::Poll* p = res.mutable_poll();
  p->set_coroutine_state(std::move(state));
  *p->add_calls() = poll::child(1, "shop.add", "a");
  shape(*p);
  return res.SerializeAsString();
}

void in_memory(SchedulerOptions& o) { o.store = open_memory_store(); }

}  // namespace badpoll

TEST_F(SchedulerTest, OutOfRangePollBoundsFailTheCallNamingTheBound) {
  using Shape = std::function<void(sdk::Poll&)>;
  const std::map<std::string, std::pair<Shape, std::string>> cases = {
      {"wf.min_negative", {[](sdk::Poll& p) { p.set_min_results(-1); }, "min_results -1; it must be 1..1000"}},
      {"wf.min_huge", {[](sdk::Poll& p) { p.set_min_results(1001); }, "min_results 1001; it must be 1..1000"}},
      {"wf.max_negative", {[](sdk::Poll& p) { p.set_max_results(-5); }, "max_results -5; it must be 1..1000"}},
      {"wf.max_huge", {[](sdk::Poll& p) { p.set_max_results(10'000); }, "max_results 10000; it must be 1..1000"}},
      {"wf.min_above_max",
       {[](sdk::Poll& p) {
          p.set_min_results(3);
          p.set_max_results(2);
        },
        "min_results 3 above max_results 2"}},
      {"wf.wait_negative", {[](sdk::Poll& p) { p.mutable_max_wait()->set_seconds(-1); }, "negative max_wait"}},
      {"wf.wait_forever",
       {[](sdk::Poll& p) { p.mutable_max_wait()->set_seconds(INT64_MAX); },
        "max_wait of 9223372036854775807 s 0 ns, beyond google.protobuf.Duration's range"}},
      {"wf.wait_nanos",
       {[](sdk::Poll& p) { p.mutable_max_wait()->set_nanos(2'000'000'000); },
        "max_wait of 0 s 2000000000 ns, beyond google.protobuf.Duration's range"}},
  };
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    auto it = cases.find(r.function());
    if (it == cases.end()) return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    return badpoll::poll_with("s", it->second.first);
  });
  open(ep, {}, badpoll::in_memory);
  std::map<std::string, std::string> ids;
  for (const auto& [function, c] : cases) ids[function] = dispatch(call(function));
  const std::string plain = dispatch(call("shop.add", "p"));
  for (int i = 0; i < 3; ++i) round();
  for (const auto& [function, c] : cases) {
    CallRecord r = get(ids[function]);
    EXPECT_EQ(r.state, CallState::failed) << function;
    EXPECT_EQ(r.error_type, "invalid_response") << function;
    EXPECT_NE(r.error_message.find("the function's Poll"), std::string::npos) << r.error_message;
    EXPECT_NE(r.error_message.find(c.second), std::string::npos) << function << ": " << r.error_message;
    EXPECT_TRUE(scheduler_->children(ids[function], 10, "").value().empty()) << function;
  }
  EXPECT_EQ(get(plain).state, CallState::completed);
  EXPECT_EQ(get(plain).output, "out:p");
}

TEST_F(SchedulerTest, APollOfTenThousandCallsIsRefusedWholeAndTheFunctionResumesWithTheError) {
  sdk::PollResult seen;
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() != "wf.fan") return run_response(sdk::STATUS_OK, "out:" + r.input().value());
    if (r.has_input()) {
      std::vector<sdk::Call> calls;
      for (uint64_t i = 1; i <= 10'000; ++i) calls.push_back(poll::child(i, "shop.add", std::to_string(i)));
      return poll::poll_response("fan", std::move(calls), 1, 1000);
    }
    seen = r.poll_result();
    return run_response(sdk::STATUS_OK, "resumed");
  });
  open(ep, {}, badpoll::in_memory);
  const std::string id = dispatch(call("wf.fan"));
  const std::string plain = dispatch(call("shop.add", "p"));
  for (int i = 0; i < 4; ++i) round();
  EXPECT_TRUE(scheduler_->children(id, 10, "").value().empty());  // none of the 10,000 was made
  EXPECT_EQ(seen.coroutine_state(), "fan");
  EXPECT_EQ(seen.results_size(), 0);
  EXPECT_EQ(seen.error().type(), "invalid_argument");
  EXPECT_EQ(seen.error().message(), "a Poll may make at most 1000 calls; this one made 10000");
  EXPECT_EQ(get(id).state, CallState::completed);  // the function went on with the error
  EXPECT_EQ(get(id).output, "resumed");
  EXPECT_EQ(get(plain).state, CallState::completed);
}

TEST_F(SchedulerTest, AnOversizedStateFailsTheCallAndAnEmptyOneComesBackAsGiven) {
  sdk::PollResult empty_seen;
  bool empty_resumed = false;
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.function() == "wf.big") {
      return badpoll::poll_with(std::string(coroutine::kMaxStateBytes + 1, 'x'), [](sdk::Poll&) {});
    }
    if (r.function() == "wf.typed_big") {
      return badpoll::poll_with("", [](sdk::Poll& p) {
        p.mutable_typed_coroutine_state()->set_type_url("type.googleapis.com/t.State");
        p.mutable_typed_coroutine_state()->set_value(std::string(coroutine::kMaxStateBytes + 7, 'y'));
      });
    }
    if (r.function() == "wf.at_limit") {
      if (r.has_input()) return badpoll::poll_with(std::string(coroutine::kMaxStateBytes, 'z'), [](sdk::Poll&) {});
      return run_response(sdk::STATUS_OK, std::to_string(r.poll_result().coroutine_state().size()));
    }
    if (r.function() == "wf.empty") {
      if (r.has_input()) return badpoll::poll_with("", [](sdk::Poll&) {});
      empty_resumed = true;
      empty_seen = r.poll_result();
      return run_response(sdk::STATUS_OK, "resumed");
    }
    return run_response(sdk::STATUS_OK, "out:" + r.input().value());
  });
  open(ep, {}, badpoll::in_memory);
  const std::string big = dispatch(call("wf.big"));
  const std::string typed_big = dispatch(call("wf.typed_big"));
  const std::string at_limit = dispatch(call("wf.at_limit"));
  const std::string empty = dispatch(call("wf.empty"));
  for (int i = 0; i < 5; ++i) round();
  for (const auto& [id, bytes] : {std::pair{big, coroutine::kMaxStateBytes + 1},
                                   std::pair{typed_big, coroutine::kMaxStateBytes + 7}}) {
    CallRecord r = get(id);
    EXPECT_EQ(r.state, CallState::failed);
    EXPECT_EQ(r.error_type, "invalid_response");
    EXPECT_NE(r.error_message.find("carries a coroutine state of " + std::to_string(bytes) +
                                   " bytes; a scheduler keeps at most 4194304"),
              std::string::npos)
        << r.error_message;
    EXPECT_TRUE(scheduler_->children(id, 10, "").value().empty());
  }
  // At the limit: kept and given back whole.
  EXPECT_EQ(get(at_limit).state, CallState::completed);
  EXPECT_EQ(get(at_limit).output, std::to_string(coroutine::kMaxStateBytes));
  // Empty: the state is the function's to read (a workflow refuses it,
  // docs/workflows.md); the scheduler gives it back as it was given.
  EXPECT_EQ(get(empty).state, CallState::completed);
  EXPECT_TRUE(empty_resumed);
  EXPECT_EQ(empty_seen.state_case(), sdk::PollResult::kCoroutineState);
  EXPECT_EQ(empty_seen.coroutine_state(), "");
  ASSERT_EQ(empty_seen.results_size(), 1);
  EXPECT_EQ(empty_seen.results(0).output().value(), "out:a");
}

TEST_F(SchedulerTest, AChildAtAnUnreachableEndpointFailsAfterItsAttemptsAndItsParentHearsWhy) {
  sdk::PollResult seen;
  auto ep = std::make_shared<FakeEndpoint>([&](const sdk::RunRequest& r) -> Result<std::string> {
    if (r.has_input()) {
      sdk::Call lost = poll::child(1, "shop.add", "a");
      lost.set_endpoint("http://127.0.0.1:1");
      return poll::poll_response("s", {lost}, 1, 1);
    }
    seen = r.poll_result();
    return run_response(sdk::STATUS_OK, "compensated");
  });
  auto unreachable = std::make_shared<FakeEndpoint>([](const sdk::RunRequest&) -> Result<std::string> {
    return Error(Code::unavailable, "cannot connect to 127.0.0.1:1: Connection refused");
  });
  FunctionPolicy policy;
  policy.max_attempts = 3;
  policy.min_backoff = std::chrono::milliseconds(10);
  policy.max_backoff = std::chrono::milliseconds(10);
  open(ep, policy, [&](SchedulerOptions& o) {
    o.store = open_memory_store();
    o.client_factory = [ep, unreachable](const std::string& url) -> Result<std::shared_ptr<Client>> {
      if (url == "http://127.0.0.1:1") return std::shared_ptr<Client>(unreachable);
      return std::shared_ptr<Client>(ep);
    };
  });
  const std::string id = dispatch(call("wf.main"));
  for (int i = 0; i < 12 && get(id).state != CallState::completed; ++i) {
    round();
    clock_.t += 100;
  }
  auto kids = scheduler_->children(id, 10, "").value();
  ASSERT_EQ(kids.size(), 1u);
  EXPECT_EQ(kids[0].state, CallState::failed);
  EXPECT_EQ(kids[0].attempts, 3u);
  EXPECT_EQ(unreachable->deliveries().size(), 3u);
  EXPECT_EQ(get(id).state, CallState::completed);
  EXPECT_EQ(get(id).output, "compensated");
  ASSERT_EQ(seen.results_size(), 1);
  EXPECT_EQ(seen.results(0).correlation_id(), 1u);
  EXPECT_FALSE(seen.results(0).error().type().empty());
  EXPECT_NE(seen.results(0).error().message().find("Connection refused"), std::string::npos)
      << seen.results(0).error().message();
}

// This process's event-loop threads (they name themselves dispatch-client).
int loop_threads() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    n += std::getline(comm, name) && name == "dispatch-client";
  }
  ::closedir(dir);
  return n;
}

// The default clients: one per endpoint URL, all on the shared loops. Each
// of 300 endpoints (a listening socket of its own) gets its own connection,
// the loop threads stay at the configured 2, and every connection is
// closed after the idle timeout.
TEST_F(SchedulerTest, DeliveriesToManyEndpointsShareTheLoopThreads) {
  constexpr int kEndpoints = 300;
  testing::MultiPortServer endpoints(kEndpoints, [](const std::string&, const std::string& body) {
    sdk::RunRequest req;
    EXPECT_TRUE(req.ParseFromString(body));
    return run_response(sdk::STATUS_OK, "ran " + req.input().value());
  });
  ClientLoopsOptions loops;
  loops.threads = 2;
  loops.idle_timeout = std::chrono::milliseconds(300);
  open(nullptr, {}, [&](SchedulerOptions& o) {
    o.client_factory = nullptr;  // the default clients
    o.client_loops = std::make_shared<ClientLoops>(loops);
  });
  std::vector<NewCall> calls;
  for (int i = 0; i < kEndpoints; ++i) {
    NewCall c = call("f", std::to_string(i));
    c.endpoint = endpoints.url(static_cast<std::size_t>(i));
    calls.push_back(std::move(c));
  }
  auto ids = scheduler_->dispatch(std::move(calls));
  ASSERT_TRUE(ids.ok()) << ids.error().what();
  for (int rounds = 0; rounds < 10 && scheduler_->stats().completed < kEndpoints; ++rounds) round();
  for (int i = 0; i < kEndpoints; ++i) {
    CallRecord r = get(ids->at(static_cast<std::size_t>(i)));
    ASSERT_EQ(r.state, CallState::completed) << "endpoint " << i << ": " << r.error_message;
    EXPECT_EQ(r.output, "ran " + std::to_string(i));
  }
  EXPECT_EQ(endpoints.accepted(), kEndpoints);
  EXPECT_EQ(loop_threads(), 2);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (endpoints.open() != 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(endpoints.open(), 0) << "connections to idle endpoints were not closed";
}

}  // namespace
}  // namespace dispatch::scheduler
