// The EntityStore on a JetStream key-value bucket, for many dispatchd
// processes sharing one store.
//
// Records (entities.proto) and their keys, with T and I the hex of an
// address's type and id:
//   e.tT.iI      the entity: lease, retries, state values, how far its inbox
//                was consumed (consumed_seq), its last reply's effects
//   m.tT.iI.O    one inbox message, O naming what made it; its seq is the
//                key's revision (unique in the bucket, increasing)
//   d.O          a delayed message: pending, then fired or cancelled
//   g.O / x.O    an egress record / a dead letter (seq: the revision)
//   k.hH         an ingress idempotency key;  p.tT  a type's state specs
//   a.eH         an egress's acknowledged seq;  s.N  a send being applied
//   h.P          a process's heartbeat (its watcher's numbering checked)
//
// An entity is leased by a compare-and-set on its record, so one process at
// a time has its batch. A reply is ONE compare-and-set on that record: its
// state mutations, the inbox consumed up to the batch's last seq, the lease
// returned, and the reply's effects (outgoing, delayed messages and their
// cancellations, egress records, dead letters) written into the record.
// The effects are then applied, each part creating a record whose key is
// named after the effects' id (created only when absent), and cleared by a
// second compare-and-set; a process that dies in between leaves them on the
// record, and any process's recovery (or the next claim of that entity)
// applies them again: a crash only repeats idempotent work. Consumed inbox
// messages and fired or cancelled delayed messages stay a grace period
// before they are purged, so that effects applied again find them and do
// not make them a second time.
//
// A send of several messages (or with an idempotency key) is written first
// as one record, then applied message by message, then purged; recovery
// applies what a dead process left.
//
// Each process indexes the bucket from a watcher; its reads first wait
// until the watcher delivered its own last write, so they see every write
// it made, and the index is always a prefix of the bucket's history (an
// inbox seen in order; egress records seen in seq order). Delayed messages
// are due times in their records and the index: nothing is scheduled on the
// server. A delayed message fires by making its inbox message (named after
// it) and then marking it fired by compare-and-set: whichever process gets
// there, it is queued once.
//
// A message's seq is a revision, and consumed_seq compares seqs that
// different processes read from their own watchers, so every process must
// number as the stream's leader does. A watcher is a consumer the server
// may place on any replica, and on nats-server 2.9.10 a replica was seen
// numbering apart from the leader after a node was SIGKILLed and restarted.
// So: each write's acknowledged revision is compared with the one the
// watcher reports for it (a heartbeat record, h.P, is written once a second
// so that this runs while the process writes nothing else), and on a
// mismatch the index is rebuilt from a new watcher; the last message of a
// claimed batch is read from the leader before the batch goes out; and the
// entity record names its last consumed messages by a hash of their keys,
// so that a message found again above consumed_seq (written twice by a
// create won twice, or numbered anew by another leader) is passed over.
//
// Not for: calls (jetstream_store.cc), nor policy (the StateFun runtime's).
#include "dispatch/jetstream/entity_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "dispatch/jetstream/v1/entities.pb.h"
#include "jetstream/entity_store_testing.h"
#include "jetstream/kv.h"

namespace dispatch::scheduler {
namespace {

using jetstream::Kv;
namespace pb = ::dispatch::jetstream::v1;
using Addr = std::pair<std::string, std::string>;

constexpr int kMaxRaces = 32;
constexpr std::size_t kSweepBatch = 1000;
// Records a recovery pass removes at most (consumed messages, settled
// delayed messages), in rounds: a load that consumes messages faster than
// one pass a second removes them would grow the bucket without end.
constexpr std::size_t kPurgePerPass = 8192;
constexpr std::size_t kMaxEchoes = 4096;
// How many of its last consumed messages an entity record names (their
// keys' hashes): more than a replica's numbering was seen to differ by (2
// to 5 revisions on nats-server 2.9.10).
constexpr std::size_t kRecentKeys = 32;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hex(std::string_view s) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char ch : s) {
    out.push_back(kHex[ch >> 4]);
    out.push_back(kHex[ch & 0xf]);
  }
  return out;
}

std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string encode(const google::protobuf::MessageLite& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

std::string addr_part(std::string_view type, std::string_view id) { return "t" + hex(type) + ".i" + hex(id); }
std::string entity_key(const Addr& a) { return "e." + addr_part(a.first, a.second); }
std::string inbox_key(const pb::Address& target, const std::string& origin) {
  return "m." + addr_part(target.type(), target.id()) + "." + origin;
}
std::string specs_key(std::string_view type) { return "p.t" + hex(type); }
std::string ack_key(std::string_view egress) { return "a.e" + hex(egress); }
std::string ingress_key(std::string_view key) { return "k.h" + hex(key); }

Addr addr_of(const pb::Address& a) { return {a.type(), a.id()}; }
Addr addr_of(const EntityAddress& a) { return {a.type, a.id}; }
EntityAddress to_address(const pb::Address& a) { return {a.type(), a.id()}; }

void to_pb(const EntityAddress& a, pb::Address* out) {
  out->set_type(a.type);
  out->set_id(a.id);
}
pb::EntityMsg to_pb(const EntityMessage& m) {
  pb::EntityMsg out;
  to_pb(m.target, out.mutable_target());
  to_pb(m.caller, out.mutable_caller());
  out.set_type_name(m.type_name);
  out.set_has_value(m.has_value);
  out.set_value(m.value);
  return out;
}
EntityMessage from_pb(const pb::EntityMsg& m) {
  EntityMessage out;
  out.target = to_address(m.target());
  out.caller = to_address(m.caller());
  out.type_name = m.type_name();
  out.has_value = m.has_value();
  out.value = m.value();
  return out;
}
QueuedMessage queued(uint64_t seq, const pb::InboxMessage& m) {
  QueuedMessage q;
  q.seq = seq;
  q.message = from_pb(m.message());
  q.created_at_ms = m.created_at_ms();
  return q;
}

template <typename Rec>
struct Row {
  Rec rec;
  uint64_t revision = 0;
};

template <typename Rec>
struct Mutated {
  bool written = false;
  std::optional<Row<Rec>> row;  // as written, or as found
};

enum class Verdict { write, keep };

constexpr int32_t kPending = 0, kFired = 1, kCancelled = 2;

class JetStreamEntityStore final : public EntityStore {
 public:
  JetStreamEntityStore(JetStreamOptions options, std::unique_ptr<Kv> kv)
      : options_(std::move(options)),
        kv_(std::move(kv)),
        grace_ms_(std::max<int64_t>(20'000, 10 * options_.recover_after.count())) {}

  ~JetStreamEntityStore() override {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (heartbeat_rev_ != 0) (void)kv_->remove(heartbeat_key_);
    follower_.stop();
  }

  Result<void> start() {
    Result<void> followed = follow_bucket();
    if (!followed.ok()) return followed;
    Result<void> recovered = recover(true);
    if (!recovered.ok()) return recovered;
    writer_ = std::thread([this] { write_loop(); });
    return {};
  }

  // ---- the interface ----

  bool shared() const noexcept override { return true; }

  void send(std::vector<EntityMessage> messages, int64_t now_ms, Done<std::vector<uint64_t>> done) override {
    post([this, messages = std::move(messages), now_ms, done = std::move(done)]() mutable {
      done(do_send(std::move(messages), now_ms));
    });
  }

  void claim_entities(EntityClaimOptions options, Done<std::vector<EntityBatch>> done) override {
    post([this, o = std::move(options), done = std::move(done)]() mutable { done(do_claim(o)); });
  }

  void complete(EntityAddress address, uint64_t lease, uint64_t last_seq, BatchResult result, int64_t now_ms,
                Done<bool> done) override {
    post([this, address = std::move(address), lease, last_seq, result = std::move(result), now_ms,
          done = std::move(done)]() mutable { done(do_complete(address, lease, last_seq, result, now_ms)); });
  }

  void fail(EntityAddress address, uint64_t lease, int64_t next_attempt_at_ms, std::string error,
            Done<bool> done) override {
    post([this, address = std::move(address), lease, next_attempt_at_ms, error = std::move(error),
          done = std::move(done)]() mutable {
      auto m = mutate<pb::Entity>(entity_key(addr_of(address)), cached_entity(addr_of(address)),
                                  [&](pb::Entity& e, bool exists) -> Result<Verdict> {
                                    if (!exists || e.lease() != lease) return Verdict::keep;
                                    e.set_attempts(e.attempts() + 1);
                                    e.set_next_attempt_at_ms(next_attempt_at_ms);
                                    e.set_last_error(error);
                                    e.set_lease(0);
                                    e.set_lease_until_ms(0);
                                    return Verdict::write;
                                  });
      if (!m.ok()) return done(std::move(m).error());
      done(m->written);
    });
  }

  void dead_letter(EntityAddress address, uint64_t lease, uint64_t last_seq, std::string reason, int64_t now_ms,
                   Done<bool> done) override {
    post([this, address = std::move(address), lease, last_seq, reason = std::move(reason), now_ms,
          done = std::move(done)]() mutable { done(do_dead_letter(address, lease, last_seq, reason, now_ms)); });
  }

  void register_specs(std::string function_type, std::vector<StateSpec> specs, Done<bool> done) override {
    post([this, type = std::move(function_type), specs = std::move(specs), done = std::move(done)]() mutable {
      if (specs.empty()) return done(true);
      std::optional<Row<pb::Specs>> cached;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = specs_.find(type);
        if (it != specs_.end()) cached = it->second;
      }
      auto m = mutate<pb::Specs>(specs_key(type), std::move(cached), [&](pb::Specs& s, bool) -> Result<Verdict> {
        for (const StateSpec& spec : specs) {
          pb::StateSpecRecord* r = nullptr;
          for (auto& existing : *s.mutable_specs()) {
            if (existing.name() == spec.name) r = &existing;
          }
          if (r == nullptr) r = s.add_specs();
          r->set_name(spec.name);
          r->set_type_name(spec.type_name);
          r->set_mode(static_cast<int32_t>(spec.mode));
          r->set_ttl_ms(spec.ttl_ms);
        }
        return Verdict::write;
      });
      if (!m.ok()) return done(std::move(m).error());
      done(true);
    });
  }

  void fire_delayed(int64_t now_ms, std::size_t max, Done<std::size_t> done) override {
    post([this, now_ms, max, done = std::move(done)]() mutable { done(do_fire(now_ms, max)); });
  }

  void sweep(int64_t now_ms, int64_t kept_after_ms, Done<EntitySweep> done) override {
    post([this, now_ms, kept_after_ms, done = std::move(done)]() mutable { done(do_sweep(now_ms, kept_after_ms)); });
  }

  void release_entity_leases(int64_t now_ms, bool all, Done<std::size_t> done) override {
    post([this, now_ms, all, done = std::move(done)]() mutable { done(do_release(now_ms, all)); });
  }

  void redrive(uint64_t dead_letter, int64_t now_ms, Done<uint64_t> done) override {
    post([this, dead_letter, now_ms, done = std::move(done)]() mutable { done(do_redrive(dead_letter, now_ms)); });
  }

  void ack_egress(std::string egress, uint64_t seq, Done<bool> done) override {
    post([this, egress = std::move(egress), seq, done = std::move(done)]() mutable {
      std::optional<Row<pb::EgressAck>> cached;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = acks_.find(egress);
        if (it != acks_.end()) cached = it->second;
      }
      auto m = mutate<pb::EgressAck>(ack_key(egress), std::move(cached), [&](pb::EgressAck& a, bool exists) {
        if (exists && a.seq() >= seq) return Result<Verdict>(Verdict::keep);
        a.set_seq(std::max(a.seq(), seq));
        a.set_set(true);
        return Result<Verdict>(Verdict::write);
      });
      if (!m.ok()) return done(std::move(m).error());
      done(true);
    });
  }

  Result<std::optional<EntityView>> entity(const EntityAddress& address, std::size_t limit) override {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::lock_guard<std::mutex> lock(mu_);
    const Addr a = addr_of(address);
    EntityView v;
    v.address = address;
    bool known = false;
    uint64_t consumed = 0;
    auto e = entities_.find(a);
    if (e != entities_.end()) {
      known = true;
      const pb::Entity& r = e->second.rec;
      consumed = r.consumed_seq();
      v.in_flight = r.lease() != 0;
      v.attempts = r.attempts();
      v.last_error = r.last_error();
      for (const pb::Value& s : r.state()) {
        v.state.push_back({s.name(), s.type_name(), s.value(), s.expires_at_ms()});
      }
      std::sort(v.state.begin(), v.state.end(),
                [](const StateValue& x, const StateValue& y) { return x.name < y.name; });
    }
    auto in = inbox_.find(a);
    if (in != inbox_.end()) {
      known = true;
      for (auto it = in->second.upper_bound(consumed); it != in->second.end() && v.backlog.size() < limit; ++it) {
        v.backlog.push_back(queued(it->first, it->second.rec));
      }
    }
    if (!v.backlog.empty() && !v.in_flight) v.next_attempt_at_ms = due_of(a);
    std::vector<DelayedRecord> delayed;
    for (const auto& [due, rev, key] : due_delayed_) {
      const pb::DelayedMessage& d = delayed_.at(key).rec;
      if (addr_of(d.message().target()) != a) continue;
      if (v.delayed.size() >= limit) break;
      DelayedRecord r;
      r.seq = rev;
      r.due_at_ms = due;
      r.message = from_pb(d.message());
      r.cancellation_token = d.token();
      v.delayed.push_back(std::move(r));
    }
    if (!known && v.state.empty() && v.delayed.empty()) return std::optional<EntityView>();
    return std::optional<EntityView>(std::move(v));
  }

  Result<std::vector<EgressRecord>> read_egress(std::string_view egress, uint64_t after_seq,
                                                std::size_t limit) override {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<EgressRecord> out;
    auto it = egress_.find(std::string(egress));
    if (it == egress_.end()) return out;
    for (auto r = it->second.upper_bound(after_seq); r != it->second.end() && out.size() < limit; ++r) {
      const pb::EgressRecord& e = r->second.second;
      out.push_back({r->first, e.egress(), e.type_name(), e.value(), e.created_at_ms()});
    }
    return out;
  }

  Result<uint64_t> egress_cursor(std::string_view egress) override {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = acks_.find(std::string(egress));
    return it == acks_.end() ? uint64_t{0} : it->second.rec.seq();
  }

  Result<std::vector<DeadLetter>> dead_letters(uint64_t after_seq, std::size_t limit) override {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<DeadLetter> out;
    for (auto it = dead_.upper_bound(after_seq); it != dead_.end() && out.size() < limit; ++it) {
      const pb::DeadLetter& d = it->second.second;
      DeadLetter l;
      l.seq = it->first;
      l.message = queued(d.message_seq(), d.message());
      l.reason = d.reason();
      l.attempts = d.attempts();
      l.created_at_ms = d.created_at_ms();
      out.push_back(std::move(l));
    }
    return out;
  }

  Result<std::optional<int64_t>> next_entity_due_ms() override {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<int64_t> out;
    for (const auto& [type, ids] : ready_) {
      for (const std::string& id : ids) {
        const Addr a{type, id};
        if (leased(a)) continue;
        const int64_t due = due_of(a);
        if (!out || due < *out) out = due;
      }
    }
    if (!due_delayed_.empty()) {
      const int64_t due = std::get<0>(*due_delayed_.begin());
      if (!out || due < *out) out = due;
    }
    return out;
  }

 private:
  // ---- the writer thread ----

  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      queue_.push_back(std::move(task));
    }
    queue_cv_.notify_one();
  }

  void write_loop() {
    int64_t last_recovery = wall_ms();
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        queue_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_ || !queue_.empty(); });
        if (!queue_.empty()) {
          task = std::move(queue_.front());
          queue_.pop_front();
        } else if (stopping_) {
          return;
        }
      }
      if (diverged_) (void)rebuild_index();  // failures: tried again with the next task or in a second
      if (task) task();
      if (wall_ms() - last_recovery >= 1000) {
        last_recovery = wall_ms();
        (void)heartbeat();     // failures: tried again in a second
        (void)recover(false);  // likewise
      }
    }
  }

  // ---- the index, fed by the watcher alone ----

  void watch_loop() {
    Kv::Change change;
    const auto caught_up = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      caught_up_ = true;
      cv_.notify_all();
    };
    while (follower_.next_change(change, caught_up)) {
      std::lock_guard<std::mutex> lock(mu_);
      change.revision += revision_shift_;
      check_echo(change);
      if (change.deleted) {
        gone_.erase(change.key);
        erase(change.key);
      } else {
        auto gone = gone_.find(change.key);
        if (gone == gone_.end() || change.revision > gone->second) {
          if (gone != gone_.end()) gone_.erase(gone);
          put(change.key, change.value, change.revision);
        }
      }
      seen_ = std::max(seen_, change.revision);
      cv_.notify_all();
    }
  }

  // Under mu_: whether this change is one of this store's own writes, at
  // another revision than the server acknowledged. The watcher then reads
  // a replica whose numbering differs from the leader's (seen on nats-server
  // 2.9.10 after a node of three was SIGKILLed and restarted: a replica five
  // revisions ahead), and the index's seqs cannot be compared with the
  // consumed_seq other processes write: the index is rebuilt.
  // The echo may come before the acknowledgement is handled, so changes
  // are kept a moment (the last kMaxEchoes) for the write to find.
  void check_echo(const Kv::Change& change) {
    if (change.deleted) return;
    const std::size_t hash = std::hash<std::string>{}(change.value);
    auto echo = echoes_.find(change.key);
    if (echo == echoes_.end() || hash != echo->second.second) {
      // Not (yet) known as ours, or ours overwritten before the watcher got it.
      if (delivered_.size() >= kMaxEchoes) delivered_.clear();
      delivered_[change.key] = {change.revision, hash};
      return;
    }
    if (change.revision != echo->second.first) diverged_ = true;
    echoes_.erase(echo);
  }
  // After a write acknowledged at `revision`: its echo is checked.
  void expect_echo(const std::string& key, std::string_view value, uint64_t revision) {
    const std::size_t hash = std::hash<std::string_view>{}(value);
    std::lock_guard<std::mutex> lock(mu_);
    auto came = delivered_.find(key);
    if (came != delivered_.end() && came->second.second == hash) {
      if (came->second.first != revision) diverged_ = true;
      delivered_.erase(came);
      return;
    }
    if (echoes_.size() >= kMaxEchoes) echoes_.clear();  // writes others overwrote before the watcher saw them
    echoes_[key] = {revision, hash};
  }

  // Once a second, on the writer thread: this process's own record
  // written, so that its echo (check_echo) tells within a second a watcher
  // numbered apart from the leader, or one that skipped changes, even while
  // the process writes nothing else.
  Result<void> heartbeat() {
    const std::string value = std::to_string(wall_ms());
    auto written = heartbeat_rev_ == 0 ? kv_->create(heartbeat_key_, value)
                                       : kv_->update(heartbeat_key_, value, heartbeat_rev_);
    if (!written.ok()) return std::move(written).error();
    if (!*written) {  // purged as stale while the servers were away: written again next time
      heartbeat_rev_ = 0;
      auto there = kv_->get(heartbeat_key_);
      if (there.ok() && *there) heartbeat_rev_ = (*there)->revision;
      return {};
    }
    heartbeat_rev_ = **written;
    expect_echo(heartbeat_key_, value, heartbeat_rev_);
    return {};
  }

  // On the writer thread: the index again from a new watcher (a new
  // consumer, which the cluster may place on another replica), everything
  // the old one delivered dropped. Reads wait meanwhile.
  Result<void> rebuild_index() {
    follower_.stop();
    {
      std::lock_guard<std::mutex> lock(mu_);
      entities_.clear();
      inbox_.clear();
      inbox_keys_.clear();
      inbox_seq_keys_.clear();
      ready_.clear();
      delayed_.clear();
      due_delayed_.clear();
      tokens_.clear();
      egress_.clear();
      egress_keys_.clear();
      dead_.clear();
      dead_keys_.clear();
      keys_.clear();
      specs_.clear();
      acks_.clear();
      batches_.clear();
      gone_.clear();
      heartbeats_.clear();
      echoes_.clear();
      delivered_.clear();
      caught_up_ = false;
      seen_ = 0;
      revision_shift_ = 0;
      diverged_ = false;
    }
    ++rebuilds_;
    return follow_bucket();
  }

  // A new watcher over the bucket and its thread; returns once it has
  // listed every record present (unavailable after the timeout). A watcher
  // that cannot be made leaves the index marked diverged, to be tried again.
  Result<void> follow_bucket() {
    Result<void> listed = follower_.start_and_list(
        *kv_, [this] { watch_loop(); }, mu_, cv_, [this] { return caught_up_; }, options_.timeout);
    if (!listed.ok() && !follower_.started()) diverged_ = true;
    return listed;
  }

 public:
  // For tests: revisions the watcher delivers from now on are reported
  // `by` higher, as a replica ahead of the leader numbers them; a rebuild
  // of the index ends it.
  void shift_index_revisions(uint64_t by) {
    std::lock_guard<std::mutex> lock(mu_);
    revision_shift_ = by;
  }
  uint64_t index_rebuilds() const { return rebuilds_.load(); }
  void set_record_grace(std::chrono::milliseconds grace) { grace_ms_ = grace.count(); }

 private:
  static bool has_prefix(const std::string& key, std::string_view prefix) {
    return key.compare(0, prefix.size(), prefix) == 0;
  }

  // Under mu_. Records that do not parse are left out of the index.
  void put(const std::string& key, const std::string& value, uint64_t rev) {
    if (has_prefix(key, "e.")) {
      pb::Entity e;
      if (!e.ParseFromString(value)) return;
      const Addr a = addr_of(e.address());
      entities_[a] = Row<pb::Entity>{std::move(e), rev};
      refresh(a);
    } else if (has_prefix(key, "m.")) {
      pb::InboxMessage m;
      if (!m.ParseFromString(value)) return;
      const Addr a = addr_of(m.message().target());
      auto again = inbox_keys_.find(key);
      if (again != inbox_keys_.end() && again->second.second != rev) erase(key);  // written again: one copy
      inbox_keys_[key] = {a, rev};
      inbox_seq_keys_[rev] = key;
      inbox_[a][rev] = Row<pb::InboxMessage>{std::move(m), rev};
      refresh(a);
    } else if (has_prefix(key, "d.")) {
      pb::DelayedMessage d;
      if (!d.ParseFromString(value)) return;
      erase(key);
      if (d.state() == kPending) {
        due_delayed_.emplace(d.due_at_ms(), rev, key);
        if (!d.token().empty()) tokens_[token_of(d)].insert(key);
      }
      delayed_[key] = Row<pb::DelayedMessage>{std::move(d), rev};
    } else if (has_prefix(key, "g.")) {
      pb::EgressRecord g;
      if (!g.ParseFromString(value)) return;
      const std::string name = g.egress();
      egress_keys_[key] = {name, rev};
      egress_[name][rev] = {key, std::move(g)};
    } else if (has_prefix(key, "x.")) {
      pb::DeadLetter x;
      if (!x.ParseFromString(value)) return;
      dead_keys_[key] = rev;
      dead_[rev] = {key, std::move(x)};
    } else if (has_prefix(key, "k.")) {
      pb::IngressKey k;
      if (!k.ParseFromString(value)) return;
      keys_[key] = Row<pb::IngressKey>{std::move(k), rev};
    } else if (has_prefix(key, "p.")) {
      pb::Specs s;
      if (!s.ParseFromString(value)) return;
      specs_[unhex(key.substr(3))] = Row<pb::Specs>{std::move(s), rev};
    } else if (has_prefix(key, "a.")) {
      pb::EgressAck a;
      if (!a.ParseFromString(value)) return;
      acks_[unhex(key.substr(3))] = Row<pb::EgressAck>{std::move(a), rev};
    } else if (has_prefix(key, "s.")) {
      pb::SendBatch b;
      if (!b.ParseFromString(value)) return;
      batches_[key] = b.written_at_ms();
    } else if (has_prefix(key, "h.")) {
      heartbeats_[key] = {std::strtoll(value.c_str(), nullptr, 10), rev};
    }
  }

  // Under mu_.
  void erase(const std::string& key) {
    if (has_prefix(key, "m.")) {
      auto it = inbox_keys_.find(key);
      if (it == inbox_keys_.end()) return;
      const Addr a = it->second.first;
      auto in = inbox_.find(a);
      if (in != inbox_.end()) {
        in->second.erase(it->second.second);
        if (in->second.empty()) inbox_.erase(in);
      }
      inbox_seq_keys_.erase(it->second.second);
      inbox_keys_.erase(it);
      refresh(a);
    } else if (has_prefix(key, "d.")) {
      auto it = delayed_.find(key);
      if (it == delayed_.end()) return;
      const pb::DelayedMessage& d = it->second.rec;
      due_delayed_.erase({d.due_at_ms(), it->second.revision, key});
      if (!d.token().empty()) {
        auto t = tokens_.find(token_of(d));
        if (t != tokens_.end()) {
          t->second.erase(key);
          if (t->second.empty()) tokens_.erase(t);
        }
      }
      delayed_.erase(it);
    } else if (has_prefix(key, "g.")) {
      auto it = egress_keys_.find(key);
      if (it == egress_keys_.end()) return;
      auto g = egress_.find(it->second.first);
      if (g != egress_.end()) {
        g->second.erase(it->second.second);
        if (g->second.empty()) egress_.erase(g);
      }
      egress_keys_.erase(it);
    } else if (has_prefix(key, "x.")) {
      auto it = dead_keys_.find(key);
      if (it == dead_keys_.end()) return;
      dead_.erase(it->second);
      dead_keys_.erase(it);
    } else if (has_prefix(key, "k.")) {
      keys_.erase(key);
    } else if (has_prefix(key, "s.")) {
      batches_.erase(key);
    } else if (has_prefix(key, "h.")) {
      heartbeats_.erase(key);
    }
  }

  static std::string unhex(std::string_view h) {
    std::string out;
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
      out.push_back(static_cast<char>(nibble(h[i]) << 4 | nibble(h[i + 1])));
    }
    return out;
  }

  static std::tuple<std::string, std::string, std::string> token_of(const pb::DelayedMessage& d) {
    return {d.message().caller().type(), d.message().caller().id(), d.token()};
  }

  // Under mu_: whether the entity has messages beyond what it consumed.
  void refresh(const Addr& a) {
    uint64_t consumed = 0;
    auto e = entities_.find(a);
    if (e != entities_.end()) consumed = e->second.rec.consumed_seq();
    auto in = inbox_.find(a);
    const bool ready = in != inbox_.end() && in->second.upper_bound(consumed) != in->second.end();
    if (ready) {
      ready_[a.first].insert(a.second);
    } else {
      auto t = ready_.find(a.first);
      if (t != ready_.end()) {
        t->second.erase(a.second);
        if (t->second.empty()) ready_.erase(t);
      }
    }
  }
  // Under mu_.
  bool leased(const Addr& a) const {
    auto e = entities_.find(a);
    return e != entities_.end() && e->second.rec.lease() != 0;
  }
  int64_t due_of(const Addr& a) const {
    auto e = entities_.find(a);
    return e == entities_.end() ? 0 : e->second.rec.next_attempt_at_ms();
  }
  // Under mu_: the messages after `consumed`, up to `max`.
  std::vector<Row<pb::InboxMessage>> unconsumed(const Addr& a, uint64_t consumed, std::size_t max) const {
    std::vector<Row<pb::InboxMessage>> out;
    auto in = inbox_.find(a);
    if (in == inbox_.end()) return out;
    for (auto it = in->second.upper_bound(consumed); it != in->second.end() && out.size() < max; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  std::optional<Row<pb::Entity>> cached_entity(const Addr& a) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entities_.find(a);
    if (it == entities_.end()) return std::nullopt;
    return it->second;
  }

  // Waits until the watcher delivered this store's last write: the index
  // then holds every write this process made, and all before them.
  Result<void> caught_up() {
    if (diverged_) return diverged_error();
    const uint64_t want = written_.load();
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, options_.timeout, [&] { return caught_up_ && seen_ >= want; })) {
      return Error(Code::unavailable, "JetStream bucket " + kv_->bucket() + " did not report revision " +
                                          std::to_string(want) + " within " +
                                          std::to_string(options_.timeout.count()) + " ms");
    }
    return {};
  }

  Error diverged_error() const {
    return Error(Code::unavailable, "JetStream bucket " + kv_->bucket() +
                                        ": this process's index was read from a replica whose revisions differ from "
                                        "the leader's; it is being rebuilt, try again");
  }

  void wrote(uint64_t revision) {
    uint64_t seen = written_.load();
    while (seen < revision && !written_.compare_exchange_weak(seen, revision)) {
    }
  }

  // ---- records on the server ----

  template <typename Rec>
  Result<std::optional<Row<Rec>>> load(const std::string& key) {
    auto e = kv_->get(key);
    if (!e.ok()) return std::move(e).error();
    if (!*e) return std::optional<Row<Rec>>();
    Row<Rec> row;
    row.revision = (*e)->revision;
    if (!row.rec.ParseFromString((*e)->value)) {
      return Error(Code::data_loss, "record " + key + " in JetStream bucket " + kv_->bucket() + " is not a " +
                                        row.rec.GetTypeName());
    }
    return std::optional<Row<Rec>>(std::move(row));
  }

  // Creates `key` unless present; its revision either way (the present
  // one's when it was there).
  Result<uint64_t> ensure(const std::string& key, const std::string& value) {
    for (int attempt = 0; attempt < kMaxRaces; ++attempt) {
      auto made = kv_->create(key, value);
      if (!made.ok()) return std::move(made).error();
      if (*made) {
        wrote(**made);
        expect_echo(key, value, **made);
        return **made;
      }
      auto there = kv_->get(key);
      if (!there.ok()) return std::move(there).error();
      if (*there) return (*there)->revision;
    }
    return Error(Code::aborted, "record " + key + " came and went under every attempt to write it; try again");
  }

  Result<void> purge(const std::string& key, uint64_t revision) { return purge_all({{key, revision}}); }

  // Changes record `key` by compare-and-set: `decide` sees the record (a
  // default one with exists=false when there is none) and changes it
  // (write) or not (keep); a lost race reads the record again and decides
  // again. A decision to keep made on the index's copy is checked against
  // the server's.
  template <typename Rec, typename Decide>
  Result<Mutated<Rec>> mutate(const std::string& key, std::optional<Row<Rec>> row, Decide&& decide) {
    bool fresh = false;
    for (int attempt = 0; attempt < kMaxRaces; ++attempt) {
      if (!row && !fresh) {
        auto loaded = load<Rec>(key);
        if (!loaded.ok()) return std::move(loaded).error();
        row = std::move(loaded).value();
        fresh = true;
      }
      Rec next;
      if (row) next = row->rec;
      Result<Verdict> verdict = decide(next, row.has_value());
      if (!fresh && (!verdict.ok() || *verdict == Verdict::keep)) {
        row.reset();  // decided on the index's copy: check with the server's
        continue;
      }
      if (!verdict.ok()) return std::move(verdict).error();
      if (*verdict == Verdict::keep) {
        Mutated<Rec> m;
        m.row = std::move(row);
        return m;
      }
      const std::string bytes = encode(next);
      auto written = row ? kv_->update(key, bytes, row->revision) : kv_->create(key, bytes);
      if (!written.ok()) return std::move(written).error();
      if (!*written) {  // lost the race: read again
        row.reset();
        fresh = false;
        continue;
      }
      wrote(**written);
      expect_echo(key, bytes, **written);
      Mutated<Rec> m;
      m.written = true;
      m.row = Row<Rec>{std::move(next), **written};
      return m;
    }
    return Error(Code::aborted, "record " + key + " changed under every one of " + std::to_string(kMaxRaces) +
                                    " attempts to write it; try again");
  }

  // ---- effects ----

  pb::EntityEffects new_effects(int64_t now_ms) {
    pb::EntityEffects fx;
    fx.set_id(rng_() | 1);
    fx.set_written_at_ms(wall_ms());
    fx.set_now_ms(now_ms);
    return fx;
  }
  static bool empty(const pb::EntityEffects& fx) {
    return fx.outgoing_size() == 0 && fx.cancellations_size() == 0 && fx.delayed_size() == 0 &&
           fx.egress_size() == 0 && fx.dead_letters_size() == 0;
  }

  pb::InboxMessage inbox_message(const pb::EntityMsg& m, int64_t now_ms) {
    pb::InboxMessage in;
    *in.mutable_message() = m;
    in.set_created_at_ms(now_ms);
    in.set_written_at_ms(wall_ms());
    return in;
  }

  // Applies the effects on entity record `e` (each part idempotent), then
  // clears them if they are still these.
  Result<void> apply_effects(const pb::Entity& e) {
    const pb::EntityEffects fx = e.effects();
    const std::string origin = "f" + hex64(fx.id());
    const int64_t now = fx.now_ms();
    for (int i = 0; i < fx.outgoing_size(); ++i) {
      const pb::EntityMsg& m = fx.outgoing(i);
      auto made = ensure(inbox_key(m.target(), origin + "o" + std::to_string(i)), encode(inbox_message(m, now)));
      if (!made.ok()) return std::move(made).error();
    }
    // Cancellations before the new delayed messages (BatchResult: they are
    // of earlier replies' messages, and a reply may cancel a token and arm
    // it again). Its own new ones are never cancelled (when the effects are
    // applied again).
    for (const std::string& token : fx.cancellations()) {
      std::vector<std::pair<std::string, Row<pb::DelayedMessage>>> pending;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto t = tokens_.find({e.address().type(), e.address().id(), token});
        if (t != tokens_.end()) {
          for (const std::string& key : t->second) pending.emplace_back(key, delayed_.at(key));
        }
      }
      for (auto& [key, row] : pending) {
        if (row.rec.origin() == origin) continue;
        auto m = mutate<pb::DelayedMessage>(key, row, [&](pb::DelayedMessage& d, bool exists) -> Result<Verdict> {
          if (!exists || d.state() != kPending || d.origin() == origin) return Verdict::keep;
          d.set_state(kCancelled);
          d.set_settled_at_ms(wall_ms());
          return Verdict::write;
        });
        if (!m.ok()) return std::move(m).error();
      }
    }
    for (int i = 0; i < fx.delayed_size(); ++i) {
      const pb::NewDelayed& n = fx.delayed(i);
      pb::DelayedMessage d;
      d.set_due_at_ms(n.due_at_ms());
      *d.mutable_message() = n.message();
      d.set_token(n.token());
      d.set_created_at_ms(now);
      d.set_state(kPending);
      d.set_origin(origin);
      auto made = ensure("d." + origin + "d" + std::to_string(i), encode(d));
      if (!made.ok()) return std::move(made).error();
    }
    for (int i = 0; i < fx.egress_size(); ++i) {
      const pb::NewEgress& n = fx.egress(i);
      pb::EgressRecord g;
      g.set_egress(n.egress());
      g.set_type_name(n.type_name());
      g.set_value(n.value());
      g.set_created_at_ms(now);
      auto made = ensure("g." + origin + "g" + std::to_string(i), encode(g));
      if (!made.ok()) return std::move(made).error();
    }
    for (int i = 0; i < fx.dead_letters_size(); ++i) {
      const pb::NewDeadLetter& n = fx.dead_letters(i);
      pb::DeadLetter x;
      x.set_message_seq(n.message_seq());
      *x.mutable_message() = n.message();
      x.set_reason(fx.reason());
      x.set_attempts(fx.attempts());
      x.set_created_at_ms(now);
      auto made = ensure("x." + origin + "x" + std::to_string(i), encode(x));
      if (!made.ok()) return std::move(made).error();
    }
    const Addr a = addr_of(e.address());
    auto cleared = mutate<pb::Entity>(entity_key(a), cached_entity(a), [&](pb::Entity& r, bool exists) {
      if (!exists || !r.has_effects() || r.effects().id() != fx.id()) return Result<Verdict>(Verdict::keep);
      r.clear_effects();
      return Result<Verdict>(Verdict::write);
    });
    if (!cleared.ok()) return std::move(cleared).error();
    return {};
  }

  // ---- writes ----

  Result<std::vector<uint64_t>> do_send(std::vector<EntityMessage> messages, int64_t now_ms) {
    if (messages.empty()) return Error(Code::invalid_argument, "no messages to send");
    const std::string id = hex64(rng_());
    if (messages.size() == 1 && messages[0].idempotency_key.empty()) {
      // One record: nothing to make atomic.
      const pb::EntityMsg m = to_pb(messages[0]);
      auto seq = ensure(inbox_key(m.target(), "n" + id), encode(inbox_message(m, now_ms)));
      if (!seq.ok()) return std::move(seq).error();
      return std::vector<uint64_t>{*seq};
    }
    pb::SendBatch batch;
    batch.set_written_at_ms(wall_ms());
    batch.set_now_ms(now_ms);
    for (const EntityMessage& m : messages) {
      *batch.add_messages() = to_pb(m);
      batch.add_idempotency_keys(m.idempotency_key);
    }
    const std::string key = "s." + id;
    auto written = kv_->create(key, encode(batch));
    if (!written.ok()) return std::move(written).error();
    if (!*written) return Error(Code::internal, "send ID " + id + " is taken in JetStream bucket " + kv_->bucket());
    wrote(**written);
    auto ids = apply_send(id, batch);
    if (!ids.ok()) return ids;  // recovery finishes it
    auto purged = purge(key, **written);
    if (!purged.ok()) return std::move(purged).error();
    return ids;
  }

  // Queues a send's messages (each at most once); an idempotency key's
  // earlier message's seq stands for a message not queued again.
  Result<std::vector<uint64_t>> apply_send(const std::string& id, const pb::SendBatch& batch) {
    std::vector<uint64_t> ids;
    for (int i = 0; i < batch.messages_size(); ++i) {
      const pb::EntityMsg& m = batch.messages(i);
      std::string mkey = inbox_key(m.target(), "s" + id + "n" + std::to_string(i));
      const std::string& idem = i < batch.idempotency_keys_size() ? batch.idempotency_keys(i) : std::string();
      std::optional<uint64_t> key_rev;
      std::optional<uint64_t> known;
      if (!idem.empty()) {
        const std::string kkey = ingress_key(idem);
        pb::IngressKey k;
        k.set_message_key(mkey);
        k.set_created_at_ms(batch.now_ms());
        for (int attempt = 0; attempt < kMaxRaces && !key_rev && !known; ++attempt) {
          auto claimed = kv_->create(kkey, encode(k));
          if (!claimed.ok()) return std::move(claimed).error();
          if (*claimed) {
            wrote(**claimed);
            key_rev = **claimed;
            break;
          }
          auto holder = load<pb::IngressKey>(kkey);
          if (!holder.ok()) return std::move(holder).error();
          if (!*holder) continue;  // swept meanwhile: claim it again
          if ((*holder)->rec.message_seq() != 0) {
            known = (*holder)->rec.message_seq();
          } else {
            // Its sender has not recorded the seq yet (or died first): its
            // message is made (if it is not yet) and stands for this one.
            mkey = (*holder)->rec.message_key();
            k = (*holder)->rec;
            key_rev = (*holder)->revision;
          }
        }
        if (!key_rev && !known) return Error(Code::aborted, "ingress key " + kkey + " kept changing; try again");
      }
      if (known) {
        ids.push_back(*known);
        continue;
      }
      auto seq = ensure(mkey, encode(inbox_message(m, batch.now_ms())));
      if (!seq.ok()) return std::move(seq).error();
      if (key_rev) {
        pb::IngressKey k;
        k.set_message_key(mkey);
        k.set_message_seq(*seq);
        k.set_created_at_ms(batch.now_ms());
        auto recorded = kv_->update(ingress_key(idem), encode(k), *key_rev);
        if (!recorded.ok()) return std::move(recorded).error();
        if (*recorded) wrote(**recorded);
      }
      ids.push_back(*seq);
    }
    return ids;
  }

  Result<std::vector<EntityBatch>> do_claim(const EntityClaimOptions& o) {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::vector<std::string> types;
    std::vector<std::vector<std::string>> per_type;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [type, ids] : ready_) {
        if (std::find(o.skip_types.begin(), o.skip_types.end(), type) != o.skip_types.end()) continue;
        std::vector<std::pair<int64_t, std::string>> due;
        for (const std::string& id : ids) {
          const Addr a{type, id};
          if (leased(a) || due_of(a) > o.now_ms) continue;
          due.emplace_back(due_of(a), id);
        }
        if (due.empty()) continue;
        std::sort(due.begin(), due.end());
        if (due.size() > o.max_batches) due.resize(o.max_batches);
        types.push_back(type);
        std::vector<std::string> picked;
        for (auto& d : due) picked.push_back(std::move(d.second));
        per_type.push_back(std::move(picked));
      }
    }
    std::vector<EntityBatch> out;
    if (types.empty() || o.max_batches == 0) return out;
    // Rotated between claims, so that the remainder of an uneven share
    // does not always go to the same types.
    const auto turn = static_cast<long>(claim_round_++ % types.size());
    std::rotate(types.begin(), types.begin() + turn, types.end());
    std::rotate(per_type.begin(), per_type.begin() + turn, per_type.end());
    const uint64_t lease = rng_() | 1;
    for (std::size_t round = 0; out.size() < o.max_batches; ++round) {
      bool any = false;
      for (std::size_t t = 0; t < types.size() && out.size() < o.max_batches; ++t) {
        if (round >= per_type[t].size()) continue;
        any = true;
        auto b = lease_one({types[t], per_type[t][round]}, lease, o);
        if (!b.ok()) {
          if (out.empty()) return std::move(b).error();
          return out;  // hand over what is leased; the rest stays due
        }
        if (*b) out.push_back(std::move(**b));
      }
      if (!any) break;
    }
    return out;
  }

  Result<std::optional<EntityBatch>> lease_one(const Addr& a, uint64_t lease, const EntityClaimOptions& o) {
    std::optional<Row<pb::Entity>> cached = cached_entity(a);
    if (cached && cached->rec.has_effects()) {
      // The last reply's effects first (its process died before applying
      // them, or applies them now: either way, once).
      auto applied = apply_effects(cached->rec);
      if (!applied.ok()) return std::move(applied).error();
      cached.reset();
    }
    std::vector<Row<pb::InboxMessage>> messages;
    auto m = mutate<pb::Entity>(entity_key(a), std::move(cached), [&](pb::Entity& e, bool exists) -> Result<Verdict> {
      if (!exists) {
        e.mutable_address()->set_type(a.first);
        e.mutable_address()->set_id(a.second);
      }
      if (e.has_effects() || e.lease() != 0 || e.next_attempt_at_ms() > o.now_ms) return Verdict::keep;
      uint64_t repeated_up_to = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        const std::size_t limit = e.attempts() > 0 ? 1 : std::max<std::size_t>(1, o.max_messages);
        messages.clear();
        for (auto& row : unconsumed(a, e.consumed_seq(), limit + kRecentKeys)) {
          if (consumed_before(e, row.revision)) {
            if (messages.empty()) repeated_up_to = row.revision;
            continue;
          }
          if (messages.size() < limit) messages.push_back(std::move(row));
        }
      }
      if (messages.empty()) {
        if (repeated_up_to == 0) return Verdict::keep;  // its messages went meanwhile
        // Only messages it consumed already: passed over, not delivered,
        // once the leader confirms the seq (below).
        auto checked = check_last(repeated_up_to);
        if (!checked.ok()) return std::move(checked).error();
        e.set_consumed_seq(repeated_up_to);
        return Verdict::write;
      }
      e.set_lease(lease);
      e.set_lease_until_ms(o.lease_until_ms);
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    if (!m->written || messages.empty()) return std::optional<EntityBatch>();
    // The batch's seqs are the index's revisions, and what it leaves
    // unconsumed is judged against consumed_seq, which any process wrote:
    // both must be the leader's numbering. The batch's last message is
    // read from the leader; at another revision, the index is not to be
    // trusted (a replica numbered apart, or the message written twice):
    // the lease goes back and the index is rebuilt.
    auto checked = check_last(messages.back().revision);
    if (!checked.ok()) {
      (void)mutate<pb::Entity>(entity_key(a), m->row, [&](pb::Entity& e, bool exists) -> Result<Verdict> {
        if (!exists || e.lease() != lease) return Verdict::keep;
        e.set_lease(0);
        e.set_lease_until_ms(0);
        return Verdict::write;
      });
      return std::move(checked).error();
    }
    const pb::Entity& e = m->row->rec;
    EntityBatch b;
    b.address = {a.first, a.second};
    b.lease = lease;
    b.attempts = e.attempts();
    b.last_error = e.last_error();
    for (const auto& row : messages) b.messages.push_back(queued(row.revision, row.rec));
    for (const pb::Value& v : e.state()) {
      if (v.expires_at_ms() != 0 && v.expires_at_ms() <= o.now_ms) continue;  // expired, not yet swept
      b.state.push_back({v.name(), v.type_name(), v.value(), v.expires_at_ms()});
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto s = specs_.find(a.first);
    if (s != specs_.end()) {
      for (const pb::StateSpecRecord& r : s->second.rec.specs()) {
        b.specs.push_back({r.name(), r.type_name(), static_cast<ExpireMode>(r.mode()), r.ttl_ms()});
      }
      std::sort(b.specs.begin(), b.specs.end(), [](const StateSpec& x, const StateSpec& y) { return x.name < y.name; });
    }
    return std::optional<EntityBatch>(std::move(b));
  }

  // A stable hash of an inbox message's key (the same in every process and
  // build: it is kept in entity records), FNV-1a.
  static uint64_t key_hash(std::string_view key) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : key) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
    return h;
  }
  // Under mu_: whether inbox message `seq` is one the entity consumed
  // already under its key (at another seq: written again, or numbered
  // anew by a leader whose numbering differs).
  bool consumed_before(const pb::Entity& e, uint64_t seq) const {
    if (e.recent_keys_size() == 0) return false;
    auto it = inbox_seq_keys_.find(seq);
    if (it == inbox_seq_keys_.end()) return false;
    const uint64_t h = key_hash(it->second);
    return std::find(e.recent_keys().begin(), e.recent_keys().end(), h) != e.recent_keys().end();
  }
  // Under mu_: the batch up to `last_seq` joins the entity's recent keys
  // (the last kRecentKeys kept).
  void remember_consumed(pb::Entity& e, uint64_t last_seq) const {
    const Addr a = addr_of(e.address());
    auto in = inbox_.find(a);
    if (in == inbox_.end()) return;
    for (auto it = in->second.upper_bound(e.consumed_seq()); it != in->second.end() && it->first <= last_seq; ++it) {
      auto k = inbox_seq_keys_.find(it->first);
      if (k != inbox_seq_keys_.end()) e.add_recent_keys(key_hash(k->second));
    }
    const int over = e.recent_keys_size() - static_cast<int>(kRecentKeys);
    if (over > 0) e.mutable_recent_keys()->erase(e.mutable_recent_keys()->begin(), e.mutable_recent_keys()->begin() + over);
  }

  // Whether inbox message `seq` of the index is at that revision on the
  // server (whose gets the leader answers on a replicated bucket); when not,
  // the index is marked for rebuilding.
  Result<void> check_last(uint64_t seq) {
    std::string key;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = inbox_seq_keys_.find(seq);
      if (it != inbox_seq_keys_.end()) key = it->second;
    }
    if (key.empty()) return Error(Code::aborted, "inbox message " + std::to_string(seq) + " left the index; try again");
    auto there = kv_->get(key);
    if (!there.ok()) return std::move(there).error();
    if (!*there || (*there)->revision != seq) {
      diverged_ = true;
      return diverged_error();
    }
    return {};
  }

  Result<bool> do_complete(const EntityAddress& address, uint64_t lease, uint64_t last_seq, const BatchResult& r,
                           int64_t now_ms) {
    const Addr a = addr_of(address);
    if (!r.delayed.empty()) {
      // The index must hold the entity's pending delayed messages to check
      // their tokens.
      auto ok = caught_up();
      if (!ok.ok()) return std::move(ok).error();
    }
    pb::EntityEffects fx = new_effects(now_ms);
    for (const EntityMessage& m : r.outgoing) *fx.add_outgoing() = to_pb(m);
    for (const std::string& t : r.cancellations) fx.add_cancellations(t);
    for (const NewDelayedMessage& d : r.delayed) {
      pb::NewDelayed* n = fx.add_delayed();
      n->set_due_at_ms(d.due_at_ms);
      *n->mutable_message() = to_pb(d.message);
      n->set_token(d.cancellation_token);
    }
    for (const NewEgressRecord& g : r.egress) {
      pb::NewEgress* n = fx.add_egress();
      n->set_egress(g.egress);
      n->set_type_name(g.type_name);
      n->set_value(g.value);
    }
    auto token_taken = [&](const NewDelayedMessage& d) {
      return Error(Code::failed_precondition, "a delayed message with cancellation token '" + d.cancellation_token +
                                                  "' from " + address.type + "/" + address.id +
                                                  " is already pending; tokens must be unique among a sender's "
                                                  "pending messages");
    };
    auto m = mutate<pb::Entity>(entity_key(a), cached_entity(a), [&](pb::Entity& e, bool exists) -> Result<Verdict> {
      if (!exists || e.lease() != lease) return Verdict::keep;
      // A token pending twice from one sender fails the whole reply.
      std::set<std::tuple<std::string, std::string, std::string>> tokens;
      for (const NewDelayedMessage& d : r.delayed) {
        if (d.cancellation_token.empty()) continue;
        const std::tuple<std::string, std::string, std::string> t{d.message.caller.type, d.message.caller.id,
                                                                  d.cancellation_token};
        if (!tokens.insert(t).second) return token_taken(d);
        const bool cancelled = d.message.caller == address &&
                               std::find(r.cancellations.begin(), r.cancellations.end(), d.cancellation_token) !=
                                   r.cancellations.end();
        if (cancelled) continue;
        std::lock_guard<std::mutex> lock(mu_);
        if (tokens_.count(t) != 0) return token_taken(d);
      }
      for (const StateMutation& mu : r.mutations) {
        auto* state = e.mutable_state();
        auto it = std::find_if(state->begin(), state->end(), [&](const pb::Value& v) { return v.name() == mu.name; });
        if (mu.remove) {
          if (it != state->end()) state->erase(it);
          continue;
        }
        pb::Value* v = it != state->end() ? &*it : e.add_state();
        v->set_name(mu.name);
        v->set_type_name(mu.type_name);
        v->set_value(mu.value);
        v->set_expires_at_ms(mu.expires_at_ms);
      }
      for (const auto& [name, expires_at] : r.touched) {
        for (pb::Value& v : *e.mutable_state()) {
          if (v.name() == name) v.set_expires_at_ms(expires_at);
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        remember_consumed(e, last_seq);
      }
      settle(e, last_seq, now_ms);
      if (!empty(fx)) *e.mutable_effects() = fx;
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    if (!m->written) return false;
    // The reply is recorded; effects that fail here are recovery's to apply.
    if (m->row->rec.has_effects()) (void)apply_effects(m->row->rec);
    return true;
  }

  // The batch up to `last_seq` is done; the lease goes back.
  static void settle(pb::Entity& e, uint64_t last_seq, int64_t now_ms) {
    e.set_consumed_seq(std::max(e.consumed_seq(), last_seq));
    e.set_lease(0);
    e.set_lease_until_ms(0);
    e.set_attempts(0);
    e.set_last_error("");
    e.set_next_attempt_at_ms(now_ms);
  }

  Result<bool> do_dead_letter(const EntityAddress& address, uint64_t lease, uint64_t last_seq,
                              const std::string& reason, int64_t now_ms) {
    const Addr a = addr_of(address);
    auto m = mutate<pb::Entity>(entity_key(a), cached_entity(a), [&](pb::Entity& e, bool exists) -> Result<Verdict> {
      if (!exists || e.lease() != lease) return Verdict::keep;
      pb::EntityEffects fx = new_effects(now_ms);
      fx.set_reason(reason);
      fx.set_attempts(e.attempts() + 1);
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& row : unconsumed(a, e.consumed_seq(), std::numeric_limits<std::size_t>::max())) {
          if (row.revision > last_seq) break;
          if (consumed_before(e, row.revision)) continue;
          pb::NewDeadLetter* n = fx.add_dead_letters();
          n->set_message_seq(row.revision);
          *n->mutable_message() = std::move(row.rec);
        }
        remember_consumed(e, last_seq);
      }
      settle(e, last_seq, now_ms);
      if (!empty(fx)) *e.mutable_effects() = std::move(fx);
      return Verdict::write;
    });
    if (!m.ok()) return std::move(m).error();
    if (!m->written) return false;
    if (m->row->rec.has_effects()) (void)apply_effects(m->row->rec);
    return true;
  }

  Result<std::size_t> do_fire(int64_t now_ms, std::size_t max) {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::vector<std::string> due;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [at, rev, key] : due_delayed_) {
        if (at > now_ms || due.size() >= max) break;
        due.push_back(key);
      }
    }
    std::size_t fired = 0;
    for (const std::string& key : due) {
      auto row = load<pb::DelayedMessage>(key);
      if (!row.ok()) return fired > 0 ? Result<std::size_t>(fired) : Result<std::size_t>(std::move(row).error());
      if (!*row || (*row)->rec.state() != kPending) continue;
      // The message first (named after the delayed one: made once), then
      // the mark: a process that dies between them leaves it due, and
      // whoever fires it again finds the message made.
      const pb::DelayedMessage& d = (*row)->rec;
      auto made = ensure(inbox_key(d.message().target(), "d" + key.substr(2)),
                         encode(inbox_message(d.message(), now_ms)));
      if (!made.ok()) return fired > 0 ? Result<std::size_t>(fired) : Result<std::size_t>(std::move(made).error());
      auto m = mutate<pb::DelayedMessage>(key, *row, [&](pb::DelayedMessage& r, bool exists) -> Result<Verdict> {
        if (!exists || r.state() != kPending) return Verdict::keep;
        r.set_state(kFired);
        r.set_settled_at_ms(wall_ms());
        return Verdict::write;
      });
      if (!m.ok()) return fired > 0 ? Result<std::size_t>(fired) : Result<std::size_t>(std::move(m).error());
      if (m->written) ++fired;
    }
    return fired;
  }

  Result<EntitySweep> do_sweep(int64_t now_ms, int64_t kept_after_ms) {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::vector<Addr> expired;
    std::vector<std::pair<std::string, uint64_t>> keys, egress;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [a, row] : entities_) {
        if (expired.size() >= kSweepBatch) break;
        for (const pb::Value& v : row.rec.state()) {
          if (v.expires_at_ms() != 0 && v.expires_at_ms() <= now_ms) {
            expired.push_back(a);
            break;
          }
        }
      }
      for (const auto& [key, row] : keys_) {
        if (keys.size() >= kSweepBatch) break;
        if (row.rec.created_at_ms() < kept_after_ms) keys.emplace_back(key, row.revision);
      }
      for (const auto& [name, records] : egress_) {
        auto ack = acks_.find(name);
        for (const auto& [seq, rec] : records) {
          if (egress.size() >= kSweepBatch) break;
          if (rec.second.created_at_ms() >= kept_after_ms) continue;
          if (ack != acks_.end() && seq > ack->second.rec.seq()) break;  // not delivered yet
          egress.emplace_back(rec.first, seq);
        }
      }
    }
    EntitySweep swept;
    for (const Addr& a : expired) {
      std::size_t removed = 0;
      auto m = mutate<pb::Entity>(entity_key(a), cached_entity(a), [&](pb::Entity& e, bool exists) -> Result<Verdict> {
        removed = 0;
        if (!exists) return Verdict::keep;
        auto* state = e.mutable_state();
        const auto end = std::remove_if(state->begin(), state->end(), [&](const pb::Value& v) {
          return v.expires_at_ms() != 0 && v.expires_at_ms() <= now_ms;
        });
        removed = static_cast<std::size_t>(state->end() - end);
        if (removed == 0) return Verdict::keep;
        state->erase(end, state->end());
        return Verdict::write;
      });
      if (!m.ok()) return std::move(m).error();
      if (m->written) swept.state_values += removed;
    }
    for (const auto& [key, rev] : keys) {
      auto purged = purge(key, rev);
      if (!purged.ok()) return std::move(purged).error();
      ++swept.ingress_keys;
    }
    for (const auto& [key, rev] : egress) {
      auto purged = purge(key, rev);
      if (!purged.ok()) return std::move(purged).error();
      ++swept.egress_records;
    }
    return swept;
  }

  Result<std::size_t> do_release(int64_t now_ms, bool all) {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::vector<Addr> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [a, row] : entities_) {
        if (row.rec.lease() != 0 && (all || row.rec.lease_until_ms() <= now_ms)) held.push_back(a);
      }
    }
    std::size_t moved = 0;
    for (const Addr& a : held) {
      auto m = mutate<pb::Entity>(entity_key(a), cached_entity(a), [&](pb::Entity& e, bool exists) -> Result<Verdict> {
        if (!exists || e.lease() == 0 || (!all && e.lease_until_ms() > now_ms)) return Verdict::keep;
        e.set_lease(0);
        e.set_lease_until_ms(0);
        e.set_next_attempt_at_ms(now_ms);
        return Verdict::write;
      });
      if (!m.ok()) return std::move(m).error();
      if (m->written) ++moved;
    }
    return moved;
  }

  Result<uint64_t> do_redrive(uint64_t seq, int64_t now_ms) {
    auto ok = caught_up();
    if (!ok.ok()) return std::move(ok).error();
    std::string key;
    pb::DeadLetter letter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = dead_.find(seq);
      if (it == dead_.end()) return Error(Code::not_found, "no dead letter has id " + std::to_string(seq));
      key = it->second.first;
      letter = it->second.second;
    }
    const pb::EntityMsg& m = letter.message().message();
    auto queued_seq = ensure(inbox_key(m.target(), "r" + std::to_string(seq)), encode(inbox_message(m, now_ms)));
    if (!queued_seq.ok()) return std::move(queued_seq).error();
    auto purged = purge(key, seq);
    if (!purged.ok()) return std::move(purged).error();
    return *queued_seq;
  }

  // ---- recovery ----

  // Applies sends and effects left unapplied for longer than recover_after
  // (all of them: `everything`), and purges consumed inbox messages and
  // settled delayed messages older than the grace period.
  Result<void> recover(bool everything) {
    const int64_t now = wall_ms();
    const int64_t age = options_.recover_after.count();
    std::vector<std::string> sends;
    std::vector<pb::Entity> unsettled;
    std::vector<std::pair<std::string, uint64_t>> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [key, written_at] : batches_) {
        if (everything || now - written_at >= age) sends.push_back(key);
      }
      for (const auto& [a, row] : entities_) {
        if (row.rec.has_effects() && (everything || now - row.rec.effects().written_at_ms() >= age)) {
          unsettled.push_back(row.rec);
        }
      }
      for (const auto& [key, where] : inbox_keys_) {
        if (old.size() >= kPurgePerPass) break;
        auto e = entities_.find(where.first);
        if (e == entities_.end() || where.second > e->second.rec.consumed_seq()) continue;
        const auto& in = inbox_.at(where.first).at(where.second);
        if (now - in.rec.written_at_ms() >= grace_ms_) old.emplace_back(key, where.second);
      }
      for (const auto& [key, beat] : heartbeats_) {
        if (key != heartbeat_key_ && now - beat.first >= grace_ms_) old.emplace_back(key, beat.second);
      }
      for (const auto& [key, row] : delayed_) {
        if (old.size() >= 2 * kPurgePerPass) break;
        if (row.rec.state() != kPending && now - row.rec.settled_at_ms() >= grace_ms_) {
          old.emplace_back(key, row.revision);
        }
      }
    }
    for (const std::string& key : sends) {
      auto row = load<pb::SendBatch>(key);
      if (!row.ok()) return std::move(row).error();
      if (!*row) continue;
      auto applied = apply_send(key.substr(2), (*row)->rec);
      if (!applied.ok()) return std::move(applied).error();
      auto purged = purge(key, (*row)->revision);
      if (!purged.ok()) return purged;
    }
    for (const pb::Entity& e : unsettled) {
      auto applied = apply_effects(e);
      if (!applied.ok()) return applied;
    }
    return purge_all(old);
  }

  // Removes every (key, revision) in rounds (Kv::write_all; one record
  // alone is one synchronous write) and drops it from the index; the
  // first failure is answered, the rest of what failed is tried again by
  // the next pass.
  Result<void> purge_all(const std::vector<std::pair<std::string, uint64_t>>& records) {
    std::vector<Kv::Write> removes;
    removes.reserve(records.size());
    for (const auto& [key, rev] : records) removes.push_back(Kv::Write{key, std::string(), 0, /*remove=*/true});
    auto answers = kv_->write_all(std::move(removes));
    std::optional<Error> failed;
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < answers.size(); ++i) {
      if (!answers[i].ok()) {
        if (!failed) failed = answers[i].error();
        continue;
      }
      const auto& [key, rev] = records[i];
      erase(key);
      // Changes up to now are older than the removal: the watcher's late
      // report of them must not bring the record back.
      gone_[key] = std::max(rev, written_.load());
    }
    if (failed) return std::move(*failed);
    return {};
  }

  const JetStreamOptions options_;
  std::unique_ptr<Kv> kv_;
  std::atomic<int64_t> grace_ms_;  // atomic for the test seam (set_entity_record_grace)

  // The index (mu_), a prefix of the bucket's history.
  std::mutex mu_;
  std::condition_variable cv_;
  bool caught_up_ = false;
  uint64_t seen_ = 0;                   // the last revision the watcher delivered
  std::atomic<uint64_t> written_{0};    // the last revision this store wrote
  std::map<Addr, Row<pb::Entity>> entities_;
  std::map<Addr, std::map<uint64_t, Row<pb::InboxMessage>>> inbox_;  // by seq
  std::unordered_map<std::string, std::pair<Addr, uint64_t>> inbox_keys_;
  std::unordered_map<uint64_t, std::string> inbox_seq_keys_;
  std::map<std::string, std::set<std::string>> ready_;  // type -> ids with messages not consumed
  std::map<std::string, Row<pb::DelayedMessage>> delayed_;
  std::set<std::tuple<int64_t, uint64_t, std::string>> due_delayed_;  // pending: (due, seq, key)
  std::map<std::tuple<std::string, std::string, std::string>, std::set<std::string>> tokens_;  // pending, by sender
  std::map<std::string, std::map<uint64_t, std::pair<std::string, pb::EgressRecord>>> egress_;
  std::unordered_map<std::string, std::pair<std::string, uint64_t>> egress_keys_;
  std::map<uint64_t, std::pair<std::string, pb::DeadLetter>> dead_;
  std::unordered_map<std::string, uint64_t> dead_keys_;
  std::map<std::string, Row<pb::IngressKey>> keys_;
  std::map<std::string, Row<pb::Specs>> specs_;     // by function type
  std::map<std::string, Row<pb::EgressAck>> acks_;  // by egress
  std::map<std::string, int64_t> batches_;          // send records present: written at
  std::map<std::string, std::pair<int64_t, uint64_t>> heartbeats_;  // processes' records: written at, revision
  std::map<std::string, uint64_t> gone_;            // purged here, at this revision, until the watcher says so
  // This store's writes the watcher has not delivered yet: key -> (the
  // revision the server acknowledged, the value's hash).
  std::unordered_map<std::string, std::pair<uint64_t, std::size_t>> echoes_;
  // The watcher's last changes, for acknowledgements handled after their echo.
  std::unordered_map<std::string, std::pair<uint64_t, std::size_t>> delivered_;
  uint64_t revision_shift_ = 0;           // tests only: shift_index_revisions()
  std::atomic<bool> diverged_{false};     // the index must be rebuilt
  std::atomic<uint64_t> rebuilds_{0};

  // The writer (queue_mu_); its own state needs no lock.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread writer_;
  std::mt19937_64 rng_{std::random_device{}()};
  uint64_t claim_round_ = 0;
  const std::string heartbeat_key_ = "h." + hex64(std::random_device{}() * 0x100000000ull + std::random_device{}());
  uint64_t heartbeat_rev_ = 0;

  Kv::Follower follower_;
};

}  // namespace

namespace testing {

void shift_entity_index_revisions(EntityStore& store, uint64_t by) {
  dynamic_cast<JetStreamEntityStore&>(store).shift_index_revisions(by);
}

uint64_t entity_index_rebuilds(EntityStore& store) {
  return dynamic_cast<JetStreamEntityStore&>(store).index_rebuilds();
}

void set_entity_record_grace(EntityStore& store, std::chrono::milliseconds grace) {
  dynamic_cast<JetStreamEntityStore&>(store).set_record_grace(grace);
}

}  // namespace testing

Result<std::unique_ptr<EntityStore>> open_jetstream_entity_store(const JetStreamOptions& options) {
  JetStreamOptions o = options;
  o.bucket = options.bucket + "_entities";
  auto kv = jetstream::Kv::open(o);
  if (!kv.ok()) return std::move(kv).error();
  auto store = std::make_unique<JetStreamEntityStore>(o, std::move(kv).value());
  auto started = store->start();
  if (!started.ok()) return std::move(started).error();
  return std::unique_ptr<EntityStore>(std::move(store));
}

}  // namespace dispatch::scheduler
