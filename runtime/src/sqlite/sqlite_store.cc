// The SQLite store: the Store operations as SQL on the write connection,
// run by the group commit writer (group_commit.h), made durable by the log
// sync thread (log_sync.h) and read through a second connection
// (reader.h). The schema and its migrations are in schema.cc; the batches
// of delete_ended in retention.cc.
//
// Not for: policy. One scheduler per file (see SqliteOptions::exclusive_owner).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

#include "dispatch/scheduler/entity_store.h"
#include "dispatch/sqlite/sqlite_store.h"
#include "sqlite/entity_store.h"
#include "sqlite/group_commit.h"
#include "sqlite/checkpointer.h"
#include "sqlite/log_sync.h"
#include "sqlite/reader.h"
#include "sqlite/retention.h"
#include "sqlite/schema.h"
#include "sqlite/statement.h"
#include "sqlite/tree.h"

namespace dispatch::scheduler {
namespace {

metrics::Histogram* commit_seconds(const SqliteOptions& o) {
  if (!o.metrics) return nullptr;
  return &o.metrics->histogram("dispatch_store_commit_duration_seconds",
                               "Time one group commit took, from BEGIN to COMMIT, in seconds.",
                               metrics::latency_buckets());
}

metrics::Histogram* commit_writes(const SqliteOptions& o) {
  if (!o.metrics) return nullptr;
  return &o.metrics->histogram("dispatch_store_commit_writes",
                               "Writes (dispatches, leases, outcomes...) folded into one group commit.",
                               metrics::size_buckets());
}

using sqlite::Mode;
using sqlite::Stmt;
using sqlite::Using;

// An exclusive lock on "<path>-owner", held while the store is open.
class OwnerLock {
 public:
  explicit OwnerLock(const SqliteOptions& options) {
    if (!options.exclusive_owner) return;
    const std::string lock_path = options.path + "-owner";
    fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      throw Error(Code::unavailable, "cannot create the lock file " + lock_path + ": " + std::strerror(errno) +
                                         "; the store's directory must exist and be writable");
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw Error(Code::failed_precondition,
                  "another scheduler already owns " + options.path + " (lock " + lock_path +
                      "); stop it first, or give this one a store file of its own");
    }
  }
  ~OwnerLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  OwnerLock(const OwnerLock&) = delete;
  OwnerLock& operator=(const OwnerLock&) = delete;

 private:
  int fd_ = -1;
};

sqlite::Connection open_writer(const SqliteOptions& options) {
  sqlite::Connection db = sqlite::open_connection(options.path, options.fsync_commits);
  sqlite::migrate(db.get(), options.path);
  return db;
}

// The statements of the writes, on the write connection.
struct WriteStmts {
  explicit WriteStmts(sqlite3* db);
  Stmt insert, find_key, next_key, due, due_resumes, lease, get_seq, finish, cancel, retry, get, release;
};

WriteStmts::WriteStmts(sqlite3* db) {
  const std::string cols = sqlite::kCallColumns;
  insert = Stmt(db,
                "INSERT INTO calls (id, function, endpoint, input_type, input, state, "
                "next_attempt_at, expiration_at, idempotency_key, tenant, fair_key, parent_id, "
                "root_id, created_at, updated_at, correlation_id, traceparent, tracestate) VALUES (?1, ?2, "
                "?3, ?4, ?5, 1, ?13, ?7, ?8, ?9, ?10, ?11, ?12, ?6, ?6, ?14, ?15, ?16)");
  find_key = Stmt(db, "SELECT id FROM calls WHERE idempotency_key = ?1");
  // INDEXED BY: a statement that cannot use its partial index fails to
  // prepare instead of silently scanning the table.
  next_key = Stmt(db,
                  "SELECT fair_key FROM calls INDEXED BY calls_pending WHERE state = 1 AND "
                  "fair_key > ?1 ORDER BY fair_key LIMIT 1");
  due = Stmt(db,
             "SELECT seq, endpoint FROM calls INDEXED BY calls_pending WHERE state = 1 AND "
             "fair_key = ?1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, seq LIMIT ?3");
  // Suspended calls that are due: resumes of work in progress, leased
  // before new calls.
  due_resumes = Stmt(db,
                     "SELECT seq, endpoint FROM calls INDEXED BY calls_suspended WHERE state = 6 AND "
                     "next_attempt_at <= ?1 ORDER BY next_attempt_at, seq LIMIT ?2");
  // Then read by seq: UPDATE ... RETURNING would do both in one
  // statement, but SQLite gathers RETURNING rows in a temporary table
  // (allocations on every lease), which cost more than the second lookup
  // of a row whose page is at hand.
  lease = Stmt(db,
               "UPDATE calls SET state = 2, attempts = attempts + 1, lease = ?1, "
               "lease_until = ?2, updated_at = ?3 WHERE seq = ?4");
  get_seq = Stmt(db, "SELECT " + cols + " FROM calls WHERE seq = ?1");
  finish = Stmt(db,
                "UPDATE calls SET state = ?1, status = ?2, output_type = ?3, output = ?4, "
                "error_type = ?5, error_message = ?6, next_attempt_at = ?7, lease = 0, "
                "lease_until = 0, updated_at = ?8 WHERE id = ?9 AND state = 2 AND lease = ?10");
  cancel = Stmt(db,
                "UPDATE calls SET state = 5, lease = 0, lease_until = 0, updated_at = ?2 "
                "WHERE id = ?1 AND state IN (1, 2, 6)");
  // From its input: a poll state it had is forgotten (CallTree).
  retry = Stmt(db,
               "UPDATE calls SET state = 1, attempts = 0, restarts = 0, next_attempt_at = ?2, status = 0, "
               "error_type = '', error_message = '', updated_at = ?2 "
               "WHERE id = ?1 AND state IN (4, 5)");
  get = Stmt(db, "SELECT " + cols + " FROM calls WHERE id = ?1");
  release = Stmt(db,
                 "UPDATE calls INDEXED BY calls_running_seq SET state = 1, lease = 0, "
                 "lease_until = 0 WHERE state = 2 AND lease_until <= ?1");
}

// fsync_commits with the sync thread: commits no longer sync themselves.
std::unique_ptr<sqlite::LogSync> start_log_sync(const SqliteOptions& options, sqlite3* writer) {
  if (!options.fsync_commits || !options.sync_thread) return nullptr;
  auto sync = sqlite::LogSync::open(options.path, options.sync_log);
  if (sync) sqlite::exec(writer, "PRAGMA synchronous=NORMAL");
  return sync;
}

// SqliteOptions::on_delete_commit: counts the rows SQLite deletes from the
// calls table in each transaction, and reports the count as it commits.
class DeleteWatch {
 public:
  DeleteWatch(sqlite3* db, std::function<void(std::size_t)> report) : report_(std::move(report)) {
    if (!report_) return;
    sqlite3_update_hook(db, &DeleteWatch::on_change, this);
    sqlite3_commit_hook(db, &DeleteWatch::on_commit, this);
    sqlite3_rollback_hook(db, &DeleteWatch::on_rollback, this);
  }
  DeleteWatch(const DeleteWatch&) = delete;  // SQLite holds its address
  DeleteWatch& operator=(const DeleteWatch&) = delete;

 private:
  static void on_change(void* self, int op, const char*, const char* table, sqlite3_int64) {
    if (op == SQLITE_DELETE && std::strcmp(table, "calls") == 0) static_cast<DeleteWatch*>(self)->count_++;
  }
  static int on_commit(void* self) {
    auto* w = static_cast<DeleteWatch*>(self);
    if (w->count_ > 0) w->report_(w->count_);
    w->count_ = 0;
    return 0;  // go on committing
  }
  static void on_rollback(void* self) { static_cast<DeleteWatch*>(self)->count_ = 0; }

  std::function<void(std::size_t)> report_;
  std::size_t count_ = 0;
};

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const SqliteOptions& options)
      : options_(options),
        lock_(options),
        writer_db_(open_writer(options)),
        reader_(options.path, options.fsync_commits),
        w_(writer_db_.get()),
        retention_(writer_db_.get()),
        tree_(writer_db_.get()),
        delete_watch_(writer_db_.get(), options.on_delete_commit),
        log_sync_(start_log_sync(options, writer_db_.get())),
        checkpointer_(writer_db_.get(), options.path, options.fsync_commits),
        rng_(random_seed()),
        writer_(writer_db_.get(),
                sqlite::GroupCommitOptions{options.fsync_commits, options.max_batch, options.outcome_hold,
                                           commit_seconds(options), commit_writes(options)},
                log_sync_.get()) {
    // On the same writer: a reply's state, messages and egress share
    // commits (and syncs) with the calls.
    entities_ = sqlite::open_entity_store(writer_db_.get(), writer_, options.path, options.fsync_commits);
  }

  ~SqliteStore() override {
    // The writer commits what is queued and hands its last synced writes
    // to the sync thread, which reports them. Then the members go in
    // reverse order: statements before connections.
    writer_.stop();
    if (log_sync_) log_sync_->stop();
  }

  void enqueue(std::vector<NewCall> calls, int64_t now_ms,
               Done<std::vector<std::string>> done) override {
    writer_.submit<std::vector<std::string>>(
        std::move(done), [this, calls = std::move(calls), now_ms] { return do_enqueue(calls, now_ms); },
        Mode{/*synced=*/true, /*self_contained=*/true});
  }

  void claim(ClaimOptions options, Done<std::vector<CallRecord>> done) override {
    writer_.submit<std::vector<CallRecord>>(
        std::move(done), [this, options = std::move(options)] { return do_claim(options); },
        Mode{/*synced=*/false, /*self_contained=*/false});
  }

  void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms,
              Done<bool> done) override {
    // Most calls neither have a parent nor make calls: one statement.
    const bool plain = !outcome.poll && !outcome.tail_call && !outcome.restart && outcome.consumed.empty() &&
                       outcome.parent_id.empty() && !outcome.had_outstanding && !outcome.polled;
    if (!plain) {
      writer_.submit<bool>(std::move(done), [this, id = std::move(id), lease, outcome = std::move(outcome), now_ms] {
        return finish_in_tree(id, lease, outcome, now_ms);
      }, Mode{/*synced=*/false, /*self_contained=*/false, /*may_wait=*/true});
      return;
    }
    writer_.submit<bool>(std::move(done), [this, id = std::move(id), lease, outcome = std::move(outcome), now_ms] {
      return update_outcome(id, lease, outcome, now_ms);
    }, Mode{/*synced=*/false, /*self_contained=*/true, /*may_wait=*/true});
  }

  void cancel(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    writer_.submit<CallRecord>(std::move(done), [this, id = std::move(id), now_ms] {
      CallRecord r = transition(w_.cancel, id, now_ms, "cancel", "it is already");
      tree_.cancel_descendants(id, now_ms, "cancelled with " + id + ", which was cancelled");
      tree_.drop_results(id);
      if (!r.parent_id.empty()) {
        ChildResult result;
        result.correlation_id = r.correlation_id;
        result.dispatch_id = r.id;
        result.status = r.status;
        result.error_type = "canceled";
        result.error_message = "call " + r.id + " was cancelled";
        tree_.deliver(r.parent_id, result, now_ms);
      }
      return r;
    }, Mode{/*synced=*/true, /*self_contained=*/false});
  }

  void retry(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    writer_.submit<CallRecord>(std::move(done), [this, id = std::move(id), now_ms] {
      CallRecord r = transition(w_.retry, id, now_ms, "retry",
                                "only failed or cancelled calls can be retried; it is");
      if (r.polled) {
        tree_.forget_poll(id, false);
        tree_.drop_results(id);
        r.polled = false;
        r.poll_state.clear();
        r.poll_state_type_url.clear();
      }
      return r;
    }, Mode{/*synced=*/true, /*self_contained=*/false});
  }

  void release_leases(int64_t now_ms, bool all, Done<std::size_t> done) override {
    writer_.submit<std::size_t>(std::move(done), [this, now_ms, all] {
      Stmt& s = w_.release;
      Using u(s);
      s.bind(1, all ? INT64_MAX : now_ms);
      s.step();
      return static_cast<std::size_t>(sqlite3_changes(writer_db_.get()));
    }, Mode{/*synced=*/false, /*self_contained=*/true});
  }

  Result<std::optional<CallRecord>> get(std::string_view id) override { return reader_.get(id); }

  Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                       std::string_view after_id) override {
    return reader_.list(state, limit, after_id);
  }

  Result<std::vector<CallRecord>> list_children(std::string_view parent_id, std::size_t limit,
                                                std::string_view after_id) override {
    return reader_.list_children(parent_id, limit, after_id);
  }

  Result<std::optional<int64_t>> next_due_ms() override { return reader_.next_due_ms(); }

  Result<std::vector<int64_t>> count_by_state() override { return reader_.count_by_state(); }

  void delete_ended(int64_t ended_before_ms, Done<std::size_t> done) override {
    auto sweep = std::make_shared<Sweep>();
    sweep->ended_before_ms = ended_before_ms;
    sweep->done = std::move(done);
    delete_next_batch(std::move(sweep));
  }

  EntityStore* entities() noexcept override { return entities_.get(); }

  Stats stats() const override {
    return Stats{writer_.writes(), writer_.commits(), log_sync_ ? log_sync_->syncs() : 0, deleted_.load(),
                 checkpointer_.checkpoints(), checkpointer_.log_frames()};
  }

 private:
  // A delete_ended in progress. Each batch is a write of its own, queued
  // once the previous one committed: the writes queued meanwhile share the
  // next commit with it, and none waits for more than one batch.
  struct Sweep {
    int64_t ended_before_ms = 0;
    Done<std::size_t> done;
    int64_t after_seq = 0;
    std::size_t deleted = 0;
  };

  void delete_next_batch(std::shared_ptr<Sweep> sweep) {
    writer_.submit<sqlite::Retention::Batch>(
        [this, sweep](Result<sqlite::Retention::Batch> batch) {
          if (!batch.ok()) {
            sweep->done(std::move(batch).error());
            return;
          }
          sweep->deleted += batch->deleted;
          sweep->after_seq = batch->after_seq;
          deleted_ += batch->deleted;
          // A store that closes reports what it deleted so far; the next
          // sweep goes on from the start.
          if (batch->finished || writer_.stopping()) {
            sweep->done(sweep->deleted);
            return;
          }
          delete_next_batch(sweep);
        },
        [this, sweep] {
          return retention_.delete_batch(sweep->ended_before_ms, sweep->after_seq, options_.delete_batch);
        },
        // Not synced: a deletion a power cut undoes is made again by the
        // next sweep. May wait: nobody waits on one batch, so it may share
        // the commit of the next outcomes or leases.
        Mode{/*synced=*/false, /*self_contained=*/false, /*may_wait=*/true});
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

  // The one statement of a plain outcome; false when the call is not
  // running under `lease` (any more).
  bool update_outcome(const std::string& id, uint64_t lease, const Outcome& outcome, int64_t now_ms) {
    Stmt& s = w_.finish;
    Using u(s);
    s.bind(1, static_cast<int64_t>(outcome.state)).bind(2, static_cast<int64_t>(outcome.status));
    s.bind(3, outcome.output_type_url).bind_blob(4, outcome.output);
    s.bind(5, outcome.error_type).bind(6, outcome.error_message);
    s.bind(7, outcome.next_attempt_at_ms).bind(8, now_ms).bind(9, id);
    s.bind(10, static_cast<int64_t>(lease));
    s.step();
    return sqlite3_changes(writer_db_.get()) == 1;
  }

  // An outcome that touches other calls: results, children, a Poll, a
  // tail call, a restart (Store's contract for finish, in store.h). What
  // it needs of the call as it was leased comes with the outcome
  // (Outcome::leased_as): its first statement checks the lease, and the
  // call is not read again.
  bool finish_in_tree(const std::string& id, uint64_t lease, const Outcome& outcome, int64_t now_ms) {
    if (outcome.poll) {
      // The outcome goes with the Poll, in one write of the row.
      return tree_.suspend(id, lease, outcome, now_ms, [&](const NewCall& child) { insert_call(child, now_ms); });
    }
    if (!update_outcome(id, lease, outcome, now_ms)) return false;
    const bool retried = outcome.state == CallState::pending && !outcome.restart && !outcome.tail_call;
    if (!retried && !outcome.consumed.empty()) tree_.consume(id, outcome.consumed);
    if (retried) return true;
    // It ends, or starts over: what it left unfinished goes.
    if (outcome.had_outstanding) {
      tree_.cancel_descendants(id, now_ms, outcome.tail_call || outcome.restart
                                               ? "cancelled: " + id + " started over (a tail call or a restart)"
                                               : "cancelled: " + id + ", which made this call, has ended");
    }
    if (outcome.polled) tree_.drop_results(id);
    if (outcome.tail_call) {
      tree_.continue_as(id, *outcome.tail_call, now_ms);
      return true;
    }
    if (outcome.restart) {
      tree_.forget_poll(id, true);
      return true;
    }
    if (!outcome.parent_id.empty() && is_final(outcome.state)) {
      ChildResult result;
      result.correlation_id = outcome.correlation_id;
      result.dispatch_id = id;
      result.status = outcome.status;
      result.output_type_url = outcome.output_type_url;
      result.output = outcome.output;
      result.error_type = outcome.error_type;
      result.error_message = outcome.error_message;
      tree_.deliver(outcome.parent_id, result, now_ms);
    }
    return true;
  }

  // Inserts one call (a dispatched one or a child) and returns its ID.
  std::string insert_call(const NewCall& c, int64_t now_ms) {
    std::string id = new_id(now_ms);
    Stmt& s = w_.insert;
    Using u(s);
    s.bind(1, id).bind(2, c.function).bind(3, c.endpoint).bind(4, c.input_type_url);
    s.bind_blob(5, c.input).bind(6, now_ms).bind(7, c.expiration_at_ms);
    if (c.idempotency_key.empty()) s.bind_null(8); else s.bind(8, c.idempotency_key);
    s.bind(9, c.tenant).bind(10, c.tenant.empty() ? c.function : c.tenant);
    s.bind(11, c.parent_id).bind(12, c.root_id.empty() ? id : c.root_id);
    s.bind(13, std::max(now_ms, c.not_before_ms)).bind(14, static_cast<int64_t>(c.correlation_id));
    s.bind(15, c.traceparent).bind(16, c.tracestate);
    s.step();
    return id;
  }

  std::vector<std::string> do_enqueue(const std::vector<NewCall>& calls, int64_t now_ms) {
    if (calls.empty()) throw Error(Code::invalid_argument, "no calls to enqueue");
    // A savepoint makes the batch all-or-nothing inside the shared
    // transaction.
    sqlite::TransactionStmts& txn = writer_.transaction();
    if (!txn.savepoint.run()) throw sqlite::db_error(writer_db_.get(), "starting an enqueue");
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
        ids.push_back(insert_call(c, now_ms));
      }
      if (!txn.release_savepoint.run()) throw sqlite::db_error(writer_db_.get(), "ending an enqueue");
      return ids;
    } catch (...) {
      txn.rollback_to.run();
      txn.release_savepoint.run();
      throw;
    }
  }

  std::vector<CallRecord> do_claim(const ClaimOptions& o) {
    std::vector<CallRecord> out;
    const uint64_t lease = rng_() | 1;
    // Resumes first: suspended calls whose results are in or whose wait is
    // over carry work already under way.
    std::vector<int64_t> resumes;
    if (o.max > 0) {
      Stmt& s = w_.due_resumes;
      Using u(s);
      s.bind(1, o.now_ms).bind(2, static_cast<int64_t>(o.max));
      while (s.step()) {
        const std::string endpoint = s.text(1);
        bool skipped = false;
        for (const auto& e : o.skip_endpoints) skipped = skipped || e == endpoint;
        if (!skipped) resumes.push_back(s.i64(0));
      }
    }
    for (int64_t seq : resumes) out.push_back(lease_row(seq, lease, o));
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
    if (!keys.empty() && o.max > out.size()) {
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
    out.reserve(out.size() + std::min(found, o.max));
    for (std::size_t round = 0; out.size() < o.max; ++round) {
      bool any = false;
      for (auto& rows : per_key) {
        if (round >= rows.size() || out.size() >= o.max) continue;
        any = true;
        out.push_back(lease_row(rows[round], lease, o));
      }
      if (!any) break;
    }
    return out;
  }

  // Leases one due call by its seq and reads it back, with the results
  // waiting for it when it is a resume.
  CallRecord lease_row(int64_t seq, uint64_t lease, const ClaimOptions& o) {
    {
      Stmt& l = w_.lease;
      Using u(l);
      l.bind(1, static_cast<int64_t>(lease)).bind(2, o.lease_until_ms).bind(3, o.now_ms);
      l.bind(4, seq);
      l.step();
    }
    CallRecord r;
    {
      Stmt& g = w_.get_seq;
      Using u(g);
      g.bind(1, seq);
      if (sqlite3_changes(writer_db_.get()) != 1 || !g.step()) {
        throw Error(Code::internal, "a leased call vanished");
      }
      r = sqlite::read_call(g);
    }
    if (r.polled && r.ready > 0) {
      r.results = tree_.results_for(r.id, static_cast<std::size_t>(std::max(1, r.max_results)));
    }
    return r;
  }

  CallRecord transition(Stmt& s, const std::string& id, int64_t now_ms, std::string_view verb,
                        std::string_view refusal) {
    {
      Using u(s);
      s.bind(1, id).bind(2, now_ms);
      s.step();
    }
    const bool changed = sqlite3_changes(writer_db_.get()) == 1;
    Stmt& g = w_.get;
    Using u(g);
    g.bind(1, id);
    if (!g.step()) throw Error(Code::not_found, "no call has ID " + id);
    CallRecord r = sqlite::read_call(g);
    if (!changed) {
      throw Error(Code::failed_precondition, "cannot " + std::string(verb) + " call " + id + ": " +
                                                 std::string(refusal) + " " +
                                                 std::string(state_name(r.state)));
    }
    return r;
  }

  // Members in the order they are made; destroyed in reverse (the writer
  // and the sync thread first, the connections and the lock last).
  const SqliteOptions options_;
  OwnerLock lock_;
  sqlite::Connection writer_db_;
  sqlite::Reader reader_;
  WriteStmts w_;  // the writer thread's once it runs
  sqlite::Retention retention_;  // likewise
  sqlite::CallTree tree_;        // likewise
  DeleteWatch delete_watch_;
  std::atomic<uint64_t> deleted_{0};
  std::unique_ptr<sqlite::LogSync> log_sync_;
  sqlite::Checkpointer checkpointer_;  // goes after the writer stopped
  std::mt19937_64 rng_;       // writer thread
  uint64_t claim_round_ = 0;  // writer thread
  // Made once the writer runs; goes after it stopped (the destructor stops
  // it first) and before the connections.
  std::unique_ptr<EntityStore> entities_;
  sqlite::GroupCommit writer_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options) {
  if (options.delete_batch == 0) {
    return Error(Code::invalid_argument, "SqliteOptions::delete_batch must be at least 1");
  }
  try {
    return std::unique_ptr<Store>(std::make_unique<SqliteStore>(options));
  } catch (const Error& e) {
    return e;
  }
}

}  // namespace dispatch::scheduler
