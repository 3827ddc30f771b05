// Group commit: one writer thread owns the write connection. It takes every
// queued write, runs them in one transaction (one bad write fails alone: see
// GroupCommit::run_batch and Mode), commits, and only then reports to each
// caller, or hands the writes that must be on disk to the log sync thread.
// Outcomes queued alone wait briefly for company
// (SqliteOptions::outcome_hold).
//
// Not for: the SQL of the writes (their bodies come from sqlite_store.cc),
// or syncing the log (log_sync.h).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dispatch/metrics/registry.h"

#include "sqlite/log_sync.h"
#include "sqlite/statement.h"
#include "sqlite/write_op.h"

namespace dispatch::scheduler::sqlite {

struct GroupCommitOptions {
  // Commits that hold a synced write are synchronous=FULL (when there is
  // no log sync thread to make them durable).
  bool fsync_commits = true;
  std::size_t max_batch = 4096;  // writes in one transaction at most
  std::chrono::microseconds outcome_hold{1000};
  // Null: not measured.
  metrics::Histogram* commit_seconds = nullptr;  // begin to commit of a batch
  metrics::Histogram* commit_writes = nullptr;   // writes in a committed batch
};

// The transaction statements of the write connection, prepared once: the
// writer runs begin and commit per batch, and savepoint, rollback_to and
// release_savepoint per write when a batch runs again after a failed write.
// A write that keeps its own savepoint (an enqueue) uses the latter too.
struct TransactionStmts {
  explicit TransactionStmts(sqlite3* db);
  Stmt begin, commit, savepoint, rollback_to, release_savepoint;
};

class GroupCommit {
 public:
  // Starts the writer thread, which then uses `db` alone. `log_sync`: null
  // when commits sync themselves; else it must outlive this writer.
  GroupCommit(sqlite3* db, GroupCommitOptions options, LogSync* log_sync);
  // Commits and reports (or hands over) every queued write, then stops the
  // thread. The bodies of those writes may still use this object (stop()
  // is not a destructor: the store stays whole meanwhile). Idempotent.
  void stop();
  ~GroupCommit();  // stop()s
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Queues a write; `body` runs on the writer thread inside the batch's
  // transaction and either returns a value or throws dispatch::Error.
  // `done` runs once it is committed (and synced, when mode.synced).
  template <typename T, typename Body>
  void submit(Done<T> done, Body body, Mode mode) {
    enqueue(std::make_unique<WriteOp<T, Body>>(mode, std::move(body), std::move(done)));
  }

  // For the write bodies, on the writer thread only.
  TransactionStmts& transaction() noexcept { return txn_; }
  // True once the store is closing: a write that would queue a follow-up
  // (a retention sweep's next batch) stops instead.
  bool stopping();

  uint64_t writes() const noexcept { return writes_.load(); }
  uint64_t commits() const noexcept { return commits_.load(); }
  // Rollbacks so far: of a write that failed (its savepoint or its own
  // statement), of a batch run again because one of its writes failed,
  // or of a batch that could not commit. What a write body remembers of
  // earlier writes' effects (a cache) may be stale once this moves.
  uint64_t rollbacks() const noexcept { return rollbacks_.load(); }

 private:
  void enqueue(OpPtr op);
  void write_loop();
  bool run_batch(std::vector<OpPtr>& batch);
  // Counts a committed batch of `writes` begun at `began`.
  void count_commit(std::size_t writes, std::chrono::steady_clock::time_point began);

  sqlite3* const db_;
  const GroupCommitOptions options_;
  LogSync* const log_sync_;
  TransactionStmts txn_;
  bool commit_synced_ = true;  // the connection's current synchronous mode
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> rollbacks_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<OpPtr> queue_;
  bool stopping_ = false;
  // Outcomes held for company (write_loop): at most this many.
  static constexpr std::size_t kHoldMax = 256;
  std::chrono::steady_clock::time_point first_queued_at_;  // of the oldest queued write
  bool urgent_queued_ = false;  // a write that may not wait is queued
  bool holding_ = false;        // the writer is holding outcomes
  std::thread thread_;
};

}  // namespace dispatch::scheduler::sqlite
