// The read statements: each names the partial index it must use, so one
// that could not use it fails to prepare instead of scanning the table.
#include "sqlite/reader.h"

#include <cstdint>

namespace dispatch::scheduler::sqlite {

Reader::Reader(const std::string& path, bool fsync_commits) : db_(open_connection(path, fsync_commits)) {
  sqlite3* db = db_.get();
  const std::string cols = kCallColumns;
  get_ = Stmt(db, "SELECT " + cols + " FROM calls WHERE id = ?1");
  seq_of_ = Stmt(db, "SELECT seq FROM calls WHERE id = ?1");
  first_id_from_ = Stmt(db, "SELECT id FROM calls WHERE id >= ?1 ORDER BY id LIMIT 1");
  first_seq_between_ = Stmt(db, "SELECT MIN(seq) FROM calls WHERE id >= ?1 AND id < ?2");
  list_all_ = Stmt(db, "SELECT " + cols + " FROM calls WHERE seq > ?1 ORDER BY seq LIMIT ?2");
  // One statement per state: a partial index serves a query only when
  // the query names its state as a constant. Completed calls have no
  // index; they are most of the table, so the scan in creation order
  // finds them at once.
  for (int state = 1; state < kStates; ++state) {
    const std::string index = state_index(state);
    const std::string from = index.empty() ? " FROM calls NOT INDEXED" : " FROM calls INDEXED BY " + index;
    const std::string where = " WHERE state = " + std::to_string(state);
    list_state_[state] = Stmt(db, "SELECT " + cols + from + where + " AND seq > ?1 ORDER BY seq LIMIT ?2");
    if (!index.empty()) count_state_[state] = Stmt(db, "SELECT COUNT(*)" + from + where);
  }
  count_all_ = Stmt(db, "SELECT COUNT(*) FROM calls");
  children_ = Stmt(db, "SELECT " + cols + " FROM calls INDEXED BY calls_children WHERE parent_id = ?1 AND "
                       "parent_id != '' AND seq > ?2 ORDER BY seq LIMIT ?3");
  next_resume_ = Stmt(db, "SELECT MIN(next_attempt_at) FROM calls INDEXED BY calls_suspended WHERE state = 6");
  begin_ = Stmt(db, "BEGIN");
  commit_ = Stmt(db, "COMMIT");
  // The earliest due time per fairness key, keys visited by skipping
  // through the index: one probe per key instead of a pass over every
  // pending call (the delivery loop asks before each sleep).
  next_due_ = Stmt(db, R"sql(
WITH RECURSIVE k(key) AS (
  SELECT MIN(fair_key) FROM calls INDEXED BY calls_pending WHERE state = 1
  UNION ALL
  SELECT (SELECT MIN(fair_key) FROM calls INDEXED BY calls_pending WHERE state = 1 AND fair_key > k.key)
  FROM k WHERE k.key IS NOT NULL)
SELECT MIN((SELECT MIN(next_attempt_at) FROM calls INDEXED BY calls_pending
            WHERE state = 1 AND fair_key = k.key))
FROM k WHERE k.key IS NOT NULL)sql");
}

Result<std::optional<CallRecord>> Reader::get(std::string_view id) {
  return read([&]() -> std::optional<CallRecord> {
    Using u(get_);
    get_.bind(1, id);
    if (!get_.step()) return std::nullopt;
    return read_call(get_);
  });
}

Result<std::vector<CallRecord>> Reader::list(std::optional<CallState> state, std::size_t limit,
                                             std::string_view after_id) {
  return read([&] {
    const int64_t after = after_id.empty() ? 0 : page_start(after_id);
    const int st = state ? static_cast<int>(*state) : 0;
    if (state && (st < 1 || st >= kStates)) {
      throw Error(Code::invalid_argument, "no call state numbered " + std::to_string(st));
    }
    Stmt& s = state ? list_state_[st] : list_all_;
    Using u(s);
    s.bind(1, after).bind(2, static_cast<int64_t>(limit));
    std::vector<CallRecord> out;
    while (s.step()) out.push_back(read_call(s));
    return out;
  });
}

int64_t Reader::page_start(std::string_view after_id) {
  {
    Using u(seq_of_);
    seq_of_.bind(1, after_id);
    if (seq_of_.step()) return seq_of_.i64(0);
  }
  // Gone: an ID of this store is 32 hex digits, the first 12 its creation
  // time in ms. Calls come in creation order, so the page goes on before
  // the first call created in that millisecond or later.
  if (after_id.size() != 32 || after_id.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    throw Error(Code::not_found, "no call has ID " + std::string(after_id));
  }
  std::string from(after_id.substr(0, 12));
  for (;;) {
    std::string ms;
    {
      Using u(first_id_from_);
      first_id_from_.bind(1, from);
      if (!first_id_from_.step()) return INT64_MAX;  // nothing was created since
      ms = first_id_from_.text(0).substr(0, 12);
    }
    // Within one millisecond IDs are random: the first call of it in
    // creation order has the least seq of its IDs ("g" follows every hex
    // digit).
    const std::string next_ms = ms + "g";
    Using u(first_seq_between_);
    first_seq_between_.bind(1, ms).bind(2, next_ms);
    if (first_seq_between_.step() && !first_seq_between_.is_null(0)) return first_seq_between_.i64(0) - 1;
    from = next_ms;  // that millisecond's calls were deleted meanwhile
  }
}

Result<std::vector<CallRecord>> Reader::list_children(std::string_view parent_id, std::size_t limit,
                                                      std::string_view after_id) {
  return read([&] {
    int64_t after = 0;
    if (!after_id.empty()) {
      Using u(seq_of_);
      seq_of_.bind(1, after_id);
      if (!seq_of_.step()) throw Error(Code::not_found, "no call has ID " + std::string(after_id));
      after = seq_of_.i64(0);
    }
    Using u(children_);
    children_.bind(1, parent_id).bind(2, after).bind(3, static_cast<int64_t>(limit));
    std::vector<CallRecord> out;
    while (children_.step()) out.push_back(read_call(children_));
    return out;
  });
}

Result<std::optional<int64_t>> Reader::next_due_ms() {
  return read([&]() -> std::optional<int64_t> {
    std::optional<int64_t> out;
    {
      Using u(next_due_);
      if (next_due_.step() && !next_due_.is_null(0)) out = next_due_.i64(0);
    }
    Using u(next_resume_);
    if (next_resume_.step() && !next_resume_.is_null(0)) {
      const int64_t resume = next_resume_.i64(0);
      if (!out || resume < *out) out = resume;
    }
    return out;
  });
}

Result<std::vector<int64_t>> Reader::count_by_state() {
  return read([&] {
    // One read transaction: every count from the same snapshot.
    if (!begin_.run()) throw db_error(db_.get(), "starting a read");
    struct End {
      ~End() {
        if (!commit.run()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      }
      Stmt& commit;
      sqlite3* db;
    } end{commit_, db_.get()};
    auto count = [](Stmt& s) {
      Using u(s);
      return s.step() ? s.i64(0) : 0;
    };
    std::vector<int64_t> out(kStates, 0);
    int64_t rest = count(count_all_);
    for (int st = 1; st < kStates; ++st) {
      if (st == static_cast<int>(CallState::completed)) continue;
      out[static_cast<std::size_t>(st)] = count(count_state_[st]);
      rest -= out[static_cast<std::size_t>(st)];
    }
    out[static_cast<std::size_t>(CallState::completed)] = rest;
    return out;
  });
}

}  // namespace dispatch::scheduler::sqlite
