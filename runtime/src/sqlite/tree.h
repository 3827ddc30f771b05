// The writes of calls that make calls (a coroutine answering Poll): its
// children, the results they leave for it, and the cancellation of what a
// call leaves unfinished when it ends. Each is a step of a larger write the
// store runs (sqlite_store.cc), inside its transaction, on the writer
// thread; what the steps add up to is Store's contract (store.h).
//
// Not for: plain calls (their writes are single statements in
// sqlite_store.cc), or deciding when a call ends (the scheduler's).
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dispatch/scheduler/store.h"
#include "sqlite/statement.h"

namespace dispatch::scheduler::sqlite {

class CallTree {
 public:
  // Prepares the statements on the write connection.
  explicit CallTree(sqlite3* db);

  // Drops the results in `seqs` that wait for `parent_id`; how many went.
  uint32_t consume(const std::string& parent_id, const std::vector<uint64_t>& seqs);
  // Drops every result waiting for `parent_id`.
  void drop_results(const std::string& parent_id);
  // Up to `max` results waiting for `parent_id`, oldest first.
  std::vector<ChildResult> results_for(const std::string& parent_id, std::size_t max);

  // The end of `child` (a call of `parent_id` with `correlation_id`), as a
  // result for its parent if that has not ended; a suspended parent that
  // this makes ready is due at `now_ms`.
  void deliver(const std::string& parent_id, const ChildResult& result, int64_t now_ms);

  // Cancels every unfinished descendant of `id` (no results for anyone:
  // their callers are going too); their waiting results are dropped.
  void cancel_descendants(const std::string& id, int64_t now_ms, const std::string& why);

  // Records the end of `id`'s attempt with a Poll if it is running under
  // `lease` (false when it is not, and nothing is written): the call's row
  // in one statement (the outcome, the poll state and limits, attempts 0,
  // its counts, when it is due), then the results it was handed dropped
  // and the children added by `insert` (which returns each one's ID). One
  // write of the row, not one per part: the row holds the coroutine state,
  // which every write of it copies.
  template <typename Insert>
  bool suspend(const std::string& id, uint64_t lease, const Outcome& outcome, int64_t now_ms, Insert insert) {
    const auto handed = static_cast<uint32_t>(outcome.consumed.size());
    if (!record_poll(id, lease, outcome, handed, static_cast<uint32_t>(outcome.poll->calls.size()), now_ms)) {
      return false;
    }
    // Nothing else drops a running call's results: all of them are there.
    if (drop_consumed(id, outcome.consumed) != handed) {
      throw Error(Code::internal, "results handed to call " + id + " vanished while it ran");
    }
    for (const NewCall& child : outcome.poll->calls) insert(child);
    return true;
  }

  // A tail call: `id` goes on as `call`, pending now.
  void continue_as(const std::string& id, const NewCall& call, int64_t now_ms);
  // Forgets `id`'s poll state: a restart from its input (`restart`: one
  // more restart counted), or a retry.
  void forget_poll(const std::string& id, bool restart);

 private:
  // Deletes the results in `seqs` that wait for `parent_id` (its ready
  // count aside); how many went.
  uint32_t drop_consumed(const std::string& parent_id, const std::vector<uint64_t>& seqs);
  // The row's part of suspend(); false when `id` is not running under
  // `lease`.
  bool record_poll(const std::string& id, uint64_t lease, const Outcome& outcome, uint32_t consumed,
                   uint32_t added, int64_t now_ms);

  sqlite3* db_;
  Stmt consume_, lower_ready_, drop_results_, results_for_, insert_result_, tell_parent_,
      descendants_, cancel_one_, poll_, continue_as_, forget_poll_;
};

}  // namespace dispatch::scheduler::sqlite
