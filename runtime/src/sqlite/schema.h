// The store's schema: the versioned migrations that make the calls table
// and its indexes, the columns a call is read from, and opening a
// connection on the file (WAL and the pragmas every connection shares).
//
// Not for: the statements of the operations (sqlite_store.cc, reader.cc,
// retention.cc), which name the indexes made here.
#pragma once

#include <sqlite3.h>

#include <string>

#include "dispatch/scheduler/store.h"
#include "sqlite/statement.h"

namespace dispatch::scheduler::sqlite {

// CallState values (1..6) index arrays of this size; 0 is unused.
inline constexpr int kStates = 7;

// The columns read_call() reads, in its order: "SELECT " + kCallColumns + ...
extern const char* const kCallColumns;
CallRecord read_call(const Stmt& s);

// Opens (creating) the store file in WAL mode; synchronous=FULL when
// fsync_commits, NORMAL otherwise. Throws dispatch::Error (unavailable).
Connection open_connection(const std::string& path, bool fsync_commits);

// Applies the migrations the file lacks, in one transaction. Throws
// dispatch::Error: failed_precondition for a file of a newer schema.
void migrate(sqlite3* db, const std::string& path);

// The partial index that holds the calls in `state` (migrations 3 and 6);
// empty for completed calls, which are in none. (calls_suspended is by due
// time, not creation order: listing suspended calls sorts them.)
std::string state_index(int state);

}  // namespace dispatch::scheduler::sqlite
