// dispatch::scheduler::open_sqlite_store(): the scheduler's embedded store
// on SQLite (WAL, versioned migrations, group commit, deletion of ended
// calls in small batches), the default dispatchd runs on. One scheduler per
// file.
//
//   SchedulerOptions options;
//   options.store = dispatch::scheduler::open_sqlite_store({.path = "dispatch.db"}).value();
//
// Not for: policy (the scheduler's), nor other backends (each its own layer).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "dispatch/core/result.h"
#include "dispatch/scheduler/store.h"

namespace dispatch::metrics {
class Registry;
}  // namespace dispatch::metrics

namespace dispatch::scheduler {

struct SqliteOptions {
  std::string path = "dispatch.db";
  // Where commit latency and batch sizes are counted
  // (dispatch_store_commit_duration_seconds, dispatch_store_commit_writes);
  // unset: not counted.
  std::shared_ptr<metrics::Registry> metrics;
  // synchronous=FULL: a commit is on disk before a dispatch is acknowledged
  // (survives power loss). false: synchronous=NORMAL, which survives a
  // killed process but may lose the last commits on power loss.
  bool fsync_commits = true;
  // Most writes folded into one transaction.
  std::size_t max_batch = 4096;
  // Take an exclusive lock on "<path>-owner" so that a second scheduler on
  // the same file fails at start instead of double-delivering.
  bool exclusive_owner = true;
  // fsync_commits: a sync thread syncs the write-ahead log once for many
  // commits, off the write lock. false: every commit that must be durable
  // syncs itself (synchronous=FULL), which is also what happens when the
  // log file cannot be opened for syncing.
  bool sync_thread = true;
  // How the sync thread makes the log durable: returns 0 or an errno
  // value. Empty: fdatasync(fd). For tests that watch or fail the sync.
  std::function<int(int fd)> sync_log;
  // How long an outcome (finish) may wait for other writes to share its
  // commit when nothing else is queued. Outcomes are not synced and nobody
  // blocks on them; committing them one or two at a time cost the writer
  // several times what they cost folded into the next lease or enqueue.
  // Zero: commit at once.
  std::chrono::microseconds outcome_hold{1000};
  // Calls deleted by one transaction of delete_ended() at most. Each batch
  // is a write of its own, queued when the previous one committed, so the
  // writes of dispatches, leases and outcomes commit between batches and
  // wait at most one batch. At least 1.
  std::size_t delete_batch = 256;
  // Runs on the writer thread as each transaction that deleted calls
  // commits, with how many it deleted. For tests and metrics that watch
  // the batches; must be quick. Empty: nothing is watched (SQLite then
  // reports no row changes to the store).
  std::function<void(std::size_t deleted)> on_delete_commit;
};

// Opens (creating or migrating) a SQLite store in WAL mode.
Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options);

// The schema version this build writes (PRAGMA user_version).
int sqlite_schema_version() noexcept;

}  // namespace dispatch::scheduler
