// The blocking forms of EntityStore's writes, shared by every backend.
#include "dispatch/scheduler/entity_store.h"

#include <future>

namespace dispatch::scheduler {
namespace {

template <typename T, typename Start>
Result<T> wait_for(Start start) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  start([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace

Result<std::vector<uint64_t>> EntityStore::send_sync(std::vector<EntityMessage> messages, int64_t now_ms) {
  return wait_for<std::vector<uint64_t>>([&](auto done) { send(std::move(messages), now_ms, std::move(done)); });
}

Result<std::vector<EntityBatch>> EntityStore::claim_entities_sync(EntityClaimOptions options) {
  return wait_for<std::vector<EntityBatch>>([&](auto done) { claim_entities(std::move(options), std::move(done)); });
}

Result<bool> EntityStore::complete_sync(EntityAddress address, uint64_t lease, uint64_t last_seq,
                                        BatchResult result, int64_t now_ms) {
  return wait_for<bool>([&](auto done) {
    complete(std::move(address), lease, last_seq, std::move(result), now_ms, std::move(done));
  });
}

void EntityStore::complete_and_claim(EntityAddress address, uint64_t lease, uint64_t last_seq, BatchResult result,
                                     int64_t now_ms, EntityClaimOptions /*next*/, Done<Completion> done) {
  complete(std::move(address), lease, last_seq, std::move(result), now_ms,
           [done = std::move(done)](Result<bool> applied) {
             if (!applied.ok()) return done(std::move(applied).error());
             Completion c;
             c.applied = *applied;
             done(std::move(c));
           });
}

Result<Completion> EntityStore::complete_and_claim_sync(EntityAddress address, uint64_t lease, uint64_t last_seq,
                                                        BatchResult result, int64_t now_ms,
                                                        EntityClaimOptions next) {
  return wait_for<Completion>([&](auto done) {
    complete_and_claim(std::move(address), lease, last_seq, std::move(result), now_ms, std::move(next),
                       std::move(done));
  });
}

Result<bool> EntityStore::fail_sync(EntityAddress address, uint64_t lease, int64_t next_attempt_at_ms,
                                    std::string error) {
  return wait_for<bool>(
      [&](auto done) { fail(std::move(address), lease, next_attempt_at_ms, std::move(error), std::move(done)); });
}

Result<bool> EntityStore::dead_letter_sync(EntityAddress address, uint64_t lease, uint64_t last_seq,
                                           std::string reason, int64_t now_ms) {
  return wait_for<bool>([&](auto done) {
    dead_letter(std::move(address), lease, last_seq, std::move(reason), now_ms, std::move(done));
  });
}

Result<bool> EntityStore::register_specs_sync(std::string function_type, std::vector<StateSpec> specs) {
  return wait_for<bool>(
      [&](auto done) { register_specs(std::move(function_type), std::move(specs), std::move(done)); });
}

Result<std::size_t> EntityStore::fire_delayed_sync(int64_t now_ms, std::size_t max) {
  return wait_for<std::size_t>([&](auto done) { fire_delayed(now_ms, max, std::move(done)); });
}

Result<EntitySweep> EntityStore::sweep_sync(int64_t now_ms, int64_t kept_after_ms) {
  return wait_for<EntitySweep>([&](auto done) { sweep(now_ms, kept_after_ms, std::move(done)); });
}

Result<std::size_t> EntityStore::release_entity_leases_sync(int64_t now_ms, bool all) {
  return wait_for<std::size_t>([&](auto done) { release_entity_leases(now_ms, all, std::move(done)); });
}

Result<uint64_t> EntityStore::redrive_sync(uint64_t dead_letter, int64_t now_ms) {
  return wait_for<uint64_t>([&](auto done) { redrive(dead_letter, now_ms, std::move(done)); });
}

Result<bool> EntityStore::ack_egress_sync(std::string egress, uint64_t seq) {
  return wait_for<bool>([&](auto done) { ack_egress(std::move(egress), seq, std::move(done)); });
}

}  // namespace dispatch::scheduler
