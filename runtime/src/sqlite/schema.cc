// The migrations, numbered in PRAGMA user_version, and the mapping of a row
// of the calls table to a CallRecord.
#include "sqlite/schema.h"

#include <iterator>

#include "dispatch/sqlite/sqlite_store.h"

namespace dispatch::scheduler {
namespace sqlite {
namespace {

// One schema migration: the SQL that brings a file to `version`.
struct Migration {
  int version;
  const char* sql;
};

// Schema migrations, applied in order; PRAGMA user_version holds the version
// of the last one applied, and a file gets every step of a higher version.
// Each step names its version; versions increase. Append new steps, never
// edit old ones.
constexpr Migration kMigrations[] = {
    // 1: calls.
    {1, R"sql(
CREATE TABLE calls (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  function TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  input_type TEXT NOT NULL,
  input BLOB NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  expiration_at INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 0,
  output_type TEXT NOT NULL DEFAULT '',
  output BLOB NOT NULL DEFAULT x'',
  error_type TEXT NOT NULL DEFAULT '',
  error_message TEXT NOT NULL DEFAULT '',
  idempotency_key TEXT,
  tenant TEXT NOT NULL DEFAULT '',
  fair_key TEXT NOT NULL,
  parent_id TEXT NOT NULL DEFAULT '',
  root_id TEXT NOT NULL DEFAULT '',
  lease INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX calls_idempotency ON calls(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX calls_due ON calls(state, fair_key, next_attempt_at);
)sql"},
    // 2: listing by state in creation order.
    {2, R"sql(
CREATE INDEX calls_state_seq ON calls(state, seq);
)sql"},
    // 3: partial indexes. Each call goes pending -> running -> completed;
    // indexes keyed by state moved an entry in both of them at every step
    // (eleven index writes per call). An index restricted to one state is
    // written only when a call enters or leaves that state, and completed
    // calls, the bulk of the table, are in none: seven index writes per
    // call. Listing completed calls scans the table in creation order
    // instead.
    {3, R"sql(
DROP INDEX IF EXISTS calls_due;
DROP INDEX IF EXISTS calls_state_seq;
CREATE INDEX calls_pending ON calls(fair_key, next_attempt_at) WHERE state = 1;
CREATE INDEX calls_pending_seq ON calls(seq) WHERE state = 1;
CREATE INDEX calls_running_seq ON calls(seq) WHERE state = 2;
CREATE INDEX calls_failed_seq ON calls(seq) WHERE state = 4;
CREATE INDEX calls_cancelled_seq ON calls(seq) WHERE state = 5;
)sql"},
    // 4: the W3C trace context a call was dispatched in.
    {4, R"sql(
ALTER TABLE calls ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN tracestate TEXT NOT NULL DEFAULT '';
)sql"},
    // 5: entities of the stateful-functions runtime (entity_store.cc):
    // inboxes in arrival order, entities ready or leased (status 0 idle,
    // 1 ready, 2 leased), persisted values, state specs per function type,
    // delayed messages (a cancellation token is unique among one sender's
    // pending messages), egress records and acknowledgements, dead
    // letters, ingress idempotency keys. Sequence numbers are never
    // reused (AUTOINCREMENT): they are the ids operators see.
    {5, R"sql(
CREATE TABLE sf_inbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  fn_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  caller_type TEXT NOT NULL DEFAULT '',
  caller_id TEXT NOT NULL DEFAULT '',
  type_name TEXT NOT NULL,
  has_value INTEGER NOT NULL,
  value BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX sf_inbox_entity ON sf_inbox(fn_type, entity_id, seq);
CREATE TABLE sf_entities (
  fn_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  status INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (fn_type, entity_id)
) WITHOUT ROWID;
CREATE INDEX sf_entities_ready ON sf_entities(fn_type, next_attempt_at) WHERE status = 1;
CREATE INDEX sf_entities_leased ON sf_entities(lease_until) WHERE status = 2;
CREATE TABLE sf_state (
  fn_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  name TEXT NOT NULL,
  type_name TEXT NOT NULL,
  value BLOB NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (fn_type, entity_id, name)
) WITHOUT ROWID;
CREATE INDEX sf_state_expiry ON sf_state(expires_at) WHERE expires_at > 0;
CREATE TABLE sf_specs (
  fn_type TEXT NOT NULL,
  name TEXT NOT NULL,
  type_name TEXT NOT NULL,
  mode INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL,
  PRIMARY KEY (fn_type, name)
) WITHOUT ROWID;
CREATE TABLE sf_delayed (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  due_at INTEGER NOT NULL,
  fn_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  caller_type TEXT NOT NULL DEFAULT '',
  caller_id TEXT NOT NULL DEFAULT '',
  type_name TEXT NOT NULL,
  has_value INTEGER NOT NULL,
  value BLOB NOT NULL,
  token TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX sf_delayed_due ON sf_delayed(due_at, seq);
CREATE INDEX sf_delayed_target ON sf_delayed(fn_type, entity_id);
CREATE UNIQUE INDEX sf_delayed_token ON sf_delayed(caller_type, caller_id, token) WHERE token <> '';
CREATE TABLE sf_egress (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  egress TEXT NOT NULL,
  type_name TEXT NOT NULL,
  value BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX sf_egress_by_name ON sf_egress(egress, seq);
CREATE TABLE sf_egress_acks (
  egress TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
);
CREATE TABLE sf_dead_letters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_seq INTEGER NOT NULL,
  fn_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  caller_type TEXT NOT NULL DEFAULT '',
  caller_id TEXT NOT NULL DEFAULT '',
  type_name TEXT NOT NULL,
  has_value INTEGER NOT NULL,
  value BLOB NOT NULL,
  message_created_at INTEGER NOT NULL,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE sf_ingress_keys (
  key TEXT PRIMARY KEY,
  message_seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sf_ingress_keys_created ON sf_ingress_keys(created_at);
)sql"},
    // 6: calls that make calls (Poll). A polled call keeps its coroutine
    // state and what resumes it; its children point to it (parent_id,
    // correlation_id) and their ends wait in `results` until it takes them.
    // Suspended calls (state 6) are found by when they are due; children
    // by their parent. Calls nobody made (most of them) are in neither
    // index.
    {6, R"sql(
ALTER TABLE calls ADD COLUMN correlation_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN polled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN poll_state BLOB NOT NULL DEFAULT x'';
ALTER TABLE calls ADD COLUMN poll_state_type TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN min_results INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN max_results INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN poll_error_type TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN poll_error_message TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN outstanding INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN ready INTEGER NOT NULL DEFAULT 0;
CREATE INDEX calls_suspended ON calls(next_attempt_at) WHERE state = 6;
CREATE INDEX calls_children ON calls(parent_id, seq) WHERE parent_id != '';
CREATE TABLE results (
  seq INTEGER PRIMARY KEY,
  parent_id TEXT NOT NULL,
  correlation_id INTEGER NOT NULL,
  child_id TEXT NOT NULL,
  status INTEGER NOT NULL,
  output_type TEXT NOT NULL,
  output BLOB NOT NULL,
  error_type TEXT NOT NULL,
  error_message TEXT NOT NULL
);
CREATE INDEX results_parent ON results(parent_id, seq);
)sql"},
    // 7: an entity's inbox is keyed by the entity (fn_type, entity_id,
    // seq) and holds its rows in that key's B-tree: queuing a message
    // writes one B-tree instead of a table and an index, and a claim reads
    // an inbox as one range instead of looking each row up by its rowid.
    // Such a table cannot AUTOINCREMENT, so the high-water mark of message
    // seqs moves to sf_sequences (taken from sqlite_sequence and the rows,
    // so that no seq is handed out twice across the change).
    {7, R"sql(
CREATE TABLE sf_sequences (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO sf_sequences (name, seq) SELECT 'sf_inbox', max(
  coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'sf_inbox'), 0),
  coalesce((SELECT max(seq) FROM sf_inbox), 0));
CREATE TABLE sf_inbox_by_entity (
  fn_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  caller_type TEXT NOT NULL DEFAULT '',
  caller_id TEXT NOT NULL DEFAULT '',
  type_name TEXT NOT NULL,
  has_value INTEGER NOT NULL,
  value BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (fn_type, entity_id, seq)
) WITHOUT ROWID;
INSERT INTO sf_inbox_by_entity (fn_type, entity_id, seq, caller_type, caller_id, type_name, has_value, value,
                                created_at)
  SELECT fn_type, entity_id, seq, caller_type, caller_id, type_name, has_value, value, created_at FROM sf_inbox;
DROP TABLE sf_inbox;
ALTER TABLE sf_inbox_by_entity RENAME TO sf_inbox;
)sql"},
    // 8: names as small integers in the tables every message writes. An
    // inbox row repeated its function type and its typename as text (two
    // thirds of the row), and so did state and entity rows: the rows of a
    // commit spread over twice the pages. sf_names holds each function
    // type, caller type, typename and state name once (the empty name
    // too); sf_inbox, sf_entities and sf_state hold its id. Names are never
    // deleted or renamed, so an id means one name for the file's life.
    // The colder tables (delayed, egress, dead letters, specs) keep text.
    {8, R"sql(
CREATE TABLE sf_names (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
INSERT INTO sf_names (name)
  SELECT fn_type FROM sf_entities UNION SELECT fn_type FROM sf_inbox UNION SELECT caller_type FROM sf_inbox
  UNION SELECT type_name FROM sf_inbox UNION SELECT fn_type FROM sf_state UNION SELECT name FROM sf_state
  UNION SELECT type_name FROM sf_state;
CREATE TABLE sf_inbox_named (
  fn_type_id INTEGER NOT NULL,
  entity_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  caller_type_id INTEGER NOT NULL,
  caller_id TEXT NOT NULL,
  type_name_id INTEGER NOT NULL,
  has_value INTEGER NOT NULL,
  value BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (fn_type_id, entity_id, seq)
) WITHOUT ROWID;
INSERT INTO sf_inbox_named
  SELECT (SELECT id FROM sf_names WHERE name = fn_type), entity_id, seq,
         (SELECT id FROM sf_names WHERE name = caller_type), caller_id,
         (SELECT id FROM sf_names WHERE name = type_name), has_value, value, created_at
  FROM sf_inbox;
DROP TABLE sf_inbox;
ALTER TABLE sf_inbox_named RENAME TO sf_inbox;
CREATE TABLE sf_entities_named (
  fn_type_id INTEGER NOT NULL,
  entity_id TEXT NOT NULL,
  status INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (fn_type_id, entity_id)
) WITHOUT ROWID;
INSERT INTO sf_entities_named
  SELECT (SELECT id FROM sf_names WHERE name = fn_type), entity_id, status, next_attempt_at, attempts, lease,
         lease_until, last_error
  FROM sf_entities;
DROP TABLE sf_entities;
ALTER TABLE sf_entities_named RENAME TO sf_entities;
CREATE INDEX sf_entities_ready ON sf_entities(fn_type_id, next_attempt_at) WHERE status = 1;
CREATE INDEX sf_entities_leased ON sf_entities(lease_until) WHERE status = 2;
CREATE TABLE sf_state_named (
  fn_type_id INTEGER NOT NULL,
  entity_id TEXT NOT NULL,
  name_id INTEGER NOT NULL,
  type_name_id INTEGER NOT NULL,
  value BLOB NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (fn_type_id, entity_id, name_id)
) WITHOUT ROWID;
INSERT INTO sf_state_named
  SELECT (SELECT id FROM sf_names WHERE name = fn_type), entity_id,
         (SELECT id FROM sf_names WHERE name = sf_state.name),
         (SELECT id FROM sf_names WHERE name = type_name), value, expires_at
  FROM sf_state;
DROP TABLE sf_state;
ALTER TABLE sf_state_named RENAME TO sf_state;
CREATE INDEX sf_state_expiry ON sf_state(expires_at) WHERE expires_at > 0;
)sql"},
    // 9: how many times a call started again from its input because it
    // could not take a resume (CallRecord::restarts); a Poll, which resets
    // attempts, keeps it.
    {9, R"sql(
ALTER TABLE calls ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
)sql"},
};
constexpr int kSchemaVersion = kMigrations[std::size(kMigrations) - 1].version;

constexpr bool versions_increase() {
  int last = 0;
  for (const Migration& m : kMigrations) {
    if (m.version <= last) return false;
    last = m.version;
  }
  return true;
}
static_assert(versions_increase(), "schema migrations must be listed in increasing version order");

int user_version(sqlite3* db) {
  Stmt s(db, "PRAGMA user_version");
  Using u(s);
  return s.step() ? static_cast<int>(s.i64(0)) : 0;
}

}  // namespace

const char* const kCallColumns =
    "id, function, endpoint, input_type, input, state, attempts, next_attempt_at, expiration_at, "
    "created_at, updated_at, status, output_type, output, error_type, error_message, "
    "idempotency_key, tenant, parent_id, root_id, lease, traceparent, tracestate, correlation_id, polled, "
    "poll_state, poll_state_type, min_results, max_results, poll_error_type, poll_error_message, outstanding, ready, restarts";

CallRecord read_call(const Stmt& s) {
  CallRecord r;
  r.id = s.text(0);
  r.function = s.text(1);
  r.endpoint = s.text(2);
  r.input_type_url = s.text(3);
  r.input = s.text(4);
  r.state = static_cast<CallState>(s.i64(5));
  r.attempts = static_cast<uint32_t>(s.i64(6));
  r.next_attempt_at_ms = s.i64(7);
  r.expiration_at_ms = s.i64(8);
  r.created_at_ms = s.i64(9);
  r.updated_at_ms = s.i64(10);
  r.status = static_cast<int>(s.i64(11));
  r.output_type_url = s.text(12);
  r.output = s.text(13);
  r.error_type = s.text(14);
  r.error_message = s.text(15);
  r.idempotency_key = s.text(16);
  r.tenant = s.text(17);
  r.parent_id = s.text(18);
  r.root_id = s.text(19);
  r.lease = static_cast<uint64_t>(s.i64(20));
  r.traceparent = s.text(21);
  r.tracestate = s.text(22);
  r.correlation_id = static_cast<uint64_t>(s.i64(23));
  r.polled = s.i64(24) != 0;
  r.poll_state = s.text(25);
  r.poll_state_type_url = s.text(26);
  r.min_results = static_cast<int32_t>(s.i64(27));
  r.max_results = static_cast<int32_t>(s.i64(28));
  r.poll_error_type = s.text(29);
  r.poll_error_message = s.text(30);
  r.outstanding = static_cast<uint32_t>(s.i64(31));
  r.ready = static_cast<uint32_t>(s.i64(32));
  r.restarts = static_cast<uint32_t>(s.i64(33));
  return r;
}

namespace {

// `e`, met while opening `path` (its first statements and the migrations
// read the file), as an error naming the file; a file that is not a
// database or is damaged says so and what to do, instead of SQLite's bare
// text. `rc` is SQLite's code for it.
bool unreadable(int rc) { return (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT; }

Error opening_error(int rc, sqlite3* db, const std::string& path, const Error& e) {
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
      return Error(Code::failed_precondition,
                   "cannot open the store " + path +
                       ": it is not a SQLite database; give the path of a store file, or of a file that "
                       "does not exist yet to create one");
    case SQLITE_CORRUPT:
      return Error(Code::data_loss, "cannot open the store " + path + ": the file is damaged (" +
                                        sqlite3_errmsg(db) +
                                        "); restore it from a backup, or save what it still holds with "
                                        "'sqlite3 " + path + " .recover' into a new file");
    default:
      return Error(e.code(), "cannot open the store " + path + ": " + e.message());
  }
}

}  // namespace

Connection open_connection(const std::string& path, bool fsync_commits) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Connection db(raw);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    throw Error(Code::unavailable, "cannot open the store " + path + ": " + msg);
  }
  sqlite3_busy_timeout(raw, 10000);
  try {
    exec(raw, "PRAGMA journal_mode=WAL");
    exec(raw, fsync_commits ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    // A backlog's working set (due index, recent rows) stays in memory.
    exec(raw, "PRAGMA cache_size=-65536");
    exec(raw, "PRAGMA temp_store=MEMORY");
  } catch (const Error& e) {
    throw opening_error(sqlite3_errcode(raw), raw, path, e);
  }
  return db;
}

void migrate(sqlite3* db, const std::string& path) {
  try {
    exec(db, "BEGIN IMMEDIATE");
  } catch (const Error& e) {
    throw opening_error(sqlite3_errcode(db), db, path, e);
  }
  try {
    const int have = user_version(db);
    if (have > kSchemaVersion) {
      throw Error(Code::failed_precondition,
                  path + " has store schema version " + std::to_string(have) +
                      ", newer than this build knows (" + std::to_string(kSchemaVersion) +
                      "); run a newer dispatchd");
    }
    for (const Migration& m : kMigrations) {
      if (m.version > have) exec(db, m.sql);
    }
    exec(db, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    exec(db, "COMMIT");
  } catch (const Error& e) {
    const int rc = sqlite3_errcode(db);
    const Error refused = unreadable(rc) ? opening_error(rc, db, path, e) : e;
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw refused;
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::string state_index(int state) {
  switch (static_cast<CallState>(state)) {
    case CallState::pending: return "calls_pending_seq";
    case CallState::running: return "calls_running_seq";
    case CallState::failed: return "calls_failed_seq";
    case CallState::cancelled: return "calls_cancelled_seq";
    case CallState::suspended: return "calls_suspended";
    case CallState::completed: break;
  }
  return "";
}

}  // namespace sqlite

int sqlite_schema_version() noexcept { return sqlite::kSchemaVersion; }

}  // namespace dispatch::scheduler
