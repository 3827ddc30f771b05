// One Run of a workflow: load (or begin) its journal, apply the results the
// scheduler brought, run the coroutine from its input (every journaled
// step answered at once), and answer Exit when it ended, or Poll with the
// journal and the steps it took beyond it.
//
// Not for: deciding anything about time (timers are calls the scheduler
// completes: the coroutine never reads a clock), or keeping coroutines
// between Runs (each Run replays).
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/workflow/serve.h"
#include "dispatch/workflow/v1/journal.pb.h"
#include "durable/protocol.h"

namespace dispatch::workflow {

namespace journal = ::dispatch::workflow::v1;

// How many calls one Poll may carry, and how many results a resume takes:
// the protocol's ceiling for max_results. A step that issues more (all()
// of 10,000 calls) sends them in batches: each Poll carries the next
// kMaxResults of those not sent yet.
constexpr int kMaxResults = 1000;
// The largest journal a Poll may carry: what a scheduler keeps
// (dispatchd refuses a bigger coroutine state).
constexpr std::size_t kMaxJournalBytes = std::size_t{4} << 20;
constexpr std::string_view kJournalType = "dispatch.workflow.v1.Journal";

// A step this run took beyond the journal: a call for the next Poll.
struct Outgoing {
  uint32_t seq = 0;
  sdk::v1::Call call;
};

class Run {
 public:
  journal::Journal journal;
  uint32_t journaled = 0;  // steps in the journal when the run began
  uint32_t next_seq = 0;   // steps the code asked for so far
  std::vector<Outgoing> outgoing;
  std::deque<std::optional<detail::Ended>> views;  // per step, once ended
  std::coroutine_handle<> waiting;
  const detail::Waiter* waiter = nullptr;
  bool stopped = false;
  std::string violation;  // why the run stopped, when it is one
  std::optional<sdk::v1::Call> tail;

  uint64_t correlation_id(uint32_t seq) const { return (static_cast<uint64_t>(journal.run()) << 32) | seq; }

  void violate(uint32_t seq, std::string what) {
    if (stopped) return;
    stopped = true;
    violation = "determinism violation in " + journal.function() + " at step " + std::to_string(seq) + ": " +
                std::move(what) +
                "; the code changed under a running workflow, or is not deterministic (docs/workflows.md, "
                "\"Changing a deployed workflow\")";
  }

  // The journal's step `seq` (the code's next), or a new one.
  journal::Step* take_step(uint32_t seq, std::string_view function, bool* fresh) {
    *fresh = false;
    if (seq <= static_cast<uint32_t>(journal.steps_size())) {
      journal::Step* step = journal.mutable_steps(static_cast<int>(seq - 1));
      if (step->function() != function) {
        violate(seq, "the journal holds " + describe(*step) + ", the code now asks for " +
                         (function == kSleepFunction ? std::string("a sleep") : "a call to " + std::string(function)));
        return nullptr;
      }
      return step;
    }
    *fresh = true;
    journal::Step* step = journal.add_steps();
    step->set_function(std::string(function));
    // sent_in stays 0 until a Poll carries it (the end of run()).
    return step;
  }

  // A journaled step no Poll carried yet (beyond a batch): the code issues
  // it again on every replay until one does.
  static bool unsent(const journal::Step& step) { return step.sent_in() == 0 && step.order() == 0; }

  static std::string describe(const journal::Step& step) {
    return step.function() == kSleepFunction ? "a sleep" : "a call to " + step.function();
  }

  const detail::Ended* ended(uint32_t seq) {
    if (seq == 0 || seq > static_cast<uint32_t>(journal.steps_size())) return nullptr;
    const journal::Step& step = journal.steps(static_cast<int>(seq - 1));
    if (step.order() == 0) return nullptr;
    while (views.size() < seq) views.emplace_back();
    std::optional<detail::Ended>& view = views[seq - 1];
    if (!view) {
      detail::Ended e;
      e.order = step.order();
      e.failed = step.failed();
      e.output = step.output();
      e.status = step.status();
      e.error_type = step.error_type();
      e.error_message = step.error_message();
      view = e;
    }
    return &*view;
  }
};

namespace detail {

Error Ended::error() const {
  return Error(code_for_call_failure(status, error_type), std::string(error_message));
}

uint32_t step_call(Run& run, const char* function, const char* request_type, const std::string& request,
                   const std::string& endpoint, std::optional<std::chrono::milliseconds> expiration) {
  const uint32_t seq = ++run.next_seq;
  if (run.stopped) return seq;
  bool fresh = false;
  const journal::Step* step = run.take_step(seq, function, &fresh);
  if (step == nullptr || !(fresh || Run::unsent(*step))) return seq;
  Outgoing out;
  out.seq = seq;
  out.call.set_correlation_id(run.correlation_id(seq));
  out.call.set_endpoint(endpoint);
  out.call.set_function(function);
  protocol::pack_any(request_type, request, out.call.mutable_input());
  if (expiration) {
    out.call.mutable_expiration()->set_seconds(expiration->count() / 1000);
    out.call.mutable_expiration()->set_nanos(static_cast<int32_t>((expiration->count() % 1000) * 1'000'000));
  }
  run.outgoing.push_back(std::move(out));
  return seq;
}

uint32_t step_sleep(Run& run, std::optional<int64_t> duration_ms, std::optional<int64_t> until_unix_ms) {
  const uint32_t seq = ++run.next_seq;
  if (run.stopped) return seq;
  bool fresh = false;
  journal::Step* step = run.take_step(seq, kSleepFunction, &fresh);
  if (step == nullptr || !(fresh || Run::unsent(*step))) return seq;
  Outgoing out;
  out.seq = seq;
  out.call.set_correlation_id(run.correlation_id(seq));
  out.call.set_function(std::string(kSleepFunction));
  if (until_unix_ms) {
    step->set_until_ms(*until_unix_ms);
    google::protobuf::Timestamp until;
    protocol::to_timestamp(*until_unix_ms, &until);
    protocol::pack_any("google.protobuf.Timestamp", until.SerializeAsString(), out.call.mutable_input());
  } else {
    const int64_t ms = std::max<int64_t>(0, duration_ms.value_or(0));
    step->set_sleep_ms(ms);
    google::protobuf::Duration d;
    d.set_seconds(ms / 1000);
    d.set_nanos(static_cast<int32_t>((ms % 1000) * 1'000'000));
    protocol::pack_any("google.protobuf.Duration", d.SerializeAsString(), out.call.mutable_input());
  }
  run.outgoing.push_back(std::move(out));
  return seq;
}

const Ended* ended(Run& run, uint32_t seq) { return run.ended(seq); }

bool stopped(Run& run) { return run.stopped; }

void wait(Run& run, std::coroutine_handle<> coroutine, const Waiter& waiter) {
  if (run.stopped) return;
  run.waiting = coroutine;
  run.waiter = &waiter;
}

void tail_call(Run& run, const char* function, const char* request_type, const std::string& request,
               const std::string& endpoint, std::optional<std::chrono::milliseconds> expiration) {
  if (run.stopped) return;
  run.stopped = true;
  sdk::v1::Call call;
  call.set_endpoint(endpoint);
  call.set_function(function);
  protocol::pack_any(request_type, request, call.mutable_input());
  if (expiration) {
    call.mutable_expiration()->set_seconds(expiration->count() / 1000);
    call.mutable_expiration()->set_nanos(static_cast<int32_t>((expiration->count() % 1000) * 1'000'000));
  }
  run.tail = std::move(call);
}

}  // namespace detail

namespace {

uint32_t random_run() {
  thread_local std::mt19937 rng(std::random_device{}());
  uint32_t r = 0;
  while (r == 0) r = rng();
  return r;
}

// A RunResponse with a status and an error, for what the scheduler must
// act on (INCOMPATIBLE_STATE: start again from the input).
std::string answer(RunStatus status, std::string type, std::string message) {
  sdk::v1::RunResponse res;
  res.set_status(static_cast<sdk::v1::Status>(status));
  sdk::v1::Error* e = res.mutable_exit()->mutable_result()->mutable_error();
  e->set_type(std::move(type));
  e->set_message(std::move(message));
  return res.SerializeAsString();
}

// Loads the journal a resume brings and applies its results. An Error for
// bad input; a RunResponse (in `reply`) when the scheduler must restart.
Result<void> resume(const sdk::v1::PollResult& poll, const Definition& def, Run& run, std::optional<std::string>* reply) {
  std::string_view state;
  if (poll.state_case() == sdk::v1::PollResult::kTypedCoroutineState) {
    if (protocol::any_type(poll.typed_coroutine_state()) != kJournalType) {
      return Error(Code::invalid_argument, std::string("cannot resume ") + def.function + ": its state is a " +
                                               poll.typed_coroutine_state().type_url() + ", not a " +
                                               std::string(kJournalType));
    }
    state = poll.typed_coroutine_state().value();
  } else {
    state = poll.coroutine_state();
  }
  if (state.empty()) {
    return Error(Code::invalid_argument, std::string("cannot resume ") + def.function +
                                             ": the poll result carries no coroutine state (a workflow's "
                                             "journal is never empty)");
  }
  if (!run.journal.ParseFromArray(state.data(), static_cast<int>(state.size())) || run.journal.run() == 0 ||
      run.journal.function().empty()) {
    return Error(Code::invalid_argument, std::string("cannot resume ") + def.function + ": its state (" +
                                             std::to_string(state.size()) +
                                             " bytes) is not a workflow journal of this runtime");
  }
  if (run.journal.function() != def.function) {
    return Error(Code::invalid_argument, std::string("cannot resume ") + def.function +
                                             ": the state is the journal of '" + run.journal.function() +
                                             "', another function");
  }
  if (run.journal.version() != def.version) {
    *reply = answer(RunStatus::incompatible_state, "incompatible_state",
                    std::string(def.function) + " is now version " + def.version + ", but this run's journal was written by version " +
                        run.journal.version() + ": starting it again from its input");
    return {};
  }
  if (run.journal.input_type() != def.request_type) {
    return Error(Code::invalid_argument, std::string("cannot resume ") + def.function + ": its journal holds a " +
                                             run.journal.input_type() + " as input, it takes " + def.request_type);
  }
  // Results, in the order they came: each ends its step, once. Delivery
  // is at least once, so anything unknown or already ended is ignored.
  const auto steps = static_cast<uint32_t>(run.journal.steps_size());
  for (const sdk::v1::CallResult& r : poll.results()) {
    const uint64_t id = r.correlation_id();
    const uint32_t seq = static_cast<uint32_t>(id & 0xffffffffu);
    if ((id >> 32) != run.journal.run() || seq == 0 || seq > steps) continue;
    journal::Step* step = run.journal.mutable_steps(static_cast<int>(seq - 1));
    if (step->order() != 0) continue;
    step->set_order(run.journal.ended() + 1);
    run.journal.set_ended(step->order());
    step->set_dispatch_id(r.dispatch_id());
    // An error is a failure whatever it holds, as the Python and Go SDKs
    // read it: one with only a value or traceback, or nothing, too.
    if (r.has_error()) {
      step->set_failed(true);
      step->set_error_type(r.error().type().empty() ? "unknown" : r.error().type());
      step->set_error_message(r.error().message().empty() && r.error().type().empty()
                                  ? "the call failed with an error that has no type or message"
                                  : r.error().message());
      step->set_status(static_cast<int32_t>(RunStatus::permanent_error));
    } else {
      step->set_output(r.output().value());
      step->set_status(static_cast<int32_t>(RunStatus::ok));
    }
  }
  // The calls of the last Poll were refused (none was made): each fails
  // with the scheduler's error.
  if (poll.has_error()) {
    for (journal::Step& step : *run.journal.mutable_steps()) {
      if (step.order() != 0 || step.sent_in() != run.journal.polls()) continue;
      step.set_order(run.journal.ended() + 1);
      run.journal.set_ended(step.order());
      step.set_failed(true);
      step.set_error_type(poll.error().type().empty() ? "invalid_argument" : poll.error().type());
      step.set_error_message("the scheduler did not make the call: " + poll.error().message());
      step.set_status(static_cast<int32_t>(RunStatus::invalid_argument));
    }
  }
  return {};
}

}  // namespace

Result<std::string> run(const MethodCall& call, const Definition& def) {
  sdk::v1::RunRequest req;
  if (!req.ParseFromArray(call.request.data(), static_cast<int>(call.request.size()))) {
    return Error(Code::invalid_argument, "the request body is not a valid dispatch.sdk.v1.RunRequest message");
  }
  Run run;
  if (req.directive_case() == sdk::v1::RunRequest::kPollResult) {
    std::optional<std::string> restart;
    auto loaded = resume(req.poll_result(), def, run, &restart);
    if (!loaded.ok()) return std::move(loaded).error();
    if (restart) return std::move(*restart);
  } else {
    run.journal.set_function(def.function);
    run.journal.set_version(def.version);
    run.journal.set_input_type(def.request_type);
    run.journal.set_input(req.input().value());
    run.journal.set_run(random_run());
  }
  run.journaled = static_cast<uint32_t>(run.journal.steps_size());

  auto started = def.start(run.journal.input());
  if (!started.ok()) {
    return std::move(started).error().with_context(std::string("cannot start ") + def.function + " from its input");
  }
  std::unique_ptr<Instance> instance = std::move(started).value();
  instance->promise().run = &run;

  // Run until the coroutine ends, stops, or waits for what has not ended.
  run.waiting = instance->handle();
  for (;;) {
    std::coroutine_handle<> next = std::exchange(run.waiting, {});
    run.waiter = nullptr;
    next.resume();
    if (run.stopped || instance->handle().done()) break;
    if (!run.waiting || run.waiter == nullptr) {
      return Error(Code::internal, std::string(def.function) + " suspended outside a durable await");
    }
    if (!run.waiter->ready(run)) break;
  }
  const bool done = instance->handle().done();
  if (!run.stopped && run.next_seq < run.journaled) {
    // The journal went further than the code does now.
    run.violate(run.next_seq + 1, "the journal holds " +
                                      Run::describe(run.journal.steps(static_cast<int>(run.next_seq))) +
                                      ", the code now " + (done ? "returns" : "waits") + " before it");
  }
  if (!run.violation.empty()) return Error(Code::failed_precondition, run.violation);

  sdk::v1::RunResponse res;
  res.set_status(sdk::v1::STATUS_OK);
  if (run.tail) {
    *res.mutable_exit()->mutable_tail_call() = std::move(*run.tail);
    return res.SerializeAsString();
  }
  if (done) {
    // Throws what the workflow threw. A dispatch::Error (its own, or a
    // child's failure it rethrows) is final whatever its code: the same Run
    // delivered again would replay the same journal to the same throw, so a
    // temporary status would only delay the end by every retry. Its type
    // keeps the code for the caller. Other exceptions: the Run route makes
    // them a status, after the table's own exception mappings.
    std::string output;
    try {
      output = instance->encoded_result();
    } catch (const Error& e) {
      RunStatus status = run_status_for(e.code());
      if (is_temporary(status)) status = RunStatus::permanent_error;
      return answer(status, std::string(code_name(e.code())), e.message());
    }
    protocol::pack_any(def.response_type, std::move(output), res.mutable_exit()->mutable_result()->mutable_output());
    return res.SerializeAsString();
  }
  // This Poll carries the first kMaxResults calls not sent yet (in the
  // order the code made them); the rest stay in the journal, unsent, for
  // the next ones.
  const uint32_t poll_number = run.journal.polls() + 1;
  run.journal.set_polls(poll_number);
  const std::size_t batch = std::min<std::size_t>(run.outgoing.size(), kMaxResults);
  for (std::size_t i = 0; i < batch; ++i) {
    run.journal.mutable_steps(static_cast<int>(run.outgoing[i].seq - 1))->set_sent_in(poll_number);
  }
  std::size_t in_flight = 0;
  for (const journal::Step& step : run.journal.steps()) in_flight += step.sent_in() != 0 && step.order() == 0;
  std::string state = run.journal.SerializeAsString();
  if (state.size() > kMaxJournalBytes) {
    // The journal holds the input too: when that is most of it, fewer or
    // smaller results would not help.
    const std::size_t input = run.journal.input().size();
    const std::string what =
        input * 2 > state.size()
            ? "its input alone is " + std::to_string(input) +
                  " bytes: pass large data by reference (a key or URL of where it is stored), not in the "
                  "workflow's input"
            : "return less from the calls it makes, or continue_as a fresh run every so often";
    return Error(Code::failed_precondition,
                 std::string(def.function) + "'s journal has grown to " + std::to_string(state.size()) +
                     " bytes (" + std::to_string(run.journal.steps_size()) + " steps), beyond the " +
                     std::to_string(kMaxJournalBytes) + " a scheduler keeps: " + what +
                     " (docs/workflows.md, \"Limits and bad input\")");
  }
  sdk::v1::Poll* poll = res.mutable_poll();
  poll->set_coroutine_state(std::move(state));
  for (std::size_t i = 0; i < batch; ++i) *poll->add_calls() = std::move(run.outgoing[i].call);
  // Never more than are in flight: the scheduler could not resume it.
  const std::size_t needed = std::min({run.waiter->needed(run), in_flight, static_cast<std::size_t>(kMaxResults)});
  poll->set_min_results(static_cast<int32_t>(std::max<std::size_t>(needed, 1)));
  poll->set_max_results(kMaxResults);
  return res.SerializeAsString();
}

Error direct_call_refused(const char* function) {
  return Error(Code::failed_precondition,
               std::string("'") + function +
                   "' is a workflow: it runs through a scheduler, which makes its calls durable. Dispatch it "
                   "(the stub's dispatch(scheduler, ...) form, or dispatchctl dispatch) and wait for its "
                   "result; in a test, run it with dispatch::testing::Harness");
}

}  // namespace dispatch::workflow
