// dispatch::scheduler::Store: where the scheduler keeps its calls. Small on
// purpose, so that a second backend (NATS JetStream, for many machines) fits
// behind it: append calls, lease due ones fairly, record the end of an
// attempt under its lease, look up and list, cancel and retry, delete calls
// that ended long enough ago.
//
// Calls that make calls (coroutines, answering Poll): the end of such an
// attempt stores the coroutine's state and its new calls (children) in one
// write; a child's end becomes a result waiting for its parent in the same
// write; a parent is due again once enough results wait, or its wait is
// over; a call that ends takes its unfinished descendants with it
// (cancelled). What each write does is said where it is declared, and
// store_conformance_test holds every backend to it.
//
// Writes are asynchronous: `done` runs once the write is committed (SQLite:
// its group-commit transaction), on the store's writer thread; it must be
// quick and must not call back into the store synchronously (queuing
// another asynchronous write is fine). enqueue, cancel and retry are also
// on disk by then; claim, finish, release_leases and delete_ended may
// reach the disk with the next synced commit: a power cut may undo them,
// which only makes a call be delivered again, or deleted again (a killed
// process loses none). Reads are synchronous and see every committed write.
//
// Not for: policy (backoff, attempts, expiration and how long ended calls
// are kept are the scheduler's).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"

namespace dispatch::scheduler {

// Numbered as dispatch.scheduler.v1.CallState. `suspended`: the call
// answered Poll and waits for its children's results (or its max_wait);
// due again (next_attempt_at_ms) once they are there.
enum class CallState : int { pending = 1, running = 2, completed = 3, failed = 4, cancelled = 5, suspended = 6 };

std::string_view state_name(CallState state) noexcept;  // "pending", ...
std::optional<CallState> state_from_name(std::string_view name) noexcept;
inline bool is_final(CallState s) noexcept {
  return s == CallState::completed || s == CallState::failed || s == CallState::cancelled;
}

// A call as a client handed it over. Times are Unix milliseconds; 0 is none.
struct NewCall {
  std::string function;
  std::string endpoint;
  std::string input_type_url;  // "type.googleapis.com/shop.AddRequest"
  std::string input;           // the request message's bytes
  int64_t expiration_at_ms = 0;
  std::string idempotency_key;  // empty: none
  std::string tenant;           // fairness key; empty: the function name
  std::string parent_id;
  std::string root_id;
  // The W3C trace context the call was dispatched in ("00-<trace>-<span>-
  // <flags>" and the tracestate), sent with every delivery so one trace id
  // ties a durable execution together; empty: none.
  std::string traceparent;
  std::string tracestate;
  // Not delivered before this time (a delayed call, a timer); 0: at once.
  int64_t not_before_ms = 0;
  // A child (a call made by its parent's Poll): its correlation ID there.
  uint64_t correlation_id = 0;
};

// A child's end, waiting for its parent's next resume.
struct ChildResult {
  uint64_t seq = 0;  // order of arrival at the store; Outcome::consumed names it
  uint64_t correlation_id = 0;
  std::string dispatch_id;  // the child's
  int status = 0;           // its dispatch.sdk.v1.Status
  std::string output_type_url;
  std::string output;
  std::string error_type;
  std::string error_message;
};

struct CallRecord {
  std::string id;
  std::string function;
  std::string endpoint;
  std::string input_type_url;
  std::string input;
  CallState state = CallState::pending;
  uint32_t attempts = 0;  // deliveries started, the one running included
  // Times the call was started again from its input because it could not
  // take a resume (Outcome::restart). Unlike attempts, a Poll keeps it: it
  // counts over the call's whole life, until a tail call or retry().
  uint32_t restarts = 0;
  int64_t next_attempt_at_ms = 0;
  int64_t expiration_at_ms = 0;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;  // a final call: when it ended
  int status = 0;  // dispatch.sdk.v1.Status of the last attempt
  std::string output_type_url;
  std::string output;
  std::string error_type;
  std::string error_message;
  std::string idempotency_key;
  std::string tenant;
  std::string parent_id;
  std::string root_id;
  std::string traceparent;  // as NewCall's
  std::string tracestate;
  uint64_t lease = 0;  // running only: the token finish() must present
  uint64_t correlation_id = 0;  // a child: its correlation ID in its parent's Poll

  // A call that answered Poll: its next delivery is a resume with this
  // state (byte for byte; a type URL: the typed variant of the oneof) and
  // the results of its children. Cleared by a tail call, a restart, retry().
  bool polled = false;
  std::string poll_state;
  std::string poll_state_type_url;
  int32_t min_results = 0;  // due once this many results wait...
  int32_t max_results = 0;  // ...and resumed with at most this many
  // The calls of its last Poll were refused: resumed at once with this
  // error (PollResult.error) and no results.
  std::string poll_error_type;
  std::string poll_error_message;
  uint32_t outstanding = 0;  // children that have not ended
  uint32_t ready = 0;        // results waiting for it
  // Set by claim() for a polled call: the results handed to this attempt,
  // at most max_results, in the order they arrived.
  std::vector<ChildResult> results;
};

// How a coroutine's attempt ended with a Poll.
struct PollOutcome {
  std::string state;           // kept for the resume, byte for byte
  std::string state_type_url;  // non-empty: typed_coroutine_state
  // Its children, in order: each with parent_id, root_id and
  // correlation_id set (idempotency keys are not honoured for children).
  std::vector<NewCall> calls;
  int32_t min_results = 1;  // 1..1000, as the scheduler checked
  int32_t max_results = 1;
  int64_t wake_at_ms = 0;   // max_wait over; 0: no max_wait
  // The calls could not be dispatched (none were): resume at once with
  // this error and no children.
  std::string error_type;
  std::string error_message;
};

// How one attempt ended, as the scheduler decided: completed or failed
// (final), pending again at next_attempt_at_ms (a retry), or suspended
// (`poll` set).
//
// What else the write does, in the same transaction:
// - suspended: stores the poll state, resets attempts to 0 (restarts
//   stay), adds the children (outstanding += their count) and is due at
//   once if enough results already wait (ready >= min_results, or ready > 0
//   with nothing outstanding) or the calls were refused; else at the
//   earlier of wake_at_ms and its expiration (never, without either).
// - completed or failed: a call with a parent that has not ended becomes
//   a result of that parent (ChildResult; the parent's outstanding - 1,
//   ready + 1; a suspended parent due now when that makes it ready); its
//   unfinished descendants are cancelled (and give no results); its
//   waiting results are dropped.
// - tail_call: the call goes on as that call (function, endpoint, input,
//   expiration replaced; IDs, creation time and idempotency key kept),
//   pending now, attempts 0, restarts 0, no poll state; its unfinished
//   descendants are cancelled and its results dropped.
// - restart: as a retry (pending at next_attempt_at_ms), but its poll
//   state, descendants and results go as for a tail call: the function
//   starts again from its input (INCOMPATIBLE_STATE on a resume);
//   restarts + 1.
// - consumed: the results handed to this attempt are dropped (ready - n),
//   unless the attempt is retried, in which case they are handed again.
struct Outcome {
  CallState state = CallState::completed;
  int status = 0;
  std::string output_type_url;
  std::string output;
  std::string error_type;
  std::string error_message;
  int64_t next_attempt_at_ms = 0;

  std::optional<PollOutcome> poll;
  std::optional<NewCall> tail_call;
  bool restart = false;
  std::vector<uint64_t> consumed;  // ChildResult::seq of the results handed over
  // What the scheduler knows of the call as it leased it, so that a store
  // need not read it again: its parent and its place there (CallRecord::
  // parent_id, correlation_id), whether it may have unfinished children
  // (outstanding > 0) and whether results may wait for it (polled). None
  // of these changes while the call is leased, except outstanding, which
  // only its own outcome raises. Set them with leased_as().
  std::string parent_id;
  uint64_t correlation_id = 0;
  bool had_outstanding = false;
  bool polled = false;

  void leased_as(const CallRecord& leased) {
    parent_id = leased.parent_id;
    correlation_id = leased.correlation_id;
    had_outstanding = leased.outstanding > 0;
    polled = leased.polled;
  }
};

struct ClaimOptions {
  int64_t now_ms = 0;
  std::size_t max = 64;          // calls in all
  std::size_t per_key_max = 64;  // calls per fairness key
  int64_t lease_until_ms = 0;    // a lapsed lease makes the call pending again
  // Calls to these endpoints stay pending (their concurrency is exhausted).
  std::vector<std::string> skip_endpoints;
};

template <typename T>
using Done = std::function<void(Result<T>)>;

class EntityStore;

class Store {
 public:
  virtual ~Store() = default;

  // Persists `calls` in one transaction (all or none); IDs in order. A call
  // whose idempotency key is already stored gets that call's ID instead.
  virtual void enqueue(std::vector<NewCall> calls, int64_t now_ms,
                       Done<std::vector<std::string>> done) = 0;
  // Leases due calls: first suspended calls that are due (resumes of work
  // in progress, earliest first), then pending calls round-robin across
  // fairness keys (tenant, else function): one call from each backlogged
  // key in turn until `max`, so a flooding key gets no more than any other
  // that has work. Each leased call is running, attempts + 1; a polled one
  // comes with its waiting results (CallRecord::results).
  virtual void claim(ClaimOptions options, Done<std::vector<CallRecord>> done) = 0;
  // Records the end of an attempt if the call is still running under
  // `lease`; false when it is not (cancelled meanwhile, or re-leased).
  // out_of_range, nothing written, when the outcome would make a record
  // larger than the store can ever keep (the scheduler then fails the
  // call without it); enqueue refuses such a call the same way.
  virtual void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms,
                      Done<bool> done) = 0;
  // pending/running/suspended -> cancelled, with its unfinished
  // descendants; a call with a parent that has not ended becomes its result
  // (error type "canceled"). not_found for an unknown ID,
  // failed_precondition for a call already final.
  virtual void cancel(std::string id, int64_t now_ms, Done<CallRecord> done) = 0;
  // failed/cancelled -> pending now, attempts and restarts reset to 0, and
  // from its input: a poll state it had is dropped.
  virtual void retry(std::string id, int64_t now_ms, Done<CallRecord> done) = 0;
  // running calls whose lease lapsed by `now_ms` (all running calls when
  // `all`: at start-up, one scheduler per store) -> pending. Count moved.
  virtual void release_leases(int64_t now_ms, bool all, Done<std::size_t> done) = 0;
  // Deletes the calls that ended (completed, failed or cancelled) before
  // `ended_before_ms`, each with its idempotency key; never a pending or
  // running call. In transactions of a bounded size, so that other writes
  // commit between them however many calls go: `done` (count deleted) runs
  // after the last. A call retried meanwhile is pending again, and stays.
  virtual void delete_ended(int64_t ended_before_ms, Done<std::size_t> done) = 0;

  virtual Result<std::optional<CallRecord>> get(std::string_view id) = 0;
  // Oldest first; `after_id` continues a previous page.
  virtual Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                               std::string_view after_id) = 0;
  // The calls `parent_id` made, oldest first; `after_id` continues a page.
  virtual Result<std::vector<CallRecord>> list_children(std::string_view parent_id, std::size_t limit,
                                                        std::string_view after_id) = 0;
  // The earliest next_attempt_at_ms of a pending or suspended call, if any.
  virtual Result<std::optional<int64_t>> next_due_ms() = 0;
  // Calls per state, indexed by CallState (index 0 unused).
  virtual Result<std::vector<int64_t>> count_by_state() = 0;
  // Writes applied and transactions committed so far (group commit folds
  // many writes into one commit).
  struct Stats {
    uint64_t writes = 0;
    uint64_t commits = 0;
    uint64_t log_syncs = 0;  // SQLite: syncs of the log by the sync thread
    uint64_t deleted = 0;    // calls deleted by delete_ended
    uint64_t checkpoints = 0;  // SQLite: log checkpoints, off the writer thread
    uint64_t log_frames = 0;   // SQLite: pages the commits appended to the log
  };
  virtual Stats stats() const = 0;

  // The same store's entities for a stateful-functions runtime
  // (entity_store.h), in the same file and transactions; null when this
  // backend keeps none. Owned by this store.
  virtual EntityStore* entities() noexcept { return nullptr; }

  // True when other processes may use this store at the same time, each
  // with its own scheduler (JetStream): a scheduler starting then releases
  // only lapsed leases, not every running call. False (SQLite, memory):
  // one scheduler per store, and every running call at start-up is a
  // leftover of the previous process.
  virtual bool shared() const noexcept { return false; }

  // Blocking forms of the writes, for tools and tests.
  Result<std::vector<std::string>> enqueue_sync(std::vector<NewCall> calls, int64_t now_ms);
  Result<std::vector<CallRecord>> claim_sync(ClaimOptions options);
  Result<bool> finish_sync(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms);
  Result<CallRecord> cancel_sync(std::string id, int64_t now_ms);
  Result<CallRecord> retry_sync(std::string id, int64_t now_ms);
  Result<std::size_t> release_leases_sync(int64_t now_ms, bool all);
  Result<std::size_t> delete_ended_sync(int64_t ended_before_ms);
};

}  // namespace dispatch::scheduler
