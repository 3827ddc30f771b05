// The runtime against functions faked with the protocol's own messages
// (libprotobuf classes of request_reply.proto), a manual clock and a real
// SQLite store (the delayed-message tests also on JetStream): the
// missing-state handshake, batches in arrival order with state carried,
// expiration after write and after invoke, delayed messages and their
// cancellation in a reply's list order, retries then dead letters (and
// redrive), every kind of bad reply dead-lettered with its reason while
// other entities keep flowing, ingress refusals, egress read in order and
// POSTed until 2xx, and a reply that claims its entity's next batch unless
// another entity waits.
#include "dispatch/statefun_runtime/runtime.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <ostream>

#include "dispatch/jetstream/jetstream_store.h"
#include "dispatch/sqlite/sqlite_store.h"
#include "dispatch/stateful/value_types.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"
#include "jetstream/testing/nats_server.h"

namespace dispatch::statefun {
namespace {

namespace pb = ::io::statefun::sdk::reqreply;
using scheduler::EntityMessage;

class ManualClock final : public scheduler::Clock {
 public:
  int64_t now_ms() override { return now.load(); }
  std::atomic<int64_t> now{1'000'000};
};

constexpr const char* kModules = R"(
kind: io.statefun.endpoints.v2/http
spec:
  functions: t/*
  urlPathTemplate: http://fake/{function.name}
  maxNumBatchRequests: 100
---
kind: dispatch.statefun.v1/http-egress
spec:
  id: e/hook
  url: http://hook/receive
)";

// What a fake function answers to one ToFunction.
using Behaviour = std::function<pb::FromFunction(const pb::ToFunction&)>;

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = std::string("statefun_rt_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (auto& c : name_) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';  // a parameterized test's "/backend"
    }
    path_ = ::testing::TempDir() + name_ + ".db";
    for (const char* s : {"", "-wal", "-shm", "-owner"}) std::remove((path_ + s).c_str());
    store_ = open_store();
    ASSERT_NE(store_, nullptr);
    open();
  }
  virtual std::unique_ptr<scheduler::Store> open_store() {
    scheduler::SqliteOptions so;
    so.path = path_;
    so.fsync_commits = false;
    return scheduler::open_sqlite_store(so).value();
  }
  void TearDown() override {
    rt_.reset();
    store_.reset();
    for (const char* s : {"", "-wal", "-shm", "-owner"}) std::remove((path_ + s).c_str());
  }
  void open(uint32_t max_attempts = 3, std::size_t max_claim = 64) {
    rt_.reset();
    RuntimeOptions o;
    o.max_claim = max_claim;
    o.modules = ModuleConfig::parse(kModules).value();
    o.store = store_->entities();
    o.clock = &clock_;
    o.seed = 7;
    o.max_attempts = max_attempts;
    o.min_backoff = std::chrono::milliseconds(100);
    o.max_backoff = std::chrono::milliseconds(100);
    o.max_state_bytes = 1000;
    o.poster = [this](const std::string& url, std::string body, std::chrono::milliseconds,
                      const std::vector<std::pair<std::string, std::string>>& headers, Client::Callback done) {
      on_post(url, std::move(body), headers, std::move(done));
    };
    rt_ = Runtime::open(std::move(o)).value();
  }

  void on_post(const std::string& url, std::string body, const std::vector<std::pair<std::string, std::string>>& headers,
               Client::Callback done) {
    std::unique_lock<std::mutex> lock(mu_);
    if (url == "http://hook/receive") {
      hook_posts_.push_back({body, headers});
      if (hook_failures_ > 0) {
        --hook_failures_;
        lock.unlock();
        done(Error(Code::unavailable, "HTTP 503 from the hook"));
        return;
      }
      lock.unlock();
      done(std::string());
      return;
    }
    pb::ToFunction req;
    EXPECT_TRUE(req.ParseFromString(body));
    requests_.push_back(req);
    if (hold_) {
      held_.push_back([this, req, done = std::move(done)]() mutable { answer(req, std::move(done)); });
      return;
    }
    lock.unlock();
    answer(req, std::move(done));
  }
  void answer(const pb::ToFunction& req, Client::Callback done) {
    if (raw_reply_) {
      done(*raw_reply_);
      return;
    }
    if (fail_with_) {
      done(*fail_with_);
      return;
    }
    done(behaviour_(req).SerializeAsString());
  }
  void release_held() {
    std::vector<std::function<void()>> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
      hold_ = false;
    }
    for (auto& h : held) h();
  }

  // Rounds until nothing is left to start.
  void run() {
    for (int i = 0; i < 50; ++i) {
      auto started = rt_->step();
      ASSERT_TRUE(started.ok()) << started.error().what();
      rt_->wait_idle();
      if (*started == 0) {
        // Once more: a reply applied may have readied an entity.
        auto again = rt_->step();
        ASSERT_TRUE(again.ok());
        rt_->wait_idle();
        if (*again == 0) return;
      }
    }
  }

  uint64_t send(const std::string& type, const std::string& id, const std::string& value, std::string key = "") {
    EntityMessage m;
    m.target = {type, id};
    m.type_name = std::string(stateful::kStringType);
    m.value = stateful::encode_string(value);
    m.idempotency_key = std::move(key);
    auto ids = rt_->send({m});
    EXPECT_TRUE(ids.ok()) << ids.error().what();
    return ids.ok() ? ids->front() : 0;
  }

  std::optional<scheduler::StateValue> state(const std::string& type, const std::string& id, const std::string& name) {
    auto v = rt_->entity({type, id}, 100).value();
    if (!v) return std::nullopt;
    for (auto& s : v->state) {
      if (s.name == name) return s;
    }
    return std::nullopt;
  }

  // A counter as a StateFun SDK would run it: declares "count" (an int),
  // answers the handshake when it is missing, adds each message's number
  // of invocations, and records what it saw.
  Behaviour counter(scheduler::ExpireMode mode = scheduler::ExpireMode::none, int64_t ttl = 0) {
    return [mode, ttl, this](const pb::ToFunction& req) {
      pb::FromFunction res;
      const auto& batch = req.invocation();
      const pb::TypedValue* count = nullptr;
      for (const auto& s : batch.state()) {
        if (s.state_name() == "count") count = &s.state_value();
      }
      if (count == nullptr) {
        auto* spec = res.mutable_incomplete_invocation_context()->add_missing_values();
        spec->set_state_name("count");
        spec->set_type_typename(std::string(stateful::kIntType));
        spec->mutable_expiration_spec()->set_mode(static_cast<pb::FromFunction::ExpirationSpec::ExpireMode>(mode));
        spec->mutable_expiration_spec()->set_expire_after_millis(ttl);
        return res;
      }
      int32_t n = count->has_value() ? stateful::decode_int(count->value()).value() : 0;
      for (const auto& inv : batch.invocations()) {
        seen_[batch.target().id()].push_back(stateful::decode_string(inv.argument().value()).value());
        ++n;
      }
      auto* r = res.mutable_invocation_result();
      auto* m = r->add_state_mutations();
      m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
      m->set_state_name("count");
      m->mutable_state_value()->set_typename_(std::string(stateful::kIntType));
      m->mutable_state_value()->set_has_value(true);
      m->mutable_state_value()->set_value(stateful::encode_int(n));
      return res;
    };
  }
  int32_t count_of(const std::string& id, const std::string& type = "t/counter") {
    auto s = state(type, id, "count");
    return s ? stateful::decode_int(s->value).value() : -1;
  }

  std::string name_;  // the test's, as a file or bucket name
  std::string path_;
  ManualClock clock_;
  std::unique_ptr<scheduler::Store> store_;
  std::unique_ptr<Runtime> rt_;
  std::mutex mu_;
  std::vector<pb::ToFunction> requests_;
  Behaviour behaviour_;
  bool hold_ = false;
  std::vector<std::function<void()>> held_;
  std::optional<std::string> raw_reply_;
  std::optional<Error> fail_with_;
  std::map<std::string, std::vector<std::string>> seen_;
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> hook_posts_;
  int hook_failures_ = 0;
};

TEST_F(RuntimeTest, TheMissingStateHandshakeRegistersTheSpecAndSendsTheSameBatchAgain) {
  behaviour_ = counter();
  send("t/counter", "alice", "hello");
  run();
  ASSERT_EQ(requests_.size(), 2u);
  EXPECT_EQ(requests_[0].invocation().state_size(), 0);
  EXPECT_EQ(requests_[0].invocation().target().namespace_(), "t");
  EXPECT_EQ(requests_[0].invocation().target().type(), "counter");
  EXPECT_EQ(requests_[0].invocation().target().id(), "alice");
  // The retry: the same invocations, and the registered value, absent.
  ASSERT_EQ(requests_[1].invocation().state_size(), 1);
  const auto& s = requests_[1].invocation().state(0);
  EXPECT_EQ(s.state_name(), "count");
  EXPECT_EQ(s.state_value().typename_(), stateful::kIntType);
  EXPECT_FALSE(s.state_value().has_value());
  EXPECT_EQ(requests_[1].invocation().invocations_size(), 1);
  EXPECT_FALSE(requests_[1].invocation().invocations(0).has_caller());
  EXPECT_EQ(count_of("alice"), 1);
  EXPECT_EQ(rt_->stats().incomplete, 1u);
  // Known from now on: no handshake for another entity of the type.
  send("t/counter", "bob", "x");
  run();
  EXPECT_EQ(requests_.size(), 3u);
  EXPECT_EQ(count_of("bob"), 1);
}

TEST_F(RuntimeTest, MessagesArrivingDuringABatchGoOutTogetherInArrivalOrderWithStateCarried) {
  behaviour_ = counter();
  send("t/counter", "a", "warm-up");
  run();
  const std::size_t before = requests_.size();
  hold_ = true;
  send("t/counter", "a", "1");
  ASSERT_TRUE(rt_->step().ok());  // batch [1] goes out and is held
  for (int i = 2; i <= 5; ++i) send("t/counter", "a", std::to_string(i));
  ASSERT_TRUE(rt_->step().ok());  // nothing for a: one batch in flight
  EXPECT_EQ(requests_.size(), before + 1);
  release_held();
  rt_->wait_idle();
  run();
  ASSERT_EQ(requests_.size(), before + 2);
  const auto& second = requests_.back().invocation();
  ASSERT_EQ(second.invocations_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(stateful::decode_string(second.invocations(i).argument().value()).value(), std::to_string(i + 2));
  }
  EXPECT_EQ(stateful::decode_int(second.state(0).state_value().value()).value(), 2);
  EXPECT_EQ(count_of("a"), 6);
  EXPECT_EQ(seen_["a"], (std::vector<std::string>{"warm-up", "1", "2", "3", "4", "5"}));
}

TEST_F(RuntimeTest, AReplyClaimsItsEntitysNextBatchWhenNoOtherEntityWaits) {
  behaviour_ = counter();
  send("t/counter", "a", "warm-up");
  run();
  const std::size_t before = requests_.size();
  hold_ = true;
  send("t/counter", "a", "1");
  ASSERT_TRUE(rt_->step().ok());
  send("t/counter", "a", "2");
  send("t/counter", "a", "3");
  release_held();
  rt_->wait_idle();
  // Applied with its entity's next batch: still leased, waiting to be posted.
  EXPECT_EQ(rt_->stats().continued, 1u);
  EXPECT_EQ(count_of("a"), 2);
  EXPECT_TRUE(rt_->entity({"t/counter", "a"}, 10).value()->in_flight);
  ASSERT_TRUE(rt_->step().ok());
  rt_->wait_idle();
  ASSERT_EQ(requests_.size(), before + 2);
  const auto& second = requests_.back().invocation();
  ASSERT_EQ(second.invocations_size(), 2);
  EXPECT_EQ(stateful::decode_int(second.state(0).state_value().value()).value(), 2);
  EXPECT_EQ(count_of("a"), 4);
  EXPECT_EQ(seen_["a"], (std::vector<std::string>{"warm-up", "1", "2", "3"}));
  EXPECT_FALSE(rt_->entity({"t/counter", "a"}, 10).value()->in_flight);
}

TEST_F(RuntimeTest, AClaimTakesAtMostMaxClaimBatchesSoTheRestGatherMessagesUntilTheirTurn) {
  open(3, /*max_claim=*/2);
  behaviour_ = counter();
  send("t/counter", "w", "warm-up");
  run();
  const std::size_t before = requests_.size();
  hold_ = true;
  for (const char* id : {"a", "b", "c", "d", "e"}) send("t/counter", id, "1");
  auto first = rt_->step();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 2u);
  ASSERT_EQ(requests_.size(), before + 2);
  EXPECT_FALSE(rt_->entity({"t/counter", "c"}, 10).value()->in_flight) << "claimed beyond max_claim";
  // Arrives after the first claim: goes out in c's first batch, which
  // the next claim loads.
  send("t/counter", "c", "2");
  auto second = rt_->step();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 2u);
  ASSERT_EQ(requests_.size(), before + 4);
  const auto& c = requests_[before + 2].invocation();
  EXPECT_EQ(c.target().id(), "c");
  EXPECT_EQ(c.invocations_size(), 2);
  release_held();
  run();
  for (const char* id : {"a", "b", "d", "e"}) EXPECT_EQ(count_of(id), 1) << id;
  EXPECT_EQ(count_of("c"), 2);
}

TEST_F(RuntimeTest, AZeroMaxClaimIsRefusedByName) {
  RuntimeOptions o;
  o.modules = ModuleConfig::parse(kModules).value();
  o.store = store_->entities();
  o.max_claim = 0;
  auto rt = Runtime::open(std::move(o));
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.error().code(), Code::invalid_argument);
  EXPECT_NE(rt.error().message().find("max_claim"), std::string::npos) << rt.error().message();
}

TEST_F(RuntimeTest, AReplysEntityGoesBehindAnotherEntityOfItsTypeThatWaits) {
  behaviour_ = counter();
  send("t/counter", "a", "warm-up");
  run();
  hold_ = true;
  send("t/counter", "a", "1");
  ASSERT_TRUE(rt_->step().ok());
  send("t/counter", "b", "x");  // ready, not claimed yet
  send("t/counter", "a", "2");
  release_held();
  rt_->wait_idle();
  EXPECT_EQ(rt_->stats().continued, 0u);
  run();
  EXPECT_EQ(count_of("a"), 3);
  EXPECT_EQ(count_of("b"), 1);
  EXPECT_EQ(seen_["a"], (std::vector<std::string>{"warm-up", "1", "2"}));
}

TEST_F(RuntimeTest, StateExpiresAfterWrite) {
  behaviour_ = counter(scheduler::ExpireMode::after_write, 1000);
  send("t/counter", "a", "1");
  run();
  EXPECT_EQ(count_of("a"), 1);
  clock_.now += 999;
  send("t/counter", "a", "2");
  run();
  EXPECT_EQ(count_of("a"), 2);  // written again: expires 1000 ms from now
  clock_.now += 1000;
  send("t/counter", "a", "3");
  run();
  EXPECT_FALSE(requests_.back().invocation().state(0).state_value().has_value());
  EXPECT_EQ(count_of("a"), 1);  // started over
}

TEST_F(RuntimeTest, StateExpiresAfterInvokeUnlessTheEntityIsInvoked) {
  // A function that declares "seen" (after invoke, 1 s) and writes it once.
  behaviour_ = [](const pb::ToFunction& req) {
    pb::FromFunction res;
    const auto& batch = req.invocation();
    if (batch.state_size() == 0) {
      auto* spec = res.mutable_incomplete_invocation_context()->add_missing_values();
      spec->set_state_name("seen");
      spec->set_type_typename(std::string(stateful::kBoolType));
      spec->mutable_expiration_spec()->set_mode(pb::FromFunction::ExpirationSpec::AFTER_INVOKE);
      spec->mutable_expiration_spec()->set_expire_after_millis(1000);
      return res;
    }
    auto* r = res.mutable_invocation_result();
    if (!batch.state(0).state_value().has_value()) {
      auto* m = r->add_state_mutations();
      m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
      m->set_state_name("seen");
      m->mutable_state_value()->set_typename_(std::string(stateful::kBoolType));
      m->mutable_state_value()->set_has_value(true);
      m->mutable_state_value()->set_value(stateful::encode_bool(true));
    }
    return res;
  };
  send("t/flag", "a", "1");
  run();
  for (int i = 0; i < 3; ++i) {  // invoked every 800 ms: never expires
    clock_.now += 800;
    send("t/flag", "a", "again");
    run();
    EXPECT_TRUE(requests_.back().invocation().state(0).state_value().has_value()) << i;
  }
  clock_.now += 1000;
  send("t/flag", "a", "late");
  run();
  // Expired before this batch (it was not sent), and written again by it.
  EXPECT_TRUE(state("t/flag", "a", "seen").has_value());
  bool absent_seen = false;
  for (const auto& r : requests_) {
    for (const auto& inv : r.invocation().invocations()) {
      if (stateful::decode_string(inv.argument().value()).value() == "late") {
        absent_seen = !r.invocation().state(0).state_value().has_value();
      }
    }
  }
  EXPECT_TRUE(absent_seen);
}

// The runtime on each store backend (SQLite, JetStream on a nats-server of
// the test's own): what a reply's delayed messages and cancellations do
// depends on how the store applies them.
struct Backend {
  const char* name;
  std::function<std::unique_ptr<scheduler::Store>(const std::string& path, const std::string& name)> open;
  // Why this backend cannot run here (empty: it can).
  std::function<std::string()> missing = [] { return std::string(); };
};

class RuntimeOnEveryStore : public RuntimeTest, public ::testing::WithParamInterface<Backend> {
 protected:
  void SetUp() override {
    if (std::string why = GetParam().missing(); !why.empty()) GTEST_SKIP() << why;
    RuntimeTest::SetUp();
  }
  std::unique_ptr<scheduler::Store> open_store() override { return GetParam().open(path_, name_); }

  // A timer as the StateFun SDKs answer: each message is a list of steps,
  // "+tok@ms" (a delayed "fired tok" to itself in ms, token tok) or "-tok"
  // (cancel tok), listed in that order in one reply's
  // delayed_invocations; every message it gets is recorded in seen_.
  Behaviour timer() {
    return [this](const pb::ToFunction& req) {
      pb::FromFunction res;
      auto* r = res.mutable_invocation_result();
      for (const auto& inv : req.invocation().invocations()) {
        const std::string what = stateful::decode_string(inv.argument().value()).value();
        seen_[req.invocation().target().id()].push_back(what);
        std::size_t from = 0;
        while (from < what.size() && (what[from] == '+' || what[from] == '-')) {
          std::size_t end = what.find(',', from);
          if (end == std::string::npos) end = what.size();
          const std::string step = what.substr(from, end - from);
          from = end + 1;
          auto* d = r->add_delayed_invocations();
          if (step[0] == '-') {
            d->set_is_cancellation_request(true);
            d->set_cancellation_token(step.substr(1));
            continue;
          }
          const std::size_t at = step.find('@');
          const std::string token = step.substr(1, at - 1);
          d->set_cancellation_token(token);
          d->set_delay_in_ms(std::stoll(step.substr(at + 1)));
          *d->mutable_target() = req.invocation().target();
          d->mutable_argument()->set_typename_(std::string(stateful::kStringType));
          d->mutable_argument()->set_has_value(true);
          d->mutable_argument()->set_value(stateful::encode_string("fired " + token));
        }
      }
      return res;
    };
  }
  std::size_t pending(const std::string& id) { return rt_->entity({"t/timer", id}, 10).value()->delayed.size(); }
  // Runs while the clock moves past every delay the tests use.
  void run_past_every_delay() {
    for (int i = 0; i < 6; ++i) {
      clock_.now += 1000;
      run();
    }
  }
};

const Backend kBackends[] = {
    {"sqlite",
     [](const std::string& path, const std::string&) -> std::unique_ptr<scheduler::Store> {
       scheduler::SqliteOptions o;
       o.path = path;
       o.fsync_commits = false;
       auto s = scheduler::open_sqlite_store(o);
       EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
       return s.ok() ? std::move(s).value() : nullptr;
     }},
    {"jetstream",
     [](const std::string&, const std::string& name) -> std::unique_ptr<scheduler::Store> {
       // One server for the whole run; buckets named after the test.
       static scheduler::testing::NatsServer nats;
       static const bool started = nats.start();
       EXPECT_TRUE(started) << nats.failure();
       if (!started) return nullptr;
       scheduler::JetStreamOptions o;
       o.servers = {nats.url()};
       o.bucket = name;
       auto s = scheduler::open_jetstream_store(o);
       EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what());
       return s.ok() ? std::move(s).value() : nullptr;
     },
     [] {
       return scheduler::testing::NatsServer::available() ? std::string() : scheduler::testing::NatsServer::kMissing;
     }},
};

std::string PrintBackend(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }
void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

INSTANTIATE_TEST_SUITE_P(Backends, RuntimeOnEveryStore, ::testing::ValuesIn(kBackends), PrintBackend);

TEST_P(RuntimeOnEveryStore, AMessageArmedThenCancelledInOneReplyIsNeverDelivered) {
  // What our SDK sends for send_after(t) then cancel_delayed(t) in one batch.
  behaviour_ = timer();
  send("t/timer", "x", "+t@1000,-t");
  run();
  EXPECT_EQ(pending("x"), 0u);
  run_past_every_delay();
  EXPECT_EQ(seen_["x"], (std::vector<std::string>{"+t@1000,-t"}));
  EXPECT_EQ(rt_->stats().delayed_fired, 0u);
  EXPECT_TRUE(rt_->dead_letters(0, 10).value().empty());
}

TEST_P(RuntimeOnEveryStore, ATokenCancelledThenArmedAgainInOneReplyIsDeliveredOnce) {
  behaviour_ = timer();
  send("t/timer", "x", "-t,+t@1000");  // nothing to cancel yet
  run();
  EXPECT_EQ(pending("x"), 1u);
  send("t/timer", "x", "-t,+t@3000");  // cancels the first, arms a later one
  run();
  EXPECT_EQ(pending("x"), 1u);
  clock_.now += 1000;
  run();
  EXPECT_EQ(rt_->stats().delayed_fired, 0u) << "the first message was not cancelled";
  run_past_every_delay();
  EXPECT_EQ(seen_["x"], (std::vector<std::string>{"-t,+t@1000", "-t,+t@3000", "fired t"}));
  EXPECT_EQ(rt_->stats().delayed_fired, 1u);
  EXPECT_TRUE(rt_->dead_letters(0, 10).value().empty());
}

TEST_P(RuntimeOnEveryStore, ACancellationInAReplyReachesAnEarlierRepliesMessageNotTheNewOnesBeforeIt) {
  behaviour_ = timer();
  send("t/timer", "x", "+t2@2000");
  run();
  send("t/timer", "x", "+t1@1000,-t2");
  run();
  EXPECT_EQ(pending("x"), 1u);
  run_past_every_delay();
  EXPECT_EQ(seen_["x"], (std::vector<std::string>{"+t2@2000", "+t1@1000,-t2", "fired t1"}));
  // Best effort: cancelling a message that was delivered changes nothing.
  send("t/timer", "x", "-t1");
  run();
  EXPECT_EQ(seen_["x"], (std::vector<std::string>{"+t2@2000", "+t1@1000,-t2", "fired t1", "-t1"}));
  EXPECT_EQ(rt_->stats().delayed_fired, 1u);
  EXPECT_TRUE(rt_->dead_letters(0, 10).value().empty());
}

TEST_P(RuntimeOnEveryStore, DelayedMessagesFireOnceAndACancelledOneNever) {
  // "arm": a delayed "fire" in 1 s and a "doomed" one in 2 s with token t;
  // "cancel": cancels t.
  behaviour_ = [this](const pb::ToFunction& req) {
    pb::FromFunction res;
    auto* r = res.mutable_invocation_result();
    for (const auto& inv : req.invocation().invocations()) {
      const std::string what = stateful::decode_string(inv.argument().value()).value();
      seen_[req.invocation().target().id()].push_back(what);
      auto delay = [&](const char* value, int64_t ms, const char* token) {
        auto* d = r->add_delayed_invocations();
        d->set_delay_in_ms(ms);
        *d->mutable_target() = req.invocation().target();
        d->mutable_argument()->set_typename_(std::string(stateful::kStringType));
        d->mutable_argument()->set_has_value(true);
        d->mutable_argument()->set_value(stateful::encode_string(value));
        d->set_cancellation_token(token);
      };
      if (what == "arm") {
        delay("fire", 1000, "");
        delay("doomed", 2000, "t");
      } else if (what == "cancel") {
        auto* d = r->add_delayed_invocations();
        d->set_is_cancellation_request(true);
        d->set_cancellation_token("t");
      }
    }
    return res;
  };
  send("t/timer", "x", "arm");
  run();
  auto view = rt_->entity({"t/timer", "x"}, 10).value();
  ASSERT_EQ(view->delayed.size(), 2u);
  send("t/timer", "x", "cancel");
  run();
  EXPECT_EQ(rt_->entity({"t/timer", "x"}, 10).value()->delayed.size(), 1u);
  clock_.now += 999;
  run();
  EXPECT_EQ(seen_["x"], (std::vector<std::string>{"arm", "cancel"}));
  clock_.now += 1;
  run();
  clock_.now += 5000;
  run();
  EXPECT_EQ(seen_["x"], (std::vector<std::string>{"arm", "cancel", "fire"}));
  // The delayed message came from the entity itself.
  EXPECT_EQ(requests_.back().invocation().invocations(0).caller().id(), "x");
  EXPECT_EQ(rt_->stats().delayed_fired, 1u);
}

TEST_F(RuntimeTest, ABatchThatKeepsFailingBecomesADeadLetterAndTheEntityMovesOn) {
  behaviour_ = counter();
  fail_with_ = Error(Code::internal, "HTTP 500 from http://fake/counter");
  send("t/counter", "a", "doomed");
  send("t/counter", "b", "doomed too");
  run();
  clock_.now += 100;
  run();
  clock_.now += 100;
  run();  // third attempt: given up
  auto letters = rt_->dead_letters(0, 10).value();
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].reason, "gave up after 3 attempts: HTTP 500 from http://fake/counter");
  EXPECT_EQ(letters[0].attempts, 3u);
  fail_with_.reset();
  send("t/counter", "a", "next");
  run();
  EXPECT_EQ(count_of("a"), 1);
  EXPECT_EQ(seen_["a"], (std::vector<std::string>{"next"}));
  ASSERT_TRUE(rt_->redrive(letters[0].seq).ok());
  run();
  EXPECT_EQ(seen_["a"], (std::vector<std::string>{"next", "doomed"}));
  EXPECT_EQ(rt_->dead_letters(0, 10).value().size(), 1u);
}

TEST_F(RuntimeTest, BadRepliesAreDeadLetteredWithTheirReasonAndNothingOfThemStays) {
  struct Case {
    const char* name;
    std::function<void(pb::FromFunction::InvocationResponse*)> reply;
    const char* reason;
  };
  auto target = [](pb::Address* a, const char* type, const char* id) {
    a->set_namespace_("t");
    a->set_type(type);
    a->set_id(id);
  };
  const Case cases[] = {
      {"undeclared", [](auto* r) {
         auto* m = r->add_state_mutations();
         m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
         m->set_state_name("ghost");
         m->mutable_state_value()->set_typename_("io.statefun.types/int");
       }, "changes state 'ghost', which t/plain never declared"},
      {"empty id", [&](auto* r) { target(r->add_outgoing_messages()->mutable_target(), "counter", ""); },
       "to t/counter with an empty id"},
      {"no route", [](auto* r) {
         auto* a = r->add_outgoing_messages()->mutable_target();
         a->set_namespace_("nowhere");
         a->set_type("f");
         a->set_id("1");
       }, "function type nowhere/f, which no endpoint serves"},
      {"delayed no route", [](auto* r) {
         auto* d = r->add_delayed_invocations();
         d->mutable_target()->set_namespace_("nowhere");
         d->mutable_target()->set_type("f");
         d->mutable_target()->set_id("1");
       }, "delayed message to function type nowhere/f"},
      {"cancel without token", [](auto* r) { r->add_delayed_invocations()->set_is_cancellation_request(true); },
       "without a cancellation token"},
      {"egress without name", [](auto* r) { r->add_outgoing_egresses(); }, "egress without a namespace"},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string id = "e" + std::to_string(n++);
    behaviour_ = [&](const pb::ToFunction&) {
      pb::FromFunction res;
      auto* r = res.mutable_invocation_result();
      r->add_outgoing_egresses()->set_egress_namespace("e");  // would be valid alone...
      r->mutable_outgoing_egresses(0)->set_egress_type("log");
      c.reply(r);
      return res;
    };
    send("t/plain", id, "x");
    run();
    auto letters = rt_->dead_letters(0, 100).value();
    ASSERT_EQ(letters.size(), static_cast<std::size_t>(n)) << c.name;
    EXPECT_NE(letters.back().reason.find(c.reason), std::string::npos) << c.name << ": " << letters.back().reason;
    EXPECT_EQ(letters.back().message.message.target.id, id);
    EXPECT_TRUE(rt_->read_egress("e/log", 0, 10).value().empty()) << c.name;  // ...but nothing of it stays
  }
  // Not a FromFunction at all, and an oversized state value.
  raw_reply_ = std::string("\xff\xff\xff", 3);
  send("t/plain", "garbage", "x");
  run();
  raw_reply_.reset();
  EXPECT_NE(rt_->dead_letters(0, 100).value().back().reason.find("not an io.statefun.sdk.reqreply.FromFunction"),
            std::string::npos);
  behaviour_ = counter();
  send("t/counter", "big", "x");
  run();
  auto grow = counter();
  behaviour_ = [&](const pb::ToFunction& req) {
    pb::FromFunction res = grow(req);
    if (res.has_invocation_result()) {
      res.mutable_invocation_result()->mutable_state_mutations(0)->mutable_state_value()->set_value(std::string(1001, 'x'));
    }
    return res;
  };
  send("t/counter", "big", "y");
  run();
  EXPECT_NE(rt_->dead_letters(0, 100).value().back().reason.find("1001 bytes to state 'count', more than the limit of 1000"),
            std::string::npos);
  EXPECT_EQ(count_of("big"), 1);
  // Other entities kept flowing all along.
  behaviour_ = counter();
  send("t/counter", "fine", "x");
  run();
  EXPECT_EQ(count_of("fine"), 1);
}

TEST_F(RuntimeTest, IngressRefusesWhatCannotBeDelivered) {
  auto refused = [&](EntityMessage m, const char* says) {
    auto r = rt_->send({m});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
  };
  EntityMessage m;
  m.target = {"t/counter", ""};
  m.type_name = "io.statefun.types/string";
  refused(m, "the entity id is empty");
  m.target = {"other/f", "1"};
  refused(m, "no endpoint serves function type other/f");
  m.target = {"nons", "1"};
  refused(m, "'namespace/name'");
  m.target = {"t/counter", "1"};
  m.type_name.clear();
  refused(m, "no typename");
  EXPECT_FALSE(rt_->entity({"t/counter", "1"}, 10).value().has_value());
}

TEST_F(RuntimeTest, IngressChecksEveryMessageOfASendNotOnlyTheFirstOfItsType) {
  auto refused = [&](std::vector<EntityMessage> ms, const char* says) {
    auto r = rt_->send(std::move(ms));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
  };
  EntityMessage ok;
  ok.target = {"t/counter", "1"};
  ok.type_name = "io.statefun.types/string";
  // A later message of a type already checked, with an empty id or no
  // typename; a later one of a type not seen before, unrouted or malformed.
  EntityMessage no_id = ok;
  no_id.target.id.clear();
  refused({ok, ok, no_id}, "message 2 (to t/counter): the entity id is empty");
  EntityMessage no_type = ok;
  no_type.type_name.clear();
  refused({ok, no_type}, "message 1 (to t/counter): the message has no typename");
  EntityMessage unrouted = ok;
  unrouted.target.type = "other/f";
  refused({ok, ok, ok, unrouted}, "message 3 (to other/f): no endpoint serves function type other/f");
  EntityMessage malformed = ok;
  malformed.target.type = "nons";
  refused({ok, ok, malformed}, "message 2 (to nons): the function type must be");
  // Nothing of a refused Send was queued.
  EXPECT_FALSE(rt_->entity({"t/counter", "1"}, 10).value().has_value());
}

TEST_F(RuntimeTest, IngressIdempotencyKeysQueueAMessageOnce) {
  behaviour_ = counter();
  const uint64_t id = send("t/counter", "a", "1", "k1");
  EXPECT_EQ(send("t/counter", "a", "1", "k1"), id);
  run();
  EXPECT_EQ(send("t/counter", "a", "1", "k1"), id);  // also after delivery
  run();
  EXPECT_EQ(count_of("a"), 1);
}

TEST_F(RuntimeTest, EgressRecordsAreReadInOrderAndPostedUntilTheHookAnswers2xx) {
  behaviour_ = [](const pb::ToFunction& req) {
    pb::FromFunction res;
    for (const auto& inv : req.invocation().invocations()) {
      for (const char* egress : {"log", "hook"}) {
        auto* e = res.mutable_invocation_result()->add_outgoing_egresses();
        e->set_egress_namespace("e");
        e->set_egress_type(egress);
        e->mutable_argument()->set_typename_(std::string(stateful::kStringType));
        e->mutable_argument()->set_value(inv.argument().value());
      }
    }
    return res;
  };
  for (int i = 0; i < 5; ++i) send("t/emit", "a", std::to_string(i));
  run();
  auto records = rt_->read_egress("e/log", 0, 100).value();
  ASSERT_EQ(records.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(stateful::decode_string(records[i].value).value(), std::to_string(i));
  EXPECT_EQ(rt_->read_egress("e/log", records[2].seq, 100).value().size(), 2u);
  hook_failures_ = 2;
  rt_->start();
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (hook_posts_.size() >= 7) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  rt_->stop();
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(hook_posts_.size(), 7u);  // two refused, then five in order
  EXPECT_EQ(hook_posts_[0].first, hook_posts_[2].first);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(stateful::decode_string(hook_posts_[2 + i].first).value(), std::to_string(i));
  }
  bool typename_header = false;
  for (const auto& [name, value] : hook_posts_[2].second) {
    typename_header = typename_header || (name == "statefun-typename" && value == stateful::kStringType);
  }
  EXPECT_TRUE(typename_header);
  auto cursor = store_->entities()->egress_cursor("e/hook").value();
  EXPECT_EQ(cursor, rt_->read_egress("e/hook", 0, 100).value().back().seq);
}

TEST_F(RuntimeTest, ABatchInFlightWhenTheRuntimeGoesIsDeliveredAgainAndAppliedOnce) {
  behaviour_ = counter();
  send("t/counter", "a", "1");
  run();
  hold_ = true;
  send("t/counter", "a", "2");
  ASSERT_TRUE(rt_->step().ok());
  ASSERT_EQ(held_.size(), 1u);
  // The process "dies": the held reply never comes back.
  held_.clear();
  hold_ = false;
  rt_.reset();
  open();
  run();
  EXPECT_EQ(count_of("a"), 2);
  EXPECT_EQ(seen_["a"], (std::vector<std::string>{"1", "2"}));  // the function saw "2" ... at least once
}

}  // namespace
}  // namespace dispatch::statefun
