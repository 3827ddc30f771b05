// dispatch::scheduler::EntityStore: where a stateful-functions runtime keeps
// its entities (a function type and an id, as StateFun addresses them): each
// entity's inbox of messages in arrival order, its persisted values, the
// state specs registered per function type, delayed messages, egress
// records and dead letters. Backend-neutral and policy-free, like Store: the
// runtime decides batches, retries, expirations and validity; a backend
// only keeps what it is told, atomically.
//
// Writes are asynchronous as in Store: `done` runs once the write committed
// (on the store's writer thread; quick, no synchronous call back into the
// store). send, redrive and ack_egress are on disk by then; the others may
// reach it with the next synced commit (a power cut undoes them, which only
// makes a batch be delivered again). Reads are synchronous and see every
// committed write.
//
// Not for: calls of the Dispatch protocol (store.h), nor what a reply means
// (the runtime validates it before handing it over).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"
#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler {

// A function type ("namespace/type") and an entity id. An empty type is no
// address (a message from an ingress has no caller).
struct EntityAddress {
  std::string type;
  std::string id;
  bool empty() const noexcept { return type.empty(); }
  friend bool operator==(const EntityAddress& a, const EntityAddress& b) {
    return a.type == b.type && a.id == b.id;
  }
};

// One message to an entity.
struct EntityMessage {
  EntityAddress target;
  EntityAddress caller;
  std::string type_name;  // the TypedValue's typename
  bool has_value = true;
  std::string value;
  // Ingress only: a message whose key is stored already is not queued again
  // (send() answers the stored message's id).
  std::string idempotency_key;
};

// A message waiting in an entity's inbox, with what the store assigned.
struct QueuedMessage {
  uint64_t seq = 0;  // arrival order, unique in the store; also its id
  EntityMessage message;
  int64_t created_at_ms = 0;
};

// How a persisted value expires (StateFun's ExpirationSpec).
enum class ExpireMode : int { none = 0, after_write = 1, after_invoke = 2 };

// A state value a function type declared.
struct StateSpec {
  std::string name;
  std::string type_name;
  ExpireMode mode = ExpireMode::none;
  int64_t ttl_ms = 0;
};

struct StateValue {
  std::string name;
  std::string type_name;
  std::string value;
  int64_t expires_at_ms = 0;  // 0: never
};

// One batch handed out by claim_entities(): the entity is leased until
// complete(), fail() or dead_letter() presents the lease, or it lapses.
struct EntityBatch {
  EntityAddress address;
  uint64_t lease = 0;
  // Failed attempts so far of the batch at the head of this inbox; after a
  // failure a batch is its first message alone (so a dead letter holds the
  // message that failed, not its companions).
  uint32_t attempts = 0;
  std::string last_error;
  std::vector<QueuedMessage> messages;  // arrival order, at least one
  std::vector<StateValue> state;        // unexpired values of this entity
  std::vector<StateSpec> specs;         // registered for its function type
};

struct StateMutation {
  std::string name;
  bool remove = false;  // DELETE; else MODIFY with type_name and value
  std::string type_name;
  std::string value;
  int64_t expires_at_ms = 0;
};

struct NewDelayedMessage {
  int64_t due_at_ms = 0;
  EntityMessage message;  // message.caller is the sender: tokens are its own
  std::string cancellation_token;  // empty: none
};

struct NewEgressRecord {
  std::string egress;  // "namespace/type"
  std::string type_name;
  std::string value;
};

// Everything one reply does, applied in one transaction with the batch
// marked done.
struct BatchResult {
  std::vector<StateMutation> mutations;
  // Values of the entity whose expiration moves without a write (expire
  // after invoke): name and new expiration.
  std::vector<std::pair<std::string, int64_t>> touched;
  std::vector<EntityMessage> outgoing;
  // A reply's delayed messages and cancellations take effect in the order
  // the function listed them; the runtime folds that list into these two,
  // which a store applies cancellations first: `cancellations` name
  // messages armed by earlier replies (a token cancelled, then armed again
  // by this reply, is in both), and `delayed` holds only the reply's
  // messages that no later entry of its list cancelled.
  std::vector<NewDelayedMessage> delayed;
  // Tokens of the entity's own pending delayed messages to drop (best
  // effort: one that fired already is not there any more).
  std::vector<std::string> cancellations;
  std::vector<NewEgressRecord> egress;
};

// What complete_and_claim() did: whether the reply was applied, and the
// entity's next batch when it stayed leased for one.
struct Completion {
  bool applied = false;
  std::optional<EntityBatch> next;
};

struct DelayedRecord {
  uint64_t seq = 0;
  int64_t due_at_ms = 0;
  EntityMessage message;
  std::string cancellation_token;
};

struct EgressRecord {
  uint64_t seq = 0;  // order within the store, increasing
  std::string egress;
  std::string type_name;
  std::string value;
  int64_t created_at_ms = 0;
};

struct DeadLetter {
  uint64_t seq = 0;  // its id
  QueuedMessage message;
  std::string reason;
  uint32_t attempts = 0;
  int64_t created_at_ms = 0;
};

// An entity as an operator sees it.
struct EntityView {
  EntityAddress address;
  bool in_flight = false;  // a batch is leased
  uint32_t attempts = 0;
  int64_t next_attempt_at_ms = 0;
  std::string last_error;
  std::vector<StateValue> state;  // expired ones included, with their time
  std::vector<QueuedMessage> backlog;
  std::vector<DelayedRecord> delayed;  // pending, to this entity
};

struct EntityClaimOptions {
  int64_t now_ms = 0;
  std::size_t max_batches = 64;
  std::size_t max_messages = 1000;  // per batch (maxNumBatchRequests)
  int64_t lease_until_ms = 0;
  // Function types whose endpoints are saturated: left ready.
  std::vector<std::string> skip_types;
};

// What one sweep of expired data deleted.
struct EntitySweep {
  std::size_t state_values = 0;
  std::size_t ingress_keys = 0;
  std::size_t egress_records = 0;
};

class EntityStore {
 public:
  virtual ~EntityStore() = default;

  // True when other processes may use the same store at once, each with its
  // own runtime (JetStream): a runtime starting then releases only lapsed
  // leases, not every leased entity. False (SQLite): one runtime per store,
  // and every lease at start-up is a leftover of the previous process.
  virtual bool shared() const noexcept { return false; }

  // Queues messages in arrival order, in one transaction (all or none);
  // their ids (seq) in order. A message whose idempotency key is stored
  // gets the first message's id and is not queued again.
  virtual void send(std::vector<EntityMessage> messages, int64_t now_ms, Done<std::vector<uint64_t>> done) = 0;
  // Leases ready entities whose next attempt is due, round-robin across
  // function types, each with its next batch: up to max_messages of its
  // inbox (one after a failure), its state and its type's specs.
  virtual void claim_entities(EntityClaimOptions options, Done<std::vector<EntityBatch>> done) = 0;
  // Applies a reply if the entity is still leased by `lease`: the result,
  // then the batch's messages (up to `last_seq`) leave the inbox; the
  // entity is ready again when more wait. false when the lease is gone.
  virtual void complete(EntityAddress address, uint64_t lease, uint64_t last_seq, BatchResult result,
                        int64_t now_ms, Done<bool> done) = 0;
  // complete(), and in the same transaction, when more messages wait for
  // the entity and no other entity of its function type is ready and due
  // by next.now_ms (those have waited longer, and claims hand them out
  // oldest first): its next batch (up to next.max_messages, with its state and
  // specs, as claim_entities() would hand it out). The entity then stays
  // leased, under a new lease until next.lease_until_ms, instead of going
  // back to the ready ones; it went idle when `next` is empty. A runtime
  // asks only while it has room for the batch, since an entity claimed
  // straight away has had less time to gather messages than the ready
  // ones that wait. The default runs complete() and claims nothing, which
  // is always correct: the entity is ready as after complete().
  virtual void complete_and_claim(EntityAddress address, uint64_t lease, uint64_t last_seq, BatchResult result,
                                  int64_t now_ms, EntityClaimOptions next, Done<Completion> done);
  // The attempt failed: ready again at next_attempt_at_ms, attempts + 1.
  virtual void fail(EntityAddress address, uint64_t lease, int64_t next_attempt_at_ms, std::string error,
                    Done<bool> done) = 0;
  // The batch's messages (up to `last_seq`) become dead letters with
  // `reason`; the entity moves on to its next messages.
  virtual void dead_letter(EntityAddress address, uint64_t lease, uint64_t last_seq, std::string reason,
                           int64_t now_ms, Done<bool> done) = 0;
  // Registers specs for a function type; an existing spec of that name is
  // replaced.
  virtual void register_specs(std::string function_type, std::vector<StateSpec> specs, Done<bool> done) = 0;
  // Moves delayed messages due by now_ms (up to `max`) into their targets'
  // inboxes, in due order, in one transaction: each fires once. Count moved.
  virtual void fire_delayed(int64_t now_ms, std::size_t max, Done<std::size_t> done) = 0;
  // Deletes state values expired by now_ms, ingress keys and egress records
  // created before `kept_after_ms` (egress records only once an HTTP egress
  // acknowledged them, where one is configured). Bounded per call.
  virtual void sweep(int64_t now_ms, int64_t kept_after_ms, Done<EntitySweep> done) = 0;
  // Leased entities whose lease lapsed (all leased ones when `all`) -> ready.
  virtual void release_entity_leases(int64_t now_ms, bool all, Done<std::size_t> done) = 0;
  // A dead letter back into its target's inbox (as a new arrival). not_found
  // for an unknown id.
  virtual void redrive(uint64_t dead_letter, int64_t now_ms, Done<uint64_t> done) = 0;
  // An HTTP egress delivered every record of `egress` up to `seq`.
  virtual void ack_egress(std::string egress, uint64_t seq, Done<bool> done) = 0;

  virtual Result<std::optional<EntityView>> entity(const EntityAddress& address, std::size_t limit) = 0;
  // Records of `egress` after `after_seq`, in order.
  virtual Result<std::vector<EgressRecord>> read_egress(std::string_view egress, uint64_t after_seq,
                                                        std::size_t limit) = 0;
  // The last acknowledged seq of `egress` (0: none).
  virtual Result<uint64_t> egress_cursor(std::string_view egress) = 0;
  virtual Result<std::vector<DeadLetter>> dead_letters(uint64_t after_seq, std::size_t limit) = 0;
  // The earliest time a ready entity or a delayed message is due.
  virtual Result<std::optional<int64_t>> next_entity_due_ms() = 0;

  // Blocking forms, for tools and tests.
  Result<std::vector<uint64_t>> send_sync(std::vector<EntityMessage> messages, int64_t now_ms);
  Result<std::vector<EntityBatch>> claim_entities_sync(EntityClaimOptions options);
  Result<bool> complete_sync(EntityAddress address, uint64_t lease, uint64_t last_seq, BatchResult result,
                             int64_t now_ms);
  Result<Completion> complete_and_claim_sync(EntityAddress address, uint64_t lease, uint64_t last_seq,
                                             BatchResult result, int64_t now_ms, EntityClaimOptions next);
  Result<bool> fail_sync(EntityAddress address, uint64_t lease, int64_t next_attempt_at_ms, std::string error);
  Result<bool> dead_letter_sync(EntityAddress address, uint64_t lease, uint64_t last_seq, std::string reason,
                                int64_t now_ms);
  Result<bool> register_specs_sync(std::string function_type, std::vector<StateSpec> specs);
  Result<std::size_t> fire_delayed_sync(int64_t now_ms, std::size_t max);
  Result<EntitySweep> sweep_sync(int64_t now_ms, int64_t kept_after_ms);
  Result<std::size_t> release_entity_leases_sync(int64_t now_ms, bool all);
  Result<uint64_t> redrive_sync(uint64_t dead_letter, int64_t now_ms);
  Result<bool> ack_egress_sync(std::string egress, uint64_t seq);
};

}  // namespace dispatch::scheduler
