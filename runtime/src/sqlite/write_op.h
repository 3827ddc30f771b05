// One queued write of the store: its body, how it is committed and
// reported (Mode), and the result that waits in it until it may be
// reported. The writer (group_commit.h) runs bodies and commits; the log
// sync thread (log_sync.h) reports the writes that had to reach the disk.
//
// Not for: the SQL of any write (sqlite_store.cc builds the bodies).
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "dispatch/core/error.h"
#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler::sqlite {

// How a write is run and reported.
struct Mode {
  // Must be on disk before it is reported (fsync_commits): what a client
  // is told (enqueue, cancel, retry). Leases and outcomes need not: if a
  // power cut loses them, the call is delivered again (at least once),
  // and a later synced commit makes them durable with it (WAL order).
  bool synced = true;
  // The body is one statement, or keeps its own savepoint: when it fails
  // it leaves no partial change, so it runs without a savepoint of its
  // own (two statements less per write; outcomes are one per call).
  bool self_contained = false;
  // An outcome: nobody waits on it but the scheduler's in-flight count,
  // so it may wait up to SqliteOptions::outcome_hold for other writes to
  // share its commit (see GroupCommit::write_loop).
  bool may_wait = false;
};

// One queued write. Its body runs on the writer thread inside the batch's
// transaction; the result waits in the op until it may be reported. One
// allocation per write: the queues move pointers.
class Op {
 public:
  explicit Op(Mode mode) : mode(mode) {}
  virtual ~Op() = default;
  // Runs the body and keeps its result; false when it failed.
  virtual bool run() = 0;
  // Replaces the kept result by `error` (the commit or the sync failed).
  virtual void fail(const Error& error) = 0;
  // Hands the kept result to the caller.
  virtual void report() = 0;
  const Mode mode;
};
using OpPtr = std::unique_ptr<Op>;

// `body` returns a T or throws dispatch::Error.
template <typename T, typename Body>
class WriteOp final : public Op {
 public:
  WriteOp(Mode mode, Body body, Done<T> done) : Op(mode), body_(std::move(body)), done_(std::move(done)) {}
  bool run() override {
    try {
      result_.emplace(body_());
      return true;
    } catch (const Error& e) {
      result_.emplace(e);
    } catch (...) {
      result_.emplace(error_from_current_exception());
    }
    return false;
  }
  void fail(const Error& error) override { result_.emplace(error); }
  void report() override { done_(std::move(*result_)); }

 private:
  Body body_;
  Done<T> done_;
  std::optional<Result<T>> result_;
};

}  // namespace dispatch::scheduler::sqlite
