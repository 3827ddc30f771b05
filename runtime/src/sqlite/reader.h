// The store's reads: a second connection on the file, which WAL lets read
// while the writer commits, and the statements of get, list, next_due_ms
// and count_by_state. Reads are synchronous and see every committed write.
//
// Not for: writes (sqlite_store.cc, through the group commit writer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"
#include "dispatch/scheduler/store.h"
#include "sqlite/schema.h"
#include "sqlite/statement.h"

namespace dispatch::scheduler::sqlite {

class Reader {
 public:
  // Opens the read connection on a file already migrated. Throws
  // dispatch::Error.
  Reader(const std::string& path, bool fsync_commits);

  Result<std::optional<CallRecord>> get(std::string_view id);
  // A page goes on after the call `after_id`; should that call have been
  // deleted since (retention), after the calls created before its
  // millisecond (IDs begin with their creation time): a few calls of that
  // millisecond may be listed again, none is skipped.
  Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                       std::string_view after_id);
  // The calls `parent_id` made, in creation order, after `after_id` (one of them).
  Result<std::vector<CallRecord>> list_children(std::string_view parent_id, std::size_t limit,
                                                std::string_view after_id);
  Result<std::optional<int64_t>> next_due_ms();
  Result<std::vector<int64_t>> count_by_state();

 private:
  // One read at a time on the connection; errors as values.
  template <typename F>
  auto read(F&& f) -> Result<decltype(f())> {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      return f();
    } catch (const Error& e) {
      return e;
    }
  }

  // The seq after which a page that follows `after_id` begins.
  int64_t page_start(std::string_view after_id);

  Connection db_;  // declared first: closed after the statements
  std::mutex mu_;
  Stmt get_, seq_of_, list_all_, next_due_, next_resume_, count_all_, begin_, commit_, children_;
  Stmt first_id_from_, first_seq_between_;
  Stmt list_state_[kStates];
  Stmt count_state_[kStates];  // none for completed: the total less the others
};

}  // namespace dispatch::scheduler::sqlite
