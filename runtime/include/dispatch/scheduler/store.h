// dispatch::scheduler::Store: where the scheduler keeps its calls. Small on
// purpose, so that a second backend (NATS JetStream, for many machines) fits
// behind it: append calls, lease due ones fairly, record the end of an
// attempt under its lease, look up and list, cancel and retry, delete calls
// that ended long enough ago.
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

// Numbered as dispatch.scheduler.v1.CallState.
enum class CallState : int { pending = 1, running = 2, completed = 3, failed = 4, cancelled = 5 };

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
};

struct CallRecord {
  std::string id;
  std::string function;
  std::string endpoint;
  std::string input_type_url;
  std::string input;
  CallState state = CallState::pending;
  uint32_t attempts = 0;  // deliveries started, the one running included
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
};

// How one attempt ended, as the scheduler decided: completed or failed
// (final), or pending again at next_attempt_at_ms (a retry).
struct Outcome {
  CallState state = CallState::completed;
  int status = 0;
  std::string output_type_url;
  std::string output;
  std::string error_type;
  std::string error_message;
  int64_t next_attempt_at_ms = 0;
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
  // Leases due pending calls, round-robin across fairness keys (tenant, else
  // function): one call from each backlogged key in turn until `max`, so a
  // flooding key gets no more than any other that has work. Each leased call
  // is running, attempts + 1.
  virtual void claim(ClaimOptions options, Done<std::vector<CallRecord>> done) = 0;
  // Records the end of an attempt if the call is still running under
  // `lease`; false when it is not (cancelled meanwhile, or re-leased).
  virtual void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms,
                      Done<bool> done) = 0;
  // pending/running -> cancelled. not_found for an unknown ID,
  // failed_precondition for a call already final.
  virtual void cancel(std::string id, int64_t now_ms, Done<CallRecord> done) = 0;
  // failed/cancelled -> pending now, attempts reset to 0.
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
  // The earliest next_attempt_at_ms of a pending call, if any.
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
  };
  virtual Stats stats() const = 0;

  // The same store's entities for a stateful-functions runtime
  // (entity_store.h), in the same file and transactions; null when this
  // backend keeps none. Owned by this store.
  virtual EntityStore* entities() noexcept { return nullptr; }

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
