// One retention batch: a scan in creation order (the table's own order, no
// index), then a delete per call found.
#include "sqlite/retention.h"

#include <vector>

#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler::sqlite {

Retention::Retention(sqlite3* db)
    : scan_(db, "SELECT seq, state, created_at, updated_at FROM calls WHERE seq > ?1 ORDER BY seq"),
      erase_(db, "DELETE FROM calls WHERE seq = ?1") {}

Retention::Batch Retention::delete_batch(int64_t ended_before_ms, int64_t after_seq, std::size_t max) {
  Batch batch;
  batch.after_seq = after_seq;
  // Live calls and calls that ended since the cutoff are looked at and left;
  // a scan that meets many of them stops early, so that no write waits for
  // it long, and the next batch goes on from there.
  const std::size_t scan_max = max * 4;
  std::vector<int64_t> found;
  {
    Using u(scan_);
    scan_.bind(1, after_seq);
    std::size_t scanned = 0;
    for (;;) {
      if (found.size() >= max || scanned >= scan_max) break;
      if (!scan_.step()) {
        batch.finished = true;  // the end of the table
        break;
      }
      ++scanned;
      // A call created at or after the cutoff cannot have ended before it,
      // nor can the calls created after it. (A wall clock set back may
      // have given a later call an earlier time: that call waits until
      // the cutoff passes this one.)
      if (scan_.i64(2) >= ended_before_ms) {
        batch.finished = true;
        break;
      }
      const int64_t seq = scan_.i64(0);
      batch.after_seq = seq;
      if (is_final(static_cast<CallState>(scan_.i64(1))) && scan_.i64(3) < ended_before_ms) {
        found.push_back(seq);
      }
    }
  }
  // After the scan, which must not see its table change under it.
  for (int64_t seq : found) {
    Using u(erase_);
    erase_.bind(1, seq);
    erase_.step();
  }
  batch.deleted = found.size();
  return batch;
}

}  // namespace dispatch::scheduler::sqlite
