// Test seams of the JetStream EntityStore (entity_store.cc): what a test
// cannot make a single nats-server do. The store given must be one
// open_jetstream_entity_store() made.
//
// Not for: production code.
#pragma once

#include <chrono>
#include <cstdint>

#include "dispatch/scheduler/entity_store.h"

namespace dispatch::scheduler::testing {

// From now on, the store's watcher reports every revision `by` higher, as
// a consumer placed on a replica numbered ahead of the stream's leader
// does (seen on nats-server 2.9.10 after a node was SIGKILLed and
// restarted), until the store rebuilds its index.
void shift_entity_index_revisions(EntityStore& store, uint64_t by);

// How often the store rebuilt its index.
uint64_t entity_index_rebuilds(EntityStore& store);

// From now on, consumed messages, settled delayed messages and other
// processes' heartbeats are removed once `grace` old (20 s at least
// otherwise), at the store's next recovery pass (once a second).
void set_entity_record_grace(EntityStore& store, std::chrono::milliseconds grace);

}  // namespace dispatch::scheduler::testing
