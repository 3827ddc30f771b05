// The checkpoint thread: copies the write-ahead log back into the database
// file on a connection of its own, so that the writer thread never does.
// SQLite's automatic checkpoint runs on the connection that committed,
// inside its commit, and syncs the log and the database file: the writer
// (and every write queued behind it) waited for two syncs each time the log
// passed its threshold. Here the writer's commit only counts the log's
// frames (a WAL hook, which takes the place of the automatic checkpoint) and
// wakes this thread, whose PASSIVE checkpoint copies what no reader still
// needs while the writer goes on committing; SQLite starts the log again
// from its beginning at the first commit after a checkpoint that copied it
// all. That never happens while commits keep coming during the thread's
// checkpoints, so past kCatchUp times the threshold the writer checkpoints
// once itself, copying only what the thread has not, and the log restarts:
// one stall of the writer per kCatchUp thresholds instead of one per
// threshold, and a short one. The thread is woken each time the log has
// grown by a threshold (by a quarter of one in the last threshold before
// the catch-up point): a page that many commits wrote is copied once, and
// the log and the database are synced once per threshold.
//
// Not for: durability of commits (log_sync.h), or the SQL of any write.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "sqlite/statement.h"

namespace dispatch::scheduler::sqlite {

class Checkpointer {
 public:
  // Frames in the log past which a checkpoint is due: SQLite's own default
  // for its automatic checkpoint.
  static constexpr int kDefaultFrames = 1000;
  // Frames, in thresholds, past which the writer catches up itself.
  static constexpr int kCatchUp = 8;

  // Takes over the checkpoints of `writer` (which must outlive this) on a
  // new connection to `path`. Throws dispatch::Error when that cannot open.
  Checkpointer(sqlite3* writer, const std::string& path, bool fsync_commits, int frames = kDefaultFrames);
  // Gives the checkpoints back to the writer's connection and stops the
  // thread (after the checkpoint it may be running). Idempotent.
  void stop();
  ~Checkpointer();  // stop()s
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Checkpoints run (each PASSIVE: complete or not).
  uint64_t checkpoints() const noexcept { return checkpoints_.load(); }
  // Checkpoints the writer ran itself to catch up (tries included that
  // found the thread copying).
  uint64_t writer_checkpoints() const noexcept { return writer_checkpoints_.load(); }
  // Times the writer woke the thread (a wake while one is pending is not
  // counted): with checkpoints(), whether the thread has caught up.
  uint64_t wakes() const noexcept { return wakes_.load(); }
  // Pages the writer's commits appended to the log (its frames): what a
  // write costs on disk, whichever thread copies them back later.
  uint64_t log_frames() const noexcept { return log_frames_.load(); }

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int frames);
  void loop();

  sqlite3* const writer_;
  Connection db_;  // the thread's
  const int frames_;
  int woken_at_ = 0;  // the log's length when the writer last woke the thread; writer thread
  int log_length_ = 0;  // the log's length at the last commit; writer thread
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<uint64_t> writer_checkpoints_{0};
  std::atomic<uint64_t> wakes_{0};
  std::atomic<uint64_t> log_frames_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool due_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dispatch::scheduler::sqlite
