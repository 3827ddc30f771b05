// dispatch::scheduler::open_memory_store(): the Store in memory, for the
// workflow test harness (dispatch/testing/) and for tests that want the
// real scheduler engine without a disk: every write applies at once, under
// one lock, and its callback runs on the writing thread once the lock is
// released. Nothing survives the process; no fsync, no file, no thread.
//
//   SchedulerOptions options;
//   options.store = dispatch::scheduler::open_memory_store();
//
// Not for: production (a restart loses every call), or policy (the
// scheduler's). Held to the same contract as the SQLite store
// (store_conformance_test).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <memory>

#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler {

std::unique_ptr<Store> open_memory_store();

}  // namespace dispatch::scheduler
