// The writer thread's loop: gather, hold outcomes for company, run one
// transaction, commit, report or hand over to the log sync thread.
#include "sqlite/group_commit.h"

#include <algorithm>
#include <iterator>

#include "core/thread_name.h"

namespace dispatch::scheduler::sqlite {

TransactionStmts::TransactionStmts(sqlite3* db)
    : begin(db, "BEGIN IMMEDIATE"),
      commit(db, "COMMIT"),
      savepoint(db, "SAVEPOINT op"),
      rollback_to(db, "ROLLBACK TO op"),
      release_savepoint(db, "RELEASE op") {}

GroupCommit::GroupCommit(sqlite3* db, GroupCommitOptions options, LogSync* log_sync)
    : db_(db), options_(options), log_sync_(log_sync), txn_(db) {
  // Named, so that top and perf show where the store's time goes.
  thread_ = std::thread([this] {
    detail::name_this_thread("store-writer");
    write_loop();
  });
}

GroupCommit::~GroupCommit() { stop(); }

void GroupCommit::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool GroupCommit::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void GroupCommit::enqueue(OpPtr op) {
  const Mode mode = op->mode;
  bool wake = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.empty()) first_queued_at_ = std::chrono::steady_clock::now();
    if (!mode.may_wait) {
      urgent_queued_ = true;
    } else if (holding_) {
      // The writer is holding outcomes: wake it only when enough wait.
      wake = queue_.size() + 1 >= kHoldMax;
    }
    queue_.push_back(std::move(op));
  }
  if (wake) cv_.notify_one();
}

void GroupCommit::write_loop() {
  std::vector<OpPtr> batch;
  std::vector<OpPtr> to_sync;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      // Only outcomes queued: let them wait (up to outcome_hold after the
      // first) for a lease or an enqueue to share the commit. A commit
      // costs about as much as the rows it writes: the pages at the end
      // of the table and its indexes are written to the log again by
      // every commit, so outcomes committed one or two at a time cost
      // the writer several times what they cost in company.
      if (!urgent_queued_ && !stopping_ && queue_.size() < kHoldMax &&
          options_.outcome_hold.count() > 0) {
        holding_ = true;
        cv_.wait_until(lock, first_queued_at_ + options_.outcome_hold, [&] {
          return stopping_ || urgent_queued_ || queue_.size() >= kHoldMax;
        });
        holding_ = false;
      }
      if (queue_.size() <= options_.max_batch) {
        batch.swap(queue_);
      } else {
        const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(options_.max_batch);
        std::move(queue_.begin(), end, std::back_inserter(batch));
        queue_.erase(queue_.begin(), end);
      }
      // What is left over (more than max_batch queued) goes next, unheld.
      urgent_queued_ = !queue_.empty();
    }
    if (log_sync_) {
      // One commit for all; the sync thread makes it durable.
      const bool committed = run_batch(batch);
      for (OpPtr& op : batch) {
        if (op->mode.synced && committed) {
          to_sync.push_back(std::move(op));
        } else {
          op->report();
        }
      }
      batch.clear();
      if (!to_sync.empty()) log_sync_->hand_over(to_sync);
      continue;
    }
    // Without the sync thread: leases and outcomes first, in their own
    // unsynced commit, so that a delivery never waits behind another
    // request's fsync; then the writes that must be on disk. (Writes
    // queued together are concurrent: either order is a valid one.)
    std::vector<OpPtr> synced;
    std::vector<OpPtr> unsynced;
    for (OpPtr& op : batch) (op->mode.synced ? synced : unsynced).push_back(std::move(op));
    batch.clear();
    for (std::vector<OpPtr>* part : {&unsynced, &synced}) {
      if (part->empty()) continue;
      run_batch(*part);
      for (OpPtr& op : *part) op->report();
    }
  }
}

// True when the batch committed (each op's own failure aside).
bool GroupCommit::run_batch(std::vector<OpPtr>& batch) {
  // synchronous=FULL costs an fsync per commit; a batch of leases and
  // outcomes only commits without one (see Mode::synced). Set outside the
  // transaction, where SQLite reads it. (With the sync thread, commits
  // are always NORMAL.)
  if (options_.fsync_commits && !log_sync_) {
    bool synced = false;
    for (const OpPtr& op : batch) synced = synced || op->mode.synced;
    if (synced != commit_synced_ &&
        sqlite3_exec(db_, synced ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", nullptr,
                     nullptr, nullptr) == SQLITE_OK) {
      commit_synced_ = synced;
    }
  }
  const auto lose_all = [&batch] {
    const Error lost(Code::unavailable, "the store could not commit; the write was not kept");
    for (OpPtr& op : batch) op->fail(lost);
    return false;
  };
  const auto began = std::chrono::steady_clock::now();
  if (!txn_.begin.run()) return lose_all();
  // First without a savepoint per write: writes rarely fail, and a
  // savepoint makes SQLite copy every page a write touches that the batch
  // had already changed (its sub-journal), about as much as the write
  // itself costs. When a write fails, the whole transaction is rolled back
  // and the batch runs again below, each write in a savepoint of its own,
  // so a failing write still fails alone. Bodies may run twice: what they
  // keep outside the database is either redone or keyed to rollbacks().
  // In order, stopping at the first write that fails (all_of).
  bool ok = std::all_of(batch.begin(), batch.end(), [](const OpPtr& op) { return op->run(); });
  if (ok && txn_.commit.run()) {
    count_commit(batch.size(), began);
    return true;
  }
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  rollbacks_ += 1;
  if (!txn_.begin.run()) return lose_all();
  ok = true;
  for (OpPtr& op : batch) {
    if (op->mode.self_contained) {
      // A failed statement undoes itself; some errors (I/O, full disk)
      // roll back the whole transaction, and then every write with it.
      const bool ran = op->run();
      if (!ran) rollbacks_ += 1;
      ok = ran || !sqlite3_get_autocommit(db_);
    } else {
      ok = txn_.savepoint.run();
      if (!ok) break;
      if (!op->run()) {
        rollbacks_ += 1;
        txn_.rollback_to.run();
      }
      ok = txn_.release_savepoint.run();
    }
    if (!ok) break;
  }
  if (!ok || !txn_.commit.run()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    rollbacks_ += 1;
    return lose_all();
  }
  count_commit(batch.size(), began);
  return true;
}

void GroupCommit::count_commit(std::size_t writes, std::chrono::steady_clock::time_point began) {
  writes_ += writes;
  commits_ += 1;
  if (options_.commit_seconds) {
    options_.commit_seconds->observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  }
  if (options_.commit_writes) options_.commit_writes->observe(static_cast<double>(writes));
}

}  // namespace dispatch::scheduler::sqlite
