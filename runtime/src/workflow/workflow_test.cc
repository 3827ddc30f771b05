// The workflow runtime against the protocol, with a scheduler played by
// the test: each Run's answer (Exit or Poll) is read, the calls of a Poll
// are answered as the test says, and the workflow is resumed with the
// journal it handed over. The workflows below are served the way generated
// code serves them (a Method with a Run entry and a Definition).
#include "dispatch/workflow/workflow.h"

#include <gtest/gtest.h>

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "dispatch/core/service.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/workflow/serve.h"
#include "dispatch/workflow/v1/journal.pb.h"
#include "durable/protocol.h"

namespace dispatch::workflow {
namespace {

namespace journal = ::dispatch::workflow::v1;

// ---- the functions the workflows call (their stubs' call() forms) ----
// Requests and responses are decimal numbers or plain text on the wire.

Result<int> decode_int(std::string_view bytes) {
  if (bytes.empty()) return Error(Code::internal, "empty response");
  return std::stoi(std::string(bytes));
}
Result<std::string> decode_text(std::string_view bytes) { return std::string(bytes); }
Result<void> decode_void(std::string_view) { return {}; }

DurableCall<int> twice(int x) { return {"t.twice", "t.TwiceRequest", std::to_string(x), &decode_int}; }
DurableCall<std::string> greet(std::string who) { return {"t.greet", "t.GreetRequest", std::move(who), &decode_text}; }
DurableCall<void> note(std::string what) { return {"t.note", "t.NoteRequest", std::move(what), &decode_void}; }
DurableCall<int> refuse(int x) { return {"t.refuse", "t.RefuseRequest", std::to_string(x), &decode_int}; }
DurableCall<int> unencodable() {
  return {"t.twice", "t.TwiceRequest", Error(Code::out_of_range, "duration too long for the wire"), &decode_int};
}

// ---- the workflows ----

int step_seen = 0;      // what the code saw, for checks
bool changed = false;   // the code "changed under a running workflow"
std::string context_seen;

Workflow<int> sequential(int x) {
  const int a = co_await twice(x);
  const int b = co_await twice(a);
  co_await dispatch::sleep(std::chrono::hours(24));
  co_return a + b;
}

Workflow<std::string> gather(int x) {
  auto [n, hello, slept, noted] =
      co_await dispatch::all(twice(x), greet("ann"), dispatch::sleep(std::chrono::seconds(5)), note("x"));
  static_assert(std::is_same_v<decltype(slept), std::monostate>);
  static_assert(std::is_same_v<decltype(noted), std::monostate>);
  co_return hello + ":" + std::to_string(n);
}

Workflow<std::string> first_success(int) {
  auto winner = co_await dispatch::any(refuse(1), greet("bob"));
  co_return std::to_string(winner.index()) + "=" + std::get<1>(winner);
}

Workflow<std::string> first_outcome(int) {
  try {
    auto winner = co_await dispatch::race(twice(1), dispatch::sleep(std::chrono::seconds(30)));
    co_return winner.index() == 0 ? "call " + std::to_string(std::get<0>(winner)) : std::string("timeout");
  } catch (const Error& e) {
    co_return std::string("race failed: ") + std::string(code_name(e.code()));
  }
}

Workflow<int> compensates(int x) {
  try {
    co_await refuse(x);
    co_return -1;
  } catch (const Error& e) {
    step_seen = static_cast<int>(e.code());
  }
  co_return co_await twice(x);  // the compensation
}

Workflow<int> fan_out(int n) {
  std::vector<DurableCall<int>> calls;
  for (int i = 0; i < n; ++i) calls.push_back(twice(i));
  std::vector<int> results = co_await dispatch::all(std::move(calls));
  int sum = 0;
  for (int r : results) sum += r;
  co_return sum;
}

Workflow<int> chatty(int n) {
  for (int i = 0; i < n; ++i) co_await greet(std::to_string(i));
  co_return n;
}

Workflow<int> diverges(int x) {
  const int a = co_await twice(x);
  if (changed) {
    co_await greet("new code");
  } else {
    co_await twice(a);
  }
  co_return a;
}

Workflow<int> helper(int x) {
  const int a = co_await twice(x);
  co_return a + 1;
}
Workflow<int> uses_helper(int x) {
  const int a = co_await helper(x);    // inline: same journal
  const int b = co_await helper(a);
  co_return b;
}

Workflow<int> loops(int round) {
  const int next = co_await twice(round);
  co_await dispatch::continue_as(DurableCall<int>("t.loops", "t.LoopsRequest", std::to_string(next), &decode_int));
  co_return -1;  // never reached
}

Workflow<void> reads_context(int) {
  context_seen = this_call().dispatch_id + "/" + this_call().root_dispatch_id + "/" +
                 std::to_string(this_call().attempt);
  co_await note("seen");
}

Workflow<int> throws(int x) {
  co_await twice(x);
  throw Error(Code::not_found, "no such order");
}

Workflow<int> bad_request(int) { co_return co_await unencodable(); }

Workflow<int> sleeps_until(int) {
  co_await dispatch::sleep_until(std::chrono::system_clock::time_point(std::chrono::milliseconds(1'900'000'000'000)));
  co_return 0;
}

// ---- served as generated code serves them ----

struct IntRequest {
  int x = 0;
};

template <typename T, Workflow<T> (*F)(int)>
Result<std::unique_ptr<Instance>> start(std::string_view input) {
  auto instance = std::make_unique<InstanceOf<IntRequest, T>>();
  if (input.empty() || input.find_first_not_of("-0123456789") != std::string_view::npos) {
    return Error(Code::invalid_argument, "not a number: '" + std::string(input) + "'");
  }
  instance->request.x = std::stoi(std::string(input));
  if constexpr (std::is_void_v<T>) {
    instance->start(F(instance->request.x), [] { return std::string("void"); });
  } else if constexpr (std::is_same_v<T, std::string>) {
    instance->start(F(instance->request.x), [](std::string&& s) { return std::move(s); });
  } else {
    instance->start(F(instance->request.x), [](T&& v) { return std::to_string(v); });
  }
  return std::unique_ptr<Instance>(std::move(instance));
}

#define WORKFLOW(name, T)                                                                         \
  const Definition k_##name{"t." #name, "v1", "t." #name "Request", "t." #name "Response", &start<T, name>}; \
  Result<std::string> run_##name(const MethodCall& call) { return run(call, k_##name); }           \
  Result<std::string> direct_##name(const MethodCall&) { return direct_call_refused("t." #name); }

WORKFLOW(sequential, int)
WORKFLOW(gather, std::string)
WORKFLOW(first_success, std::string)
WORKFLOW(first_outcome, std::string)
WORKFLOW(compensates, int)
WORKFLOW(fan_out, int)
WORKFLOW(chatty, int)
WORKFLOW(diverges, int)
WORKFLOW(uses_helper, int)
WORKFLOW(loops, int)
WORKFLOW(reads_context, void)
WORKFLOW(throws, int)
WORKFLOW(bad_request, int)
WORKFLOW(sleeps_until, int)

#define METHOD(name) \
  {#name, "/t.W/" #name, "t." #name "Request", "t." #name "Response", &direct_##name, nullptr, &run_##name}
const Method kMethods[] = {METHOD(sequential),  METHOD(gather),  METHOD(first_success), METHOD(first_outcome),
                           METHOD(compensates), METHOD(fan_out), METHOD(diverges),      METHOD(uses_helper),
                           METHOD(loops),       METHOD(reads_context), METHOD(throws),  METHOD(bad_request),
                           METHOD(sleeps_until),  METHOD(chatty)};
const Service kService{"t", "W", kMethods, std::size(kMethods), {}, &function_service()};

// ---- the scheduler, played by the test ----

class Scheduler {
 public:
  explicit Scheduler(std::string function) : function_(std::move(function)), table_{&kService} {}

  // Runs the function from `input`.
  sdk::v1::RunResponse start(const std::string& input) {
    sdk::v1::RunRequest req = base();
    protocol::pack_any(function_ + "Request", input, req.mutable_input());
    return send(req);
  }
  // Resumes it with the state of `last` (its last Poll) and `results`.
  sdk::v1::RunResponse resume(const sdk::v1::RunResponse& last, std::vector<sdk::v1::CallResult> results,
                              const sdk::v1::Error* error = nullptr) {
    sdk::v1::RunRequest req = base();
    sdk::v1::PollResult* p = req.mutable_poll_result();
    p->set_coroutine_state(last.poll().coroutine_state());
    for (auto& r : results) *p->add_results() = std::move(r);
    if (error) *p->mutable_error() = *error;
    return send(req);
  }
  sdk::v1::RunResponse resume_with_state(std::string state) {
    sdk::v1::RunRequest req = base();
    req.mutable_poll_result()->set_coroutine_state(std::move(state));
    return send(req);
  }

  // What the called functions answer: twice doubles, greet says hello,
  // note and sleeps succeed, refuse fails with not_found.
  static sdk::v1::CallResult answer(const sdk::v1::Call& call) {
    sdk::v1::CallResult r;
    r.set_correlation_id(call.correlation_id());
    r.set_dispatch_id("child-" + std::to_string(call.correlation_id() & 0xffff));
    const std::string& in = call.input().value();
    if (call.function() == "t.twice") {
      r.mutable_output()->set_value(std::to_string(2 * std::stoi(in)));
    } else if (call.function() == "t.greet") {
      r.mutable_output()->set_value("hello " + in);
    } else if (call.function() == "t.refuse") {
      r.mutable_error()->set_type("not_found");
      r.mutable_error()->set_message("refused " + in);
    } else {
      r.mutable_output()->set_value("");
    }
    return r;
  }
  // Answers every call of `poll` in order, one resume each, until Exit.
  sdk::v1::RunResponse run_to_end(sdk::v1::RunResponse res, int* resumes = nullptr) {
    std::vector<sdk::v1::Call> pending;
    for (int i = 0; i < 1000 && res.has_poll(); ++i) {
      for (const auto& c : res.poll().calls()) pending.push_back(c);
      EXPECT_FALSE(pending.empty());
      if (pending.empty()) break;
      std::vector<sdk::v1::CallResult> results;
      const std::size_t take = std::min<std::size_t>(pending.size(), static_cast<std::size_t>(res.poll().min_results()));
      for (std::size_t k = 0; k < take; ++k) results.push_back(answer(pending[k]));
      pending.erase(pending.begin(), pending.begin() + static_cast<long>(take));
      res = resume(res, std::move(results));
      if (resumes) ++*resumes;
    }
    return res;
  }

  CallContext context;

 private:
  sdk::v1::RunRequest base() {
    sdk::v1::RunRequest req;
    req.set_function(function_);
    req.set_dispatch_id("wf-1");
    req.set_root_dispatch_id("root-1");
    return req;
  }
  sdk::v1::RunResponse send(const sdk::v1::RunRequest& req) {
    const Method* run_route = table_.find(kRunPath);
    CallContext ctx = context;
    if (ctx.attempt == 0) ctx.attempt = 1;
    auto out = table_.invoke(*run_route, req.SerializeAsString(), ctx);
    EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().what());
    sdk::v1::RunResponse res;
    EXPECT_TRUE(res.ParseFromString(out.value()));
    return res;
  }

  std::string function_;
  DispatchTable table_;
};

journal::Journal journal_of(const sdk::v1::RunResponse& res) {
  journal::Journal j;
  EXPECT_TRUE(j.ParseFromString(res.poll().coroutine_state()));
  return j;
}

TEST(Workflow, RunsOneStepPerPollAndExitsWithItsResult) {
  Scheduler s("t.sequential");
  auto res = s.start("5");
  ASSERT_TRUE(res.has_poll());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_OK);
  ASSERT_EQ(res.poll().calls_size(), 1);
  const sdk::v1::Call& first = res.poll().calls(0);
  EXPECT_EQ(first.function(), "t.twice");
  EXPECT_EQ(first.input().type_url(), "type.googleapis.com/t.TwiceRequest");
  EXPECT_EQ(first.input().value(), "5");
  EXPECT_EQ(first.endpoint(), "");  // the workflow's own endpoint
  EXPECT_EQ(first.correlation_id() & 0xffffffffu, 1u);
  EXPECT_NE(first.correlation_id() >> 32, 0u);
  EXPECT_EQ(res.poll().min_results(), 1);
  EXPECT_EQ(res.poll().max_results(), 1000);
  auto j = journal_of(res);
  EXPECT_EQ(j.function(), "t.sequential");
  EXPECT_EQ(j.version(), "v1");
  EXPECT_EQ(j.input(), "5");
  EXPECT_EQ(j.steps_size(), 1);

  res = s.resume(res, {Scheduler::answer(first)});
  ASSERT_TRUE(res.has_poll());
  ASSERT_EQ(res.poll().calls_size(), 1);  // only the new step
  EXPECT_EQ(res.poll().calls(0).input().value(), "10");
  EXPECT_EQ(res.poll().calls(0).correlation_id() & 0xffffffffu, 2u);

  res = s.resume(res, {Scheduler::answer(res.poll().calls(0))});
  ASSERT_EQ(res.poll().calls_size(), 1);
  const sdk::v1::Call& timer = res.poll().calls(0);
  EXPECT_EQ(timer.function(), kSleepFunction);
  EXPECT_EQ(timer.endpoint(), "");
  google::protobuf::Duration d;
  ASSERT_EQ(timer.input().type_url(), "type.googleapis.com/google.protobuf.Duration");
  ASSERT_TRUE(d.ParseFromString(timer.input().value()));
  EXPECT_EQ(d.seconds(), 24 * 3600);

  res = s.resume(res, {Scheduler::answer(timer)});
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_OK);
  EXPECT_EQ(res.exit().result().output().type_url(), "type.googleapis.com/t.sequentialResponse");
  EXPECT_EQ(res.exit().result().output().value(), "30");
}

TEST(Workflow, AllGathersCallsOfDifferentTypesInOnePoll) {
  Scheduler s("t.gather");
  auto res = s.start("4");
  ASSERT_EQ(res.poll().calls_size(), 4);
  EXPECT_EQ(res.poll().min_results(), 4);  // resumed once every call is in
  // Results come in any order, one or several per resume.
  std::vector<sdk::v1::Call> calls(res.poll().calls().begin(), res.poll().calls().end());
  res = s.resume(res, {Scheduler::answer(calls[2]), Scheduler::answer(calls[0])});
  ASSERT_TRUE(res.has_poll());
  EXPECT_EQ(res.poll().calls_size(), 0);
  EXPECT_EQ(res.poll().min_results(), 2);
  res = s.resume(res, {Scheduler::answer(calls[3]), Scheduler::answer(calls[1])});
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "hello ann:8");
}

TEST(Workflow, AnyTakesTheFirstSuccessAndRaceTheFirstOutcome) {
  Scheduler s("t.first_success");
  auto res = s.start("0");
  ASSERT_EQ(res.poll().calls_size(), 2);
  EXPECT_EQ(res.poll().min_results(), 1);
  std::vector<sdk::v1::Call> calls(res.poll().calls().begin(), res.poll().calls().end());
  res = s.resume(res, {Scheduler::answer(calls[0])});  // refuse fails first: not yet
  ASSERT_TRUE(res.has_poll());
  res = s.resume(res, {Scheduler::answer(calls[1])});
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "1=hello bob");

  Scheduler r("t.first_outcome");
  res = r.start("0");
  calls.assign(res.poll().calls().begin(), res.poll().calls().end());
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].function(), kSleepFunction);
  // The timer fires first: a timeout, even if the call ends in the same batch after it.
  res = r.resume(res, {Scheduler::answer(calls[1]), Scheduler::answer(calls[0])});
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "timeout");
  res = r.start("0");
  calls.assign(res.poll().calls().begin(), res.poll().calls().end());
  sdk::v1::CallResult failed;
  failed.set_correlation_id(calls[0].correlation_id());
  failed.mutable_error()->set_type("unavailable");
  failed.mutable_error()->set_message("down");
  res = r.resume(res, {failed});
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "race failed: unavailable");
  // An error is a failure whatever it holds: here only a value, no type
  // or message (the SDKs read CallResult.error by its presence).
  res = r.start("0");
  calls.assign(res.poll().calls().begin(), res.poll().calls().end());
  sdk::v1::CallResult bare;
  bare.set_correlation_id(calls[0].correlation_id());
  bare.mutable_error()->set_value("pickled exception");
  res = r.resume(res, {bare});
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "race failed: unknown");
}

TEST(Workflow, AFailedCallIsAnErrorWithItsCodeTheWorkflowCanCatch) {
  Scheduler s("t.compensates");
  auto res = s.run_to_end(s.start("7"));
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "14");
  EXPECT_EQ(step_seen, static_cast<int>(Code::not_found));
}

TEST(Workflow, AFanOutOfTenIsOnePollAndOneResume) {
  Scheduler s("t.fan_out");
  auto res = s.start("10");
  ASSERT_EQ(res.poll().calls_size(), 10);
  EXPECT_EQ(res.poll().min_results(), 10);
  int resumes = 0;
  res = s.run_to_end(res, &resumes);
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "90");
  EXPECT_EQ(resumes, 1);
}

TEST(Workflow, AFanOutOfTenThousandGoesOutInBatchesOfAThousand) {
  Scheduler s("t.fan_out");
  auto res = s.start("10000");
  ASSERT_TRUE(res.has_poll());
  // Every step is in the journal; the first thousand are sent.
  auto j = journal_of(res);
  EXPECT_EQ(j.steps_size(), 10000);
  EXPECT_EQ(j.steps(999).sent_in(), 1u);
  EXPECT_EQ(j.steps(1000).sent_in(), 0u);
  std::set<uint64_t> sent;
  int polls = 0;
  while (res.has_poll() && polls < 20) {
    ++polls;
    EXPECT_EQ(res.poll().calls_size(), 1000) << "poll " << polls;
    EXPECT_EQ(res.poll().min_results(), 1000) << "poll " << polls;
    std::vector<sdk::v1::CallResult> results;
    for (const auto& c : res.poll().calls()) {
      EXPECT_TRUE(sent.insert(c.correlation_id()).second) << "step " << (c.correlation_id() & 0xffffffffu)
                                                          << " sent twice";
      results.push_back(Scheduler::answer(c));
    }
    res = s.resume(res, std::move(results));
  }
  EXPECT_EQ(polls, 10);
  EXPECT_EQ(sent.size(), 10000u);
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_OK);
  EXPECT_EQ(res.exit().result().output().value(), "99990000");  // 2 * (0 + ... + 9999)
}

TEST(Workflow, AResumeWithPartOfABatchSendsTheRestWithoutResendingAny) {
  Scheduler s("t.fan_out");
  auto res = s.start("1500");
  ASSERT_EQ(res.poll().calls_size(), 1000);
  std::vector<sdk::v1::Call> first(res.poll().calls().begin(), res.poll().calls().end());
  std::vector<sdk::v1::CallResult> some;
  for (int i = 0; i < 400; ++i) some.push_back(Scheduler::answer(first[static_cast<std::size_t>(i)]));
  res = s.resume(res, std::move(some));
  ASSERT_TRUE(res.has_poll());
  ASSERT_EQ(res.poll().calls_size(), 500);  // steps 1001..1500, each once
  EXPECT_EQ(res.poll().calls(0).correlation_id() & 0xffffffffu, 1001u);
  EXPECT_EQ(res.poll().min_results(), 1000);  // 1,100 in flight
  std::vector<sdk::v1::Call> rest(res.poll().calls().begin(), res.poll().calls().end());
  std::vector<sdk::v1::CallResult> others;
  for (std::size_t i = 400; i < first.size(); ++i) others.push_back(Scheduler::answer(first[i]));
  for (const auto& c : rest) others.push_back(Scheduler::answer(c));
  res = s.resume(res, std::move(others));
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "2248500");  // 2 * (0 + ... + 1499)
}

TEST(Workflow, AJournalBeyondWhatASchedulerKeepsIsAClearError) {
  Scheduler s("t.chatty");
  auto res = s.start("10");
  for (int i = 0; i < 10 && res.has_poll(); ++i) {
    sdk::v1::CallResult r = Scheduler::answer(res.poll().calls(0));
    r.mutable_output()->set_value(std::string(std::size_t{1} << 20, 'x'));  // a 1 MiB answer
    res = s.resume(res, {r});
  }
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_PERMANENT_ERROR);
  EXPECT_EQ(res.exit().result().error().type(), "failed_precondition");
  const std::string& msg = res.exit().result().error().message();
  EXPECT_NE(msg.find("t.chatty's journal has grown to"), std::string::npos) << msg;
  EXPECT_NE(msg.find("beyond the 4194304 a scheduler keeps"), std::string::npos) << msg;
  EXPECT_NE(msg.find("return less from the calls it makes"), std::string::npos) << msg;
}

TEST(Workflow, AJournalTooBigForItsInputSaysSo) {
  // The results are small: the input (5 MiB, a number with leading zeros)
  // is what no scheduler keeps.
  Scheduler s("t.chatty");
  auto res = s.start(std::string(std::size_t{5} << 20, '0') + "1");
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_PERMANENT_ERROR);
  const std::string& msg = res.exit().result().error().message();
  EXPECT_NE(msg.find("its input alone is 5242881 bytes: pass large data by reference"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("return less from the calls"), std::string::npos) << msg;
}

TEST(Workflow, ResultsWithUnknownCorrelationIdsAreIgnored) {
  Scheduler s("t.sequential");
  auto res = s.start("1");
  const sdk::v1::Call first = res.poll().calls(0);
  sdk::v1::CallResult stranger = Scheduler::answer(first);
  stranger.set_correlation_id(first.correlation_id() ^ (uint64_t{1} << 40));  // another run
  sdk::v1::CallResult beyond = Scheduler::answer(first);
  beyond.set_correlation_id(first.correlation_id() + 5);  // a step never taken
  sdk::v1::CallResult zero;
  res = s.resume(res, {stranger, beyond, zero});
  ASSERT_TRUE(res.has_poll());
  EXPECT_EQ(res.poll().calls_size(), 0);  // still waiting for step 1
  EXPECT_EQ(journal_of(res).ended(), 0u);
  // Delivered twice: the second is ignored.
  auto once = s.resume(res, {Scheduler::answer(first)});
  sdk::v1::CallResult late = Scheduler::answer(first);
  late.mutable_output()->set_value("999");
  auto twice_delivered = s.resume(once, {late});
  ASSERT_TRUE(twice_delivered.has_poll());
  EXPECT_EQ(twice_delivered.poll().calls_size(), 0);
  EXPECT_EQ(journal_of(twice_delivered).steps(0).output(), "2");
}

TEST(Workflow, ADeterminismViolationStopsTheRunAndNamesTheStep) {
  changed = false;
  Scheduler s("t.diverges");
  auto res = s.start("3");
  res = s.resume(res, {Scheduler::answer(res.poll().calls(0))});
  ASSERT_EQ(res.poll().calls_size(), 1);  // step 2: twice(6)
  changed = true;                         // a new deployment
  res = s.resume(res, {Scheduler::answer(res.poll().calls(0))});
  changed = false;
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_PERMANENT_ERROR);
  const std::string& msg = res.exit().result().error().message();
  EXPECT_EQ(res.exit().result().error().type(), "failed_precondition");
  EXPECT_NE(msg.find("t.diverges"), std::string::npos) << msg;
  EXPECT_NE(msg.find("step 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a call to t.twice"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a call to t.greet"), std::string::npos) << msg;
}

TEST(Workflow, AJournalThatWentFurtherThanTheCodeIsAViolation) {
  // The journal of sequential, resumed as if the code had dropped a step.
  Scheduler s("t.sequential");
  auto res = s.start("1");
  res = s.resume(res, {Scheduler::answer(res.poll().calls(0))});
  res = s.resume(res, {Scheduler::answer(res.poll().calls(0))});  // 3 steps now
  auto j = journal_of(res);
  j.mutable_steps()->SwapElements(0, 2);  // step 1 is now the sleep
  auto bad = s.resume_with_state(j.SerializeAsString());
  EXPECT_EQ(bad.status(), sdk::v1::STATUS_PERMANENT_ERROR);
  EXPECT_NE(bad.exit().result().error().message().find("step 1: the journal holds a sleep"), std::string::npos)
      << bad.exit().result().error().message();
}

TEST(Workflow, BadStatesAreRefusedWithWhatWasWrong) {
  Scheduler s("t.sequential");
  auto expect_refused = [&](const std::string& state, const char* says, sdk::v1::Status status) {
    auto res = s.resume_with_state(state);
    ASSERT_TRUE(res.has_exit());
    EXPECT_EQ(res.status(), status) << says;
    EXPECT_NE(res.exit().result().error().message().find(says), std::string::npos)
        << res.exit().result().error().message();
  };
  expect_refused("", "carries no coroutine state", sdk::v1::STATUS_INVALID_ARGUMENT);
  expect_refused("\xff\xff garbage", "is not a workflow journal", sdk::v1::STATUS_INVALID_ARGUMENT);
  auto j = journal_of(s.start("1"));
  j.set_function("t.gather");
  expect_refused(j.SerializeAsString(), "the journal of 't.gather', another function", sdk::v1::STATUS_INVALID_ARGUMENT);
  j.set_function("t.sequential");
  j.set_version("v0");
  expect_refused(j.SerializeAsString(), "written by version v0", sdk::v1::STATUS_INCOMPATIBLE_STATE);
  j.set_version("v1");
  j.set_input("not a number");
  expect_refused(j.SerializeAsString(), "cannot start t.sequential from its input", sdk::v1::STATUS_INVALID_ARGUMENT);
}

TEST(Workflow, AnInlineHelperSharesTheJournal) {
  Scheduler s("t.uses_helper");
  int resumes = 0;
  auto res = s.run_to_end(s.start("1"), &resumes);
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().output().value(), "7");  // (1*2+1)*2+1
  EXPECT_EQ(resumes, 2);
}

TEST(Workflow, ATailCallEndsTheRunWithTheNextCall) {
  Scheduler s("t.loops");
  auto res = s.start("3");
  res = s.resume(res, {Scheduler::answer(res.poll().calls(0))});
  ASSERT_TRUE(res.has_exit());
  ASSERT_TRUE(res.exit().has_tail_call());
  EXPECT_FALSE(res.exit().has_result());
  EXPECT_EQ(res.exit().tail_call().function(), "t.loops");
  EXPECT_EQ(res.exit().tail_call().input().value(), "6");
  EXPECT_EQ(res.exit().tail_call().input().type_url(), "type.googleapis.com/t.LoopsRequest");
}

TEST(Workflow, TheWorkflowSeesItsIds) {
  Scheduler s("t.reads_context");
  s.context.attempt = 3;
  auto res = s.start("0");
  ASSERT_TRUE(res.has_poll());
  EXPECT_EQ(context_seen, "wf-1/root-1/3");
  res = s.run_to_end(res);
  EXPECT_EQ(res.exit().result().output().value(), "void");
}

TEST(Workflow, WhatTheWorkflowThrowsIsItsError) {
  Scheduler s("t.throws");
  auto res = s.run_to_end(s.start("1"));
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_NOT_FOUND);
  EXPECT_EQ(res.exit().result().error().message(), "no such order");
  Scheduler b("t.bad_request");
  res = b.start("1");
  ASSERT_TRUE(res.has_exit());
  EXPECT_EQ(res.exit().result().error().type(), "out_of_range");
}

TEST(Workflow, RefusedCallsFailTheirStepsWithTheSchedulersError) {
  Scheduler s("t.compensates");
  auto res = s.start("2");  // refuse(2)
  sdk::v1::Error refused;
  refused.set_type("invalid_argument");
  refused.set_message("call 0: endpoint 'x' is not an http:// or https:// URL");
  res = s.resume(res, {}, &refused);
  ASSERT_TRUE(res.has_poll());  // caught, and compensates with twice(2)
  EXPECT_EQ(step_seen, static_cast<int>(Code::invalid_argument));
  EXPECT_NE(journal_of(res).steps(0).error_message().find("did not make the call"), std::string::npos);
}

TEST(Workflow, SleepUntilCarriesTheTime) {
  Scheduler s("t.sleeps_until");
  auto res = s.start("0");
  ASSERT_EQ(res.poll().calls_size(), 1);
  ASSERT_EQ(res.poll().calls(0).input().type_url(), "type.googleapis.com/google.protobuf.Timestamp");
  google::protobuf::Timestamp t;
  ASSERT_TRUE(t.ParseFromString(res.poll().calls(0).input().value()));
  EXPECT_EQ(t.seconds(), 1'900'000'000);
}

TEST(Workflow, ItsDirectRouteSaysHowToRunIt) {
  DispatchTable table{&kService};
  auto r = table.invoke(*table.find("/t.W/sequential"), "5");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::failed_precondition);
  EXPECT_NE(r.error().message().find("'t.sequential' is a workflow"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace dispatch::workflow
