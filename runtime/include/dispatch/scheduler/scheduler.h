// dispatch::scheduler::Scheduler: the durable scheduler as a library — the
// same one dispatchd runs — for applications that embed it (functions and
// scheduler in one process). It persists calls in a Store, delivers them to
// their endpoints' dispatch.sdk.v1.FunctionService/Run at least once, records
// each completion exactly once, retries temporary failures with exponential
// backoff and full jitter, adapts each endpoint's concurrency (AIMD) and
// shares deliveries fairly between functions (or tenant keys).
//
//   SchedulerOptions options;
//   options.store = open_sqlite_store({.path = "dispatch.db"}).value();
//   auto s = dispatch::scheduler::Scheduler::open(std::move(options)).value();
//   s->start();
//   dispatch::Server api(s->table(), server_options);  // Dispatch + AdminService
//
// Policies and the status table: docs/scheduler.md.
// Not for: Poll/coroutine directives (a Run answering Poll fails the call).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/core/client.h"
#include "dispatch/core/logger.h"
#include "dispatch/core/result.h"
#include "dispatch/core/service.h"
#include "dispatch/scheduler/store.h"
#include "dispatch/transport/client_loops.h"

namespace dispatch::metrics {
class Registry;
}  // namespace dispatch::metrics

namespace dispatch::scheduler {

// Wall-clock time in Unix milliseconds; tests inject a manual one.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() = 0;
};

struct FunctionPolicy {
  // Deliveries before a temporarily failing call is given up (failed).
  // 0: no limit (the expiration still applies).
  uint32_t max_attempts = 20;
  // Retry n waits a random time in [0, min(max_backoff, min_backoff * 2^(n-1))]
  // ("full jitter").
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{60'000};
  // For calls that carry no expiration of their own.
  std::chrono::milliseconds expiration{24 * 3600 * 1000};
  // Timeout of one Run call (sent as Connect-Timeout-Ms).
  std::chrono::milliseconds run_timeout{300'000};
};

// Makes the client that reaches one endpoint URL ("http://host:port").
using ClientFactory =
    std::function<Result<std::shared_ptr<Client>>(const std::string& endpoint)>;

struct SchedulerOptions {
  // Where calls are kept (required): open_sqlite_store() from
  // dispatch/sqlite/sqlite_store.h, or any other Store. The scheduler runs
  // on whichever it is given and never learns which it is.
  std::unique_ptr<Store> store;

  // Default: dispatch::HttpClient per endpoint (with `decorate` below on
  // every request, e.g. an RFC 9421 signer), all on `client_loops`.
  ClientFactory client_factory;
  // The event-loop threads the default clients share, however many
  // endpoints there are, and their connections' idle timeout (docs/
  // scheduler.md). Null: open() makes one with ClientLoopsOptions'
  // defaults (one thread per core, 30 s).
  std::shared_ptr<ClientLoops> client_loops;
  std::function<void(std::string_view method, std::string_view path, std::string_view authority,
                     std::string_view content_type, std::string_view body,
                     std::vector<std::pair<std::string, std::string>>& headers)>
      decorate;

  FunctionPolicy default_policy;
  std::map<std::string, FunctionPolicy> policies;  // by function name

  // Deliveries in flight (and leased, waiting for a slot) in all.
  std::size_t max_in_flight = 512;
  // AIMD bounds per endpoint: start, floor 1, ceiling.
  double initial_endpoint_concurrency = 16;
  double max_endpoint_concurrency = 256;
  // A leased call not finished by then is delivered again.
  std::chrono::milliseconds lease{600'000};
  // How long a call is kept after it ended (completed, failed or
  // cancelled); then the store deletes it, and its idempotency key with it,
  // so a Dispatch with that key makes a new call. Looked for every 10 s
  // (or every `retention` when shorter). Pending and running calls are
  // never deleted. Zero: every call is kept forever.
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};

  Clock* clock = nullptr;  // null: the system clock
  uint64_t seed = 0;       // jitter; 0: random
  Logger logger = Logger::from_env();
  // Where the scheduler counts deliveries, retries, queue delay, calls by
  // state and each endpoint's AIMD limit (docs/operations.md). Unset: a
  // registry of its own (see metrics()).
  std::shared_ptr<metrics::Registry> metrics;
};

struct SchedulerStats {
  uint64_t delivered = 0;   // Run calls started
  uint64_t completed = 0;   // finished ok
  uint64_t failed = 0;      // finished with a final error (expired included)
  uint64_t retried = 0;     // temporary failures scheduled again (tail calls and restarts too)
  uint64_t polls = 0;       // Polls recorded: calls suspended until their children's results
  uint64_t stale = 0;       // finishes refused: cancelled or re-leased meanwhile
};

class Scheduler {
 public:
  // Opens the store, makes every call a previous process left running
  // pending again (one scheduler per store; a store shared by several,
  // Store::shared(): only calls whose lease lapsed), and builds the API
  // table.
  static Result<std::unique_ptr<Scheduler>> open(SchedulerOptions options);
  ~Scheduler();  // stop()s
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts the delivery thread.
  void start();
  // Stops delivering and waits (up to `grace`) for deliveries in flight to
  // be recorded; the rest are delivered again by the next start.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000));
  // Ends the waits of Gets for a call's end: those waiting answer now with
  // the call as it is, and later ones do not wait (a caller asks again).
  // For the server's drain (ServerOptions::on_drain), so that clients
  // awaiting results do not hold it up to its timeout. Quick; any thread.
  void end_waits();

  // The API: dispatch.sdk.v1.DispatchService/Dispatch and
  // dispatch.scheduler.v1.AdminService/{Get,List,Cancel,Retry}.
  const DispatchTable& table() const noexcept;
  // Adds the same routes to another table (one server for functions and
  // scheduler); this scheduler must outlive it.
  Result<void> add_to(DispatchTable& table);

  // What the routes do, for in-process use. A call without an expiration
  // gets its function's policy expiration.
  Result<std::vector<std::string>> dispatch(std::vector<NewCall> calls);
  Result<CallRecord> get(std::string_view id, std::chrono::milliseconds wait = {});
  Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                       std::string_view after_id);
  // The calls `parent_id` made (it answered Poll), oldest first.
  Result<std::vector<CallRecord>> children(std::string_view parent_id, std::size_t limit,
                                           std::string_view after_id);
  Result<CallRecord> cancel(std::string_view id);
  Result<CallRecord> retry(std::string_view id);

  // One delivery round without the thread (tests with a manual clock):
  // releases lapsed leases, starts deleting the calls past their retention
  // when that is due, leases due calls and starts their deliveries.
  // Returns how many started.
  Result<std::size_t> step();
  // Blocks until nothing is in flight, every outcome is recorded and no
  // deletion runs.
  void wait_idle();

  // The scheduler's clock (Unix ms).
  int64_t now_ms() const;
  double endpoint_concurrency(const std::string& endpoint) const;
  SchedulerStats stats() const;
  // The registry its metrics are in (SchedulerOptions::metrics, or its own).
  const std::shared_ptr<metrics::Registry>& metrics() const noexcept;
  Store& store() noexcept;
  const FunctionPolicy& policy_for(const std::string& function) const;

 private:
  Scheduler() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch::scheduler
