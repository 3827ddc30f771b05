// The log sync thread: makes committed writes durable without holding the
// write lock. The writer commits with synchronous=NORMAL and hands over the
// writes that must be on disk before they are reported (enqueue, cancel,
// retry); this thread fdatasync()s the write-ahead log and only then
// reports them. That is SQLite's synchronous=FULL guarantee (the log is on
// disk before the write is acknowledged) while leases and outcomes keep
// committing during the sync, and one sync covers every commit made
// meanwhile.
//
// Not for: committing (group_commit.h), or stores whose log cannot be
// reached (open() says so; their commits sync themselves).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/core/result.h"
#include "sqlite/write_op.h"

namespace dispatch::scheduler::sqlite {

class LogSync {
 public:
  // How the log is synced: returns 0 or an errno value; empty: fdatasync.
  using SyncFn = std::function<int(int fd)>;

  // Opens "<db_path>-wal" (the store's connections have made it), makes its
  // directory entry durable (SQLite does that itself only when it syncs the
  // log), and starts the thread. Null when the log cannot be reached.
  static std::unique_ptr<LogSync> open(const std::string& db_path, SyncFn sync_log);
  // Syncs and reports everything handed over, then stops the thread.
  // Idempotent.
  void stop();
  ~LogSync();  // stop()s
  LogSync(const LogSync&) = delete;
  LogSync& operator=(const LogSync&) = delete;

  // Committed writes, reported once a sync that began after their commit
  // has returned (or failed with the sync's error). Leaves `ops` empty.
  void hand_over(std::vector<OpPtr>& ops);

  uint64_t syncs() const noexcept { return syncs_.load(); }

 private:
  LogSync(std::string wal_path, int wal_fd, SyncFn sync_log);
  Result<void> sync_wal();
  void sync_loop();

  const std::string wal_path_;
  int wal_fd_ = -1;  // the sync thread's once it runs
  const SyncFn sync_log_;
  std::atomic<uint64_t> syncs_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<OpPtr> queue_;  // committed, to report once synced
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dispatch::scheduler::sqlite
