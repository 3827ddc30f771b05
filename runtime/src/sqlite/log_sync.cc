// The log sync thread: one fdatasync of the write-ahead log per group of
// commits, then the reports of the writes that waited for it.
#include "sqlite/log_sync.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/thread_name.h"

namespace dispatch::scheduler::sqlite {
namespace {

bool sync_directory_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

bool same_file(int fd, const std::string& path) {
  struct stat by_fd {}, by_path {};
  return ::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 &&
         by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev;
}

}  // namespace

std::unique_ptr<LogSync> LogSync::open(const std::string& db_path, SyncFn sync_log) {
  std::string wal_path = db_path + "-wal";
  const int fd = ::open(wal_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  if (!same_file(fd, wal_path) || ::fdatasync(fd) != 0 || !sync_directory_of(wal_path)) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<LogSync>(new LogSync(std::move(wal_path), fd, std::move(sync_log)));
}

LogSync::LogSync(std::string wal_path, int wal_fd, SyncFn sync_log)
    : wal_path_(std::move(wal_path)), wal_fd_(wal_fd), sync_log_(std::move(sync_log)) {
  // Named, so that top and perf show where the store's time goes.
  thread_ = std::thread([this] {
    detail::name_this_thread("store-sync");
    sync_loop();
  });
}

LogSync::~LogSync() {
  stop();
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

void LogSync::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LogSync::hand_over(std::vector<OpPtr>& ops) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (OpPtr& op : ops) queue_.push_back(std::move(op));
  }
  ops.clear();
  cv_.notify_one();
}

// fdatasync of the log; reopens it first should SQLite have replaced the
// file (it does not while a connection is open, but a stale descriptor
// would sync nothing).
Result<void> LogSync::sync_wal() {
  if (!same_file(wal_fd_, wal_path_)) {
    const int fd = ::open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Error(Code::unavailable, "cannot reopen " + wal_path_ + " to sync it: " + std::strerror(errno));
    }
    ::close(wal_fd_);
    wal_fd_ = fd;
    if (!sync_directory_of(wal_path_)) {
      return Error(Code::unavailable, "cannot sync the directory of " + wal_path_);
    }
  }
  const int err = sync_log_ ? sync_log_(wal_fd_) : (::fdatasync(wal_fd_) == 0 ? 0 : errno);
  syncs_ += 1;
  if (err != 0) {
    return Error(Code::unavailable, "syncing " + wal_path_ + " failed (" + std::strerror(err) +
                                        "); the write was committed but may not survive a power loss");
  }
  return {};
}

// Reports synced writes once a fdatasync that began after their commit
// has returned: every write handed over while one sync runs waits for the
// next, so each sync covers as many commits as arrived meanwhile.
void LogSync::sync_loop() {
  std::vector<OpPtr> ready;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      ready.swap(queue_);
    }
    auto synced = sync_wal();
    for (OpPtr& op : ready) {
      if (!synced.ok()) op->fail(synced.error());
      op->report();
    }
    ready.clear();
  }
}

}  // namespace dispatch::scheduler::sqlite
