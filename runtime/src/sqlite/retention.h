// Deleting the calls that ended before a cutoff, one bounded batch at a
// time, without an index of end times: completed calls, the bulk of the
// table, are in no index (each index costs every call a write), and a call
// that ended before the cutoff was created before it, so the candidates are
// the oldest rows. A batch walks the table in creation order from where the
// previous one stopped, deletes the calls that ended before the cutoff,
// skips the ones still running, pending or ended since, and stops at the
// first call created after the cutoff.
//
// Not for: when or how often to delete (the scheduler's retention), or
// queuing the batches (sqlite_store.cc: each is a write of its own).
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>

#include "sqlite/statement.h"

namespace dispatch::scheduler::sqlite {

class Retention {
 public:
  // Prepares the statements on the write connection.
  explicit Retention(sqlite3* db);

  struct Batch {
    std::size_t deleted = 0;
    int64_t after_seq = 0;  // where the next batch continues
    bool finished = false;  // no later call can have ended before the cutoff
  };
  // On the writer thread, inside its transaction: deletes up to `max` calls
  // that ended before `ended_before_ms` among the calls after `after_seq`
  // in creation order, looking at no more than 4 * max of them.
  Batch delete_batch(int64_t ended_before_ms, int64_t after_seq, std::size_t max);

 private:
  Stmt scan_, erase_;
};

}  // namespace dispatch::scheduler::sqlite
