// dispatch::statefun::Runtime: Apache Flink StateFun's runtime side without
// Flink. It routes function types to endpoints (ModuleConfig), takes
// messages at its ingress, keeps at most one batch in flight per entity
// (the messages that arrive meanwhile are the next batch, in arrival order),
// runs entities in parallel and function types fairly, POSTs each batch as a
// ToFunction with the entity's state, and applies each reply atomically in
// one store transaction: state mutations, outgoing and delayed messages,
// cancellations, egress records, the batch done. A batch that keeps failing
// goes to a dead letter after the retry policy, and its entity moves on.
//
//   RuntimeOptions o;
//   o.modules = ModuleConfig::load("module.yaml").value();
//   o.store = scheduler_store.entities();   // the same file as the calls
//   auto rt = Runtime::open(std::move(o)).value();
//   rt->add_to(table);   // Ingress, Egress and admin routes
//   rt->start();
//
// Guarantees and limits: docs/stateful.md.
// Not for: running functions (endpoints do; dispatch/stateful/ is their SDK).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/core/client.h"
#include "dispatch/core/logger.h"
#include "dispatch/core/result.h"
#include "dispatch/core/service.h"
#include "dispatch/scheduler/entity_store.h"
#include "dispatch/scheduler/scheduler.h"
#include "dispatch/statefun_runtime/module_config.h"

namespace dispatch::statefun {

// POSTs one body (application/octet-stream) to a URL with extra headers:
// `done` gets the reply body of a 2xx answer, or an error (the HTTP status,
// a timeout, a refused connection). May call `done` on another thread, and
// before returning.
using Poster = std::function<void(const std::string& url, std::string body, std::chrono::milliseconds timeout,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  Client::Callback done)>;

struct RuntimeOptions {
  ModuleConfig modules;
  // Required: where entities are kept (Store::entities() of the scheduler's
  // store). Not owned; must outlive the runtime.
  scheduler::EntityStore* store = nullptr;
  // Default: an HTTP client per endpoint (StateFun's content type), with
  // `decorate` on every request.
  Poster poster;
  std::function<void(std::string_view method, std::string_view path, std::string_view authority,
                     std::string_view content_type, std::string_view body,
                     std::vector<std::pair<std::string, std::string>>& headers)>
      decorate;

  // Deliveries of a failing batch before it becomes a dead letter (0: no
  // limit), and the backoff between them (full jitter, as the scheduler's).
  uint32_t max_attempts = 10;
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{30'000};
  // Batches in flight in all, and per endpoint URL.
  std::size_t max_in_flight = 1024;
  std::size_t max_endpoint_in_flight = 256;
  // Batches one claim hands out at most; the pump claims again at once
  // when a claim came back full. A claim is one write of the store's
  // single writer, which commits everything else (Sends and their
  // acknowledgements, replies) behind it: hundreds of batches in one
  // claim held them for tens of milliseconds.
  std::size_t max_claim = 64;
  // A state value larger than this in a reply is refused (dead letter).
  std::size_t max_state_bytes = 4u << 20;
  // A leased batch whose reply was not applied by then is delivered again.
  std::chrono::milliseconds lease{600'000};
  // Ingress idempotency keys and egress records are kept this long (egress
  // records with an HTTP egress: also until it acknowledged them).
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};

  scheduler::Clock* clock = nullptr;  // null: the system clock
  uint64_t seed = 0;                  // jitter; 0: random
  Logger logger = Logger::from_env();
};

struct RuntimeStats {
  uint64_t batches = 0;          // ToFunction requests sent
  uint64_t invocations = 0;      // messages in the batches applied
  uint64_t incomplete = 0;       // IncompleteInvocationContext answers
  uint64_t failed = 0;           // attempts that failed and will be retried
  uint64_t dead_letters = 0;     // batches given up
  uint64_t delayed_fired = 0;
  uint64_t egress_posted = 0;    // records acknowledged by HTTP egresses
  uint64_t stale = 0;            // replies whose lease was gone
  uint64_t continued = 0;        // batches claimed with the previous reply
};

class Runtime {
 public:
  // Checks the options, releases every lease a previous process left (one
  // runtime per store) and builds the routes.
  static Result<std::unique_ptr<Runtime>> open(RuntimeOptions options);
  ~Runtime();  // stop()s
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Starts the delivery thread (and one poster per HTTP egress).
  void start();
  // Stops delivering and waits up to `grace` for batches on the wire; the
  // rest are delivered again by the next start.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000));

  // dispatch.statefun.v1.IngressService, EgressService and
  // StatefunAdminService. This runtime must outlive the table.
  Result<void> add_to(DispatchTable& table);

  // What the routes do. send() refuses (invalid_argument, nothing queued) a
  // message without a typename, to an empty id, or to a function type no
  // route serves; answers once every message is on disk.
  Result<std::vector<uint64_t>> send(std::vector<scheduler::EntityMessage> messages);
  // Records of `egress` after `after_seq`, waiting up to `wait` for one.
  Result<std::vector<scheduler::EgressRecord>> read_egress(const std::string& egress, uint64_t after_seq,
                                                           std::size_t limit, std::chrono::milliseconds wait = {});
  Result<std::optional<scheduler::EntityView>> entity(const scheduler::EntityAddress& address, std::size_t limit);
  Result<std::vector<scheduler::DeadLetter>> dead_letters(uint64_t after_id, std::size_t limit);
  Result<uint64_t> redrive(uint64_t dead_letter);

  // One round without the thread (tests with a manual clock): releases
  // lapsed leases, fires due delayed messages, sweeps when due, claims ready
  // entities and posts their batches. Returns how many batches started.
  Result<std::size_t> step();
  // Blocks until no batch is on the wire and every reply is applied.
  void wait_idle();

  int64_t now_ms() const;
  RuntimeStats stats() const;

 private:
  Runtime() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch::statefun
