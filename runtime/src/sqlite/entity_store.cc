// EntityStore on SQLite: each operation as SQL, run by the group-commit
// writer inside its batch's transaction (a savepoint per operation: one that
// fails rolls back alone), reads on a second connection.
#include "sqlite/entity_store.h"

#include <algorithm>
#include <mutex>
#include <random>
#include <set>
#include <string_view>
#include <unordered_map>

#include "sqlite/schema.h"
#include "sqlite/statement.h"

namespace dispatch::scheduler::sqlite {
namespace {

// Rows one sweep deletes per kind at most, so that other writes commit
// between sweeps.
constexpr int64_t kSweepBatch = 1000;

// Entity status (sf_entities.status).
constexpr int64_t kIdle = 0, kReady = 1, kLeased = 2;

// An inbox row as read by the reader connection: its names as text.
constexpr const char* kMessageColumns =
    "seq, ?1, entity_id, (SELECT name FROM sf_names WHERE id = caller_type_id), caller_id, "
    "(SELECT name FROM sf_names WHERE id = type_name_id), has_value, value, created_at";
// The id of the function type bound as ?1 (none when sf_names has not got it).
constexpr const char* kTypeId = "(SELECT id FROM sf_names WHERE name = ?1)";

QueuedMessage read_message(const Stmt& s, int first = 0) {
  QueuedMessage q;
  q.seq = static_cast<uint64_t>(s.i64(first));
  q.message.target.type = s.text(first + 1);
  q.message.target.id = s.text(first + 2);
  q.message.caller.type = s.text(first + 3);
  q.message.caller.id = s.text(first + 4);
  q.message.type_name = s.text(first + 5);
  q.message.has_value = s.i64(first + 6) != 0;
  q.message.value = s.text(first + 7);
  q.created_at_ms = s.i64(first + 8);
  return q;
}

// Function types, caller types, typenames and state names as the ids
// sf_names gives them (schema step 8), cached on the writer thread: a
// message looks its names up in memory, not in the table. The cache may
// hold ids a write added before it was rolled back (which name nothing, or
// another name later): it starts afresh whenever the writer rolled back.
// Typenames come from clients, so the cache also starts afresh when it
// holds kMaxCached names (the table keeps them all).
class Names {
 public:
  static constexpr std::size_t kMaxCached = 4096;

  Names(sqlite3* db, const GroupCommit& writer)
      : find_(db, "SELECT id FROM sf_names WHERE name = ?1"),
        name_(db, "SELECT name FROM sf_names WHERE id = ?1"),
        add_(db, "INSERT INTO sf_names (name) VALUES (?1)"),
        db_(db),
        writer_(writer),
        rollbacks_(writer.rollbacks()) {}

  // The name's id, added to sf_names (in the current write) when new.
  int64_t intern(std::string_view name) {
    if (std::optional<int64_t> id = find(name)) return *id;
    Using u(add_);
    add_.bind(1, name);
    add_.step();
    const int64_t id = sqlite3_last_insert_rowid(db_);
    remember(std::string(name), id);
    return id;
  }

  // The name's id, when sf_names has it.
  std::optional<int64_t> find(std::string_view name) {
    fresh();
    if (auto it = ids_.find(name); it != ids_.end()) return it->second;
    Using u(find_);
    find_.bind(1, name);
    if (!find_.step()) return std::nullopt;
    const int64_t id = find_.i64(0);
    remember(std::string(name), id);
    return id;
  }

  // The name of an id the tables hold. A copy, not a reference into the
  // cache: the next lookup may start the cache afresh (kMaxCached), and a
  // caller often asks for two names before it stores either.
  std::string name(int64_t id) {
    fresh();
    if (auto it = names_.find(id); it != names_.end()) return it->second;
    Using u(name_);
    name_.bind(1, id);
    if (!name_.step()) throw Error(Code::internal, "sf_names has no name with id " + std::to_string(id));
    return remember(name_.text(0), id);
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  void fresh() {
    const uint64_t now = writer_.rollbacks();
    if (now == rollbacks_) return;
    ids_.clear();
    names_.clear();
    rollbacks_ = now;
  }
  const std::string& remember(std::string name, int64_t id) {
    if (ids_.size() >= kMaxCached || names_.size() >= kMaxCached) {
      ids_.clear();
      names_.clear();
    }
    ids_.emplace(name, id);
    return names_.insert_or_assign(id, std::move(name)).first->second;
  }

  Stmt find_, name_, add_;
  sqlite3* const db_;
  const GroupCommit& writer_;
  uint64_t rollbacks_;
  std::unordered_map<std::string, int64_t, Hash, std::equal_to<>> ids_;
  std::unordered_map<int64_t, std::string> names_;
};

struct WriteStmts {
  explicit WriteStmts(sqlite3* db);
  Stmt find_key, insert_key, insert_inbox, wake_entity, get_seq, put_seq;
  Stmt next_type, due, any_due, lease, lease_again, inbox, state, specs, idle;
  Stmt check_lease, delete_state, upsert_state, touch_state, insert_delayed, cancel_delayed, insert_egress;
  Stmt drop_inbox, any_inbox, settle, fail, to_dead_letters, entity_attempts;
  Stmt upsert_spec, due_delayed, drop_delayed, sweep_state, sweep_keys, sweep_egress;
  Stmt release, get_dead_letter, drop_dead_letter, ack;
};

WriteStmts::WriteStmts(sqlite3* db) {
  find_key = Stmt(db, "SELECT message_seq FROM sf_ingress_keys WHERE key = ?1");
  insert_key = Stmt(db, "INSERT INTO sf_ingress_keys (key, message_seq, created_at) VALUES (?1, ?2, ?3)");
  insert_inbox = Stmt(db,
                      "INSERT INTO sf_inbox (fn_type_id, entity_id, caller_type_id, caller_id, type_name_id, "
                      "has_value, value, created_at, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  get_seq = Stmt(db, "SELECT seq FROM sf_sequences WHERE name = 'sf_inbox'");
  put_seq = Stmt(db, "UPDATE sf_sequences SET seq = ?1 WHERE name = 'sf_inbox'");
  // An idle entity becomes ready; a ready or leased one stays as it is
  // (a leased one looks at its inbox again when its reply is applied).
  wake_entity = Stmt(db,
                     "INSERT INTO sf_entities (fn_type_id, entity_id, status, next_attempt_at) "
                     "VALUES (?1, ?2, 1, ?3) ON CONFLICT (fn_type_id, entity_id) DO UPDATE SET status = 1, "
                     "next_attempt_at = ?3, attempts = 0, last_error = '' WHERE status = 0");
  next_type = Stmt(db,
                   "SELECT fn_type_id FROM sf_entities INDEXED BY sf_entities_ready WHERE status = 1 AND "
                   "fn_type_id > ?1 ORDER BY fn_type_id LIMIT 1");
  due = Stmt(db,
             "SELECT entity_id, attempts, last_error FROM sf_entities INDEXED BY sf_entities_ready "
             "WHERE status = 1 AND fn_type_id = ?1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at LIMIT ?3");
  any_due = Stmt(db,
                 "SELECT 1 FROM sf_entities INDEXED BY sf_entities_ready WHERE status = 1 AND fn_type_id = ?1 AND "
                 "next_attempt_at <= ?2 LIMIT 1");
  lease = Stmt(db,
               "UPDATE sf_entities SET status = 2, lease = ?1, lease_until = ?2 WHERE fn_type_id = ?3 AND "
               "entity_id = ?4");
  // A reply's entity leased again for its next batch: its failed attempts
  // went with the batch the reply settled.
  lease_again = Stmt(db,
                     "UPDATE sf_entities SET status = 2, lease = ?1, lease_until = ?2, attempts = 0, "
                     "last_error = '' WHERE fn_type_id = ?3 AND entity_id = ?4");
  inbox = Stmt(db,
               "SELECT seq, caller_type_id, caller_id, type_name_id, has_value, value, created_at FROM sf_inbox "
               "WHERE fn_type_id = ?1 AND entity_id = ?2 ORDER BY seq LIMIT ?3");
  // Expired values are skipped by the caller, not here: a bound time
  // compared with expires_at makes SQLite prepare the statement again
  // whenever the time changes (to see whether sf_state_expiry's
  // "expires_at > 0" applies), which cost the claim more than the query.
  state = Stmt(db,
               "SELECT name_id, type_name_id, value, expires_at FROM sf_state WHERE fn_type_id = ?1 AND "
               "entity_id = ?2");
  specs = Stmt(db, "SELECT name, type_name, mode, ttl_ms FROM sf_specs WHERE fn_type = ?1 ORDER BY name");
  idle = Stmt(db,
              "UPDATE sf_entities SET status = 0, lease = 0, lease_until = 0, attempts = 0, last_error = '' "
              "WHERE fn_type_id = ?1 AND entity_id = ?2");
  check_lease = Stmt(db,
                     "SELECT attempts FROM sf_entities WHERE fn_type_id = ?1 AND entity_id = ?2 AND status = 2 "
                     "AND lease = ?3");
  delete_state = Stmt(db, "DELETE FROM sf_state WHERE fn_type_id = ?1 AND entity_id = ?2 AND name_id = ?3");
  upsert_state = Stmt(db,
                      "INSERT INTO sf_state (fn_type_id, entity_id, name_id, type_name_id, value, expires_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (fn_type_id, entity_id, name_id) DO UPDATE SET "
                      "type_name_id = excluded.type_name_id, value = excluded.value, "
                      "expires_at = excluded.expires_at");
  touch_state = Stmt(db,
                     "UPDATE sf_state SET expires_at = ?4 WHERE fn_type_id = ?1 AND entity_id = ?2 AND "
                     "name_id = ?3");
  insert_delayed = Stmt(db,
                        "INSERT INTO sf_delayed (due_at, fn_type, entity_id, caller_type, caller_id, type_name, "
                        "has_value, value, token, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  cancel_delayed = Stmt(db,
                        "DELETE FROM sf_delayed WHERE caller_type = ?1 AND caller_id = ?2 AND token = ?3 AND "
                        "token <> ''");
  insert_egress = Stmt(db, "INSERT INTO sf_egress (egress, type_name, value, created_at) VALUES (?1, ?2, ?3, ?4)");
  drop_inbox = Stmt(db, "DELETE FROM sf_inbox WHERE fn_type_id = ?1 AND entity_id = ?2 AND seq <= ?3");
  any_inbox = Stmt(db, "SELECT 1 FROM sf_inbox WHERE fn_type_id = ?1 AND entity_id = ?2 LIMIT 1");
  settle = Stmt(db,
                "UPDATE sf_entities SET status = ?3, next_attempt_at = ?4, attempts = 0, lease = 0, "
                "lease_until = 0, last_error = '' WHERE fn_type_id = ?1 AND entity_id = ?2");
  fail = Stmt(db,
              "UPDATE sf_entities SET status = 1, next_attempt_at = ?4, attempts = attempts + 1, lease = 0, "
              "lease_until = 0, last_error = ?5 WHERE fn_type_id = ?1 AND entity_id = ?2 AND status = 2 AND "
              "lease = ?3");
  to_dead_letters = Stmt(db,
                         "INSERT INTO sf_dead_letters (message_seq, fn_type, entity_id, caller_type, caller_id, "
                         "type_name, has_value, value, message_created_at, reason, attempts, created_at) "
                         "SELECT seq, ?7, entity_id, (SELECT name FROM sf_names WHERE id = caller_type_id), "
                         "caller_id, (SELECT name FROM sf_names WHERE id = type_name_id), has_value, value, "
                         "created_at, ?4, ?5, ?6 FROM sf_inbox WHERE fn_type_id = ?1 AND entity_id = ?2 AND "
                         "seq <= ?3 ORDER BY seq");
  upsert_spec = Stmt(db,
                     "INSERT INTO sf_specs (fn_type, name, type_name, mode, ttl_ms) VALUES (?1, ?2, ?3, ?4, ?5) "
                     "ON CONFLICT (fn_type, name) DO UPDATE SET type_name = excluded.type_name, "
                     "mode = excluded.mode, ttl_ms = excluded.ttl_ms");
  due_delayed = Stmt(db,
                     "SELECT seq, fn_type, entity_id, caller_type, caller_id, type_name, has_value, value, "
                     "created_at FROM sf_delayed INDEXED BY sf_delayed_due WHERE due_at <= ?1 "
                     "ORDER BY due_at, seq LIMIT ?2");
  drop_delayed = Stmt(db, "DELETE FROM sf_delayed WHERE seq = ?1");
  sweep_state = Stmt(db,
                     "DELETE FROM sf_state WHERE (fn_type_id, entity_id, name_id) IN (SELECT fn_type_id, "
                     "entity_id, name_id "
                     "FROM sf_state INDEXED BY sf_state_expiry WHERE expires_at > 0 AND expires_at <= ?1 "
                     "LIMIT ?2)");
  sweep_keys = Stmt(db,
                    "DELETE FROM sf_ingress_keys WHERE key IN (SELECT key FROM sf_ingress_keys INDEXED BY "
                    "sf_ingress_keys_created WHERE created_at < ?1 LIMIT ?2)");
  // An egress that an HTTP poster acknowledges (a row in sf_egress_acks)
  // keeps what it has not acknowledged yet.
  sweep_egress = Stmt(db,
                      "DELETE FROM sf_egress WHERE seq IN (SELECT e.seq FROM sf_egress e LEFT JOIN sf_egress_acks "
                      "a ON a.egress = e.egress WHERE e.created_at < ?1 AND (a.seq IS NULL OR e.seq <= a.seq) "
                      "ORDER BY e.seq LIMIT ?2)");
  release = Stmt(db,
                 "UPDATE sf_entities INDEXED BY sf_entities_leased SET status = 1, lease = 0, lease_until = 0, "
                 "next_attempt_at = ?2 WHERE status = 2 AND lease_until <= ?1");
  get_dead_letter = Stmt(db,
                         "SELECT fn_type, entity_id, caller_type, caller_id, type_name, has_value, value FROM "
                         "sf_dead_letters WHERE seq = ?1");
  drop_dead_letter = Stmt(db, "DELETE FROM sf_dead_letters WHERE seq = ?1");
  ack = Stmt(db,
             "INSERT INTO sf_egress_acks (egress, seq) VALUES (?1, ?2) ON CONFLICT (egress) DO UPDATE SET "
             "seq = max(seq, excluded.seq)");
}

// Message seqs handed out by one write operation: the high-water mark is
// read at its first message and written back once, by save(), before the
// operation returns (one read and one write per operation, not per
// message). Not cached across operations: another connection may write
// between them, and an operation that fails rolls its savepoint back.
class Seqs {
 public:
  explicit Seqs(WriteStmts& w) : w_(w) {}
  uint64_t next() {
    if (!loaded_) {
      Using u(w_.get_seq);
      if (!w_.get_seq.step()) throw Error(Code::internal, "the store has no sf_sequences row for sf_inbox");
      last_ = w_.get_seq.i64(0);
      loaded_ = true;
    }
    return static_cast<uint64_t>(++last_);
  }
  void save() {
    if (!loaded_) return;
    Using u(w_.put_seq);
    w_.put_seq.bind(1, last_);
    w_.put_seq.step();
  }

 private:
  WriteStmts& w_;
  bool loaded_ = false;
  int64_t last_ = 0;
};

struct ReadStmts {
  explicit ReadStmts(sqlite3* db);
  Stmt entity, state, backlog, delayed, egress, ack, dead, next_ready, next_delayed, begin, commit;
};

ReadStmts::ReadStmts(sqlite3* db) {
  entity = Stmt(db,
                std::string("SELECT status, attempts, next_attempt_at, last_error FROM sf_entities WHERE "
                            "fn_type_id = ") + kTypeId + " AND entity_id = ?2");
  state = Stmt(db, std::string("SELECT (SELECT name FROM sf_names WHERE id = name_id) AS n, (SELECT name FROM "
                               "sf_names WHERE id = type_name_id), value, expires_at FROM sf_state WHERE "
                               "fn_type_id = ") + kTypeId + " AND entity_id = ?2 ORDER BY n");
  backlog = Stmt(db, std::string("SELECT ") + kMessageColumns +
                         " FROM sf_inbox WHERE fn_type_id = " + kTypeId + " AND entity_id = ?2 ORDER BY seq LIMIT ?3");
  delayed = Stmt(db,
                 "SELECT seq, fn_type, entity_id, caller_type, caller_id, type_name, has_value, value, created_at, "
                 "due_at, token FROM sf_delayed INDEXED BY sf_delayed_target WHERE fn_type = ?1 AND "
                 "entity_id = ?2 ORDER BY due_at, seq LIMIT ?3");
  egress = Stmt(db,
                "SELECT seq, egress, type_name, value, created_at FROM sf_egress INDEXED BY sf_egress_by_name "
                "WHERE egress = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
  ack = Stmt(db, "SELECT seq FROM sf_egress_acks WHERE egress = ?1");
  dead = Stmt(db,
              "SELECT message_seq, fn_type, entity_id, caller_type, caller_id, type_name, has_value, value, "
              "message_created_at, seq, reason, attempts, created_at FROM sf_dead_letters WHERE seq > ?1 "
              "ORDER BY seq LIMIT ?2");
  // The earliest due time per function type, types visited by skipping
  // through the index (one probe each) instead of reading every entry.
  next_ready = Stmt(db, R"sql(
WITH RECURSIVE k(t) AS (
  SELECT MIN(fn_type_id) FROM sf_entities INDEXED BY sf_entities_ready WHERE status = 1
  UNION ALL
  SELECT (SELECT MIN(fn_type_id) FROM sf_entities INDEXED BY sf_entities_ready WHERE status = 1 AND fn_type_id > k.t)
  FROM k WHERE k.t IS NOT NULL)
SELECT MIN((SELECT MIN(next_attempt_at) FROM sf_entities INDEXED BY sf_entities_ready
            WHERE status = 1 AND fn_type_id = k.t))
FROM k WHERE k.t IS NOT NULL)sql");
  next_delayed = Stmt(db, "SELECT MIN(due_at) FROM sf_delayed INDEXED BY sf_delayed_due");
  begin = Stmt(db, "BEGIN");
  commit = Stmt(db, "COMMIT");
}

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

class SqliteEntityStore final : public EntityStore {
 public:
  SqliteEntityStore(sqlite3* writer_db, GroupCommit& writer, const std::string& path, bool fsync_commits)
      : db_(writer_db),
        writer_(writer),
        w_(writer_db),
        names_(writer_db, writer),
        read_db_(open_connection(path, fsync_commits)),
        r_(read_db_.get()),
        rng_(random_seed()) {}

  void send(std::vector<EntityMessage> messages, int64_t now_ms, Done<std::vector<uint64_t>> done) override {
    writer_.submit<std::vector<uint64_t>>(
        std::move(done),
        [this, messages = std::move(messages), now_ms] {
          if (messages.empty()) throw Error(Code::invalid_argument, "no messages to send");
          std::vector<uint64_t> ids;
          ids.reserve(messages.size());
          Seqs seqs(w_);
          for (const EntityMessage& m : messages) {
            if (!m.idempotency_key.empty()) {
              Stmt& f = w_.find_key;
              Using u(f);
              f.bind(1, m.idempotency_key);
              if (f.step()) {
                ids.push_back(static_cast<uint64_t>(f.i64(0)));
                continue;
              }
            }
            const uint64_t seq = queue(seqs, m, now_ms);
            if (!m.idempotency_key.empty()) {
              Stmt& k = w_.insert_key;
              Using u(k);
              k.bind(1, m.idempotency_key).bind(2, static_cast<int64_t>(seq)).bind(3, now_ms);
              k.step();
            }
            ids.push_back(seq);
          }
          seqs.save();
          return ids;
        },
        Mode{/*synced=*/true, /*self_contained=*/false});
  }

  void claim_entities(EntityClaimOptions options, Done<std::vector<EntityBatch>> done) override {
    writer_.submit<std::vector<EntityBatch>>(
        std::move(done), [this, options = std::move(options)] { return do_claim(options); },
        Mode{/*synced=*/false, /*self_contained=*/false});
  }

  void complete(EntityAddress address, uint64_t lease, uint64_t last_seq, BatchResult result, int64_t now_ms,
                Done<bool> done) override {
    writer_.submit<bool>(
        std::move(done),
        [this, address = std::move(address), lease, last_seq, result = std::move(result), now_ms] {
          if (!leased(address, lease)) return false;
          apply(address, result, now_ms);
          drop_batch(address, last_seq, now_ms);
          return true;
        },
        Mode{/*synced=*/false, /*self_contained=*/false, /*may_wait=*/true});
  }

  void complete_and_claim(EntityAddress address, uint64_t lease, uint64_t last_seq, BatchResult result,
                          int64_t now_ms, EntityClaimOptions next, Done<Completion> done) override {
    writer_.submit<Completion>(
        std::move(done),
        [this, address = std::move(address), lease, last_seq, result = std::move(result), now_ms,
         next = std::move(next)] {
          Completion c;
          if (!leased(address, lease)) return c;
          apply(address, result, now_ms);
          c.applied = true;
          if (next.max_messages == 0) {
            drop_batch(address, last_seq, now_ms);
            return c;
          }
          drop_messages(address, last_seq);
          // Whether others wait is asked only when this entity has more
          // (an entity with none goes idle either way).
          const bool more = any_inbox(address);
          if (!more || other_due(address.type, next.now_ms)) {
            settle(address, more, now_ms);
            return c;
          }
          EntityBatch b;
          b.address = address;
          b.lease = rng_() | 1;
          std::vector<std::pair<std::string, std::vector<StateSpec>>> specs_of;
          load_batch(b, next, next.max_messages, specs_of);
          Stmt& s = w_.lease_again;
          Using u(s);
          s.bind(1, static_cast<int64_t>(b.lease)).bind(2, next.lease_until_ms).bind(3, names_.intern(address.type));
          s.bind(4, address.id);
          s.step();
          c.next = std::move(b);
          return c;
        },
        Mode{/*synced=*/false, /*self_contained=*/false, /*may_wait=*/true});
  }

  void fail(EntityAddress address, uint64_t lease, int64_t next_attempt_at_ms, std::string error,
            Done<bool> done) override {
    writer_.submit<bool>(
        std::move(done),
        [this, address = std::move(address), lease, next_attempt_at_ms, error = std::move(error)] {
          const std::optional<int64_t> fn = names_.find(address.type);
          if (!fn) return false;
          Stmt& s = w_.fail;
          Using u(s);
          s.bind(1, *fn).bind(2, address.id).bind(3, static_cast<int64_t>(lease));
          s.bind(4, next_attempt_at_ms).bind(5, error);
          s.step();
          return sqlite3_changes(db_) == 1;
        },
        Mode{/*synced=*/false, /*self_contained=*/true, /*may_wait=*/true});
  }

  void dead_letter(EntityAddress address, uint64_t lease, uint64_t last_seq, std::string reason, int64_t now_ms,
                   Done<bool> done) override {
    writer_.submit<bool>(
        std::move(done),
        [this, address = std::move(address), lease, last_seq, reason = std::move(reason), now_ms] {
          std::optional<int64_t> attempts = leased(address, lease);
          if (!attempts) return false;
          {
            Stmt& s = w_.to_dead_letters;
            Using u(s);
            s.bind(1, names_.intern(address.type)).bind(2, address.id).bind(3, static_cast<int64_t>(last_seq));
            s.bind(4, reason).bind(5, *attempts + 1).bind(6, now_ms).bind(7, address.type);
            s.step();
          }
          drop_batch(address, last_seq, now_ms);
          return true;
        },
        Mode{/*synced=*/false, /*self_contained=*/false});
  }

  void register_specs(std::string function_type, std::vector<StateSpec> specs, Done<bool> done) override {
    writer_.submit<bool>(
        std::move(done),
        [this, function_type = std::move(function_type), specs = std::move(specs)] {
          for (const StateSpec& spec : specs) {
            Stmt& s = w_.upsert_spec;
            Using u(s);
            s.bind(1, function_type).bind(2, spec.name).bind(3, spec.type_name);
            s.bind(4, static_cast<int64_t>(spec.mode)).bind(5, spec.ttl_ms);
            s.step();
          }
          return true;
        },
        Mode{/*synced=*/false, /*self_contained=*/false});
  }

  void fire_delayed(int64_t now_ms, std::size_t max, Done<std::size_t> done) override {
    writer_.submit<std::size_t>(
        std::move(done),
        [this, now_ms, max] {
          std::vector<QueuedMessage> due;
          {
            Stmt& s = w_.due_delayed;
            Using u(s);
            s.bind(1, now_ms).bind(2, static_cast<int64_t>(max));
            while (s.step()) due.push_back(read_message(s));
          }
          Seqs seqs(w_);
          for (const QueuedMessage& d : due) {
            queue(seqs, d.message, now_ms);
            Stmt& s = w_.drop_delayed;
            Using u(s);
            s.bind(1, static_cast<int64_t>(d.seq));
            s.step();
          }
          seqs.save();
          return due.size();
        },
        Mode{/*synced=*/false, /*self_contained=*/false});
  }

  void sweep(int64_t now_ms, int64_t kept_after_ms, Done<EntitySweep> done) override {
    writer_.submit<EntitySweep>(
        std::move(done),
        [this, now_ms, kept_after_ms] {
          EntitySweep swept;
          auto run = [&](Stmt& s, int64_t cutoff) {
            Using u(s);
            s.bind(1, cutoff).bind(2, kSweepBatch);
            s.step();
            return static_cast<std::size_t>(sqlite3_changes(db_));
          };
          swept.state_values = run(w_.sweep_state, now_ms);
          swept.ingress_keys = run(w_.sweep_keys, kept_after_ms);
          swept.egress_records = run(w_.sweep_egress, kept_after_ms);
          return swept;
        },
        Mode{/*synced=*/false, /*self_contained=*/false, /*may_wait=*/true});
  }

  void release_entity_leases(int64_t now_ms, bool all, Done<std::size_t> done) override {
    writer_.submit<std::size_t>(
        std::move(done),
        [this, now_ms, all] {
          Stmt& s = w_.release;
          Using u(s);
          s.bind(1, all ? INT64_MAX : now_ms).bind(2, now_ms);
          s.step();
          return static_cast<std::size_t>(sqlite3_changes(db_));
        },
        Mode{/*synced=*/false, /*self_contained=*/true});
  }

  void redrive(uint64_t dead_letter, int64_t now_ms, Done<uint64_t> done) override {
    writer_.submit<uint64_t>(
        std::move(done),
        [this, dead_letter, now_ms] {
          EntityMessage m;
          {
            Stmt& s = w_.get_dead_letter;
            Using u(s);
            s.bind(1, static_cast<int64_t>(dead_letter));
            if (!s.step()) throw Error(Code::not_found, "no dead letter has id " + std::to_string(dead_letter));
            m.target = {s.text(0), s.text(1)};
            m.caller = {s.text(2), s.text(3)};
            m.type_name = s.text(4);
            m.has_value = s.i64(5) != 0;
            m.value = s.text(6);
          }
          Seqs seqs(w_);
          const uint64_t seq = queue(seqs, m, now_ms);
          seqs.save();
          Stmt& s = w_.drop_dead_letter;
          Using u(s);
          s.bind(1, static_cast<int64_t>(dead_letter));
          s.step();
          return seq;
        },
        Mode{/*synced=*/true, /*self_contained=*/false});
  }

  void ack_egress(std::string egress, uint64_t seq, Done<bool> done) override {
    writer_.submit<bool>(
        std::move(done),
        [this, egress = std::move(egress), seq] {
          Stmt& s = w_.ack;
          Using u(s);
          s.bind(1, egress).bind(2, static_cast<int64_t>(seq));
          s.step();
          return true;
        },
        Mode{/*synced=*/true, /*self_contained=*/true});
  }

  Result<std::optional<EntityView>> entity(const EntityAddress& address, std::size_t limit) override {
    return read([&]() -> std::optional<EntityView> {
      EntityView v;
      v.address = address;
      bool known = false;
      {
        Using u(r_.entity);
        r_.entity.bind(1, address.type).bind(2, address.id);
        if (r_.entity.step()) {
          known = true;
          v.in_flight = r_.entity.i64(0) == kLeased;
          v.attempts = static_cast<uint32_t>(r_.entity.i64(1));
          v.next_attempt_at_ms = r_.entity.i64(0) == kReady ? r_.entity.i64(2) : 0;
          v.last_error = r_.entity.text(3);
        }
      }
      {
        Using u(r_.state);
        r_.state.bind(1, address.type).bind(2, address.id);
        while (r_.state.step()) {
          v.state.push_back({r_.state.text(0), r_.state.text(1), r_.state.text(2), r_.state.i64(3)});
        }
      }
      {
        Using u(r_.backlog);
        r_.backlog.bind(1, address.type).bind(2, address.id).bind(3, static_cast<int64_t>(limit));
        while (r_.backlog.step()) v.backlog.push_back(read_message(r_.backlog));
      }
      {
        Using u(r_.delayed);
        r_.delayed.bind(1, address.type).bind(2, address.id).bind(3, static_cast<int64_t>(limit));
        while (r_.delayed.step()) {
          QueuedMessage q = read_message(r_.delayed);
          DelayedRecord d;
          d.seq = q.seq;
          d.message = std::move(q.message);
          d.due_at_ms = r_.delayed.i64(9);
          d.cancellation_token = r_.delayed.text(10);
          v.delayed.push_back(std::move(d));
        }
      }
      if (!known && v.state.empty() && v.delayed.empty()) return std::nullopt;
      return v;
    });
  }

  Result<std::vector<EgressRecord>> read_egress(std::string_view egress, uint64_t after_seq,
                                                std::size_t limit) override {
    return read([&] {
      std::vector<EgressRecord> out;
      Using u(r_.egress);
      r_.egress.bind(1, egress).bind(2, static_cast<int64_t>(after_seq)).bind(3, static_cast<int64_t>(limit));
      while (r_.egress.step()) {
        out.push_back({static_cast<uint64_t>(r_.egress.i64(0)), r_.egress.text(1), r_.egress.text(2),
                       r_.egress.text(3), r_.egress.i64(4)});
      }
      return out;
    });
  }

  Result<uint64_t> egress_cursor(std::string_view egress) override {
    return read([&]() -> uint64_t {
      Using u(r_.ack);
      r_.ack.bind(1, egress);
      return r_.ack.step() ? static_cast<uint64_t>(r_.ack.i64(0)) : 0;
    });
  }

  Result<std::vector<DeadLetter>> dead_letters(uint64_t after_seq, std::size_t limit) override {
    return read([&] {
      std::vector<DeadLetter> out;
      Stmt& s = r_.dead;
      Using u(s);
      s.bind(1, static_cast<int64_t>(after_seq)).bind(2, static_cast<int64_t>(limit));
      while (s.step()) {
        DeadLetter d;
        d.message = read_message(s);
        d.seq = static_cast<uint64_t>(s.i64(9));
        d.reason = s.text(10);
        d.attempts = static_cast<uint32_t>(s.i64(11));
        d.created_at_ms = s.i64(12);
        out.push_back(std::move(d));
      }
      return out;
    });
  }

  Result<std::optional<int64_t>> next_entity_due_ms() override {
    return read([&]() -> std::optional<int64_t> {
      // One read transaction: both from the same snapshot.
      if (!r_.begin.run()) throw db_error(read_db_.get(), "starting a read");
      struct End {
        ~End() {
          if (!commit.run()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        Stmt& commit;
        sqlite3* db;
      } end{r_.commit, read_db_.get()};
      std::optional<int64_t> out;
      for (Stmt* s : {&r_.next_ready, &r_.next_delayed}) {
        Using u(*s);
        if (s->step() && !s->is_null(0)) out = out ? std::min(*out, s->i64(0)) : s->i64(0);
      }
      return out;
    });
  }

 private:
  template <typename F>
  auto read(F&& f) -> Result<decltype(f())> {
    std::lock_guard<std::mutex> lock(read_mu_);
    try {
      return f();
    } catch (const Error& e) {
      return e;
    }
  }

  // Appends to the target's inbox and makes the target ready when idle.
  uint64_t queue(Seqs& seqs, const EntityMessage& m, int64_t now_ms) {
    const uint64_t seq = seqs.next();
    const int64_t fn = names_.intern(m.target.type);
    {
      Stmt& s = w_.insert_inbox;
      Using u(s);
      s.bind(1, fn).bind(2, m.target.id).bind(3, names_.intern(m.caller.type)).bind(4, m.caller.id);
      s.bind(5, names_.intern(m.type_name)).bind(6, int64_t{m.has_value ? 1 : 0}).bind_blob(7, m.value);
      s.bind(8, now_ms).bind(9, static_cast<int64_t>(seq));
      s.step();
    }
    Stmt& e = w_.wake_entity;
    Using u(e);
    e.bind(1, fn).bind(2, m.target.id).bind(3, now_ms);
    e.step();
    return seq;
  }

  // The entity's failed attempts when `lease` holds it.
  std::optional<int64_t> leased(const EntityAddress& a, uint64_t lease) {
    const std::optional<int64_t> fn = names_.find(a.type);
    if (!fn) return std::nullopt;
    Stmt& s = w_.check_lease;
    Using u(s);
    s.bind(1, *fn).bind(2, a.id).bind(3, static_cast<int64_t>(lease));
    if (!s.step()) return std::nullopt;
    return s.i64(0);
  }

  void apply(const EntityAddress& a, const BatchResult& r, int64_t now_ms) {
    const int64_t fn = names_.intern(a.type);
    for (const StateMutation& m : r.mutations) {
      // A value never written has no id and nothing to remove.
      const std::optional<int64_t> name = m.remove ? names_.find(m.name) : names_.intern(m.name);
      if (!name) continue;
      Stmt& s = m.remove ? w_.delete_state : w_.upsert_state;
      Using u(s);
      s.bind(1, fn).bind(2, a.id).bind(3, *name);
      if (!m.remove) s.bind(4, names_.intern(m.type_name)).bind_blob(5, m.value).bind(6, m.expires_at_ms);
      s.step();
    }
    for (const auto& [name, expires_at] : r.touched) {
      const std::optional<int64_t> id = names_.find(name);
      if (!id) continue;
      Stmt& s = w_.touch_state;
      Using u(s);
      s.bind(1, fn).bind(2, a.id).bind(3, *id).bind(4, expires_at);
      s.step();
    }
    if (!r.outgoing.empty()) {
      Seqs seqs(w_);
      for (const EntityMessage& m : r.outgoing) queue(seqs, m, now_ms);
      seqs.save();
    }
    // Cancellations first (BatchResult: they are of earlier replies' messages,
    // and a reply may cancel a token and arm it again).
    for (const std::string& token : r.cancellations) {
      Stmt& s = w_.cancel_delayed;
      Using u(s);
      s.bind(1, a.type).bind(2, a.id).bind(3, token);
      s.step();
    }
    for (const NewDelayedMessage& d : r.delayed) {
      Stmt& s = w_.insert_delayed;
      Using u(s);
      s.bind(1, d.due_at_ms).bind(2, d.message.target.type).bind(3, d.message.target.id);
      s.bind(4, d.message.caller.type).bind(5, d.message.caller.id).bind(6, d.message.type_name);
      s.bind(7, int64_t{d.message.has_value ? 1 : 0}).bind_blob(8, d.message.value);
      s.bind(9, d.cancellation_token).bind(10, now_ms);
      if (sqlite3_step(raw(s)) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE) {
          throw Error(Code::failed_precondition, "a delayed message with cancellation token '" +
                                                     d.cancellation_token + "' from " + a.type + "/" + a.id +
                                                     " is already pending; tokens must be unique among a "
                                                     "sender's pending messages");
        }
        throw db_error(db_, "queuing a delayed message");
      }
    }
    for (const NewEgressRecord& e : r.egress) {
      Stmt& s = w_.insert_egress;
      Using u(s);
      s.bind(1, e.egress).bind(2, e.type_name).bind_blob(3, e.value).bind(4, now_ms);
      s.step();
    }
  }

  // The batch leaves the inbox; the entity is ready when more wait.
  void drop_batch(const EntityAddress& a, uint64_t last_seq, int64_t now_ms) {
    drop_messages(a, last_seq);
    settle(a, any_inbox(a), now_ms);
  }

  bool any_inbox(const EntityAddress& a) {
    Stmt& s = w_.any_inbox;
    Using u(s);
    s.bind(1, names_.intern(a.type)).bind(2, a.id);
    return s.step();
  }

  // The entity is no longer leased: ready when `more` messages wait, else idle.
  void settle(const EntityAddress& a, bool more, int64_t now_ms) {
    Stmt& s = w_.settle;
    Using u(s);
    s.bind(1, names_.intern(a.type)).bind(2, a.id).bind(3, more ? kReady : kIdle).bind(4, now_ms);
    s.step();
  }

  // Whether an entity of `type` is ready and due: it has waited longer
  // than a reply's entity would, so the reply's entity goes behind it.
  bool other_due(const std::string& type, int64_t now_ms) {
    Stmt& s = w_.any_due;
    Using u(s);
    s.bind(1, names_.intern(type)).bind(2, now_ms);
    return s.step();
  }

  void drop_messages(const EntityAddress& a, uint64_t last_seq) {
    Stmt& s = w_.drop_inbox;
    Using u(s);
    s.bind(1, names_.intern(a.type)).bind(2, a.id).bind(3, static_cast<int64_t>(last_seq));
    s.step();
  }

  std::vector<EntityBatch> do_claim(const EntityClaimOptions& o) {
    struct Type {
      int64_t id;
      std::string name;
    };
    std::vector<Type> types;
    {
      int64_t after = -1;
      Stmt& s = w_.next_type;
      for (;;) {
        Using u(s);
        s.bind(1, after);
        if (!s.step()) break;
        after = s.i64(0);
        std::string name = names_.name(after);
        if (std::find(o.skip_types.begin(), o.skip_types.end(), name) == o.skip_types.end()) {
          types.push_back({after, std::move(name)});
        }
      }
    }
    std::vector<EntityBatch> out;
    if (types.empty() || o.max_batches == 0) return out;
    // Rotated between claims, so that the remainder of an uneven share
    // does not always go to the same types.
    std::rotate(types.begin(), types.begin() + static_cast<long>(claim_round_++ % types.size()), types.end());
    struct Due {
      std::string id;
      uint32_t attempts;
      std::string last_error;
    };
    std::vector<std::vector<Due>> per_type;
    for (const Type& type : types) {
      Stmt& s = w_.due;
      Using u(s);
      s.bind(1, type.id).bind(2, o.now_ms).bind(3, static_cast<int64_t>(o.max_batches));
      std::vector<Due> rows;
      while (s.step()) rows.push_back({s.text(0), static_cast<uint32_t>(s.i64(1)), s.text(2)});
      per_type.push_back(std::move(rows));
    }
    const uint64_t lease = rng_() | 1;
    std::vector<std::pair<std::string, std::vector<StateSpec>>> specs_of;  // per type, read once
    for (std::size_t round = 0; out.size() < o.max_batches; ++round) {
      bool any = false;
      for (std::size_t t = 0; t < types.size() && out.size() < o.max_batches; ++t) {
        if (round >= per_type[t].size()) continue;
        any = true;
        Due& d = per_type[t][round];
        EntityBatch b;
        b.address = {types[t].name, std::move(d.id)};
        b.lease = lease;
        b.attempts = d.attempts;
        b.last_error = std::move(d.last_error);
        load_batch(b, o, d.attempts > 0 ? 1 : o.max_messages, specs_of);
        if (b.messages.empty()) {
          // Nothing to deliver (its messages went meanwhile): idle.
          Stmt& s = w_.idle;
          Using u(s);
          s.bind(1, types[t].id).bind(2, b.address.id);
          s.step();
          continue;
        }
        Stmt& s = w_.lease;
        Using u(s);
        s.bind(1, static_cast<int64_t>(lease)).bind(2, o.lease_until_ms).bind(3, types[t].id);
        s.bind(4, b.address.id);
        s.step();
        out.push_back(std::move(b));
      }
      if (!any) break;
    }
    return out;
  }

  void load_batch(EntityBatch& b, const EntityClaimOptions& o, std::size_t max_messages,
                  std::vector<std::pair<std::string, std::vector<StateSpec>>>& specs_of) {
    const int64_t fn = names_.intern(b.address.type);
    {
      Stmt& s = w_.inbox;
      Using u(s);
      s.bind(1, fn).bind(2, b.address.id).bind(3, static_cast<int64_t>(std::max<std::size_t>(1, max_messages)));
      while (s.step()) {
        QueuedMessage q;
        q.seq = static_cast<uint64_t>(s.i64(0));
        q.message.target = b.address;
        q.message.caller.type = names_.name(s.i64(1));
        q.message.caller.id = s.text(2);
        q.message.type_name = names_.name(s.i64(3));
        q.message.has_value = s.i64(4) != 0;
        q.message.value = s.text(5);
        q.created_at_ms = s.i64(6);
        b.messages.push_back(std::move(q));
      }
    }
    if (b.messages.empty()) return;
    {
      Stmt& s = w_.state;
      Using u(s);
      s.bind(1, fn).bind(2, b.address.id);
      while (s.step()) {
        const int64_t expires_at = s.i64(3);
        if (expires_at != 0 && expires_at <= o.now_ms) continue;  // expired, not yet swept
        b.state.push_back({names_.name(s.i64(0)), names_.name(s.i64(1)), s.text(2), expires_at});
      }
    }
    for (const auto& [type, specs] : specs_of) {
      if (type == b.address.type) {
        b.specs = specs;
        return;
      }
    }
    std::vector<StateSpec> specs;
    Stmt& s = w_.specs;
    Using u(s);
    s.bind(1, b.address.type);
    while (s.step()) {
      specs.push_back({s.text(0), s.text(1), static_cast<ExpireMode>(s.i64(2)), s.i64(3)});
    }
    b.specs = specs;
    specs_of.emplace_back(b.address.type, std::move(specs));
  }

  static sqlite3_stmt* raw(Stmt& s) { return s.raw(); }

  sqlite3* const db_;
  GroupCommit& writer_;
  WriteStmts w_;  // the writer thread's
  Names names_;   // the writer thread's
  Connection read_db_;
  std::mutex read_mu_;
  ReadStmts r_;
  std::mt19937_64 rng_;       // writer thread
  uint64_t claim_round_ = 0;  // writer thread
};

}  // namespace

std::unique_ptr<EntityStore> open_entity_store(sqlite3* writer_db, GroupCommit& writer, const std::string& path,
                                               bool fsync_commits) {
  return std::make_unique<SqliteEntityStore>(writer_db, writer, path, fsync_commits);
}

}  // namespace dispatch::scheduler::sqlite
