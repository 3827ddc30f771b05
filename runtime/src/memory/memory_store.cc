// The Store in memory: a map of calls by ID (IDs sort in creation order),
// the same two queues the SQLite store keeps as partial indexes (pending
// calls by fairness key and due time, suspended calls by due time), each
// parent's children and waiting results. Every write is applied under one
// lock; its callback runs after the lock is released, on the caller's
// thread, so a callback may write again.
//
// Not for: durability (nothing is kept), or many calls (reads that filter
// by state walk the map).
#include "dispatch/memory/memory_store.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace dispatch::scheduler {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

class MemoryStore final : public Store {
 public:
  void enqueue(std::vector<NewCall> calls, int64_t now_ms, Done<std::vector<std::string>> done) override {
    apply<std::vector<std::string>>(std::move(done), [&]() -> Result<std::vector<std::string>> {
      if (calls.empty()) return Error(Code::invalid_argument, "no calls to enqueue");
      std::vector<std::string> ids;
      ids.reserve(calls.size());
      for (NewCall& c : calls) {
        if (!c.idempotency_key.empty()) {
          auto known = keys_.find(c.idempotency_key);
          if (known != keys_.end()) {
            ids.push_back(known->second);
            continue;
          }
        }
        ids.push_back(insert(std::move(c), now_ms));
      }
      return ids;
    });
  }

  void claim(ClaimOptions o, Done<std::vector<CallRecord>> done) override {
    apply<std::vector<CallRecord>>(std::move(done), [&]() -> Result<std::vector<CallRecord>> {
      std::vector<CallRecord> out;
      const uint64_t lease = rng_() | 1;
      auto skipped = [&](const Row& row) {
        return std::find(o.skip_endpoints.begin(), o.skip_endpoints.end(), row.r.endpoint) != o.skip_endpoints.end();
      };
      // Resumes first: due suspended calls, earliest first.
      std::vector<Row*> resumes;
      for (auto it = suspended_.begin(); it != suspended_.end() && it->first <= o.now_ms; ++it) {
        if (resumes.size() >= o.max) break;
        Row& row = *by_seq_.at(it->second);
        if (!skipped(row)) resumes.push_back(&row);
      }
      for (Row* row : resumes) out.push_back(lease_row(*row, lease, o));
      // Then pending calls, round-robin across fairness keys.
      std::vector<std::string> keys;
      for (auto it = pending_.begin(); it != pending_.end();
           it = pending_.lower_bound(std::make_tuple(std::get<0>(*it), kNever, kNever))) {
        keys.push_back(std::get<0>(*it));
      }
      if (!keys.empty()) {
        std::rotate(keys.begin(), keys.begin() + static_cast<long>(claim_round_++ % keys.size()), keys.end());
      }
      std::vector<std::vector<Row*>> per_key;
      const std::size_t quota = std::min(o.per_key_max, o.max);
      for (const std::string& key : keys) {
        std::vector<Row*> rows;
        for (auto it = pending_.lower_bound(std::make_tuple(key, std::numeric_limits<int64_t>::min(), int64_t{0}));
             it != pending_.end() && std::get<0>(*it) == key && std::get<1>(*it) <= o.now_ms && rows.size() < quota;
             ++it) {
          Row& row = *by_seq_.at(std::get<2>(*it));
          if (!skipped(row)) rows.push_back(&row);
        }
        per_key.push_back(std::move(rows));
      }
      for (std::size_t round = 0; out.size() < o.max; ++round) {
        bool any = false;
        for (auto& rows : per_key) {
          if (round >= rows.size() || out.size() >= o.max) continue;
          any = true;
          out.push_back(lease_row(*rows[round], lease, o));
        }
        if (!any) break;
      }
      return out;
    });
  }

  void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms, Done<bool> done) override {
    apply<bool>(std::move(done), [&]() -> Result<bool> {
      Row* row = find(id);
      if (row == nullptr || row->r.state != CallState::running || row->r.lease != lease) return false;
      CallRecord& r = row->r;
      r.status = outcome.status;
      r.output_type_url = std::move(outcome.output_type_url);
      r.output = std::move(outcome.output);
      r.error_type = std::move(outcome.error_type);
      r.error_message = std::move(outcome.error_message);
      r.lease = 0;
      row->lease_until = 0;
      r.updated_at_ms = now_ms;
      const bool retried = outcome.state == CallState::pending && !outcome.restart && !outcome.tail_call;
      if (!retried) consume(*row, outcome.consumed);
      if (outcome.poll) {
        suspend(*row, std::move(*outcome.poll), now_ms);
        return true;
      }
      if (retried) {
        move(*row, CallState::pending, outcome.next_attempt_at_ms);
        return true;
      }
      if (r.outstanding > 0) {
        cancel_descendants(r.id, now_ms, outcome.tail_call || outcome.restart
                                              ? "cancelled: " + r.id + " started over (a tail call or a restart)"
                                              : "cancelled: " + r.id + ", which made this call, has ended");
      }
      results_.erase(r.id);
      if (outcome.tail_call) {
        NewCall& next = *outcome.tail_call;
        r.function = std::move(next.function);
        r.endpoint = std::move(next.endpoint);
        r.input_type_url = std::move(next.input_type_url);
        r.input = std::move(next.input);
        r.expiration_at_ms = next.expiration_at_ms;
        row->fair_key = r.tenant.empty() ? r.function : r.tenant;
        r.attempts = 0;
        r.restarts = 0;
        forget_poll(r);
        move(*row, CallState::pending, std::max(now_ms, next.not_before_ms));
        return true;
      }
      if (outcome.restart) {
        forget_poll(r);
        r.restarts++;
        move(*row, CallState::pending, outcome.next_attempt_at_ms);
        return true;
      }
      move(*row, outcome.state, outcome.next_attempt_at_ms);
      if (!r.parent_id.empty() && is_final(r.state)) {
        ChildResult result;
        result.correlation_id = r.correlation_id;
        result.dispatch_id = r.id;
        result.status = r.status;
        result.output_type_url = r.output_type_url;
        result.output = r.output;
        result.error_type = r.error_type;
        result.error_message = r.error_message;
        deliver(r.parent_id, std::move(result), now_ms);
      }
      return true;
    });
  }

  void cancel(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    apply<CallRecord>(std::move(done), [&]() -> Result<CallRecord> {
      Row* row = find(id);
      if (row == nullptr) return Error(Code::not_found, "no call has ID " + id);
      CallRecord& r = row->r;
      if (is_final(r.state)) {
        return Error(Code::failed_precondition,
                     "cannot cancel call " + id + ": it is already " + std::string(state_name(r.state)));
      }
      r.lease = 0;
      row->lease_until = 0;
      r.updated_at_ms = now_ms;
      move(*row, CallState::cancelled, r.next_attempt_at_ms);
      cancel_descendants(id, now_ms, "cancelled with " + id + ", which was cancelled");
      results_.erase(id);
      r.outstanding = 0;
      r.ready = 0;
      if (!r.parent_id.empty()) {
        ChildResult result;
        result.correlation_id = r.correlation_id;
        result.dispatch_id = r.id;
        result.status = r.status;
        result.error_type = "canceled";
        result.error_message = "call " + r.id + " was cancelled";
        deliver(r.parent_id, std::move(result), now_ms);
      }
      return r;
    });
  }

  void retry(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    apply<CallRecord>(std::move(done), [&]() -> Result<CallRecord> {
      Row* row = find(id);
      if (row == nullptr) return Error(Code::not_found, "no call has ID " + id);
      CallRecord& r = row->r;
      if (r.state != CallState::failed && r.state != CallState::cancelled) {
        return Error(Code::failed_precondition, "cannot retry call " + id +
                                                    ": only failed or cancelled calls can be retried; it is " +
                                                    std::string(state_name(r.state)));
      }
      r.attempts = 0;
      r.restarts = 0;
      r.status = 0;
      r.error_type.clear();
      r.error_message.clear();
      r.updated_at_ms = now_ms;
      forget_poll(r);
      results_.erase(id);
      move(*row, CallState::pending, now_ms);
      return r;
    });
  }

  void release_leases(int64_t now_ms, bool all, Done<std::size_t> done) override {
    apply<std::size_t>(std::move(done), [&]() -> Result<std::size_t> {
      std::size_t moved = 0;
      for (auto& [id, row] : rows_) {
        if (row.r.state != CallState::running || (!all && row.lease_until > now_ms)) continue;
        row.r.lease = 0;
        row.lease_until = 0;
        move(row, CallState::pending, row.r.next_attempt_at_ms);
        ++moved;
      }
      return moved;
    });
  }

  void delete_ended(int64_t ended_before_ms, Done<std::size_t> done) override {
    apply<std::size_t>(std::move(done), [&]() -> Result<std::size_t> {
      std::size_t deleted = 0;
      for (auto it = rows_.begin(); it != rows_.end();) {
        const CallRecord& r = it->second.r;
        if (!is_final(r.state) || r.updated_at_ms >= ended_before_ms) {
          ++it;
          continue;
        }
        if (!r.idempotency_key.empty()) keys_.erase(r.idempotency_key);
        by_seq_.erase(it->second.seq);
        it = rows_.erase(it);
        ++deleted;
      }
      stats_.deleted += deleted;
      return deleted;
    });
  }

  Result<std::optional<CallRecord>> get(std::string_view id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rows_.find(std::string(id));
    if (it == rows_.end()) return std::optional<CallRecord>();
    return std::optional<CallRecord>(it->second.r);
  }

  Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                       std::string_view after_id) override {
    if (state && (static_cast<int>(*state) < 1 || static_cast<int>(*state) > 6)) {
      return Error(Code::invalid_argument, "no call state numbered " + std::to_string(static_cast<int>(*state)));
    }
    if (!after_id.empty() &&
        (after_id.size() != 32 || after_id.find_first_not_of("0123456789abcdef") != std::string_view::npos)) {
      return Error(Code::not_found, "no call has ID " + std::string(after_id));
    }
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<CallRecord> out;
    // IDs sort in creation order, so a page goes on after `after_id` even
    // when that call was deleted since.
    auto it = after_id.empty() ? rows_.begin() : rows_.upper_bound(std::string(after_id));
    for (; it != rows_.end() && out.size() < limit; ++it) {
      if (!state || it->second.r.state == *state) out.push_back(it->second.r);
    }
    return out;
  }

  Result<std::vector<CallRecord>> list_children(std::string_view parent_id, std::size_t limit,
                                                std::string_view after_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<CallRecord> out;
    auto kids = children_.find(std::string(parent_id));
    if (kids == children_.end()) return out;
    bool started = after_id.empty();
    if (!started && rows_.count(std::string(after_id)) == 0) {
      return Error(Code::not_found, "no call has ID " + std::string(after_id));
    }
    for (const std::string& id : kids->second) {
      if (!started) {
        started = id == after_id;
        continue;
      }
      if (out.size() >= limit) break;
      if (const Row* row = find(id)) out.push_back(row->r);
    }
    return out;
  }

  Result<std::optional<int64_t>> next_due_ms() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<int64_t> due;
    if (!suspended_.empty()) due = suspended_.begin()->first;
    // The first entry of each fairness key is its earliest.
    for (auto it = pending_.begin(); it != pending_.end();
         it = pending_.lower_bound(std::make_tuple(std::get<0>(*it), kNever, kNever))) {
      if (!due || std::get<1>(*it) < *due) due = std::get<1>(*it);
    }
    return due;
  }

  Result<std::vector<int64_t>> count_by_state() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> out(7, 0);
    for (const auto& [id, row] : rows_) out[static_cast<std::size_t>(row.r.state)]++;
    return out;
  }

  Stats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  struct Row {
    int64_t seq = 0;
    CallRecord r;
    std::string fair_key;
    int64_t lease_until = 0;
  };

  // Runs one write under the lock, then reports it without the lock.
  template <typename T, typename Body>
  void apply(Done<T> done, Body&& body) {
    std::optional<Result<T>> result;
    {
      std::lock_guard<std::mutex> lock(mu_);
      result.emplace(body());
      stats_.writes++;
      stats_.commits++;
    }
    done(std::move(*result));
  }

  Row* find(const std::string& id) {
    auto it = rows_.find(id);
    return it == rows_.end() ? nullptr : &it->second;
  }
  const Row* find(const std::string& id) const {
    auto it = rows_.find(id);
    return it == rows_.end() ? nullptr : &it->second;
  }

  // As the SQLite store's: the creation time in ms, 12 hex digits, then a
  // counter; the time never goes back (a test's clock may), so IDs sort in
  // creation order.
  std::string new_id(int64_t now_ms) {
    last_ms_ = std::max(last_ms_, now_ms);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%012llx%020llx", static_cast<unsigned long long>(last_ms_ & 0xffffffffffffLL),
                  static_cast<unsigned long long>(++counter_));
    return buf;
  }

  std::string insert(NewCall c, int64_t now_ms) {
    std::string id = new_id(now_ms);
    Row row;
    row.seq = ++next_seq_;
    CallRecord& r = row.r;
    r.id = id;
    r.function = std::move(c.function);
    r.endpoint = std::move(c.endpoint);
    r.input_type_url = std::move(c.input_type_url);
    r.input = std::move(c.input);
    r.state = CallState::pending;
    r.next_attempt_at_ms = std::max(now_ms, c.not_before_ms);
    r.expiration_at_ms = c.expiration_at_ms;
    r.created_at_ms = now_ms;
    r.updated_at_ms = now_ms;
    r.idempotency_key = std::move(c.idempotency_key);
    r.tenant = std::move(c.tenant);
    r.parent_id = std::move(c.parent_id);
    r.root_id = c.root_id.empty() ? id : std::move(c.root_id);
    r.correlation_id = c.correlation_id;
    r.traceparent = std::move(c.traceparent);
    r.tracestate = std::move(c.tracestate);
    row.fair_key = r.tenant.empty() ? r.function : r.tenant;
    if (!r.idempotency_key.empty()) keys_[r.idempotency_key] = id;
    if (!r.parent_id.empty()) children_[r.parent_id].push_back(id);
    auto [it, fresh] = rows_.emplace(id, std::move(row));
    by_seq_[it->second.seq] = &it->second;
    index_in(it->second);
    return id;
  }

  // The queues hold pending and suspended calls, by due time.
  void index_in(Row& row) {
    if (row.r.state == CallState::pending) {
      pending_.emplace(row.fair_key, row.r.next_attempt_at_ms, row.seq);
    } else if (row.r.state == CallState::suspended) {
      suspended_.emplace(row.r.next_attempt_at_ms, row.seq);
    }
  }
  void index_out(Row& row) {
    if (row.r.state == CallState::pending) {
      pending_.erase(std::make_tuple(row.fair_key, row.r.next_attempt_at_ms, row.seq));
    } else if (row.r.state == CallState::suspended) {
      suspended_.erase(std::make_pair(row.r.next_attempt_at_ms, row.seq));
    }
  }
  void move(Row& row, CallState state, int64_t next_attempt_at_ms) {
    index_out(row);
    row.r.state = state;
    row.r.next_attempt_at_ms = next_attempt_at_ms;
    index_in(row);
  }

  CallRecord lease_row(Row& row, uint64_t lease, const ClaimOptions& o) {
    move(row, CallState::running, row.r.next_attempt_at_ms);
    row.r.attempts++;
    row.r.lease = lease;
    row.lease_until = o.lease_until_ms;
    row.r.updated_at_ms = o.now_ms;
    CallRecord out = row.r;
    if (out.polled && out.ready > 0) {
      auto waiting = results_.find(out.id);
      if (waiting != results_.end()) {
        const std::size_t max = static_cast<std::size_t>(std::max(1, out.max_results));
        for (const auto& [seq, result] : waiting->second) {
          if (out.results.size() >= max) break;
          out.results.push_back(result);
        }
      }
    }
    return out;
  }

  void consume(Row& row, const std::vector<uint64_t>& seqs) {
    auto waiting = results_.find(row.r.id);
    if (waiting == results_.end()) return;
    for (uint64_t seq : seqs) {
      if (waiting->second.erase(seq) != 0 && row.r.ready > 0) row.r.ready--;
    }
  }

  void forget_poll(CallRecord& r) {
    r.polled = false;
    r.poll_state.clear();
    r.poll_state_type_url.clear();
    r.min_results = 0;
    r.max_results = 0;
    r.poll_error_type.clear();
    r.poll_error_message.clear();
    r.outstanding = 0;
    r.ready = 0;
  }

  void suspend(Row& row, PollOutcome poll, int64_t now_ms) {
    CallRecord& r = row.r;
    r.polled = true;
    r.poll_state = std::move(poll.state);
    r.poll_state_type_url = std::move(poll.state_type_url);
    r.min_results = poll.min_results;
    r.max_results = poll.max_results;
    r.poll_error_type = poll.error_type;
    r.poll_error_message = poll.error_message;
    r.attempts = 0;
    for (NewCall& child : poll.calls) insert(std::move(child), now_ms);
    r.outstanding += static_cast<uint32_t>(poll.calls.size());
    int64_t due = kNever;
    const bool refused = !poll.error_type.empty() || !poll.error_message.empty();
    if (refused || (r.ready > 0 && (r.ready >= static_cast<uint32_t>(poll.min_results) || r.outstanding == 0))) {
      due = now_ms;
    } else {
      if (poll.wake_at_ms != 0) due = poll.wake_at_ms;
      if (r.expiration_at_ms != 0) due = std::min(due, r.expiration_at_ms);
    }
    move(row, CallState::suspended, due);
  }

  void deliver(const std::string& parent_id, ChildResult result, int64_t now_ms) {
    Row* parent = find(parent_id);
    if (parent == nullptr || is_final(parent->r.state)) return;
    result.seq = ++result_seq_;
    results_[parent_id].emplace(result.seq, std::move(result));
    CallRecord& p = parent->r;
    const uint32_t outstanding = p.outstanding > 0 ? p.outstanding - 1 : 0;
    const uint32_t ready = p.ready + 1;
    p.outstanding = outstanding;
    p.ready = ready;
    if (p.state == CallState::suspended && p.next_attempt_at_ms > now_ms &&
        (ready >= static_cast<uint32_t>(p.min_results) || outstanding == 0)) {
      move(*parent, CallState::suspended, now_ms);
    }
  }

  void cancel_descendants(const std::string& id, int64_t now_ms, const std::string& why) {
    auto kids = children_.find(id);
    if (kids == children_.end()) return;
    for (const std::string& child : kids->second) {
      Row* row = find(child);
      if (row == nullptr || is_final(row->r.state)) continue;  // nothing unfinished below an ended call
      row->r.lease = 0;
      row->lease_until = 0;
      row->r.updated_at_ms = now_ms;
      row->r.error_type = "canceled";
      row->r.error_message = why;
      move(*row, CallState::cancelled, row->r.next_attempt_at_ms);
      cancel_descendants(child, now_ms, why);
      results_.erase(child);
      row->r.outstanding = 0;
      row->r.ready = 0;
    }
  }

  mutable std::mutex mu_;
  std::map<std::string, Row> rows_;            // by ID: creation order
  std::unordered_map<int64_t, Row*> by_seq_;   // the queues name rows by seq
  std::unordered_map<std::string, std::string> keys_;  // idempotency key -> ID
  std::set<std::tuple<std::string, int64_t, int64_t>> pending_;  // (fair key, due, seq)
  std::set<std::pair<int64_t, int64_t>> suspended_;              // (due, seq)
  std::unordered_map<std::string, std::vector<std::string>> children_;  // parent -> children, in order
  std::unordered_map<std::string, std::map<uint64_t, ChildResult>> results_;  // parent -> waiting results
  std::mt19937_64 rng_{std::random_device{}()};
  int64_t last_ms_ = 0;
  uint64_t counter_ = 0;
  int64_t next_seq_ = 0;
  uint64_t result_seq_ = 0;
  uint64_t claim_round_ = 0;
  Stats stats_;
};

}  // namespace

std::unique_ptr<Store> open_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace dispatch::scheduler
