// The checkpoint thread: woken by the writer's commits once the log is long
// enough, checkpoints on its own connection. See checkpointer.h.
#include "sqlite/checkpointer.h"

#include <algorithm>

#include "core/thread_name.h"
#include "sqlite/schema.h"

namespace dispatch::scheduler::sqlite {

Checkpointer::Checkpointer(sqlite3* writer, const std::string& path, bool fsync_commits, int frames)
    : writer_(writer), db_(open_connection(path, fsync_commits)), frames_(frames) {
  // Replaces the automatic checkpoint (SQLite keeps one WAL hook per
  // connection, and the automatic checkpoint is that hook).
  sqlite3_wal_hook(writer_, &Checkpointer::on_commit, this);
  thread_ = std::thread([this] {
    detail::name_this_thread("store-ckpt");
    loop();
  });
}

Checkpointer::~Checkpointer() { stop(); }

void Checkpointer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  // The writer checkpoints for itself again (it has stopped committing by
  // now in a store that is closing; SQLite checkpoints at its close too).
  sqlite3_wal_autocheckpoint(writer_, frames_);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// On the writer thread, as each commit ends: `frames` is the log's length.
int Checkpointer::on_commit(void* self, sqlite3* db, const char* name, int frames) {
  auto* c = static_cast<Checkpointer*>(self);
  // A shorter log started again at this commit, which wrote all of it.
  c->log_frames_ += static_cast<uint64_t>(frames >= c->log_length_ ? frames - c->log_length_ : frames);
  c->log_length_ = frames;
  if (frames < c->frames_) return SQLITE_OK;
  if (frames >= kCatchUp * c->frames_) {
    // The log starts again only at a commit that finds it all copied, which
    // the thread cannot see while commits keep coming: the writer copies
    // what is left (the thread copied the rest) as SQLite's automatic
    // checkpoint would. Busy (the thread is copying): at the next commit.
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    c->writer_checkpoints_ += 1;
    return SQLITE_OK;
  }
  // The thread copies the log a threshold at a time: each page once per
  // checkpoint however many commits wrote it, and one sync of the log and
  // the database per threshold instead of one per commit or two. In the
  // last threshold before the catch-up point it goes every quarter of one,
  // so that the writer finds little left to copy.
  if (frames < c->woken_at_) c->woken_at_ = 0;  // the log started again
  const int step = frames < (kCatchUp - 1) * c->frames_ ? c->frames_ : std::max(1, c->frames_ / 4);
  if (frames - c->woken_at_ < step) return SQLITE_OK;
  c->woken_at_ = frames;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    wake = !c->due_;
    c->due_ = true;
    if (wake) c->wakes_ += 1;
  }
  if (wake) c->cv_.notify_one();
  return SQLITE_OK;
}

void Checkpointer::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || due_; });
      if (stopping_) return;
      due_ = false;
    }
    // PASSIVE: copies what it can without waiting for (or blocking) the
    // writer or the readers; a failure (busy, I/O) leaves the log as it
    // is, to be copied by the next one.
    int log = 0, copied = 0;
    sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    checkpoints_ += 1;
  }
}

}  // namespace dispatch::scheduler::sqlite
