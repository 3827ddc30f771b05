// The Store on a JetStream key-value bucket, for many dispatchd processes.
//
// Every call is in one record changed only by a compare-and-set on its
// revision: a record of its own ("c.<id>", records.proto), or a group
// ("g.<id>") holding the calls of one enqueue of several calls without
// idempotency keys, written whole at every change of a member. Whoever's
// write lands first wins, the other reads the record again and decides
// again. So a call is leased by one process at a time, and a finish under
// a lease that was lost is refused, whichever processes share the bucket.
//
// A transition that touches other records (a Poll's children, a result for
// the parent, cancelling descendants) is decided by one compare-and-set on
// the call, which also writes what it does to the others (Effects); then
// the effects are applied, each idempotently (create-if-absent children; a
// result taken only from a child its parent still waits for; cancelling
// what is not final yet) and cleared. A process that dies between the steps
// leaves the effects on the record, and any process's recovery applies
// them: a crash only repeats idempotent work. A record with effects is not
// leased until they are applied. An enqueue without idempotency keys
// that fits one record (one call, or a group: 64 calls, 32 KiB) is that
// record; any other enqueue of several records (a bigger batch cut into
// groups, or calls with idempotency keys) is written first as one batch
// record ("b.<id>", written once), then applied record by record
// (idempotency keys "k.<hex>" created if absent), then purged; recovery
// applies batches left behind.
//
// Each process keeps an index of every record (by state, fairness key and
// due time; children by parent) from a watcher over the bucket, updated at
// once by its own writes, so it sees the others' changes a moment later:
// claims pick candidates from it and the compare-and-set settles who gets
// them. Its own writes' echoes are checked against their acknowledgements:
// a watcher numbering apart from the stream's leader has the index listed
// again (check_echo, rebuild_index). Timers and delayed calls are due
// times in the records and the index; nothing is scheduled on the server.
//
// Writes run on the store's writer thread, which also runs their
// callbacks and, when idle, recovery. It works in rounds: the writes that
// do not depend on one another are sent together and their answers
// awaited once (Kv::write_all): the finishes (of distinct calls), the
// enqueues without idempotency keys and a claim waiting at the head of its
// queue, with the next steps of batches earlier rounds began; the changes
// of one group's members (finishes and leases) are one write of the group.
// A claim in the round of an enqueue writes the new calls it has room for
// already leased to it. Other writes (idempotency keys, cancel, retry,
// release, delete) run alone between rounds, in queue order.
//
// Not for: stateful functions (entity_store.cc; entities() opens one on
// first use), nor policy.
#include "dispatch/jetstream/jetstream_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "dispatch/jetstream/entity_store.h"
#include "dispatch/metrics/registry.h"
#include "jetstream/kv.h"
#include "jetstream/jetstream_store_testing.h"
#include "jetstream/records.h"

namespace dispatch::scheduler {
namespace {

using jetstream::Kv;
namespace pb = jetstream::pb;
using jetstream::call_key;
using jetstream::fair_key;
using jetstream::state_of;
using jetstream::to_record;

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr int kMaxRaces = 32;  // compare-and-set attempts on one record per write

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode(const google::protobuf::MessageLite& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

bool live(const pb::Call& c) { return c.state() != 0; }  // state 0: being deleted

void forget_poll(pb::Call& c) {
  c.set_polled(false);
  c.clear_poll_state();
  c.clear_poll_state_type_url();
  c.set_min_results(0);
  c.set_max_results(0);
  c.clear_poll_error_type();
  c.clear_poll_error_message();
  c.clear_outstanding();
  c.clear_results();
}

class JetStreamStore final : public Store {
 public:
  JetStreamStore(JetStreamOptions options, std::unique_ptr<Kv> kv)
      : options_(std::move(options)), kv_(std::move(kv)) {
    tag_ = static_cast<uint32_t>(rng_());
    if (options_.metrics) {
      round_seconds_ = &options_.metrics->histogram(
          "dispatch_store_commit_duration_seconds",
          "Time one group commit took, from BEGIN to COMMIT, in seconds (JetStream: one round of writes sent "
          "together, until every answer is in).",
          metrics::latency_buckets());
      round_writes_ = &options_.metrics->histogram(
          "dispatch_store_commit_writes",
          "Writes (dispatches, leases, outcomes...) folded into one group commit (JetStream: into one round).",
          metrics::size_buckets());
      rebuilds_counter_ = &options_.metrics->counter(
          "dispatch_store_index_rebuilds_total",
          "Times the JetStream store listed its bucket again because its watcher numbered changes apart from the "
          "stream's leader (a replica numbered apart, seen on nats-server 2.9.10 after a node restarted).");
    }
  }

  ~JetStreamStore() override {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    follower_.stop();
  }

  // Loads the index, applies what earlier processes left unapplied, and
  // starts the writer.
  Result<void> start() {
    Result<void> listed = follow_bucket();
    if (!listed.ok()) return listed;
    Result<void> recovered = recover(true);
    if (!recovered.ok()) return recovered;
    writer_ = std::thread([this] { write_loop(); });
    return {};
  }

  bool shared() const noexcept override { return true; }

  // The entities' store, opened on first use (its own connection and
  // bucket); null when that fails.
  EntityStore* entities() noexcept override {
    std::lock_guard<std::mutex> lock(entities_mu_);
    if (!entities_) {
      auto opened = open_jetstream_entity_store(options_);
      if (opened.ok()) entities_ = std::move(opened).value();
    }
    return entities_.get();
  }

  void enqueue(std::vector<NewCall> calls, int64_t now_ms, Done<std::vector<std::string>> done) override {
    const bool keyed =
        std::any_of(calls.begin(), calls.end(), [](const NewCall& c) { return !c.idempotency_key.empty(); });
    if (keyed || calls.empty()) {
      post([this, calls = std::move(calls), now_ms, done = std::move(done)]() mutable {
        done(do_enqueue(std::move(calls), now_ms));
      });
      return;
    }
    Task task;
    task.enqueue = std::make_unique<Enqueue>();
    task.enqueue->calls = std::move(calls);
    task.enqueue->now_ms = now_ms;
    task.enqueue->done = std::move(done);
    post(std::move(task));
  }

  void claim(ClaimOptions o, Done<std::vector<CallRecord>> done) override {
    Task task;
    task.claim = std::make_unique<Claim>();
    task.claim->o = std::move(o);
    task.claim->done = std::move(done);
    post(std::move(task));
  }

  void finish(std::string id, uint64_t lease, Outcome outcome, int64_t now_ms, Done<bool> done) override {
    Task task;
    task.finish = std::make_unique<Finish>(Finish{std::move(id), lease, std::move(outcome), now_ms, std::move(done)});
    post(std::move(task));
  }

  void cancel(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    post([this, id = std::move(id), now_ms, done = std::move(done)]() mutable { done(do_cancel(id, now_ms)); });
  }

  void retry(std::string id, int64_t now_ms, Done<CallRecord> done) override {
    post([this, id = std::move(id), now_ms, done = std::move(done)]() mutable { done(do_retry(id, now_ms)); });
  }

  void release_leases(int64_t now_ms, bool all, Done<std::size_t> done) override {
    post([this, now_ms, all, done = std::move(done)]() mutable { done(do_release(now_ms, all)); });
  }

  void delete_ended(int64_t ended_before_ms, Done<std::size_t> done) override {
    std::vector<std::string> ids;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, row] : rows_) {
        const pb::Call& c = row.call;
        if (deletable(c, ended_before_ms)) ids.push_back(id);
      }
    }
    delete_batch(std::move(ids), 0, ended_before_ms, 0, std::move(done));
  }

  Result<std::optional<CallRecord>> get(std::string_view id) override {
    auto row = load(std::string(id));
    if (!row.ok()) return std::move(row).error();
    if (!*row) return std::optional<CallRecord>();
    return std::optional<CallRecord>(to_record((*row)->call));
  }

  Result<std::vector<CallRecord>> list(std::optional<CallState> state, std::size_t limit,
                                       std::string_view after_id) override {
    if (state && (static_cast<int>(*state) < 1 || static_cast<int>(*state) > 6)) {
      return Error(Code::invalid_argument, "no call state numbered " + std::to_string(static_cast<int>(*state)));
    }
    // IDs sort in creation order, so a page goes on after `after_id` even
    // when that call was deleted since; an ID of no shape is unknown.
    if (!after_id.empty() &&
        (after_id.size() != 32 || after_id.find_first_not_of("0123456789abcdef") != std::string_view::npos)) {
      return Error(Code::not_found, "no call has ID " + std::string(after_id));
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (auto e = await_listing(lock)) return std::move(*e);
    std::vector<CallRecord> out;
    auto it = after_id.empty() ? rows_.begin() : rows_.upper_bound(std::string(after_id));
    for (; it != rows_.end() && out.size() < limit; ++it) {
      if (!state || state_of(it->second.call) == *state) out.push_back(to_record(it->second.call));
    }
    return out;
  }

  Result<std::vector<CallRecord>> list_children(std::string_view parent_id, std::size_t limit,
                                                std::string_view after_id) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto e = await_listing(lock)) return std::move(*e);
    std::vector<CallRecord> out;
    auto kids = children_.find(std::string(parent_id));
    if (!after_id.empty() && rows_.count(std::string(after_id)) == 0) {
      return Error(Code::not_found, "no call has ID " + std::string(after_id));
    }
    if (kids == children_.end()) return out;
    auto it = after_id.empty() ? kids->second.begin() : kids->second.upper_bound(std::string(after_id));
    for (; it != kids->second.end() && out.size() < limit; ++it) {
      auto row = rows_.find(*it);
      if (row != rows_.end()) out.push_back(to_record(row->second.call));
    }
    return out;
  }

  Result<std::optional<int64_t>> next_due_ms() override {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto e = await_listing(lock)) return std::move(*e);
    std::optional<int64_t> due;
    if (!suspended_.empty()) due = suspended_.begin()->first;
    for (const auto& [key, queue] : pending_) {
      if (!queue.empty() && (!due || queue.begin()->first < *due)) due = queue.begin()->first;
    }
    return due;
  }

  Result<std::vector<int64_t>> count_by_state() override {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto e = await_listing(lock)) return std::move(*e);
    std::vector<int64_t> out(7, 0);
    for (const auto& [id, row] : rows_) {
      const auto s = static_cast<std::size_t>(row.call.state());
      if (s < out.size()) out[s]++;
    }
    return out;
  }

  Stats stats() const override {
    Stats s;
    s.writes = writes_.load();
    s.commits = commits_.load();
    s.deleted = deleted_.load();
    return s;
  }

 private:
  struct Row {
    pb::Call call;
    uint64_t revision = 0;  // the record's (a group's, for its members: cached() fills it in)
    std::string group;      // the key of the group that holds it; empty for a call of its own
  };
  // A group in the index: its revision and its members' IDs, in order.
  struct GroupRow {
    uint64_t revision = 0;
    std::vector<std::string> ids;
  };
  // erase: the call leaves its group (deletion; members only).
  enum class Verdict { write, keep, erase };
  struct Mutated {
    bool written = false;
    std::optional<Row> row;  // as written, or as found
  };

  // ---- the writer thread ----

  struct Finish {
    std::string id;
    uint64_t lease = 0;
    Outcome outcome;
    int64_t now_ms = 0;
    Done<bool> done;
  };
  // An enqueue none of whose calls has an idempotency key. Several calls
  // take three rounds: their batch record, the calls, the record's
  // removal (answered after the second); one call is one write.
  struct Enqueue {
    std::vector<NewCall> calls;
    int64_t now_ms = 0;
    Done<std::vector<std::string>> done;
    pb::Batch batch;        // the calls with their IDs, from the round that takes it
    std::string batch_key;  // "b.<first ID>" when the calls are in several records, written after it
  };
  // A claim: its picks from the index, their leases written in a round;
  // the calls whose lease lost a race are settled one at a time after it.
  struct Claim {
    ClaimOptions o;
    Done<std::vector<CallRecord>> done;
    uint64_t lease = 0;
    std::vector<std::string> picks;
    std::vector<std::optional<pb::Call>> won;
    std::vector<std::size_t> one_by_one;
    std::vector<std::pair<std::size_t, std::size_t>> sent;  // pick, its edit
    std::size_t room = 0;                                 // calls of the round's enqueues it may still take
    std::vector<pb::Call> made;                           // those written already leased to it
    std::optional<Error> failure;                         // the first write of its that failed
  };
  // Finishes taken together: each one decided on the index's copy is
  // written in the round; the others are settled one at a time after it.
  struct Finishes {
    std::vector<Finish> each;
    std::vector<std::size_t> one_by_one;
    std::vector<std::pair<std::size_t, std::size_t>> sent;  // finish, its edit
  };
  // A change of one call a round decided on the index's copy of its
  // record (a finish, a lease). The edits of one group's calls go in one
  // write of the group.
  struct Edit {
    std::string id;
    std::string group;      // its group's key; empty for a call of its own
    uint64_t revision = 0;  // the record's, as decided on
    pb::Call next;
  };
  // A finish, an enqueue without idempotency keys, a claim, or any other
  // write (run alone, between rounds).
  struct Task {
    std::function<void()> run;
    std::unique_ptr<Finish> finish;
    std::unique_ptr<Enqueue> enqueue;
    std::unique_ptr<Claim> claim;
  };
  // What one round writes, sent together and awaited once
  // (Kv::write_all): the tasks at the head of the queue that can go
  // together (finishes of distinct calls, enqueues without idempotency
  // keys, one claim), in queue order and never past another write, and
  // the next steps of batches taken by earlier rounds.
  struct Round {
    std::vector<std::unique_ptr<Enqueue>> recording;  // their batch records
    std::vector<std::unique_ptr<Enqueue>> creating;   // their calls
    std::vector<std::string> removing;                // batch records applied
    Finishes finishes;
    std::unique_ptr<Claim> claim;
    bool taken() const { return !recording.empty() || !creating.empty() || !finishes.each.empty() || claim; }
  };
  static constexpr std::size_t kMaxFinishes = 256;
  static constexpr std::size_t kMaxRoundCalls = 1024;  // new calls a round takes (at least one enqueue)
  // An enqueue of several calls is one group record when it has at most
  // so many calls, of at most so many bytes in all: every change of a
  // member writes the group whole, and members that end one at a time
  // (long calls, a quiet load) write it once each, so a group stays small.
  // A larger enqueue is a batch record, then groups of these bounds.
  static constexpr std::size_t kGroupCalls = 64;
  static constexpr std::size_t kGroupBytes = 32 * 1024;
  static_assert(kGroupCalls <= jetstream::kMaxGroupCalls, "a member's place is 3 hex digits (records.h)");

  void post(std::function<void()> run) {
    Task task;
    task.run = std::move(run);
    post(std::move(task));
  }
  void post(Task task) {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      queue_.push_back(std::move(task));
    }
    queue_cv_.notify_one();
  }

  void write_loop() {
    int64_t last_recovery = wall_ms();
    for (;;) {
      if (diverged_) (void)rebuild_index();  // failures: tried again before the next round
      Round round;
      round.creating = std::move(next_creating_);
      round.removing = std::move(next_removing_);
      next_creating_.clear();
      next_removing_.clear();
      const bool carried = !round.creating.empty() || !round.removing.empty();
      std::function<void()> run;
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        if (!carried) {
          queue_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_ || !queue_.empty(); });
        }
        writes_ += take_round(round);
        if (!round.taken() && !carried) {
          if (!queue_.empty()) {
            run = std::move(queue_.front().run);
            queue_.pop_front();
          } else if (stopping_) {
            return;
          }
        }
      }
      if (run) {
        writes_++;
        run();
      } else if (round.taken() || carried) {
        write_round(round);
      }
      if (wall_ms() - last_recovery >= 1000) {
        last_recovery = wall_ms();
        (void)recover(false);  // failures: tried again in a second
      }
    }
  }

  // Under queue_mu_: moves the tasks at the head of the queue that can
  // share a round into it; returns how many.
  std::size_t take_round(Round& round) {
    std::set<std::string> finishing;
    std::size_t calls = 0;
    std::size_t taken = 0;
    while (!queue_.empty()) {
      Task& t = queue_.front();
      if (t.finish) {
        if (round.finishes.each.size() >= kMaxFinishes || !finishing.insert(t.finish->id).second) break;
        round.finishes.each.push_back(std::move(*t.finish));
      } else if (t.enqueue) {
        const std::size_t n = t.enqueue->calls.size();
        if (calls > 0 && calls + n > kMaxRoundCalls) break;
        calls += n;
        Enqueue& e = *t.enqueue;
        std::vector<std::size_t> sizes;
        for (NewCall& c : e.calls) {
          pb::NewCall* made = e.batch.add_calls();
          *made = jetstream::to_new_call(std::move(c), std::string(), e.now_ms);
          sizes.push_back(made->ByteSizeLong() + 64);  // and the ID and a lease, when the call is written
        }
        e.calls.clear();
        e.batch.set_written_at_ms(wall_ms());
        // One record (a call alone, or a group) is created whole or not at
        // all; several go through a batch record first.
        if (name_records(e, sizes) == 1) {
          round.creating.push_back(std::move(t.enqueue));
        } else {
          e.batch_key = std::string(jetstream::kBatchPrefix) + e.batch.calls(0).id();
          round.recording.push_back(std::move(t.enqueue));
        }
      } else if (t.claim) {
        if (round.claim) break;
        round.claim = std::move(t.claim);
      } else {
        break;
      }
      queue_.pop_front();
      ++taken;
    }
    return taken;
  }

  // Gives the calls of `e` their IDs, which say their records: a call
  // alone is a call of its own; several are cut, in order, into groups of
  // at most kGroupCalls calls and kGroupBytes (`sizes`, each call's), a
  // call too big for a group alone being a call of its own. Returns how
  // many records that makes.
  std::size_t name_records(Enqueue& e, const std::vector<std::size_t>& sizes) {
    const std::size_t count = sizes.size();
    std::size_t records = 0;
    for (std::size_t from = 0; from < count; ++records) {
      std::size_t to = from, bytes = 0;
      while (to < count && to - from < kGroupCalls && (to == from || bytes + sizes[to] <= kGroupBytes)) {
        bytes += sizes[to++];
      }
      if (to - from == 1) {
        e.batch.mutable_calls(static_cast<int>(from))->set_id(new_id(e.now_ms));
      } else {
        std::vector<std::string> ids = new_group_ids(e.now_ms, to - from);
        for (std::size_t i = from; i < to; ++i) e.batch.mutable_calls(static_cast<int>(i))->set_id(std::move(ids[i - from]));
      }
      from = to;
    }
    return records;
  }

  // A record to create: a call of its own, or a group (`key` set).
  struct NewRecord {
    std::string key;  // the group's; empty for a call of its own
    pb::Group calls;  // a call of its own: the one
  };
  // The records `calls` go in, by their IDs (name_records), in order.
  static std::vector<NewRecord> records_of(std::vector<pb::Call> calls) {
    std::vector<NewRecord> out;
    for (pb::Call& c : calls) {
      std::string key = jetstream::group_of(c.id());
      if (key.empty() || out.empty() || out.back().key != key) out.push_back(NewRecord{std::move(key), {}});
      *out.back().calls.add_calls() = std::move(c);
    }
    return out;
  }
  static Kv::Write creation(const NewRecord& r) {
    if (r.key.empty()) return Kv::Write{call_key(r.calls.calls(0).id()), encode(r.calls.calls(0)), 0};
    return Kv::Write{r.key, encode(r.calls), 0};
  }
  // Under mu_: a record created at `revision`, in the index.
  void index_created(NewRecord r, uint64_t revision) {
    if (r.key.empty()) {
      pb::Call& c = *r.calls.mutable_calls(0);
      const std::string id = c.id();
      index_put(id, std::move(c), revision);
    } else {
      index_put_group(r.key, std::move(r.calls), revision);
    }
  }

  void write_round(Round& round) {
    std::vector<Kv::Write> writes;
    for (const auto& e : round.recording) writes.push_back(Kv::Write{e->batch_key, encode(e->batch), 0});
    for (const std::string& key : round.removing) writes.push_back(Kv::Write{key, {}, 0, true});
    std::vector<Edit> edits;
    prepare_finishes(round.finishes, edits);
    if (round.claim) prepare_claim(*round.claim, edits);
    const std::size_t edits_from = writes.size();
    const std::vector<std::size_t> edit_write = place_edits(edits, writes);
    const std::size_t edits_to = writes.size();
    // The calls the round creates, each record in one write; those a
    // claim in the same round has room for are written already leased to
    // it (one write where a create and a lease were two), after the due
    // calls it picked from the index.
    std::vector<std::vector<NewRecord>> made(round.creating.size());
    std::set<std::string> leased;  // IDs
    for (std::size_t k = 0; k < round.creating.size(); ++k) {
      const auto& e = round.creating[k];
      std::vector<pb::Call> calls;
      for (const pb::NewCall& n : e->batch.calls()) {
        calls.push_back(jetstream::to_call(n));
        pb::Call& call = calls.back();
        // Due at its creation (a clock behind the enqueue's by a moment
        // does not make it early), and not from a parent's effects.
        Claim* claim = round.claim.get();
        const bool lease = claim != nullptr && claim->room > 0 && call.parent_id().empty() &&
                           n.not_before_ms() <= std::max(n.now_ms(), claim->o.now_ms) && !skipped(call, claim->o);
        if (lease) {
          take_lease(call, claim->o, claim->lease);
          --claim->room;
          leased.insert(call.id());
        }
      }
      made[k] = records_of(std::move(calls));
      for (const NewRecord& r : made[k]) writes.push_back(creation(r));
    }

    const std::vector<std::string> echoed = expect_echoes(writes);
    const auto began = std::chrono::steady_clock::now();
    const std::size_t sending = writes.size();
    auto answers = kv_->write_all(std::move(writes));
    echoes_acked(echoed, answers);
    commits_ += answers.size();
    if (round_seconds_ != nullptr && sending > 0) {
      round_seconds_->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
      round_writes_->observe(static_cast<double>(sending));
    }
    std::size_t at = 0;
    // Batch records: the calls go in the next round.
    for (auto& e : round.recording) {
      auto& a = answers[at++];
      if (!a.ok()) {
        e->done(std::move(a).error());
      } else if (!*a) {
        e->done(
            Error(Code::internal, "batch key " + e->batch_key + " is taken in JetStream bucket " + options_.bucket));
      } else {
        next_creating_.push_back(std::move(e));
      }
    }
    at += round.removing.size();  // failures: recovery removes what is left
    // Each edit's outcome is its write's; an edit whose group had moved on
    // in the index lost its race.
    std::vector<Result<std::optional<uint64_t>>> edited;
    edited.reserve(edits.size());
    for (std::size_t w : edit_write) {
      edited.push_back(w == kNoWrite ? Result<std::optional<uint64_t>>(std::optional<uint64_t>())
                                     : answers[edits_from + w]);
    }
    settle_edits(edits, edited);
    settle_finishes(round.finishes, edits, edited);
    if (round.claim) settle_leases(*round.claim, edits, edited);
    at = edits_to;
    // Calls: each enqueue answered with its IDs; a batch's record is
    // removed in the next round, or left to recovery when a call failed.
    for (std::size_t k = 0; k < round.creating.size(); ++k) {
      auto& e = round.creating[k];
      std::optional<Error> failure;
      std::vector<std::string> ids;
      for (const pb::NewCall& n : e->batch.calls()) ids.push_back(n.id());
      for (NewRecord& r : made[k]) {
        auto& a = answers[at++];
        if (!a.ok()) {
          if (!failure) failure = std::move(a).error();
        } else if (*a) {
          for (const pb::Call& c : r.calls.calls()) {
            if (leased.count(c.id()) > 0) round.claim->made.push_back(c);
          }
          std::lock_guard<std::mutex> lock(mu_);
          index_created(std::move(r), **a);
        } else if (e->batch_key.empty() && !failure) {
          failure = Error(Code::internal, "record " + creation(r).key + " is taken in JetStream bucket " +
                                              options_.bucket);
        }  // else a batch's record written before (recovery applied it)
      }
      if (failure) {
        e->done(std::move(*failure));
        continue;
      }
      if (!e->batch_key.empty()) next_removing_.push_back(e->batch_key);
      e->done(std::move(ids));
    }
    if (round.claim) hand_over(*round.claim);
  }

  static constexpr std::size_t kNoWrite = std::numeric_limits<std::size_t>::max();

  // The round's edits as writes, appended to `writes`: one per call of its
  // own, one per group (its edited calls, and the others as the index has
  // them). Returns, for each edit, its write's place among those appended;
  // kNoWrite when its group is no longer at the revision it was decided on
  // (a lost race, settled one at a time).
  std::vector<std::size_t> place_edits(const std::vector<Edit>& edits, std::vector<Kv::Write>& writes) {
    std::vector<std::size_t> out(edits.size(), kNoWrite);
    const std::size_t from = writes.size();
    std::vector<std::string> groups;  // in order of first edit
    std::unordered_map<std::string, std::vector<std::size_t>> by_group;
    for (std::size_t i = 0; i < edits.size(); ++i) {
      const Edit& e = edits[i];
      if (e.group.empty()) {
        out[i] = writes.size() - from;
        writes.push_back(Kv::Write{call_key(e.id), encode(e.next), e.revision});
        continue;
      }
      auto& members = by_group[e.group];
      if (members.empty()) groups.push_back(e.group);
      members.push_back(i);
    }
    for (const std::string& key : groups) {
      const auto& members = by_group[key];
      const uint64_t revision = edits[members.front()].revision;
      std::vector<std::pair<std::string, const pb::Call*>> next;
      bool same = true;
      for (std::size_t i : members) {
        same = same && edits[i].revision == revision;
        next.emplace_back(edits[i].id, &edits[i].next);
      }
      if (!same) continue;
      std::optional<std::string> value;
      {
        std::lock_guard<std::mutex> lock(mu_);
        value = encode_group(key, revision, next, {});
      }
      if (!value) continue;
      for (std::size_t i : members) out[i] = writes.size() - from;
      writes.push_back(Kv::Write{key, std::move(*value), revision});
    }
    return out;
  }

  // The index after the round's edits: each written one at its record's
  // new revision.
  void settle_edits(const std::vector<Edit>& edits, const std::vector<Result<std::optional<uint64_t>>>& answers) {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < edits.size(); ++i) {
      if (!answers[i].ok() || !*answers[i]) continue;
      const Edit& e = edits[i];
      if (e.group.empty()) {
        index_put(e.id, e.next, **answers[i]);
      } else {
        index_put_members(e.group, **answers[i], {{e.id, &e.next}}, {});
      }
    }
  }

  // ---- the index ----

  void watch_loop() {
    Kv::Change change;
    const auto caught_up = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      caught_up_ = true;
      mu_cv_.notify_all();
    };
    while (follower_.next_change(change, caught_up)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        change.revision += revision_shift_;
        if (!echoes_.empty() && !change.deleted) check_echo(change);
      }
      const std::string& key = change.key;
      if (key.compare(0, jetstream::kCallPrefix.size(), jetstream::kCallPrefix) == 0) {
        const std::string id = key.substr(jetstream::kCallPrefix.size());
        // This process's own writes are in the index already, at their
        // revision or a later one: their echo is not parsed again (three
        // records per call), it would change nothing. Others' records are
        // parsed outside the lock, which the writer takes for every call
        // it decides on.
        if (!change.deleted) {
          std::lock_guard<std::mutex> lock(mu_);
          auto known = rows_.find(id);
          if (known != rows_.end() && known->second.revision >= change.revision && live(known->second.call)) continue;
        }
        pb::Call call;
        const bool parsed = !change.deleted && call.ParseFromString(change.value);
        std::lock_guard<std::mutex> lock(mu_);
        if (!parsed) {
          index_erase(id, change.revision);
          tombstones_.erase(id);
        } else if (!live(call)) {
          index_erase(id, change.revision);
          tombstones_[id] = change.revision;
        } else {
          index_put(id, std::move(call), change.revision);
        }
      } else if (key.compare(0, jetstream::kGroupPrefix.size(), jetstream::kGroupPrefix) == 0) {
        // As a call's: this process's own writes are in the index already.
        if (!change.deleted) {
          std::lock_guard<std::mutex> lock(mu_);
          auto known = groups_.find(key);
          if (known != groups_.end() && known->second.revision >= change.revision) continue;
        }
        pb::Group group;
        const bool parsed = !change.deleted && group.ParseFromString(change.value);
        std::lock_guard<std::mutex> lock(mu_);
        if (!parsed) {
          index_erase_group(key, change.revision);
        } else {
          index_put_group(key, std::move(group), change.revision);
        }
      } else if (key.compare(0, jetstream::kBatchPrefix.size(), jetstream::kBatchPrefix) == 0) {
        std::lock_guard<std::mutex> lock(mu_);
        if (change.deleted) {
          batches_.erase(key);
        } else {
          batches_.insert(key);
        }
      }
    }
  }

  // The watcher's numbering, checked against the leader's. A watcher is a
  // consumer the cluster may place on any replica, and on nats-server
  // 2.9.10 a replica was seen numbering apart from the leader after a node
  // was SIGKILLed and restarted. Its revisions would then stay in the
  // index: every compare-and-set decided on them would be lost and read
  // again (or, should one equal a newer revision of the same record, won on
  // a stale copy). So the writes of rounds and of mutate() are compared, by
  // their value's hash, with their echoes from the watcher, and on a
  // mismatch the index is rebuilt from a new watcher (rebuild_index) before
  // the next round. The echo may come before or after the acknowledgement.
  struct Echo {
    std::size_t hash = 0;
    uint64_t acked = 0;  // the leader's revision
    uint64_t seen = 0;   // the watcher's
  };
  static constexpr std::size_t kMaxEchoes = 16384;  // a bound, should echoes stop coming

  void expect_echo(const std::string& key, const std::string& value) {
    const std::size_t hash = std::hash<std::string>{}(value);
    std::lock_guard<std::mutex> lock(mu_);
    if (echoes_.size() >= kMaxEchoes) echoes_.clear();
    echoes_[key] = Echo{hash, 0, 0};
  }
  // A round's: returns the keys awaited, in the writes' order (empty for
  // removals), for echoes_acked().
  std::vector<std::string> expect_echoes(const std::vector<Kv::Write>& writes) {
    std::vector<std::string> keys(writes.size());
    std::vector<std::size_t> hashes(writes.size());
    for (std::size_t i = 0; i < writes.size(); ++i) {
      if (writes[i].remove) continue;
      keys[i] = writes[i].key;
      hashes[i] = std::hash<std::string>{}(writes[i].value);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (echoes_.size() + writes.size() > kMaxEchoes) echoes_.clear();
    for (std::size_t i = 0; i < writes.size(); ++i) {
      if (!keys[i].empty()) echoes_[keys[i]] = Echo{hashes[i], 0, 0};
    }
    return keys;
  }
  void echoes_acked(const std::vector<std::string>& keys, const std::vector<Result<std::optional<uint64_t>>>& answers) {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < keys.size() && i < answers.size(); ++i) {
      if (!keys[i].empty()) acked(keys[i], answers[i].ok() && *answers[i] ? **answers[i] : 0);
    }
  }
  void echo_acked(const std::string& key, uint64_t revision) {
    std::lock_guard<std::mutex> lock(mu_);
    acked(key, revision);
  }
  // Under mu_. `revision` 0: the write failed or lost its race; nothing to
  // compare.
  void acked(const std::string& key, uint64_t revision) {
    auto echo = echoes_.find(key);
    if (echo == echoes_.end()) return;
    if (revision == 0) {
      echoes_.erase(echo);
      return;
    }
    echo->second.acked = revision;
    settle_echo(echo);
  }
  // Under mu_.
  void check_echo(const Kv::Change& change) {
    auto echo = echoes_.find(change.key);
    if (echo == echoes_.end() || echo->second.seen != 0 ||
        std::hash<std::string>{}(change.value) != echo->second.hash) {
      return;  // not ours, or ours overwritten before the watcher got it
    }
    echo->second.seen = change.revision;
    settle_echo(echo);
  }
  void settle_echo(std::unordered_map<std::string, Echo>::iterator echo) {
    if (echo->second.acked == 0 || echo->second.seen == 0) return;
    if (echo->second.acked != echo->second.seen) {
      diverged_ = true;
    } else {
      numbered_as_leader_ = true;
    }
    echoes_.erase(echo);
  }

  // Under mu_ (held by `lock`): waits while the index is listed again
  // (rebuild_index); unavailable after the store's timeout.
  std::optional<Error> await_listing(std::unique_lock<std::mutex>& lock) {
    if (caught_up_) return std::nullopt;
    if (mu_cv_.wait_for(lock, options_.timeout, [this] { return caught_up_; })) return std::nullopt;
    return Error(Code::unavailable, "JetStream bucket " + options_.bucket +
                                        " is being listed again and did not finish within " +
                                        std::to_string(options_.timeout.count()) + " ms");
  }

  // A new watcher over the bucket and its thread; returns once it has
  // listed every record present (unavailable after the timeout). A watcher
  // that cannot be made leaves the index marked diverged, to be tried
  // again.
  Result<void> follow_bucket() {
    Result<void> listed = follower_.start_and_list(
        *kv_, [this] { watch_loop(); }, mu_, mu_cv_, [this] { return caught_up_; }, options_.timeout);
    if (!listed.ok() && !follower_.started()) diverged_ = true;
    return listed;
  }

  // On the writer thread, between rounds: the index again from a new
  // watcher (a new consumer, which the cluster may place on another
  // replica), everything the old one delivered dropped. Reads of the index
  // wait meanwhile (await_listing).
  Result<void> rebuild_index() {
    follower_.stop();
    {
      std::lock_guard<std::mutex> lock(mu_);
      rows_.clear();
      groups_.clear();
      pending_.clear();
      suspended_.clear();
      children_.clear();
      gone_.clear();
      tombstones_.clear();
      batches_.clear();
      echoes_.clear();
      caught_up_ = false;
      numbered_as_leader_ = false;
      revision_shift_ = 0;
      diverged_ = false;
    }
    ++rebuilds_;
    if (rebuilds_counter_ != nullptr) rebuilds_counter_->inc();
    return follow_bucket();
  }

 public:
  // For tests (jetstream_store_testing.h).
  void shift_index_revisions(uint64_t by) {
    std::lock_guard<std::mutex> lock(mu_);
    revision_shift_ = by;
  }
  uint64_t index_rebuilds() const { return rebuilds_.load(); }
  std::optional<uint64_t> index_revision(const std::string& id) {
    auto row = cached(id);
    if (!row) return std::nullopt;
    return row->revision;
  }

 private:
  // All under mu_. A change older than what the index has is ignored.
  // Whether a change at `revision` of `key` (a call's ID, or a group's
  // key) is older than its removal here; a newer one ends the guard.
  bool removed_since(const std::string& key, uint64_t revision) {
    auto gone = gone_.find(key);
    if (gone == gone_.end()) return false;
    if (revision <= gone->second) return true;
    gone_.erase(gone);
    return false;
  }
  // A call of its own ("c.<id>").
  void index_put(const std::string& id, pb::Call call, uint64_t revision) {
    if (removed_since(id, revision)) return;
    auto it = rows_.find(id);
    if (it != rows_.end() && it->second.revision >= revision) return;
    upsert_row(id, std::move(call), revision, std::string());
  }
  void index_erase(const std::string& id, uint64_t revision) {
    (void)removed_since(id, revision);
    auto it = rows_.find(id);
    if (it == rows_.end() || it->second.revision > revision) return;
    drop_row(it);
  }
  // A group as a whole ("g.<id>"): members it no longer has leave the index.
  void index_put_group(const std::string& key, pb::Group group, uint64_t revision) {
    if (removed_since(key, revision)) return;
    auto g = groups_.find(key);
    if (g != groups_.end() && g->second.revision >= revision) return;
    std::vector<std::string> ids;
    ids.reserve(static_cast<std::size_t>(group.calls_size()));
    for (const pb::Call& c : group.calls()) ids.push_back(c.id());
    if (g != groups_.end()) {
      const std::set<std::string> kept(ids.begin(), ids.end());
      for (const std::string& id : g->second.ids) {
        auto it = rows_.find(id);
        if (kept.count(id) == 0 && it != rows_.end()) drop_row(it);
      }
    }
    for (pb::Call& c : *group.mutable_calls()) {
      std::string id = c.id();
      upsert_row(id, std::move(c), revision, key);
    }
    groups_[key] = GroupRow{revision, std::move(ids)};
  }
  // Members written by this process at `revision` (the others are as
  // they were): `next` changed, `dropped` gone from the group.
  void index_put_members(const std::string& key, uint64_t revision,
                         const std::vector<std::pair<std::string, const pb::Call*>>& next,
                         const std::set<std::string>& dropped) {
    auto g = groups_.find(key);
    if (g == groups_.end() || g->second.revision > revision) return;
    g->second.revision = revision;
    for (const auto& [id, call] : next) upsert_row(id, *call, revision, key);
    if (dropped.empty()) return;
    auto& ids = g->second.ids;
    ids.erase(std::remove_if(ids.begin(), ids.end(), [&](const std::string& id) { return dropped.count(id) > 0; }),
              ids.end());
    for (const std::string& id : dropped) {
      auto it = rows_.find(id);
      if (it != rows_.end()) drop_row(it);
    }
  }
  void index_erase_group(const std::string& key, uint64_t revision) {
    (void)removed_since(key, revision);
    auto g = groups_.find(key);
    if (g == groups_.end() || g->second.revision > revision) return;
    for (const std::string& id : g->second.ids) {
      auto it = rows_.find(id);
      if (it != rows_.end()) drop_row(it);
    }
    groups_.erase(g);
  }
  void upsert_row(const std::string& id, pb::Call call, uint64_t revision, const std::string& group) {
    auto it = rows_.find(id);
    if (it != rows_.end()) {
      unqueue(it->second.call);
      it->second.call = std::move(call);
      it->second.revision = revision;
      it->second.group = group;
    } else {
      it = rows_.emplace(id, Row{std::move(call), revision, group}).first;
      if (!it->second.call.parent_id().empty()) children_[it->second.call.parent_id()].insert(id);
    }
    enqueue_index(it->second.call);
  }
  void drop_row(std::map<std::string, Row>::iterator it) {
    unqueue(it->second.call);
    const std::string& parent = it->second.call.parent_id();
    if (!parent.empty()) {
      auto kids = children_.find(parent);
      if (kids != children_.end()) {
        kids->second.erase(it->first);
        if (kids->second.empty()) children_.erase(kids);
      }
    }
    rows_.erase(it);
  }
  // Under mu_: group `key` as the index has it at `revision`, with the
  // calls in `next` changed and those in `drop` left out, encoded as a
  // Group record; nullopt when the index has the group at another
  // revision, or without one of those calls (it moved on: decide again).
  std::optional<std::string> encode_group(const std::string& key, uint64_t revision,
                                          const std::vector<std::pair<std::string, const pb::Call*>>& next,
                                          const std::set<std::string>& drop) {
    auto g = groups_.find(key);
    if (g == groups_.end() || g->second.revision != revision) return std::nullopt;
    std::unordered_map<std::string_view, const pb::Call*> changed;
    for (const auto& [id, call] : next) changed.emplace(id, call);
    std::size_t found = 0;
    for (const std::string& id : g->second.ids) found += changed.count(id) + drop.count(id);
    if (found != changed.size() + drop.size()) return std::nullopt;
    std::string out;
    {
      google::protobuf::io::StringOutputStream sink(&out);
      google::protobuf::io::CodedOutputStream coded(&sink);
      constexpr uint32_t kCallsTag = (1 << 3) | 2;  // Group.calls, length-delimited
      for (const std::string& id : g->second.ids) {
        if (drop.count(id) > 0) continue;
        auto c = changed.find(id);
        const pb::Call& call = c != changed.end() ? *c->second : rows_.at(id).call;
        coded.WriteTag(kCallsTag);
        coded.WriteVarint32(static_cast<uint32_t>(call.ByteSizeLong()));
        call.SerializeWithCachedSizes(&coded);
      }
    }
    return out;
  }
  void enqueue_index(const pb::Call& c) {
    if (state_of(c) == CallState::pending) {
      pending_[fair_key(c)].emplace(c.next_attempt_at_ms(), c.id());
    } else if (state_of(c) == CallState::suspended) {
      suspended_.emplace(c.next_attempt_at_ms(), c.id());
    }
  }
  void unqueue(const pb::Call& c) {
    if (state_of(c) == CallState::pending) {
      auto q = pending_.find(fair_key(c));
      if (q != pending_.end()) {
        q->second.erase(std::make_pair(c.next_attempt_at_ms(), c.id()));
        if (q->second.empty()) pending_.erase(q);
      }
    } else if (state_of(c) == CallState::suspended) {
      suspended_.erase(std::make_pair(c.next_attempt_at_ms(), c.id()));
    }
  }

  // The index's copy of a call to decide a write on: none (read the
  // server's) until an echo of this process's own writes has shown the
  // watcher numbering as the stream's leader does (numbered_as_leader_),
  // after the bucket was listed. A revision numbered apart that happened
  // to equal the record's next real one would have a compare-and-set won
  // on a stale copy, which for a group would write its other members back
  // as they were.
  std::optional<Row> decidable(const std::string& id) {
    if (!numbered_as_leader_) return std::nullopt;
    return cached(id);
  }
  std::optional<Row> cached(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rows_.find(id);
    if (it == rows_.end()) return std::nullopt;
    Row row = it->second;
    if (!row.group.empty()) {
      auto g = groups_.find(row.group);
      row.revision = g != groups_.end() ? g->second.revision : 0;
    }
    return row;
  }

  // The record as the server has it now (and the index with it).
  // For a member of a group, `whole` (when given) gets the group as read.
  Result<std::optional<Row>> load(const std::string& id, pb::Group* whole = nullptr) {
    const std::string group = jetstream::group_of(id);
    if (!group.empty()) return load_member(id, group, whole);
    auto e = kv_->get(call_key(id));
    if (!e.ok()) return std::move(e).error();
    if (!*e) return std::optional<Row>();
    Row row;
    row.revision = (*e)->revision;
    if (!row.call.ParseFromString((*e)->value)) {
      return Error(Code::data_loss, "record " + call_key(id) + " in JetStream bucket " + options_.bucket +
                                        " is not a dispatch.jetstream.v1.Call");
    }
    if (!live(row.call)) return std::optional<Row>();
    std::lock_guard<std::mutex> lock(mu_);
    index_put(id, row.call, row.revision);
    return std::optional<Row>(std::move(row));
  }
  Result<std::optional<Row>> load_member(const std::string& id, const std::string& key, pb::Group* whole) {
    auto e = kv_->get(key);
    if (!e.ok()) return std::move(e).error();
    if (!*e) return std::optional<Row>();
    pb::Group group;
    if (!group.ParseFromString((*e)->value)) {
      return Error(Code::data_loss,
                   "record " + key + " in JetStream bucket " + options_.bucket + " is not a dispatch.jetstream.v1.Group");
    }
    std::optional<Row> found;
    for (const pb::Call& c : group.calls()) {
      if (c.id() == id) found = Row{c, (*e)->revision, key};
    }
    if (whole != nullptr) *whole = group;
    std::lock_guard<std::mutex> lock(mu_);
    index_put_group(key, std::move(group), (*e)->revision);
    return found;
  }

  // Changes record `id` by compare-and-set: `decide` sees the record (null
  // when there is none) and changes it (write) or not (keep); a lost race
  // reads the record again and decides again. A decision to keep made on
  // the index's copy is checked against the server's. `settle`: effects
  // the record still has are applied first (a transition waits for the
  // previous one's).
  template <typename Decide>
  Result<Mutated> mutate(const std::string& id, bool settle, Decide&& decide) {
    std::optional<Row> row = decidable(id);
    bool fresh = false;
    pb::Group read;  // a member's group as read from the server (fresh)
    for (int attempt = 0; attempt < kMaxRaces; ++attempt) {
      if (!row && !fresh) {
        auto loaded = load(id, &read);
        if (!loaded.ok()) return std::move(loaded).error();
        row = std::move(loaded).value();
        fresh = true;
      }
      if (row && settle && row->call.has_effects()) {
        auto applied = apply_effects(row->call);
        if (!applied.ok()) return std::move(applied).error();
        row.reset();
        fresh = false;
        continue;
      }
      pb::Call next;
      if (row) next = row->call;
      Result<Verdict> verdict = decide(row ? &next : nullptr);
      if (!fresh && (!verdict.ok() || *verdict == Verdict::keep)) {
        row.reset();  // decided on the index's copy: check with the server's
        continue;
      }
      if (!verdict.ok()) return std::move(verdict).error();
      if (*verdict == Verdict::keep) {
        Mutated m;
        m.row = std::move(row);
        return m;
      }
      const bool member = !row->group.empty();
      const bool erase = *verdict == Verdict::erase;
      const std::string key = member ? row->group : call_key(id);
      std::string value;
      if (member && fresh) {
        // The group as read, whatever the index has (it may number apart).
        pb::Group changed = read;
        auto* calls = changed.mutable_calls();
        for (int i = 0; i < calls->size(); ++i) {
          if (calls->Get(i).id() != id) continue;
          if (erase) {
            calls->DeleteSubrange(i, 1);
          } else {
            *calls->Mutable(i) = next;
          }
          break;
        }
        value = encode(changed);
      } else if (member) {
        std::optional<std::string> encoded;
        {
          std::lock_guard<std::mutex> lock(mu_);
          encoded = erase ? encode_group(key, row->revision, {}, {id})
                          : encode_group(key, row->revision, {{id, &next}}, {});
        }
        if (!encoded) {  // the index has the group at another revision: decide again
          row.reset();
          fresh = false;
          continue;
        }
        value = std::move(*encoded);
      } else {
        value = encode(next);
      }
      expect_echo(key, value);
      auto written = kv_->update(key, value, row->revision);
      echo_acked(key, written.ok() && *written ? **written : 0);
      commits_++;
      if (!written.ok()) return std::move(written).error();
      if (!*written) {  // lost the race: read again
        row.reset();
        fresh = false;
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!member) {
          index_put(id, next, **written);
        } else if (erase) {
          index_put_members(key, **written, {}, {id});
        } else {
          index_put_members(key, **written, {{id, &next}}, {});
        }
      }
      Mutated m;
      m.written = true;
      m.row = Row{std::move(next), **written, member ? key : std::string()};
      return m;
    }
    return Error(Code::aborted, "call " + id + " changed under every one of " + std::to_string(kMaxRaces) +
                                    " attempts to write it; try again");
  }

  // ---- effects: what a transition does to other records ----

  pb::Effects new_effects(int64_t now_ms) {
    pb::Effects fx;
    fx.set_id(rng_() | 1);
    fx.set_written_at_ms(wall_ms());
    fx.set_now_ms(now_ms);
    return fx;
  }
  static bool empty(const pb::Effects& fx) {
    return fx.create_size() == 0 && fx.cancel_size() == 0 && fx.deliver_to().empty();
  }

  // An ended child's result, as its parent takes it.
  static pb::ChildResult result_of(const pb::Call& c) {
    pb::ChildResult r;
    r.set_correlation_id(c.correlation_id());
    r.set_dispatch_id(c.id());
    r.set_status(c.status());
    r.set_output_type_url(c.output_type_url());
    r.set_output(c.output());
    r.set_error_type(c.error_type());
    r.set_error_message(c.error_message());
    if (state_of(c) == CallState::cancelled && c.error_type().empty()) {
      r.set_error_type("canceled");
      r.set_error_message("call " + c.id() + " was cancelled");
    }
    return r;
  }

  Result<void> apply_effects(const pb::Call& call) {
    const pb::Effects fx = call.effects();
    for (const pb::NewCall& n : fx.create()) {
      pb::Call child = jetstream::to_call(n);
      auto made = kv_->create(call_key(n.id()), encode(child));
      commits_++;
      if (!made.ok()) return std::move(made).error();
      if (*made) {
        std::lock_guard<std::mutex> lock(mu_);
        index_put(n.id(), std::move(child), **made);
      }
    }
    for (const std::string& child : fx.cancel()) {
      auto r = cancel_descendant(child, fx.cancel_reason(), fx.now_ms());
      if (!r.ok()) return r;
    }
    if (!fx.deliver_to().empty()) {
      auto r = deliver(fx.deliver_to(), call.id(), fx.result(), fx.now_ms());
      if (!r.ok()) return r;
    }
    auto cleared = mutate(call.id(), false, [&](pb::Call* c) -> Result<Verdict> {
      if (c == nullptr || !c->has_effects() || c->effects().id() != fx.id()) return Verdict::keep;
      c->clear_effects();
      return Verdict::write;
    });
    if (!cleared.ok()) return std::move(cleared).error();
    return {};
  }

  // A descendant of a call that ended: cancelled, with its own.
  Result<void> cancel_descendant(const std::string& id, const std::string& why, int64_t now_ms) {
    auto m = mutate(id, false, [&](pb::Call* c) -> Result<Verdict> {
      if (c == nullptr || is_final(state_of(*c))) return Verdict::keep;
      c->set_state(static_cast<int>(CallState::cancelled));
      c->set_lease(0);
      c->set_lease_until_ms(0);
      c->set_updated_at_ms(now_ms);
      c->set_error_type("canceled");
      c->set_error_message(why);
      // Children of its own Poll not made yet need not be: they are
      // cancelled (absent) either way.
      c->clear_effects();
      if (c->outstanding_size() > 0) {
        pb::Effects fx = new_effects(now_ms);
        *fx.mutable_cancel() = c->outstanding();
        fx.set_cancel_reason(why);
        *c->mutable_effects() = std::move(fx);
      }
      c->clear_outstanding();
      c->clear_results();
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    if (m->written && m->row->call.has_effects()) return apply_effects(m->row->call);
    return {};
  }

  // A child's end, as a result for its parent: taken once, and only while
  // the parent still waits for that child.
  Result<void> deliver(const std::string& parent_id, const std::string& child_id, const pb::ChildResult& result,
                       int64_t now_ms) {
    auto m = mutate(parent_id, false, [&](pb::Call* p) -> Result<Verdict> {
      if (p == nullptr || is_final(state_of(*p))) return Verdict::keep;
      auto* waiting = p->mutable_outstanding();
      auto it = std::find(waiting->begin(), waiting->end(), child_id);
      if (it == waiting->end()) return Verdict::keep;
      waiting->erase(it);
      pb::ChildResult* r = p->add_results();
      *r = result;
      r->set_seq(p->result_seq() + 1);
      p->set_result_seq(r->seq());
      const auto ready = static_cast<uint32_t>(p->results_size());
      if (state_of(*p) == CallState::suspended && p->next_attempt_at_ms() > now_ms &&
          (ready >= static_cast<uint32_t>(p->min_results()) || p->outstanding_size() == 0)) {
        p->set_next_attempt_at_ms(now_ms);
      }
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    return {};
  }

  // ---- writes ----

  // As the other stores': the creation time in ms (12 hex digits; it never
  // goes back), this process's tag (8), then where the call is kept (12,
  // records.h: a record number and the call's place in it): IDs sort in
  // creation order within a process, and by millisecond across them.
  std::string id_prefix(int64_t now_ms) {
    last_ms_ = std::max(last_ms_, now_ms);
    char buf[24];
    std::snprintf(buf, sizeof buf, "%012llx%08x", static_cast<unsigned long long>(last_ms_ & 0xffffffffffffLL), tag_);
    return buf;
  }
  std::string new_id(int64_t now_ms) { return jetstream::single_id(id_prefix(now_ms), ++counter_); }
  // The IDs of a group of `n` calls (records.h): one record number, and
  // each call's place in it.
  std::vector<std::string> new_group_ids(int64_t now_ms, std::size_t n) {
    const std::string prefix = id_prefix(now_ms);
    const uint64_t seq = ++counter_;
    std::vector<std::string> ids;
    ids.reserve(n);
    for (std::size_t i = 0; i < n; ++i) ids.push_back(jetstream::member_id(prefix, seq, i));
    return ids;
  }

  Result<std::vector<std::string>> do_enqueue(std::vector<NewCall> calls, int64_t now_ms) {
    if (calls.empty()) return Error(Code::invalid_argument, "no calls to enqueue");
    pb::Batch batch;
    batch.set_written_at_ms(wall_ms());
    for (NewCall& c : calls) *batch.add_calls() = jetstream::to_new_call(std::move(c), new_id(now_ms), now_ms);
    if (batch.calls_size() == 1 && batch.calls(0).idempotency_key().empty()) {
      // One record: nothing to make atomic.
      pb::Call call = jetstream::to_call(batch.calls(0));
      auto made = kv_->create(call_key(call.id()), encode(call));
      commits_++;
      if (!made.ok()) return std::move(made).error();
      if (!*made) return Error(Code::internal, "call ID " + call.id() + " is taken in JetStream bucket " + options_.bucket);
      std::lock_guard<std::mutex> lock(mu_);
      index_put(call.id(), call, **made);
      return std::vector<std::string>{call.id()};
    }
    const std::string key = std::string(jetstream::kBatchPrefix) + batch.calls(0).id();
    auto written = kv_->create(key, encode(batch));
    commits_++;
    if (!written.ok()) return std::move(written).error();
    auto ids = apply_batch(batch);
    if (!ids.ok()) return ids;  // recovery finishes it
    auto purged = kv_->remove(key);
    commits_++;
    if (!purged.ok()) return std::move(purged).error();
    return ids;
  }

  // Writes a batch's calls (each at most once) and returns their IDs, an
  // idempotency key's earlier call in place of a new one. The keys are
  // written together, then the calls together.
  Result<std::vector<std::string>> apply_batch(const pb::Batch& batch) {
    const auto n = static_cast<std::size_t>(batch.calls_size());
    std::vector<std::string> ids(n);
    std::vector<bool> make(n, true);                // the call is to be created
    std::vector<std::size_t> same_as(n, n);         // a key seen earlier in the batch: that call's
    std::unordered_map<std::string, std::size_t> first_with_key;
    std::vector<Kv::Write> keys;
    std::vector<std::size_t> key_of;
    for (std::size_t i = 0; i < n; ++i) {
      const pb::NewCall& c = batch.calls(static_cast<int>(i));
      ids[i] = c.id();
      if (c.idempotency_key().empty()) continue;
      auto [first, fresh] = first_with_key.emplace(c.idempotency_key(), i);
      if (!fresh) {
        same_as[i] = first->second;
        make[i] = false;
        continue;
      }
      keys.push_back(Kv::Write{jetstream::idempotency_key(c.idempotency_key()), c.id(), 0});
      key_of.push_back(i);
    }
    auto claimed = kv_->write_all(std::move(keys));
    commits_ += claimed.size();
    for (std::size_t k = 0; k < claimed.size(); ++k) {
      if (!claimed[k].ok()) return std::move(claimed[k]).error();
      if (*claimed[k]) continue;
      const std::size_t i = key_of[k];
      const pb::NewCall& c = batch.calls(static_cast<int>(i));
      const std::string key = jetstream::idempotency_key(c.idempotency_key());
      auto holder = kv_->get(key);
      if (!holder.ok()) return std::move(holder).error();
      if (!*holder || (*holder)->value == c.id()) continue;  // ours (applied before), or gone since
      // The key's call can still be only a batch record: its writer died,
      // or lost the servers, between the key and the call, and recovery
      // has not applied it yet. Its ID would read as unknown, so the
      // caller is asked to try again until the call exists.
      const std::string& earlier = (*holder)->value;
      auto call = kv_->get(call_key(earlier));
      if (!call.ok()) return std::move(call).error();
      if (!*call) {
        return Error(Code::unavailable, "idempotency key '" + c.idempotency_key() + "' names call " + earlier +
                                            ", which is still being written (recovery applies it within "
                                            "seconds); try again");
      }
      ids[i] = earlier;
      make[i] = false;
    }
    // The calls, each record (a call of its own, or a group) created if
    // absent.
    std::vector<pb::Call> calls;
    for (std::size_t i = 0; i < n; ++i) {
      if (make[i]) calls.push_back(jetstream::to_call(batch.calls(static_cast<int>(i))));
    }
    std::vector<NewRecord> records = records_of(std::move(calls));
    std::vector<Kv::Write> creates;
    for (const NewRecord& r : records) creates.push_back(creation(r));
    auto made = kv_->write_all(std::move(creates));
    commits_ += made.size();
    for (std::size_t k = 0; k < made.size(); ++k) {
      if (!made[k].ok()) return std::move(made[k]).error();
      if (*made[k]) {
        std::lock_guard<std::mutex> lock(mu_);
        index_created(std::move(records[k]), **made[k]);
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (same_as[i] < n) ids[i] = ids[same_as[i]];
    }
    return ids;
  }

  // A claim's picks (due suspended calls first, then pending ones
  // round-robin across fairness keys), and a lease for each decided on the
  // index's copy, written in the round.
  void prepare_claim(Claim& claim, std::vector<Edit>& edits) {
    const ClaimOptions& o = claim.o;
    std::vector<std::string>& picks = claim.picks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = suspended_.begin(); it != suspended_.end() && it->first <= o.now_ms; ++it) {
        if (picks.size() >= o.max) break;
        if (!skipped(rows_.at(it->second).call, o)) picks.push_back(it->second);
      }
      std::vector<const std::set<std::pair<int64_t, std::string>>*> queues;
      for (const auto& [key, queue] : pending_) queues.push_back(&queue);
      if (!queues.empty()) {
        std::rotate(queues.begin(), queues.begin() + static_cast<long>(claim_round_++ % queues.size()), queues.end());
      }
      const std::size_t quota = std::min(o.per_key_max, o.max);
      std::vector<std::vector<std::string>> per_key;
      for (const auto* queue : queues) {
        std::vector<std::string> ids;
        for (auto it = queue->begin(); it != queue->end() && it->first <= o.now_ms && ids.size() < quota; ++it) {
          if (!skipped(rows_.at(it->second).call, o)) ids.push_back(it->second);
        }
        per_key.push_back(std::move(ids));
      }
      for (std::size_t round = 0; picks.size() < o.max; ++round) {
        bool any = false;
        for (auto& ids : per_key) {
          if (round >= ids.size() || picks.size() >= o.max) continue;
          any = true;
          picks.push_back(ids[round]);
        }
        if (!any) break;
      }
    }
    claim.lease = rng_() | 1;
    claim.room = o.max - picks.size();
    claim.won.resize(picks.size());
    // A call whose copy was stale (a lost race) or says keep is settled
    // after the round, one at a time, against the server's.
    for (std::size_t i = 0; i < picks.size(); ++i) {
      std::optional<Row> row = decidable(picks[i]);
      if (!row) {
        claim.one_by_one.push_back(i);
        continue;
      }
      pb::Call next = row->call;
      Result<Verdict> verdict = lease_it(&next, o, claim.lease);
      if (!verdict.ok() || *verdict == Verdict::keep) {
        claim.one_by_one.push_back(i);
        continue;
      }
      claim.sent.emplace_back(i, edits.size());
      edits.push_back(Edit{picks[i], row->group, row->revision, std::move(next)});
    }
  }

  static bool skipped(const pb::Call& c, const ClaimOptions& o) {
    return c.has_effects() ||
           std::find(o.skip_endpoints.begin(), o.skip_endpoints.end(), c.endpoint()) != o.skip_endpoints.end();
  }

  Result<Verdict> lease_it(pb::Call* c, const ClaimOptions& o, uint64_t lease) {
    if (c == nullptr || c->has_effects() || c->next_attempt_at_ms() > o.now_ms ||
        (state_of(*c) != CallState::pending && state_of(*c) != CallState::suspended)) {
      return Verdict::keep;  // another process got there first
    }
    take_lease(*c, o, lease);
    return Verdict::write;
  }
  static void take_lease(pb::Call& c, const ClaimOptions& o, uint64_t lease) {
    c.set_state(static_cast<int>(CallState::running));
    c.set_attempts(c.attempts() + 1);
    c.set_lease(lease);
    c.set_lease_until_ms(o.lease_until_ms);
    c.set_updated_at_ms(o.now_ms);
  }

  // The answers to the claim's leases, each its edit's.
  void settle_leases(Claim& claim, std::vector<Edit>& edits, const std::vector<Result<std::optional<uint64_t>>>& answers) {
    for (auto& [i, e] : claim.sent) {
      const auto& a = answers[e];
      if (!a.ok()) {
        if (!claim.failure) claim.failure = a.error();
      } else if (!*a) {
        claim.one_by_one.push_back(i);  // lost the race: read again
      } else {
        claim.won[i] = std::move(edits[e].next);
      }
    }
  }

  // Settles the picks left one at a time and answers the claim: every
  // lease written is handed over, whatever failed beside it.
  void hand_over(Claim& claim) {
    std::optional<Error>& failure = claim.failure;
    std::sort(claim.one_by_one.begin(), claim.one_by_one.end());
    for (std::size_t i : claim.one_by_one) {
      if (failure) break;  // the servers are away: the rest stays due
      auto m = mutate(claim.picks[i], false,
                      [&](pb::Call* c) -> Result<Verdict> { return lease_it(c, claim.o, claim.lease); });
      if (!m.ok()) {
        failure = std::move(m).error();
        break;
      }
      if (m->written) claim.won[i] = std::move(m->row->call);
    }
    for (pb::Call& c : claim.made) claim.won.emplace_back(std::move(c));
    std::vector<CallRecord> out;
    for (std::optional<pb::Call>& c : claim.won) {
      if (!c) continue;
      CallRecord r = to_record(*c);
      if (c->polled()) {
        const auto max = static_cast<std::size_t>(std::max(1, c->max_results()));
        for (const pb::ChildResult& result : c->results()) {
          if (r.results.size() >= max) break;
          r.results.push_back(jetstream::to_child_result(result));
        }
      }
      out.push_back(std::move(r));
    }
    if (out.empty() && failure) {
      claim.done(std::move(*failure));
    } else {
      claim.done(std::move(out));
    }
  }

  // Finishes of distinct calls: every one decided on the index's copy is
  // written in the round; a call with effects still to apply, not running
  // under that lease in the index, or whose copy was stale (a lost race)
  // is finished after it, one at a time, against the server's copy. Each
  // finish's own outcome reaches its callback.
  void prepare_finishes(Finishes& finishes, std::vector<Edit>& edits) {
    for (std::size_t i = 0; i < finishes.each.size(); ++i) {
      const Finish& f = finishes.each[i];
      std::optional<Row> row = decidable(f.id);
      if (!row || row->call.has_effects() || state_of(row->call) != CallState::running ||
          row->call.lease() != f.lease) {
        finishes.one_by_one.push_back(i);
        continue;
      }
      std::vector<std::string> child_ids;
      if (f.outcome.poll) {
        for (std::size_t k = 0; k < f.outcome.poll->calls.size(); ++k) child_ids.push_back(new_id(f.now_ms));
      }
      pb::Call next = row->call;
      apply_outcome(next, f.outcome, child_ids, f.now_ms);
      finishes.sent.emplace_back(i, edits.size());
      edits.push_back(Edit{f.id, row->group, row->revision, std::move(next)});
    }
  }

  // The finishes' answers, each its edit's.
  void settle_finishes(Finishes& finishes, const std::vector<Edit>& edits,
                       const std::vector<Result<std::optional<uint64_t>>>& answers) {
    for (auto& [i, e] : finishes.sent) {
      const auto& a = answers[e];
      Finish& f = finishes.each[i];
      if (!a.ok()) {
        f.done(a.error());
      } else if (!*a) {
        finishes.one_by_one.push_back(i);  // lost the race: read again
      } else {
        // The end is recorded; effects that fail here are recovery's.
        if (edits[e].next.has_effects()) (void)apply_effects(edits[e].next);
        f.done(true);
      }
    }
    std::sort(finishes.one_by_one.begin(), finishes.one_by_one.end());
    for (std::size_t i : finishes.one_by_one) {
      Finish& f = finishes.each[i];
      f.done(do_finish(f.id, f.lease, f.outcome, f.now_ms));
    }
  }

  Result<bool> do_finish(const std::string& id, uint64_t lease, const Outcome& o, int64_t now_ms) {
    std::vector<std::string> child_ids;
    if (o.poll) {
      for (std::size_t i = 0; i < o.poll->calls.size(); ++i) child_ids.push_back(new_id(now_ms));
    }
    auto m = mutate(id, true, [&](pb::Call* c) -> Result<Verdict> {
      if (c == nullptr || state_of(*c) != CallState::running || c->lease() != lease) return Verdict::keep;
      apply_outcome(*c, o, child_ids, now_ms);
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    if (!m->written) return false;
    // The end is recorded; effects that fail here are recovery's to finish.
    if (m->row->call.has_effects()) (void)apply_effects(m->row->call);
    return true;
  }

  void apply_outcome(pb::Call& c, const Outcome& o, const std::vector<std::string>& child_ids, int64_t now_ms) {
    c.set_status(o.status);
    c.set_output_type_url(o.output_type_url);
    c.set_output(o.output);
    c.set_error_type(o.error_type);
    c.set_error_message(o.error_message);
    c.set_lease(0);
    c.set_lease_until_ms(0);
    c.set_updated_at_ms(now_ms);
    const bool retried = o.state == CallState::pending && !o.restart && !o.tail_call;
    if (!retried && !o.consumed.empty()) {
      auto* results = c.mutable_results();
      results->erase(std::remove_if(results->begin(), results->end(),
                                    [&](const pb::ChildResult& r) {
                                      return std::find(o.consumed.begin(), o.consumed.end(), r.seq()) !=
                                             o.consumed.end();
                                    }),
                     results->end());
    }
    pb::Effects fx = new_effects(now_ms);
    if (o.poll) {
      const PollOutcome& p = *o.poll;
      c.set_polled(true);
      c.set_poll_state(p.state);
      c.set_poll_state_type_url(p.state_type_url);
      c.set_min_results(p.min_results);
      c.set_max_results(p.max_results);
      c.set_poll_error_type(p.error_type);
      c.set_poll_error_message(p.error_message);
      c.set_attempts(0);
      for (std::size_t i = 0; i < p.calls.size(); ++i) {
        *fx.add_create() = jetstream::to_new_call(p.calls[i], child_ids[i], now_ms);
        c.add_outstanding(child_ids[i]);
      }
      const auto ready = static_cast<uint32_t>(c.results_size());
      int64_t due = kNever;
      const bool refused = !p.error_type.empty() || !p.error_message.empty();
      if (refused || (ready > 0 && (ready >= static_cast<uint32_t>(p.min_results) || c.outstanding_size() == 0))) {
        due = now_ms;
      } else {
        if (p.wake_at_ms != 0) due = p.wake_at_ms;
        if (c.expiration_at_ms() != 0) due = std::min(due, c.expiration_at_ms());
      }
      c.set_state(static_cast<int>(CallState::suspended));
      c.set_next_attempt_at_ms(due);
    } else if (retried) {
      c.set_state(static_cast<int>(CallState::pending));
      c.set_next_attempt_at_ms(o.next_attempt_at_ms);
    } else {
      if (c.outstanding_size() > 0) {
        *fx.mutable_cancel() = c.outstanding();
        fx.set_cancel_reason(o.tail_call || o.restart
                                 ? "cancelled: " + c.id() + " started over (a tail call or a restart)"
                                 : "cancelled: " + c.id() + ", which made this call, has ended");
      }
      c.clear_results();
      if (o.tail_call) {
        const NewCall& next = *o.tail_call;
        c.set_function(next.function);
        c.set_endpoint(next.endpoint);
        c.set_input_type_url(next.input_type_url);
        c.set_input(next.input);
        c.set_expiration_at_ms(next.expiration_at_ms);
        c.set_attempts(0);
        c.set_restarts(0);
        forget_poll(c);
        c.set_state(static_cast<int>(CallState::pending));
        c.set_next_attempt_at_ms(std::max(now_ms, next.not_before_ms));
      } else if (o.restart) {
        forget_poll(c);
        c.set_restarts(c.restarts() + 1);
        c.set_state(static_cast<int>(CallState::pending));
        c.set_next_attempt_at_ms(o.next_attempt_at_ms);
      } else {
        c.set_state(static_cast<int>(o.state));
        c.set_next_attempt_at_ms(o.next_attempt_at_ms);
        c.clear_outstanding();
        if (!c.parent_id().empty() && is_final(o.state)) {
          fx.set_deliver_to(c.parent_id());
          *fx.mutable_result() = result_of(c);
        }
      }
    }
    if (!empty(fx)) *c.mutable_effects() = std::move(fx);
  }

  Result<CallRecord> do_cancel(const std::string& id, int64_t now_ms) {
    auto m = mutate(id, true, [&](pb::Call* c) -> Result<Verdict> {
      if (c == nullptr) return Error(Code::not_found, "no call has ID " + id);
      if (is_final(state_of(*c))) {
        return Error(Code::failed_precondition,
                     "cannot cancel call " + id + ": it is already " + std::string(state_name(state_of(*c))));
      }
      pb::Effects fx = new_effects(now_ms);
      if (c->outstanding_size() > 0) {
        *fx.mutable_cancel() = c->outstanding();
        fx.set_cancel_reason("cancelled with " + id + ", which was cancelled");
      }
      c->set_state(static_cast<int>(CallState::cancelled));
      c->set_lease(0);
      c->set_lease_until_ms(0);
      c->set_updated_at_ms(now_ms);
      c->clear_outstanding();
      c->clear_results();
      if (!c->parent_id().empty()) {
        fx.set_deliver_to(c->parent_id());
        *fx.mutable_result() = result_of(*c);
      }
      if (!empty(fx)) *c->mutable_effects() = std::move(fx);
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    if (m->row->call.has_effects()) (void)apply_effects(m->row->call);  // else recovery's
    pb::Call shown = m->row->call;
    shown.clear_effects();
    return to_record(shown);
  }

  Result<CallRecord> do_retry(const std::string& id, int64_t now_ms) {
    auto m = mutate(id, true, [&](pb::Call* c) -> Result<Verdict> {
      if (c == nullptr) return Error(Code::not_found, "no call has ID " + id);
      const CallState s = state_of(*c);
      if (s != CallState::failed && s != CallState::cancelled) {
        return Error(Code::failed_precondition, "cannot retry call " + id +
                                                    ": only failed or cancelled calls can be retried; it is " +
                                                    std::string(state_name(s)));
      }
      c->set_attempts(0);
      c->set_restarts(0);
      c->set_status(0);
      c->clear_error_type();
      c->clear_error_message();
      c->set_updated_at_ms(now_ms);
      forget_poll(*c);
      c->set_state(static_cast<int>(CallState::pending));
      c->set_next_attempt_at_ms(now_ms);
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    return to_record(m->row->call);
  }

  Result<std::size_t> do_release(int64_t now_ms, bool all) {
    std::vector<std::string> ids;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, row] : rows_) {
        if (state_of(row.call) == CallState::running && (all || row.call.lease_until_ms() <= now_ms)) {
          ids.push_back(id);
        }
      }
    }
    std::size_t moved = 0;
    for (const std::string& id : ids) {
      auto m = mutate(id, false, [&](pb::Call* c) -> Result<Verdict> {
        if (c == nullptr || state_of(*c) != CallState::running || (!all && c->lease_until_ms() > now_ms)) {
          return Verdict::keep;
        }
        c->set_state(static_cast<int>(CallState::pending));
        c->set_lease(0);
        c->set_lease_until_ms(0);
        return Verdict::write;
      });
      if (!m.ok()) return std::move(m).error();
      if (m->written) ++moved;
    }
    return moved;
  }

  // delete_ended, a bounded batch per write so that other writes go
  // between batches.
  void delete_batch(std::vector<std::string> ids, std::size_t from, int64_t before, std::size_t deleted,
                    Done<std::size_t> done) {
    post([this, ids = std::move(ids), from, before, deleted, done = std::move(done)]() mutable {
      constexpr std::size_t kBatch = 256;
      const std::size_t to = std::min(ids.size(), from + kBatch);
      auto gone = delete_some(ids, from, to, before);
      if (!gone.ok()) {
        done(std::move(gone).error());
        return;
      }
      deleted += *gone;
      if (to < ids.size()) {
        delete_batch(std::move(ids), to, before, deleted, std::move(done));
        return;
      }
      done(deleted);
    });
  }

  // ids[from, to) as delete_one() would, in rounds rather than one write
  // at a time: every call the index has as ended before `before` is
  // marked as being deleted (compare-and-set on the index's revision) in
  // one round; then the idempotency keys that still name them (one read
  // each) and the calls without keys are removed in a second, and the
  // calls with keys in a third. A mark that lost its race (the call
  // retried meanwhile, or an index behind) goes the one-at-a-time way. A
  // failure leaves the rest to recovery, which finishes what was marked.
  Result<std::size_t> delete_some(const std::vector<std::string>& ids, std::size_t from, std::size_t to,
                                  int64_t before) {
    std::vector<Kv::Write> marks;
    std::vector<std::pair<std::string, std::string>> marking;  // id, idempotency key
    // Members of groups leave their group: one write per group (the
    // group without them), after the marks.
    std::vector<std::pair<std::string, std::set<std::string>>> leaving;  // group, its members deleted
    std::vector<std::string> again;  // lost their race: decided again, alone
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::unordered_map<std::string, std::size_t> group_at;
      for (std::size_t i = from; i < to; ++i) {
        auto it = rows_.find(ids[i]);
        if (it == rows_.end()) continue;  // deleted meanwhile
        const pb::Call& c = it->second.call;
        if (!deletable(c, before)) continue;
        if (!numbered_as_leader_) {  // decided on the server's copies (decidable())
          again.push_back(ids[i]);
          continue;
        }
        if (!it->second.group.empty()) {
          auto [g, fresh] = group_at.emplace(it->second.group, leaving.size());
          if (fresh) leaving.emplace_back(it->second.group, std::set<std::string>());
          leaving[g->second].second.insert(ids[i]);
          continue;
        }
        marks.push_back(Kv::Write{call_key(ids[i]), encode(deletion_mark(ids[i], c)), it->second.revision});
        marking.emplace_back(ids[i], c.idempotency_key());
      }
      for (auto& [key, members] : leaving) {
        auto g = groups_.find(key);
        auto value = g == groups_.end() ? std::nullopt : encode_group(key, g->second.revision, {}, members);
        if (!value) {
          again.insert(again.end(), members.begin(), members.end());
          members.clear();
          continue;
        }
        marks.push_back(Kv::Write{key, std::move(*value), g->second.revision});
      }
      leaving.erase(std::remove_if(leaving.begin(), leaving.end(), [](const auto& l) { return l.second.empty(); }),
                    leaving.end());
    }
    if (marks.empty() && again.empty()) return std::size_t{0};
    const std::vector<std::string> echoed = expect_echoes(marks);
    auto answers = kv_->write_all(std::move(marks));
    echoes_acked(echoed, answers);
    commits_ += answers.size();
    std::size_t deleted = 0;
    std::vector<std::string> emptied;  // groups left without members: removed after the calls
    std::optional<Error> group_failure;  // the group stays as it was: the next deletion finds its calls
    for (std::size_t k = 0; k < leaving.size(); ++k) {
      auto& a = answers[marking.size() + k];
      auto& [key, members] = leaving[k];
      if (!a.ok()) {
        if (!group_failure) group_failure = std::move(a).error();
        continue;
      }
      if (!*a) {
        again.insert(again.end(), members.begin(), members.end());
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      index_put_members(key, **a, {}, members);
      deleted_ += members.size();
      deleted += members.size();
      auto g = groups_.find(key);
      if (g != groups_.end() && g->second.ids.empty()) emptied.push_back(key);
    }
    answers.erase(answers.begin() + static_cast<long>(marking.size()), answers.end());
    // A call's idempotency key goes before the call (recovery finishes a
    // marked call, and finds its key through it): keys, with the calls
    // that have none, in one round; the calls whose keys went, in another.
    std::vector<Kv::Write> first, second;
    std::vector<bool> first_is_key;
    std::optional<Error> failed;
    for (std::size_t k = 0; k < answers.size(); ++k) {
      const auto& [id, key] = marking[k];
      if (!answers[k].ok()) {
        if (!failed) failed = answers[k].error();
        continue;
      }
      if (!*answers[k]) {
        again.push_back(id);
        continue;
      }
      marked(id, **answers[k]);
      if (failed) continue;  // marked: recovery removes it
      if (key.empty()) {
        first.push_back(Kv::Write{call_key(id), std::string(), 0, /*remove=*/true});
        first_is_key.push_back(false);
        continue;
      }
      auto holder = key_naming(id, key);
      if (!holder.ok()) {
        failed = holder.error();
        continue;
      }
      if (*holder) {
        first.push_back(Kv::Write{**holder, std::string(), 0, /*remove=*/true});
        first_is_key.push_back(true);
      }
      second.push_back(Kv::Write{call_key(id), std::string(), 0, /*remove=*/true});
    }
    if (failed) return std::move(*failed);
    if (group_failure) return std::move(*group_failure);
    auto removed = remove_empty_groups(emptied);
    if (!removed.ok()) return std::move(removed).error();  // recovery removes them
    for (std::vector<Kv::Write>* round : {&first, &second}) {
      if (round->empty()) continue;
      const bool keys = round == &first;
      auto removed = kv_->write_all(std::move(*round));
      commits_ += removed.size();
      for (std::size_t i = 0; i < removed.size(); ++i) {
        if (!removed[i].ok()) return std::move(removed[i]).error();  // marked: recovery removes it
        if (keys && first_is_key[i]) continue;
        deleted_++;
        ++deleted;
      }
    }
    for (const std::string& id : again) {
      auto gone = delete_one(id, before);
      if (!gone.ok()) return std::move(gone).error();
      if (*gone) ++deleted;
    }
    return deleted;
  }

  // Removes the groups in `keys` that the index has without members (all
  // deleted), in one round. Nobody writes a group once it is empty (no
  // call is left in it to change), so the removal needs no condition.
  Result<void> remove_empty_groups(const std::vector<std::string>& keys) {
    std::vector<Kv::Write> removals;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const std::string& key : keys) {
        auto g = groups_.find(key);
        if (g != groups_.end() && g->second.ids.empty()) removals.push_back(Kv::Write{key, std::string(), 0, true});
      }
    }
    if (removals.empty()) return {};
    std::vector<std::string> removing;
    for (const auto& w : removals) removing.push_back(w.key);
    auto answers = kv_->write_all(std::move(removals));
    commits_ += answers.size();
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < answers.size(); ++i) {
      if (!answers[i].ok()) return answers[i].error();
      if (!*answers[i]) continue;
      // Out of the index, and kept out until the watcher brings the
      // removal (which ends the guard): a late echo of an earlier write
      // of the group must not bring its members back. When the watcher
      // brought the removal first, the group is gone already, and so is
      // everything before it.
      auto g = groups_.find(removing[i]);
      if (g == groups_.end()) continue;
      const uint64_t emptied_at = g->second.revision;
      index_erase_group(removing[i], **answers[i]);
      gone_[removing[i]] = emptied_at;
    }
    return {};
  }

  // A call retention may delete: ended before `before`, its effects applied.
  static bool deletable(const pb::Call& c, int64_t before) {
    return is_final(state_of(c)) && c.updated_at_ms() < before && !c.has_effects();
  }
  // What a call's record becomes while it is being deleted (state 0): its
  // ID and idempotency key, which recovery needs to finish the deletion.
  static pb::Call deletion_mark(const std::string& id, const pb::Call& c) {
    pb::Call marker;
    marker.set_id(id);
    marker.set_idempotency_key(c.idempotency_key());
    return marker;
  }
  // A call marked as being deleted at `revision` leaves the index, and the
  // watcher's late report of earlier changes must not bring it back.
  void marked(const std::string& id, uint64_t revision) {
    std::lock_guard<std::mutex> lock(mu_);
    index_erase(id, revision);
    gone_[id] = revision;
  }

  // Marks the record as being deleted (compare-and-set, so a call retried
  // meanwhile stays), then removes its idempotency key and itself. Recovery
  // finishes a deletion cut short.
  Result<bool> delete_one(const std::string& id, int64_t before) {
    if (!jetstream::group_of(id).empty()) {
      auto m = mutate(id, false, [&](pb::Call* c) -> Result<Verdict> {
        if (c == nullptr || !deletable(*c, before)) return Verdict::keep;
        return Verdict::erase;
      });
      if (!m.ok()) return std::move(m).error();
      if (!m->written) return false;
      deleted_++;
      auto removed = remove_empty_groups({m->row->group});
      if (!removed.ok()) return std::move(removed).error();  // recovery removes it
      return true;
    }
    std::string key;
    auto m = mutate(id, false, [&](pb::Call* c) -> Result<Verdict> {
      if (c == nullptr || !deletable(*c, before)) return Verdict::keep;
      key = c->idempotency_key();
      *c = deletion_mark(id, *c);
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    if (!m->written) return false;
    marked(id, m->row->revision);
    auto purged = finish_delete(id, key);
    if (!purged.ok()) return std::move(purged).error();
    deleted_++;
    return true;
  }

  Result<void> finish_delete(const std::string& id, const std::string& idempotency) {
    auto holder = key_naming(id, idempotency);
    if (!holder.ok()) return std::move(holder).error();
    if (*holder) {
      auto purged = kv_->remove(**holder);
      commits_++;
      if (!purged.ok()) return purged;
    }
    auto purged = kv_->remove(call_key(id));
    commits_++;
    return purged;
  }

  // The record of idempotency key `idempotency` (one read) when it still
  // names call `id`, for removal with the call; nullopt when the call has
  // no key, or the key is gone or names another call since.
  Result<std::optional<std::string>> key_naming(const std::string& id, const std::string& idempotency) {
    if (idempotency.empty()) return std::optional<std::string>();
    std::string key = jetstream::idempotency_key(idempotency);
    auto holder = kv_->get(key);
    if (!holder.ok()) return std::move(holder).error();
    if (!*holder || (*holder)->value != id) return std::optional<std::string>();
    return std::optional<std::string>(std::move(key));
  }

  // ---- recovery ----

  // Applies effects and batches that were left unapplied for longer than
  // recover_after (all of them: `everything`), and finishes deletions cut
  // short.
  Result<void> recover(bool everything) {
    const int64_t now = wall_ms();
    const int64_t age = options_.recover_after.count();
    std::vector<pb::Call> unsettled;
    std::vector<std::string> batches;
    std::vector<std::string> tombstones;
    std::vector<std::pair<std::string, pb::Call>> undelivered;  // parent, ended child
    std::vector<std::string> empty_groups;                       // every member deleted, the record left
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [key, group] : groups_) {
        if (group.ids.empty()) empty_groups.push_back(key);
      }
      for (const auto& [id, row] : rows_) {
        if (row.call.has_effects() && (everything || now - row.call.effects().written_at_ms() >= age)) {
          unsettled.push_back(row.call);
        }
        // A suspended parent still waiting for a child that ended and
        // whose effects (its result for the parent among them) were
        // applied: the parent's record lost that result to a concurrent
        // write. nats-server before 2.9.21 can accept two compare-and-sets
        // from one revision on a replicated bucket (docs/scheduler.md);
        // the result is delivered again (deliver() takes it once).
        if (state_of(row.call) != CallState::suspended) continue;
        for (const std::string& child : row.call.outstanding()) {
          auto c = rows_.find(child);
          if (c == rows_.end()) continue;
          const pb::Call& k = c->second.call;
          if (k.parent_id() == id && is_final(state_of(k)) && !k.has_effects() &&
              (everything || now - k.updated_at_ms() >= age)) {
            undelivered.emplace_back(id, k);
          }
        }
      }
      batches.assign(batches_.begin(), batches_.end());
      for (const auto& [id, rev] : tombstones_) tombstones.push_back(id);
    }
    // One batch or one call's effects that cannot be applied now (the
    // servers away, a record that keeps changing, an idempotency key whose
    // call is in a batch not applied yet) do not hold back the others'; the
    // first failure is reported.
    Result<void> first_failure;
    for (const std::string& key : batches) {
      auto e = kv_->get(key);
      if (!e.ok()) return std::move(e).error();
      if (!*e) continue;
      pb::Batch batch;
      if (!batch.ParseFromString((*e)->value)) continue;
      if (!everything && now - batch.written_at_ms() < age) continue;
      auto applied = apply_batch(batch);
      if (!applied.ok()) {
        if (first_failure.ok()) first_failure = Result<void>(std::move(applied).error());
        continue;
      }
      auto purged = kv_->remove(key);
      commits_++;
      if (!purged.ok()) return purged;
    }
    for (const pb::Call& call : unsettled) {
      auto applied = apply_effects(call);
      if (!applied.ok() && first_failure.ok()) first_failure = applied;
    }
    for (const auto& [parent, child] : undelivered) {
      auto delivered = deliver(parent, child.id(), result_of(child), now);
      if (!delivered.ok() && first_failure.ok()) first_failure = delivered;
    }
    if (!first_failure.ok()) return first_failure;
    auto removed = remove_empty_groups(empty_groups);
    if (!removed.ok()) return removed;
    for (const std::string& id : tombstones) {
      auto e = kv_->get(call_key(id));
      if (!e.ok()) return std::move(e).error();
      pb::Call marker;
      if (!*e || !marker.ParseFromString((*e)->value) || live(marker)) continue;
      auto done = finish_delete(id, marker.idempotency_key());
      if (!done.ok()) return done;
    }
    return {};
  }

  const JetStreamOptions options_;
  std::unique_ptr<Kv> kv_;

  // The index (mu_): every live record, the queues of due work, children.
  std::mutex mu_;
  std::condition_variable mu_cv_;
  bool caught_up_ = false;
  std::map<std::string, Row> rows_;  // by ID: creation order
  std::unordered_map<std::string, GroupRow> groups_;  // by key: the groups present (none left out)
  std::map<std::string, std::set<std::pair<int64_t, std::string>>> pending_;  // fair key -> (due, ID)
  std::set<std::pair<int64_t, std::string>> suspended_;                       // (due, ID)
  std::unordered_map<std::string, std::set<std::string>> children_;          // parent -> children
  std::map<std::string, uint64_t> gone_;  // call IDs and group keys deleted here, at this revision, until the watcher says so
  std::map<std::string, uint64_t> tombstones_;  // records marked for deletion and not purged
  std::set<std::string> batches_;               // batch keys present
  std::unordered_map<std::string, Echo> echoes_;  // writes whose echo is awaited (check_echo)
  uint64_t revision_shift_ = 0;                   // tests only: shift_index_revisions()
  std::atomic<bool> diverged_{false};             // the watcher numbers apart: rebuild the index
  std::atomic<bool> numbered_as_leader_{false};   // an echo matched its acknowledgement since the listing
  std::atomic<uint64_t> rebuilds_{0};

  // The writer (queue_mu_); its own state needs no lock.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::thread writer_;
  std::vector<std::unique_ptr<Enqueue>> next_creating_;  // batch records written: their calls are next
  std::vector<std::string> next_removing_;               // batches applied: their records go next
  std::mt19937_64 rng_{std::random_device{}()};
  uint32_t tag_ = 0;
  int64_t last_ms_ = 0;
  uint64_t counter_ = 0;
  uint64_t claim_round_ = 0;

  Kv::Follower follower_;

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> deleted_{0};

  std::mutex entities_mu_;
  std::unique_ptr<EntityStore> entities_;

  metrics::Histogram* round_seconds_ = nullptr;
  metrics::Histogram* round_writes_ = nullptr;
  metrics::Counter* rebuilds_counter_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Store>> open_jetstream_store(const JetStreamOptions& options) {
  auto kv = Kv::open(options);
  if (!kv.ok()) return std::move(kv).error();
  auto store = std::make_unique<JetStreamStore>(options, std::move(kv).value());
  auto started = store->start();
  if (!started.ok()) return std::move(started).error();
  return std::unique_ptr<Store>(std::move(store));
}

namespace testing {

void shift_index_revisions(Store& store, uint64_t by) {
  dynamic_cast<JetStreamStore&>(store).shift_index_revisions(by);
}
uint64_t index_rebuilds(Store& store) { return dynamic_cast<JetStreamStore&>(store).index_rebuilds(); }
std::optional<uint64_t> index_revision(Store& store, const std::string& id) {
  return dynamic_cast<JetStreamStore&>(store).index_revision(id);
}

}  // namespace testing

Result<std::vector<std::string>> parse_nats_servers(std::string_view spec) {
  constexpr std::string_view kScheme = "nats://";
  if (spec.compare(0, kScheme.size(), kScheme) != 0) {
    return Error(Code::invalid_argument,
                 "NATS store '" + std::string(spec) + "' must start with nats:// (nats://host:port[,host:port...])");
  }
  std::vector<std::string> out;
  std::string_view rest = spec.substr(kScheme.size());
  while (true) {
    const std::size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    if (part.compare(0, kScheme.size(), kScheme) == 0) part.remove_prefix(kScheme.size());
    const std::size_t colon = part.rfind(':');
    if (part.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == part.size() ||
        part.size() - colon > 6 ||
        part.find_first_not_of("0123456789", colon + 1) != std::string_view::npos) {
      return Error(Code::invalid_argument, "NATS server '" + std::string(part) + "' in '" + std::string(spec) +
                                               "' is not host:port");
    }
    const long port = std::stol(std::string(part.substr(colon + 1)));
    if (port <= 0 || port > 65535) {
      return Error(Code::invalid_argument,
                   "NATS server '" + std::string(part) + "' in '" + std::string(spec) + "' has no valid port");
    }
    out.push_back(std::string(kScheme) + std::string(part));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

}  // namespace dispatch::scheduler
