// A batch of StateFun's request-reply protocol both ways: an entity's
// batch as the ToFunction the endpoint gets, and the InvocationResponse it
// answers checked and turned into the store writes it asks for (state
// mutations, messages, delayed messages and cancellations, egress). Pure:
// no store, no I/O, no clock of its own.
//
// Not for: the handshake (IncompleteInvocationContext) or what happens to
// a refused reply (runtime.cc: retry or dead letter).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "dispatch/scheduler/entity_store.h"
#include "dispatch/statefun_runtime/module_config.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"

namespace dispatch::statefun {

// A reply that cannot be applied: why, and whether trying again could help.
struct Refusal {
  std::string reason;
  bool permanent = true;
};

// The ToFunction request for `batch`: its target, every registered state
// value (present or not), and its messages in order.
std::string to_function(const scheduler::EntityBatch& batch);

// The writes `r` asks for, into `out`, checked against the batch's declared
// state (names, types, `max_state_bytes`) and the routes of `modules` (a
// message to a function type no endpoint serves is refused); `now` dates
// expirations and delays. A refusal leaves `out` to be discarded.
std::optional<Refusal> to_batch_result(const scheduler::EntityBatch& batch,
                                       const ::io::statefun::sdk::reqreply::FromFunction::InvocationResponse& r,
                                       int64_t now, const ModuleConfig& modules, std::size_t max_state_bytes,
                                       scheduler::BatchResult& out);

}  // namespace dispatch::statefun
