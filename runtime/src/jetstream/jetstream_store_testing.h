// Test seams of the JetStream call Store (jetstream_store.cc): what a test
// cannot make a single nats-server do. The store given must be one
// open_jetstream_store() made.
//
// Not for: production code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler::testing {

// From now on, the store's watcher reports every revision `by` higher, as
// a consumer placed on a replica numbered ahead of the stream's leader
// does (seen on nats-server 2.9.10 after a node was SIGKILLed and
// restarted), until the store rebuilds its index.
void shift_index_revisions(Store& store, uint64_t by);

// How often the store rebuilt its index.
uint64_t index_rebuilds(Store& store);

// The revision the store's index holds for call `id`; nullopt when the
// index has no such call.
std::optional<uint64_t> index_revision(Store& store, const std::string& id);

}  // namespace dispatch::scheduler::testing
