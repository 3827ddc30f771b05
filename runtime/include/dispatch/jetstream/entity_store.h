// dispatch::scheduler::open_jetstream_entity_store(): the stateful-functions
// runtime's entities (entity_store.h) on NATS JetStream, shared by any
// number of dispatchd processes like the JetStream call store: one
// key-value bucket ("<bucket>_entities"), every record changed by
// compare-and-set on its revision, so an address's batch is leased by one
// process at a time and a reply is applied once, whichever processes ask.
// JetStreamStore::entities() opens one on first use; docs/scheduler.md
// ("Entities on JetStream") has the design.
//
// Not for: calls (jetstream_store.h), nor policy (the StateFun runtime's).
// Held to the same contract as the SQLite one (entity_store_conformance_test).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <memory>

#include "dispatch/core/result.h"
#include "dispatch/jetstream/jetstream_store.h"
#include "dispatch/scheduler/entity_store.h"

namespace dispatch::scheduler {

// Connects, binds to options.bucket + "_entities" (creating it when missing)
// and loads the index. unavailable when the servers cannot be reached;
// failed_precondition when the bucket exists with settings it cannot use.
Result<std::unique_ptr<EntityStore>> open_jetstream_entity_store(const JetStreamOptions& options);

}  // namespace dispatch::scheduler
