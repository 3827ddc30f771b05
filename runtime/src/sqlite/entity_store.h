// The SQLite store's EntityStore (dispatch/scheduler/entity_store.h): the
// stateful-functions runtime's entities in the same file as the calls, their
// writes queued on the same group-commit writer, so an entity's reply
// shares commits (and fsyncs) with every other write. Reads go through a
// connection of their own.
//
// Not for: calls (sqlite_store.cc), the schema (schema.cc, migration 5).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>

#include "dispatch/scheduler/entity_store.h"
#include "sqlite/group_commit.h"

namespace dispatch::scheduler::sqlite {

// `writer_db` is the write connection `writer` runs on; both must outlive
// the store, and the writer must stop before it goes. Throws
// dispatch::Error when the statements or the read connection fail.
std::unique_ptr<EntityStore> open_entity_store(sqlite3* writer_db, GroupCommit& writer, const std::string& path,
                                               bool fsync_commits);

}  // namespace dispatch::scheduler::sqlite
