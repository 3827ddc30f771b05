// The statements of calls that make calls. Children are found through
// calls_children (parent_id), results through results_parent, and a
// descendant is looked for only below unfinished calls: a call that ended
// took its own unfinished descendants with it.
#include "sqlite/tree.h"

#include <algorithm>
#include <limits>

namespace dispatch::scheduler::sqlite {

CallTree::CallTree(sqlite3* db)
    : db_(db),
      consume_(db, "DELETE FROM results WHERE seq = ?1 AND parent_id = ?2"),
      lower_ready_(db, "UPDATE calls SET ready = MAX(ready - ?2, 0) WHERE id = ?1"),
      drop_results_(db, "DELETE FROM results INDEXED BY results_parent WHERE parent_id = ?1"),
      results_for_(db,
                   "SELECT seq, correlation_id, child_id, status, output_type, output, error_type, error_message "
                   "FROM results INDEXED BY results_parent WHERE parent_id = ?1 ORDER BY seq LIMIT ?2"),
      insert_result_(db,
                     "INSERT INTO results (parent_id, correlation_id, child_id, status, output_type, output, "
                     "error_type, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
      // Right-hand sides see the row as it was: ready + 1 and outstanding
      // - 1 are the values after this result. A parent that ended (or was
      // deleted) is left alone: nobody waits for the result.
      tell_parent_(db,
                   "UPDATE calls SET outstanding = MAX(outstanding - 1, 0), ready = ready + 1, "
                   "next_attempt_at = CASE WHEN state = 6 AND next_attempt_at > ?2 AND "
                   "(ready + 1 >= min_results OR outstanding <= 1) THEN ?2 ELSE next_attempt_at END "
                   "WHERE id = ?1 AND state IN (1, 2, 6)"),
      // Unfinished descendants only: below a call that ended there is
      // nothing unfinished.
      descendants_(db, R"sql(
WITH RECURSIVE d(id) AS (
  SELECT id FROM calls INDEXED BY calls_children
  WHERE parent_id = ?1 AND parent_id != '' AND state IN (1, 2, 6)
  UNION ALL
  SELECT c.id FROM calls AS c INDEXED BY calls_children JOIN d ON c.parent_id = d.id
  WHERE c.parent_id != '' AND c.state IN (1, 2, 6))
SELECT id FROM d)sql"),
      cancel_one_(db,
                  "UPDATE calls SET state = 5, lease = 0, lease_until = 0, outstanding = 0, ready = 0, "
                  "error_type = 'canceled', error_message = ?3, updated_at = ?2 "
                  "WHERE id = ?1 AND state IN (1, 2, 6)"),
      // The outcome and the Poll in one write of the row. Right-hand sides
      // see the row as it was: MAX(ready - ?16, 0) and outstanding + ?15
      // are the counts after it. Due at once (?8) when it can go on
      // already: the calls were refused (?17), or results wait, enough of
      // them or with nothing outstanding; else at the earlier of its wait
      // (?18, INT64_MAX without one) and its expiration.
      poll_(db,
            "UPDATE calls SET state = ?2, status = ?3, output_type = ?4, output = ?5, error_type = ?6, "
            "error_message = ?7, lease = 0, lease_until = 0, updated_at = ?8, polled = 1, poll_state = ?9, "
            "poll_state_type = ?10, min_results = ?11, max_results = ?12, poll_error_type = ?13, "
            "poll_error_message = ?14, attempts = 0, outstanding = outstanding + ?15, "
            "ready = MAX(ready - ?16, 0), "
            "next_attempt_at = CASE WHEN ?17 OR (MAX(ready - ?16, 0) > 0 AND "
            "(MAX(ready - ?16, 0) >= ?11 OR outstanding + ?15 = 0)) THEN ?8 "
            "WHEN expiration_at != 0 THEN MIN(?18, expiration_at) ELSE ?18 END "
            "WHERE id = ?1 AND state = 2 AND lease = ?19"),
      continue_as_(db,
                   "UPDATE calls SET function = ?2, endpoint = ?3, input_type = ?4, input = ?5, "
                   "expiration_at = ?6, fair_key = CASE WHEN tenant = '' THEN ?2 ELSE tenant END, "
                   "state = 1, attempts = 0, restarts = 0, next_attempt_at = ?7, polled = 0, poll_state = x'', "
                   "poll_state_type = '', min_results = 0, max_results = 0, poll_error_type = '', "
                   "poll_error_message = '', outstanding = 0, ready = 0 WHERE id = ?1"),
      // ?2: 1 for a restart (counted), 0 for a retry (which set it to 0).
      forget_poll_(db,
                   "UPDATE calls SET polled = 0, poll_state = x'', poll_state_type = '', min_results = 0, "
                   "max_results = 0, poll_error_type = '', poll_error_message = '', outstanding = 0, "
                   "ready = 0, restarts = restarts + ?2 WHERE id = ?1") {}

uint32_t CallTree::drop_consumed(const std::string& parent_id, const std::vector<uint64_t>& seqs) {
  uint32_t gone = 0;
  for (uint64_t seq : seqs) {
    Using u(consume_);
    consume_.bind(1, static_cast<int64_t>(seq)).bind(2, parent_id);
    consume_.step();
    gone += static_cast<uint32_t>(sqlite3_changes(db_));
  }
  return gone;
}

uint32_t CallTree::consume(const std::string& parent_id, const std::vector<uint64_t>& seqs) {
  const uint32_t gone = drop_consumed(parent_id, seqs);
  if (gone > 0) {
    Using u(lower_ready_);
    lower_ready_.bind(1, parent_id).bind(2, static_cast<int64_t>(gone));
    lower_ready_.step();
  }
  return gone;
}

void CallTree::drop_results(const std::string& parent_id) {
  Using u(drop_results_);
  drop_results_.bind(1, parent_id);
  drop_results_.step();
}

std::vector<ChildResult> CallTree::results_for(const std::string& parent_id, std::size_t max) {
  std::vector<ChildResult> out;
  Using u(results_for_);
  results_for_.bind(1, parent_id).bind(2, static_cast<int64_t>(max));
  while (results_for_.step()) {
    ChildResult r;
    r.seq = static_cast<uint64_t>(results_for_.i64(0));
    r.correlation_id = static_cast<uint64_t>(results_for_.i64(1));
    r.dispatch_id = results_for_.text(2);
    r.status = static_cast<int>(results_for_.i64(3));
    r.output_type_url = results_for_.text(4);
    r.output = results_for_.text(5);
    r.error_type = results_for_.text(6);
    r.error_message = results_for_.text(7);
    out.push_back(std::move(r));
  }
  return out;
}

void CallTree::deliver(const std::string& parent_id, const ChildResult& r, int64_t now_ms) {
  {
    Using u(tell_parent_);
    tell_parent_.bind(1, parent_id).bind(2, now_ms);
    tell_parent_.step();
    // Ended, or deleted (retention): nobody waits for it.
    if (sqlite3_changes(db_) != 1) return;
  }
  Using u(insert_result_);
  insert_result_.bind(1, parent_id).bind(2, static_cast<int64_t>(r.correlation_id)).bind(3, r.dispatch_id);
  insert_result_.bind(4, static_cast<int64_t>(r.status)).bind(5, r.output_type_url).bind_blob(6, r.output);
  insert_result_.bind(7, r.error_type).bind(8, r.error_message);
  insert_result_.step();
}

void CallTree::cancel_descendants(const std::string& id, int64_t now_ms, const std::string& why) {
  std::vector<std::string> ids;
  {
    Using u(descendants_);
    descendants_.bind(1, id);
    while (descendants_.step()) ids.push_back(descendants_.text(0));
  }
  for (const std::string& d : ids) {
    {
      Using u(cancel_one_);
      cancel_one_.bind(1, d).bind(2, now_ms).bind(3, why);
      cancel_one_.step();
    }
    drop_results(d);
  }
}

bool CallTree::record_poll(const std::string& id, uint64_t lease, const Outcome& outcome, uint32_t consumed,
                           uint32_t added, int64_t now_ms) {
  const PollOutcome& poll = *outcome.poll;
  const bool refused = !poll.error_type.empty() || !poll.error_message.empty();
  Using u(poll_);
  poll_.bind(1, id).bind(2, static_cast<int64_t>(outcome.state)).bind(3, static_cast<int64_t>(outcome.status));
  poll_.bind(4, outcome.output_type_url).bind_blob(5, outcome.output);
  poll_.bind(6, outcome.error_type).bind(7, outcome.error_message).bind(8, now_ms);
  poll_.bind_blob(9, poll.state).bind(10, poll.state_type_url);
  poll_.bind(11, static_cast<int64_t>(poll.min_results)).bind(12, static_cast<int64_t>(poll.max_results));
  poll_.bind(13, poll.error_type).bind(14, poll.error_message);
  poll_.bind(15, static_cast<int64_t>(added)).bind(16, static_cast<int64_t>(consumed));
  poll_.bind(17, static_cast<int64_t>(refused ? 1 : 0));
  poll_.bind(18, poll.wake_at_ms != 0 ? poll.wake_at_ms : std::numeric_limits<int64_t>::max());
  poll_.bind(19, static_cast<int64_t>(lease));
  poll_.step();
  return sqlite3_changes(db_) == 1;
}

void CallTree::continue_as(const std::string& id, const NewCall& call, int64_t now_ms) {
  Using u(continue_as_);
  continue_as_.bind(1, id).bind(2, call.function).bind(3, call.endpoint).bind(4, call.input_type_url);
  continue_as_.bind_blob(5, call.input).bind(6, call.expiration_at_ms).bind(7, std::max(now_ms, call.not_before_ms));
  continue_as_.step();
}

void CallTree::forget_poll(const std::string& id, bool restart) {
  Using u(forget_poll_);
  forget_poll_.bind(1, id).bind(2, static_cast<int64_t>(restart ? 1 : 0));
  forget_poll_.step();
}

}  // namespace dispatch::scheduler::sqlite
