// The SQLite store: WAL mode, versioned migrations, and group commit. One
// writer thread owns the write connection: it takes every queued write,
// runs them in one transaction (one bad write fails alone: see Mode),
// commits, and only then reports to each caller; outcomes queued alone wait
// briefly for company (SqliteOptions::outcome_hold). Reads use a second
// connection; WAL lets them proceed while the writer commits.
//
// Durable acknowledgements (fsync_commits): the writer commits without
// syncing, and a sync thread fdatasync()s the write-ahead log after each
// group of commits before it reports the writes that must be on disk
// (enqueue, cancel, retry). That is SQLite's synchronous=FULL guarantee
// (the log is on disk before the write is acknowledged) without holding
// the write lock during the sync, so leases and outcomes keep committing
// while the disk syncs, and one sync covers every commit made meanwhile.
// Should the log file not be reachable, commits fall back to
// synchronous=FULL.
//
// Not for: policy. One scheduler per file (see SqliteOptions::exclusive_owner).
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "core/thread_name.h"
#include "dispatch/sqlite/sqlite_store.h"

namespace dispatch::scheduler {
namespace {

// Schema migrations, applied in order; PRAGMA user_version counts the ones
// applied. Append new steps, never edit old ones.
constexpr const char* kMigrations[] = {
    // 1: calls.
    R"sql(
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
)sql",
    // 2: listing by state in creation order.
    R"sql(
CREATE INDEX calls_state_seq ON calls(state, seq);
)sql",
    // 3: partial indexes. Each call goes pending -> running -> completed;
    // indexes keyed by state moved an entry in both of them at every step
    // (eleven index writes per call). An index restricted to one state is
    // written only when a call enters or leaves that state, and completed
    // calls, the bulk of the table, are in none: seven index writes per
    // call. Listing completed calls scans the table in creation order
    // instead.
    R"sql(
DROP INDEX IF EXISTS calls_due;
DROP INDEX IF EXISTS calls_state_seq;
CREATE INDEX calls_pending ON calls(fair_key, next_attempt_at) WHERE state = 1;
CREATE INDEX calls_pending_seq ON calls(seq) WHERE state = 1;
CREATE INDEX calls_running_seq ON calls(seq) WHERE state = 2;
CREATE INDEX calls_failed_seq ON calls(seq) WHERE state = 4;
CREATE INDEX calls_cancelled_seq ON calls(seq) WHERE state = 5;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

constexpr const char* kColumns =
    "id, function, endpoint, input_type, input, state, attempts, next_attempt_at, expiration_at, "
    "created_at, updated_at, status, output_type, output, error_type, error_message, "
    "idempotency_key, tenant, parent_id, root_id, lease";

Error db_error(sqlite3* db, std::string_view what) {
  return Error(Code::internal, std::string(what) + ": " + sqlite3_errmsg(db));
}

// A prepared statement, reset after each use.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      throw db_error(db, "preparing '" + sql.substr(0, 60) + "'");
    }
  }
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(db_, o.db_);
    std::swap(stmt_, o.stmt_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }

  Stmt& bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); return *this; }
  // Text and blobs are bound without a copy (SQLITE_STATIC: one malloc and
  // copy less per value, on the writer's hot path): SQLite reads them in
  // step(), so they must stay alive until this use's last step().
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind_null(int i) { sqlite3_bind_null(stmt_, i); return *this; }
  // True while a row is available; throws on error.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw db_error(db_, "step");
  }
  void done() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  // Runs a statement without rows (BEGIN, SAVEPOINT, ...); false on error.
  bool run() {
    const int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    return rc == SQLITE_DONE;
  }
  int64_t i64(int c) const { return sqlite3_column_int64(stmt_, c); }
  bool is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement at scope exit, also when a step throws.
struct Using {
  explicit Using(Stmt& s) : s(s) {}
  ~Using() { s.done(); }
  Stmt& s;
};

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw Error(Code::internal, std::string("sqlite: ") + msg);
  }
}

CallRecord read_record(const Stmt& s) {
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
  return r;
}

sqlite3* open_db(const std::string& path, bool fsync_commits) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw Error(Code::unavailable, "cannot open the store " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 10000);
  try {
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db, fsync_commits ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    // A backlog's working set (due index, recent rows) stays in memory.
    exec(db, "PRAGMA cache_size=-65536");
    exec(db, "PRAGMA temp_store=MEMORY");
  } catch (...) {
    sqlite3_close(db);
    throw;
  }
  return db;
}

int user_version(sqlite3* db) {
  Stmt s(db, "PRAGMA user_version");
  Using u(s);
  return s.step() ? static_cast<int>(s.i64(0)) : 0;
}

void migrate(sqlite3* db, const std::string& path) {
  exec(db, "BEGIN IMMEDIATE");
  try {
    const int have = user_version(db);
    if (have > kSchemaVersion) {
      throw Error(Code::failed_precondition,
                  path + " has store schema version " + std::to_string(have) +
                      ", newer than this build knows (" + std::to_string(kSchemaVersion) +
                      "); run a newer dispatchd");
    }
    for (int v = have; v < kSchemaVersion; ++v) exec(db, kMigrations[v]);
    exec(db, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const SqliteOptions& options) : options_(options) {
    if (options.exclusive_owner) {
      const std::string lock_path = options.path + "-owner";
      lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (lock_fd_ < 0) {
        throw Error(Code::unavailable, "cannot create the lock file " + lock_path);
      }
      if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd_);
        throw Error(Code::failed_precondition,
                    "another scheduler already owns " + options.path + " (lock " + lock_path + ")");
      }
    }
    try {
      writer_db_ = open_db(options.path, options.fsync_commits);
      migrate(writer_db_, options.path);
      reader_db_ = open_db(options.path, options.fsync_commits);
      prepare();
      if (options.fsync_commits && options.sync_thread && open_wal_for_sync()) {
        exec(writer_db_, "PRAGMA synchronous=NORMAL");
        background_sync_ = true;
      }
    } catch (...) {
      close_all();
      throw;
    }
    std::random_device rd;
    rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
    // Named, so that top and perf show where the store's time goes.
    if (background_sync_) {
      syncer_ = std::thread([this] {
        detail::name_this_thread("store-sync");
        sync_loop();
      });
    }
    writer_ = std::thread([this] {
      detail::name_this_thread("store-writer");
      write_loop();
    });
  }

  ~SqliteStore() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    // The writer has handed over its last writes; the syncer reports them.
    {
      std::lock_guard<std::mutex> lock(sync_mu_);
      sync_stopping_ = true;
    }
    sync_cv_.notify_all();
    if (syncer_.joinable()) syncer_.join();
    // Statements before connections.
    w_ = {};
    close_all();
  }

  void enqueue(std::vector<NewCall> calls, int64_t now_ms,
               Done<std::vector<std::string>> done) override {
    submit<std::vector<std::string>>(
        std::move(done), [this, calls = std::move(calls), now_ms] { return do_enqueue(calls, now_ms); },
        Mode{/*synced=*/true, /*self_contained=*/true});
  }

  void claim(ClaimOptions options, Done<std::vector<CallRecord>> done) override {
    submit<std::vector<CallRecord>>(
        std::move(done), [this, options = std::move(options)] { return do_claim(options); },
        Mode{/*synced=*/false, /*self_contained=*/false});
  }

  void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms,
              Done<bool> done) override {
    submit<bool>(std::move(done), [this, id = std::move(id), lease, outcome = std::move(outcome), now_ms] {
      Stmt& s = w_.finish;
      Using u(s);
      s.bind(1, static_cast<int64_t>(outcome.state)).bind(2, static_cast<int64_t>(outcome.status));
      s.bind(3, outcome.output_type_url).bind_blob(4, outcome.output);
      s.bind(5, outcome.error_type).bind(6, outcome.error_message);
      s.bind(7, outcome.next_attempt_at_ms).bind(8, now_ms).bind(9, id);
      s.bind(10, static_cast<int64_t>(lease));
      s.step();
      return sqlite3_changes(writer_db_) == 1;
    }, Mode{/*synced=*/false, /*self_contained=*/true, /*may_wait=*/true});
  }

  void cancel(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    submit<CallRecord>(std::move(done), [this, id = std::move(id), now_ms] {
      return transition(w_.cancel, id, now_ms, "cancel", "it is already");
    }, Mode{/*synced=*/true, /*self_contained=*/false});
  }

  void retry(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    submit<CallRecord>(std::move(done), [this, id = std::move(id), now_ms] {
      return transition(w_.retry, id, now_ms, "retry",
                         "only failed or cancelled calls can be retried; it is");
    }, Mode{/*synced=*/true, /*self_contained=*/false});
  }

  void release_leases(int64_t now_ms, bool all, Done<std::size_t> done) override {
    submit<std::size_t>(std::move(done), [this, now_ms, all] {
      Stmt& s = w_.release;
      Using u(s);
      s.bind(1, all ? INT64_MAX : now_ms);
      s.step();
      return static_cast<std::size_t>(sqlite3_changes(writer_db_));
    }, Mode{/*synced=*/false, /*self_contained=*/true});
  }

  Result<std::optional<CallRecord>> get(std::string_view id) override {
    return read([&]() -> std::optional<CallRecord> {
      Stmt& s = r_.get;
      Using u(s);
      s.bind(1, id);
      if (!s.step()) return std::nullopt;
      return read_record(s);
    });
  }

  Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                       std::string_view after_id) override {
    return read([&] {
      int64_t after = 0;
      if (!after_id.empty()) {
        Stmt& s = r_.seq_of;
        Using u(s);
        s.bind(1, after_id);
        if (!s.step()) throw Error(Code::not_found, "no call has ID " + std::string(after_id));
        after = s.i64(0);
      }
      const int st = state ? static_cast<int>(*state) : 0;
      if (state && (st < 1 || st >= kStates)) {
        throw Error(Code::invalid_argument, "no call state numbered " + std::to_string(st));
      }
      Stmt& s = state ? r_.list_state[st] : r_.list_all;
      Using u(s);
      s.bind(1, after).bind(2, static_cast<int64_t>(limit));
      std::vector<CallRecord> out;
      while (s.step()) out.push_back(read_record(s));
      return out;
    });
  }

  Result<std::optional<int64_t>> next_due_ms() override {
    return read([&]() -> std::optional<int64_t> {
      Stmt& s = r_.next_due;
      Using u(s);
      std::optional<int64_t> out;
      if (s.step() && !s.is_null(0)) out = s.i64(0);
      return out;
    });
  }

  Stats stats() const override { return Stats{writes_.load(), commits_.load(), log_syncs_.load()}; }

  Result<std::vector<int64_t>> count_by_state() override {
    return read([&] {
      // One read transaction: every count from the same snapshot.
      if (!r_.begin.run()) throw db_error(reader_db_, "starting a read");
      struct End {
        ~End() { if (!r.commit.run()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); }
        ReadStmts& r;
        sqlite3* db;
      } end{r_, reader_db_};
      auto count = [](Stmt& s) {
        Using u(s);
        return s.step() ? s.i64(0) : 0;
      };
      std::vector<int64_t> out(kStates, 0);
      int64_t rest = count(r_.count_all);
      for (int st = 1; st < kStates; ++st) {
        if (st == static_cast<int>(CallState::completed)) continue;
        out[static_cast<std::size_t>(st)] = count(r_.count_state[st]);
        rest -= out[static_cast<std::size_t>(st)];
      }
      out[static_cast<std::size_t>(CallState::completed)] = rest;
      return out;
    });
  }

 private:
  struct WriteStmts {
    Stmt insert, find_key, next_key, due, lease, get_seq, finish, cancel, retry, get, release;
    // Prepared once: the writer runs three per write.
    Stmt begin, commit, savepoint, rollback_to, release_savepoint;
  };
  static constexpr int kStates = 6;  // CallState values, 0 unused
  // The partial index holding calls in `state`; none for completed.
  static std::string state_index(int state) {
    switch (static_cast<CallState>(state)) {
      case CallState::pending: return "calls_pending_seq";
      case CallState::running: return "calls_running_seq";
      case CallState::failed: return "calls_failed_seq";
      case CallState::cancelled: return "calls_cancelled_seq";
      case CallState::completed: break;
    }
    return "";
  }
  struct ReadStmts {
    Stmt get, seq_of, list_all, next_due, count_all, begin, commit;
    Stmt list_state[kStates];
    Stmt count_state[kStates];  // none for completed: the total less the others
  };
  // How a write is run and reported.
  struct Mode {
    // Must be on disk before it is reported (fsync_commits): what a client
    // is told (enqueue, cancel, retry). Leases and outcomes need not: if a
    // power cut loses them, the call is delivered again (at least once),
    // and a later synced commit makes them durable with it (WAL order).
    bool synced = true;
    // The body is one statement, or keeps its own savepoint: when it fails
    // it leaves no partial change, so it runs without a savepoint of its
    // own (two statements less per write; outcomes are one per call).
    bool self_contained = false;
    // An outcome: nobody waits on it but the scheduler's in-flight count,
    // so it may wait up to SqliteOptions::outcome_hold for other writes to
    // share its commit (see write_loop).
    bool may_wait = false;
  };
  // One queued write. Its body runs on the writer thread inside the batch's
  // transaction; the result waits in the op until it may be reported. One
  // allocation per write: the queues move pointers.
  class Op {
   public:
    explicit Op(Mode mode) : mode(mode) {}
    virtual ~Op() = default;
    // Runs the body and keeps its result; false when it failed.
    virtual bool run() = 0;
    // Replaces the kept result by `error` (the commit or the sync failed).
    virtual void fail(const Error& error) = 0;
    // Hands the kept result to the caller.
    virtual void report() = 0;
    const Mode mode;
  };
  template <typename T, typename Body>
  class WriteOp final : public Op {
   public:
    WriteOp(Mode mode, Body body, Done<T> done)
        : Op(mode), body_(std::move(body)), done_(std::move(done)) {}
    bool run() override {
      try {
        result_.emplace(body_());
        return true;
      } catch (const Error& e) {
        result_.emplace(e);
      } catch (...) {
        result_.emplace(error_from_current_exception());
      }
      return false;
    }
    void fail(const Error& error) override { result_.emplace(error); }
    void report() override { done_(std::move(*result_)); }

   private:
    Body body_;
    Done<T> done_;
    std::optional<Result<T>> result_;
  };
  using OpPtr = std::unique_ptr<Op>;

  void prepare() {
    const std::string cols = kColumns;
    w_.insert = Stmt(writer_db_,
                     "INSERT INTO calls (id, function, endpoint, input_type, input, state, "
                     "next_attempt_at, expiration_at, idempotency_key, tenant, fair_key, parent_id, "
                     "root_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9, "
                     "?10, ?11, ?12, ?6, ?6)");
    w_.find_key = Stmt(writer_db_, "SELECT id FROM calls WHERE idempotency_key = ?1");
    // INDEXED BY: a statement that cannot use its partial index fails to
    // prepare instead of silently scanning the table.
    w_.next_key = Stmt(writer_db_,
                       "SELECT fair_key FROM calls INDEXED BY calls_pending WHERE state = 1 AND "
                       "fair_key > ?1 ORDER BY fair_key LIMIT 1");
    w_.due = Stmt(writer_db_,
                  "SELECT seq, endpoint FROM calls INDEXED BY calls_pending WHERE state = 1 AND "
                  "fair_key = ?1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, seq LIMIT ?3");
    // Then read by seq: UPDATE ... RETURNING would do both in one
    // statement, but SQLite gathers RETURNING rows in a temporary table
    // (allocations on every lease), which cost more than the second lookup
    // of a row whose page is at hand.
    w_.lease = Stmt(writer_db_,
                    "UPDATE calls SET state = 2, attempts = attempts + 1, lease = ?1, "
                    "lease_until = ?2, updated_at = ?3 WHERE seq = ?4");
    w_.get_seq = Stmt(writer_db_, "SELECT " + cols + " FROM calls WHERE seq = ?1");
    w_.finish = Stmt(writer_db_,
                     "UPDATE calls SET state = ?1, status = ?2, output_type = ?3, output = ?4, "
                     "error_type = ?5, error_message = ?6, next_attempt_at = ?7, lease = 0, "
                     "lease_until = 0, updated_at = ?8 WHERE id = ?9 AND state = 2 AND lease = ?10");
    w_.cancel = Stmt(writer_db_,
                     "UPDATE calls SET state = 5, lease = 0, lease_until = 0, updated_at = ?2 "
                     "WHERE id = ?1 AND state IN (1, 2)");
    w_.retry = Stmt(writer_db_,
                    "UPDATE calls SET state = 1, attempts = 0, next_attempt_at = ?2, status = 0, "
                    "error_type = '', error_message = '', updated_at = ?2 "
                    "WHERE id = ?1 AND state IN (4, 5)");
    w_.get = Stmt(writer_db_, "SELECT " + cols + " FROM calls WHERE id = ?1");
    w_.begin = Stmt(writer_db_, "BEGIN IMMEDIATE");
    w_.commit = Stmt(writer_db_, "COMMIT");
    w_.savepoint = Stmt(writer_db_, "SAVEPOINT op");
    w_.rollback_to = Stmt(writer_db_, "ROLLBACK TO op");
    w_.release_savepoint = Stmt(writer_db_, "RELEASE op");
    w_.release = Stmt(writer_db_,
                      "UPDATE calls INDEXED BY calls_running_seq SET state = 1, lease = 0, "
                      "lease_until = 0 WHERE state = 2 AND lease_until <= ?1");
    r_.get = Stmt(reader_db_, "SELECT " + cols + " FROM calls WHERE id = ?1");
    r_.seq_of = Stmt(reader_db_, "SELECT seq FROM calls WHERE id = ?1");
    r_.list_all = Stmt(reader_db_, "SELECT " + cols +
                                       " FROM calls WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    // One statement per state: a partial index serves a query only when
    // the query names its state as a constant. Completed calls have no
    // index; they are most of the table, so the scan in creation order
    // finds them at once.
    for (int state = 1; state < kStates; ++state) {
      const std::string index = state_index(state);
      const std::string from = index.empty() ? " FROM calls NOT INDEXED" : " FROM calls INDEXED BY " + index;
      const std::string where = " WHERE state = " + std::to_string(state);
      r_.list_state[state] =
          Stmt(reader_db_, "SELECT " + cols + from + where + " AND seq > ?1 ORDER BY seq LIMIT ?2");
      if (!index.empty()) r_.count_state[state] = Stmt(reader_db_, "SELECT COUNT(*)" + from + where);
    }
    r_.count_all = Stmt(reader_db_, "SELECT COUNT(*) FROM calls");
    r_.begin = Stmt(reader_db_, "BEGIN");
    r_.commit = Stmt(reader_db_, "COMMIT");
    // The earliest due time per fairness key, keys visited by skipping
    // through the index: one probe per key instead of a pass over every
    // pending call (the delivery loop asks before each sleep).
    r_.next_due = Stmt(reader_db_, R"sql(
WITH RECURSIVE k(key) AS (
  SELECT MIN(fair_key) FROM calls INDEXED BY calls_pending WHERE state = 1
  UNION ALL
  SELECT (SELECT MIN(fair_key) FROM calls INDEXED BY calls_pending WHERE state = 1 AND fair_key > k.key)
  FROM k WHERE k.key IS NOT NULL)
SELECT MIN((SELECT MIN(next_attempt_at) FROM calls INDEXED BY calls_pending
            WHERE state = 1 AND fair_key = k.key))
FROM k WHERE k.key IS NOT NULL)sql");
  }

  void close_all() {
    r_ = {};
    if (reader_db_) sqlite3_close(reader_db_);
    if (writer_db_) sqlite3_close(writer_db_);
    reader_db_ = writer_db_ = nullptr;
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
    if (wal_fd_ >= 0) ::close(wal_fd_);
    wal_fd_ = -1;
  }

  // Opens "<path>-wal" for the sync thread and makes its directory entry
  // durable (SQLite does that itself only when it syncs the log). False:
  // it cannot be reached, so commits sync themselves (synchronous=FULL).
  bool open_wal_for_sync() {
    wal_path_ = options_.path + "-wal";
    wal_fd_ = ::open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (wal_fd_ < 0) return false;
    if (!fstat_matches_path() || ::fdatasync(wal_fd_) != 0 || !sync_directory()) {
      ::close(wal_fd_);
      wal_fd_ = -1;
      return false;
    }
    return true;
  }

  bool fstat_matches_path() const {
    struct stat by_fd {}, by_path {};
    return ::fstat(wal_fd_, &by_fd) == 0 && ::stat(wal_path_.c_str(), &by_path) == 0 &&
           by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev;
  }

  bool sync_directory() const {
    std::string dir = std::filesystem::path(wal_path_).parent_path().string();
    if (dir.empty()) dir = ".";
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
  }

  // fdatasync of the log; reopens it first should SQLite have replaced the
  // file (it does not while a connection is open, but a stale descriptor
  // would sync nothing).
  Result<void> sync_wal() {
    if (!fstat_matches_path()) {
      const int fd = ::open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        return Error(Code::unavailable, "cannot reopen " + wal_path_ + " to sync it: " + std::strerror(errno));
      }
      ::close(wal_fd_);
      wal_fd_ = fd;
      if (!sync_directory()) {
        return Error(Code::unavailable, "cannot sync the directory of " + wal_path_);
      }
    }
    const int err = options_.sync_log ? options_.sync_log(wal_fd_) : (::fdatasync(wal_fd_) == 0 ? 0 : errno);
    log_syncs_ += 1;
    if (err != 0) {
      return Error(Code::unavailable, "syncing " + wal_path_ + " failed (" + std::strerror(err) +
                                          "); the write was committed but may not survive a power loss");
    }
    return {};
  }

  // Reports synced writes once a fdatasync that began after their commit
  // has returned: every write handed over while one sync runs waits for the
  // next, so each sync covers as many commits as arrived meanwhile.
  void sync_loop() {
    std::vector<OpPtr> ready;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(sync_mu_);
        sync_cv_.wait(lock, [&] { return sync_stopping_ || !sync_queue_.empty(); });
        if (sync_queue_.empty() && sync_stopping_) return;
        ready.swap(sync_queue_);
      }
      auto synced = sync_wal();
      for (OpPtr& op : ready) {
        if (!synced.ok()) op->fail(synced.error());
        op->report();
      }
      ready.clear();
    }
  }

  template <typename F>
  auto read(F&& f) -> Result<decltype(f())> {
    std::lock_guard<std::mutex> lock(read_mu_);
    try {
      return f();
    } catch (const Error& e) {
      return e;
    }
  }

  // Queues a write; `body` runs on the writer thread inside the batch's
  // transaction and either returns a value or throws dispatch::Error.
  template <typename T, typename Body>
  void submit(Done<T> done, Body body, Mode mode) {
    OpPtr op = std::make_unique<WriteOp<T, Body>>(mode, std::move(body), std::move(done));
    bool wake = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) first_queued_at_ = std::chrono::steady_clock::now();
      if (!mode.may_wait) {
        urgent_queued_ = true;
      } else if (holding_) {
        // The writer is holding outcomes: wake it only when enough wait.
        wake = queue_.size() + 1 >= kHoldMax;
      }
      queue_.push_back(std::move(op));
    }
    if (wake) cv_.notify_one();
  }

  void write_loop() {
    std::vector<OpPtr> batch;
    std::vector<OpPtr> to_sync;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        // Only outcomes queued: let them wait (up to outcome_hold after the
        // first) for a lease or an enqueue to share the commit. A commit
        // costs about as much as the rows it writes: the pages at the end
        // of the table and its indexes are written to the log again by
        // every commit, so outcomes committed one or two at a time cost
        // the writer several times what they cost in company.
        if (!urgent_queued_ && !stopping_ && queue_.size() < kHoldMax &&
            options_.outcome_hold.count() > 0) {
          holding_ = true;
          cv_.wait_until(lock, first_queued_at_ + options_.outcome_hold, [&] {
            return stopping_ || urgent_queued_ || queue_.size() >= kHoldMax;
          });
          holding_ = false;
        }
        if (queue_.size() <= options_.max_batch) {
          batch.swap(queue_);
        } else {
          const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(options_.max_batch);
          std::move(queue_.begin(), end, std::back_inserter(batch));
          queue_.erase(queue_.begin(), end);
        }
        // What is left over (more than max_batch queued) goes next, unheld.
        urgent_queued_ = !queue_.empty();
      }
      if (background_sync_) {
        // One commit for all; the sync thread makes it durable.
        const bool committed = run_batch(batch);
        for (OpPtr& op : batch) {
          if (op->mode.synced && committed) {
            to_sync.push_back(std::move(op));
          } else {
            op->report();
          }
        }
        batch.clear();
        if (!to_sync.empty()) {
          {
            std::lock_guard<std::mutex> lock(sync_mu_);
            for (OpPtr& op : to_sync) sync_queue_.push_back(std::move(op));
          }
          to_sync.clear();
          sync_cv_.notify_one();
        }
        continue;
      }
      // Without the sync thread: leases and outcomes first, in their own
      // unsynced commit, so that a delivery never waits behind another
      // request's fsync; then the writes that must be on disk. (Writes
      // queued together are concurrent: either order is a valid one.)
      std::vector<OpPtr> synced;
      std::vector<OpPtr> unsynced;
      for (OpPtr& op : batch) (op->mode.synced ? synced : unsynced).push_back(std::move(op));
      batch.clear();
      for (std::vector<OpPtr>* part : {&unsynced, &synced}) {
        if (part->empty()) continue;
        run_batch(*part);
        for (OpPtr& op : *part) op->report();
      }
    }
  }

  // True when the batch committed (each op's own failure aside).
  bool run_batch(std::vector<OpPtr>& batch) {
    // synchronous=FULL costs an fsync per commit; a batch of leases and
    // outcomes only commits without one (see Mode::synced). Set outside the
    // transaction, where SQLite reads it. (With the sync thread, commits
    // are always NORMAL.)
    if (options_.fsync_commits && !background_sync_) {
      bool synced = false;
      for (const OpPtr& op : batch) synced = synced || op->mode.synced;
      if (synced != commit_synced_ &&
          sqlite3_exec(writer_db_, synced ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                       nullptr, nullptr, nullptr) == SQLITE_OK) {
        commit_synced_ = synced;
      }
    }
    const Error lost(Code::unavailable, "the store could not commit; the write was not kept");
    if (!w_.begin.run()) {
      for (OpPtr& op : batch) op->fail(lost);
      return false;
    }
    bool ok = true;
    for (OpPtr& op : batch) {
      if (op->mode.self_contained) {
        // A failed statement undoes itself; some errors (I/O, full disk)
        // roll back the whole transaction, and then every write with it.
        ok = op->run() || !sqlite3_get_autocommit(writer_db_);
      } else {
        // A savepoint per write: a failing write rolls back alone.
        ok = w_.savepoint.run();
        if (!ok) break;
        if (!op->run()) w_.rollback_to.run();
        ok = w_.release_savepoint.run();
      }
      if (!ok) break;
    }
    if (!ok || !w_.commit.run()) {
      sqlite3_exec(writer_db_, "ROLLBACK", nullptr, nullptr, nullptr);
      for (OpPtr& op : batch) op->fail(lost);
      return false;
    }
    writes_ += batch.size();
    commits_ += 1;
    return true;
  }

  // 32 hex digits: the creation time in milliseconds (48 bits, most
  // significant first), then 80 random bits, as UUIDv7 does. Time-ordered
  // IDs land at the end of the ID index, so a batch of inserts dirties a
  // page or two of it instead of one random page per call (which made each
  // commit write about 4 KiB of log per call).
  std::string new_id(int64_t now_ms) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id(32, '0');
    const uint64_t t = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0));
    for (int i = 0; i < 12; ++i) id[i] = kHex[(t >> ((11 - i) * 4)) & 15];
    uint64_t a = rng_(), b = rng_();
    for (int i = 0; i < 16; ++i) id[12 + i] = kHex[(a >> (i * 4)) & 15];
    for (int i = 0; i < 4; ++i) id[28 + i] = kHex[(b >> (i * 4)) & 15];
    return id;
  }

  std::vector<std::string> do_enqueue(const std::vector<NewCall>& calls, int64_t now_ms) {
    if (calls.empty()) throw Error(Code::invalid_argument, "no calls to enqueue");
    // A savepoint makes the batch all-or-nothing inside the shared
    // transaction.
    if (!w_.savepoint.run()) throw db_error(writer_db_, "starting an enqueue");
    try {
      std::vector<std::string> ids;
      ids.reserve(calls.size());
      for (const NewCall& c : calls) {
        if (!c.idempotency_key.empty()) {
          Stmt& f = w_.find_key;
          Using u(f);
          f.bind(1, c.idempotency_key);
          if (f.step()) {
            ids.push_back(f.text(0));
            continue;
          }
        }
        std::string id = new_id(now_ms);
        Stmt& s = w_.insert;
        Using u(s);
        s.bind(1, id).bind(2, c.function).bind(3, c.endpoint).bind(4, c.input_type_url);
        s.bind_blob(5, c.input).bind(6, now_ms).bind(7, c.expiration_at_ms);
        if (c.idempotency_key.empty()) s.bind_null(8); else s.bind(8, c.idempotency_key);
        s.bind(9, c.tenant).bind(10, c.tenant.empty() ? c.function : c.tenant);
        s.bind(11, c.parent_id).bind(12, c.root_id.empty() ? id : c.root_id);
        s.step();
        ids.push_back(std::move(id));
      }
      if (!w_.release_savepoint.run()) throw db_error(writer_db_, "ending an enqueue");
      return ids;
    } catch (...) {
      w_.rollback_to.run();
      w_.release_savepoint.run();
      throw;
    }
  }

  std::vector<CallRecord> do_claim(const ClaimOptions& o) {
    // Backlogged fairness keys, in key order: one index probe each.
    std::vector<std::string> keys;
    {
      std::string after;
      Stmt& s = w_.next_key;
      for (;;) {
        Using u(s);
        s.bind(1, after);
        if (!s.step()) break;
        after = s.text(0);
        keys.push_back(after);
      }
    }
    // Rotate the starting key between claims so that leftovers of an uneven
    // division do not always go to the same keys.
    if (!keys.empty()) {
      std::rotate(keys.begin(), keys.begin() + static_cast<long>(claim_round_++ % keys.size()),
                  keys.end());
    }
    std::vector<std::vector<int64_t>> per_key;  // seqs of due calls
    if (!keys.empty() && o.max > 0) {
      // Each key may fill what the others leave: the round-robin below
      // stops at max.
      const std::size_t quota = std::min(o.per_key_max, o.max);
      for (const std::string& key : keys) {
        Stmt& s = w_.due;
        Using u(s);
        s.bind(1, key).bind(2, o.now_ms).bind(3, static_cast<int64_t>(quota));
        std::vector<int64_t> rows;
        while (s.step()) {
          const std::string endpoint = s.text(1);
          bool skipped = false;
          for (const auto& e : o.skip_endpoints) skipped = skipped || e == endpoint;
          if (!skipped) rows.push_back(s.i64(0));
        }
        per_key.push_back(std::move(rows));
      }
    }
    // Interleave keys round-robin, up to max, and lease.
    std::size_t found = 0;
    for (const auto& rows : per_key) found += rows.size();
    std::vector<CallRecord> out;
    out.reserve(std::min(found, o.max));
    const uint64_t lease = rng_() | 1;
    for (std::size_t round = 0; out.size() < o.max; ++round) {
      bool any = false;
      for (auto& rows : per_key) {
        if (round >= rows.size() || out.size() >= o.max) continue;
        any = true;
        {
          Stmt& l = w_.lease;
          Using u(l);
          l.bind(1, static_cast<int64_t>(lease)).bind(2, o.lease_until_ms).bind(3, o.now_ms);
          l.bind(4, rows[round]);
          l.step();
        }
        Stmt& g = w_.get_seq;
        Using u(g);
        g.bind(1, rows[round]);
        if (sqlite3_changes(writer_db_) != 1 || !g.step()) {
          throw Error(Code::internal, "a leased call vanished");
        }
        out.push_back(read_record(g));
      }
      if (!any) break;
    }
    return out;
  }

  CallRecord transition(Stmt& s, const std::string& id, int64_t now_ms, std::string_view verb,
                        std::string_view refusal) {
    {
      Using u(s);
      s.bind(1, id).bind(2, now_ms);
      s.step();
    }
    const bool changed = sqlite3_changes(writer_db_) == 1;
    Stmt& g = w_.get;
    Using u(g);
    g.bind(1, id);
    if (!g.step()) throw Error(Code::not_found, "no call has ID " + id);
    CallRecord r = read_record(g);
    if (!changed) {
      throw Error(Code::failed_precondition, "cannot " + std::string(verb) + " call " + id + ": " +
                                                 std::string(refusal) + " " +
                                                 std::string(state_name(r.state)));
    }
    return r;
  }

  SqliteOptions options_;
  int lock_fd_ = -1;
  sqlite3* writer_db_ = nullptr;
  sqlite3* reader_db_ = nullptr;
  WriteStmts w_;
  ReadStmts r_;
  std::mutex read_mu_;
  std::mt19937_64 rng_;
  uint64_t claim_round_ = 0;
  bool commit_synced_ = true;  // the writer connection's current synchronous mode
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> log_syncs_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<OpPtr> queue_;
  bool stopping_ = false;
  // Outcomes held for company (write_loop): at most this many.
  static constexpr std::size_t kHoldMax = 256;
  std::chrono::steady_clock::time_point first_queued_at_;  // of the oldest queued write
  bool urgent_queued_ = false;  // a write that may not wait is queued
  bool holding_ = false;        // the writer is holding outcomes
  std::thread writer_;

  // The sync thread (fsync_commits and the log reachable). wal_fd_ is the
  // sync thread's once it runs.
  bool background_sync_ = false;
  std::string wal_path_;
  int wal_fd_ = -1;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<OpPtr> sync_queue_;  // committed, to report once synced
  bool sync_stopping_ = false;
  std::thread syncer_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options) {
  try {
    return std::unique_ptr<Store>(std::make_unique<SqliteStore>(options));
  } catch (const Error& e) {
    return e;
  }
}

int sqlite_schema_version() noexcept { return kSchemaVersion; }

}  // namespace dispatch::scheduler
