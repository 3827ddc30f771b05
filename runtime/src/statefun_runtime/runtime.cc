// The delivery loop of the stateful-functions runtime. One pump thread
// releases lapsed leases, fires due delayed messages, sweeps expired data,
// claims ready entities (each with its next batch) and posts them; each
// reply is validated and turned into one store write (complete, fail or
// dead letter) under the entity's lease. What the pump keeps in memory can
// be lost: leases and the release at start make a batch whose reply was not
// applied be delivered again, and its effects applied once.
#include "dispatch/statefun_runtime/runtime.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "io/statefun/sdk/reqreply/request_reply.pb.h"
#include "scheduler/policy.h"
#include "statefun_runtime/api.h"
#include "statefun_runtime/batch_codec.h"
#include "statefun_runtime/http_poster.h"

namespace dispatch::statefun {
namespace {

namespace pb = ::io::statefun::sdk::reqreply;
using scheduler::BatchResult;
using scheduler::EntityAddress;
using scheduler::EntityBatch;
using scheduler::EntityMessage;
using scheduler::ExpireMode;
using scheduler::StateSpec;

constexpr std::chrono::milliseconds kClaimEvery{10};
constexpr std::chrono::milliseconds kFireEvery{10};
constexpr std::chrono::milliseconds kSweepEvery{10'000};
constexpr std::size_t kFireMax = 1000;
// Handshakes for one batch before the endpoint is taken to be confused.
constexpr int kMaxHandshakes = 3;

class SystemClock final : public scheduler::Clock {
 public:
  int64_t now_ms() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

std::string address_text(const EntityAddress& a) { return a.type + "/" + a.id; }

}  // namespace

struct Runtime::Impl {
  RuntimeOptions opts;
  scheduler::EntityStore* store = nullptr;
  SystemClock system_clock;
  scheduler::Clock* clock = nullptr;
  std::optional<ApiServices> api;
  scheduler::FunctionPolicy backoff;  // min/max backoff only

  // A batch on its way: what the claim handed out, plus the handshakes it
  // went through.
  struct Flight {
    EntityBatch batch;
    FunctionEndpoint endpoint;
    int handshakes = 0;
  };
  struct Endpoint {
    std::size_t in_flight = 0;
    std::deque<std::shared_ptr<Flight>> waiting;
  };

  mutable std::mutex mu;
  std::condition_variable wake_cv, idle_cv, egress_cv;
  std::unordered_map<std::string, Endpoint> endpoints;  // by URL
  std::unordered_map<std::string, std::string> type_url;  // function type -> URL
  std::size_t outstanding = 0;  // batches leased and not yet settled
  // Replies being handled and store writes not yet reported: the runtime
  // goes only when none is left (their callbacks use it).
  std::size_t busy = 0;
  std::mt19937_64 rng;
  bool wake = false;
  bool new_work = false;
  bool stopping = false;
  int64_t last_claim_ms = 0;
  int64_t last_release_ms = 0;
  int64_t last_fire_ms = 0;
  int64_t last_sweep_ms = 0;
  uint64_t egress_version = 0;  // bumped when a reply wrote egress records
  std::thread pump;
  std::vector<std::thread> egress_threads;
  RuntimeStats stats;

  void log(LogLevel level, const std::string& line) const { opts.logger.log(level, line); }

  // Counts a reply or a store write in; false once the runtime is stopping
  // (a reply then changes nothing: its lease lapses or is released at the
  // next start, and the batch goes again).
  bool enter() {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return false;
    ++busy;
    return true;
  }
  void leave() {
    std::lock_guard<std::mutex> lock(mu);
    --busy;
    // Notified under the lock: the destructor, waiting for busy == 0, may
    // free this runtime as soon as the lock is released.
    idle_cv.notify_all();
  }
  // A store write's report, counted in until it ran.
  template <typename T, typename F>
  scheduler::Done<T> tracked(F f) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++busy;
    }
    return [this, f = std::move(f)](Result<T> r) mutable {
      f(std::move(r));
      leave();
    };
  }

  void notify() {
    {
      std::lock_guard<std::mutex> lock(mu);
      wake = true;
      new_work = true;
    }
    wake_cv.notify_all();
  }

  // ---- ingress ----

  Result<std::vector<uint64_t>> send(std::vector<EntityMessage> messages) {
    if (messages.empty()) return Error(Code::invalid_argument, "no messages to send");
    // A Send's messages mostly share a few function types: each type is
    // checked (and routed) once, at its first message; the text of an
    // error is made only for a message that has one.
    std::vector<std::string_view> routed;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const EntityMessage& m = messages[i];
      auto where = [&] { return "message " + std::to_string(i) + " (to " + m.target.type + ")"; };
      if (std::find(routed.begin(), routed.end(), m.target.type) == routed.end()) {
        if (!split_typename(m.target.type)) {
          return Error(Code::invalid_argument,
                       where() + ": the function type must be 'namespace/name', got '" + m.target.type + "'");
        }
        if (!opts.modules.route(m.target.type)) {
          return Error(Code::invalid_argument, where() + ": no endpoint serves function type " + m.target.type +
                                                   " (add it to the module configuration)");
        }
        routed.push_back(m.target.type);
      }
      if (m.target.id.empty()) return Error(Code::invalid_argument, where() + ": the entity id is empty");
      if (m.type_name.empty()) {
        return Error(Code::invalid_argument, where() + ": the message has no typename (e.g. io.statefun.types/string)");
      }
    }
    auto ids = store->send_sync(std::move(messages), clock->now_ms());
    if (ids.ok()) notify();
    return ids;
  }

  // ---- the pump ----

  Result<std::size_t> step() {
    const int64_t now = clock->now_ms();
    if (now - last_release_ms >= 1000) {
      last_release_ms = now;
      auto released = store->release_entity_leases_sync(now, false);
      if (!released.ok()) return std::move(released).error();
      if (*released > 0) {
        log(LogLevel::warn, std::to_string(*released) + " batches outlived their lease; delivering them again");
      }
    }
    if (now - last_fire_ms >= kFireEvery.count()) {
      last_fire_ms = now;
      auto fired = store->fire_delayed_sync(now, kFireMax);
      if (!fired.ok()) return std::move(fired).error();
      if (*fired > 0) {
        std::lock_guard<std::mutex> lock(mu);
        stats.delayed_fired += *fired;
        new_work = true;
        if (*fired == kFireMax) last_fire_ms = 0;  // more are due
      }
    }
    if (now - last_sweep_ms >= kSweepEvery.count()) {
      last_sweep_ms = now;
      store->sweep(now, now - opts.retention.count(), tracked<scheduler::EntitySweep>([this](Result<scheduler::EntitySweep> swept) {
        if (!swept.ok()) {
          log(LogLevel::error, "sweeping expired state failed: " + swept.error().message());
        } else if (swept->state_values > 0 && opts.logger.enabled(LogLevel::info)) {
          log(LogLevel::info, "expired " + std::to_string(swept->state_values) + " state values");
        }
      }));
    }
    scheduler::EntityClaimOptions claim;
    bool hungry = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      claim.max_batches = opts.max_in_flight > outstanding ? opts.max_in_flight - outstanding : 0;
      claim.max_batches = std::min(claim.max_batches, opts.max_claim);
      hungry = new_work || now - last_claim_ms >= kClaimEvery.count();
      for (const auto& [type, url] : type_url) {
        auto it = endpoints.find(url);
        if (it != endpoints.end() && it->second.in_flight + it->second.waiting.size() >= opts.max_endpoint_in_flight) {
          claim.skip_types.push_back(type);
        }
      }
      if (hungry) new_work = false;
    }
    std::vector<std::shared_ptr<Flight>> ready;
    if (claim.max_batches > 0 && hungry) {
      last_claim_ms = now;
      claim.now_ms = now;
      claim.lease_until_ms = now + opts.lease.count();
      claim.max_messages = 1000;  // each batch is cut to its endpoint's maxNumBatchRequests below
      const std::size_t asked = claim.max_batches;
      auto claimed = store->claim_entities_sync(std::move(claim));
      if (!claimed.ok()) return std::move(claimed).error();
      std::lock_guard<std::mutex> lock(mu);
      if (claimed->size() == asked) {
        // Full: more may be ready; the next round claims again at once.
        wake = true;
        new_work = true;
      }
      for (EntityBatch& b : *claimed) {
        auto f = std::make_shared<Flight>();
        auto route = opts.modules.route(b.address.type);
        f->batch = std::move(b);
        outstanding++;
        if (!route) {
          // Its route went (the configuration changed since it was sent).
          ready.push_back(std::move(f));
          continue;
        }
        f->endpoint = *route;
        if (f->batch.messages.size() > route->max_batch) f->batch.messages.resize(route->max_batch);
        type_url[f->batch.address.type] = route->url;
        endpoints[route->url].waiting.push_back(std::move(f));
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [url, ep] : endpoints) {
        while (!ep.waiting.empty() && ep.in_flight < opts.max_endpoint_in_flight) {
          ep.in_flight++;
          ready.push_back(std::move(ep.waiting.front()));
          ep.waiting.pop_front();
        }
      }
    }
    for (auto& f : ready) {
      if (f->endpoint.url.empty()) {
        settle_dead(f, "no endpoint serves function type " + f->batch.address.type + " any more");
        continue;
      }
      post(f);
    }
    return ready.size();
  }

  void post(const std::shared_ptr<Flight>& f) {
    {
      std::lock_guard<std::mutex> lock(mu);
      stats.batches++;
    }
    if (opts.logger.enabled(LogLevel::debug)) {
      log(LogLevel::debug, "sending " + std::to_string(f->batch.messages.size()) + " messages to " +
                               address_text(f->batch.address) + " at " + f->endpoint.url);
    }
    opts.poster(f->endpoint.url, to_function(f->batch), f->endpoint.call_timeout, {},
                [this, f](Result<std::string> reply) { on_reply(f, std::move(reply)); });
  }

  // ---- replies ----

  void on_reply(const std::shared_ptr<Flight>& f, Result<std::string> reply) {
    if (!enter()) return;
    handle_reply(f, std::move(reply));
    leave();
  }

  void handle_reply(const std::shared_ptr<Flight>& f, Result<std::string> reply) {
    if (!reply.ok()) {
      retry_or_give_up(f, Refusal{reply.error().message(), false});
      return;
    }
    pb::FromFunction res;
    if (!res.ParseFromString(*reply)) {
      settle_dead(f, "the endpoint's reply is not an io.statefun.sdk.reqreply.FromFunction (" +
                         std::to_string(reply->size()) + " bytes)");
      return;
    }
    if (res.has_incomplete_invocation_context()) {
      on_incomplete(f, res.incomplete_invocation_context());
      return;
    }
    BatchResult result;
    if (auto refused = to_batch_result(f->batch, res.invocation_result(), clock->now_ms(), opts.modules,
                                       opts.max_state_bytes, result)) {
      if (refused->permanent) {
        settle_dead(f, refused->reason);
      } else {
        retry_or_give_up(f, *refused);
      }
      return;
    }
    const EntityAddress address = f->batch.address;
    const uint64_t last = f->batch.messages.back().seq;
    const bool wrote_egress = !result.egress.empty();
    const bool sent = !result.outgoing.empty();
    const std::size_t n = f->batch.messages.size();
    release_slot(*f);
    const int64_t now = clock->now_ms();
    // The entity's next batch is claimed with the reply when its endpoint
    // has a free slot and no queue (the store then also checks that no
    // other entity of its type is waiting): it skips the ready entities'
    // index, a claim and a pump round.
    scheduler::EntityClaimOptions next;
    next.now_ms = now;
    next.lease_until_ms = now + opts.lease.count();
    next.max_messages = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = endpoints.find(f->endpoint.url);
      if (!stopping && it != endpoints.end() && it->second.waiting.empty() &&
          it->second.in_flight < opts.max_endpoint_in_flight) {
        next.max_messages = f->endpoint.max_batch;
      }
    }
    store->complete_and_claim(address, f->batch.lease, last, std::move(result), now, std::move(next),
                              tracked<scheduler::Completion>([this, f, n, wrote_egress,
                                                              sent](Result<scheduler::Completion> done) {
                                if (!done.ok()) {
                                  // The store refused the result itself (a
                                  // token pending twice): nothing of it stays.
                                  settle_dead_after_slot(f, done.error().message());
                                  return;
                                }
                                if (done->next) {
                                  continued(*f, std::move(*done->next), n, wrote_egress, sent);
                                  return;
                                }
                                settled([&] {
                                  if (done->applied) {
                                    stats.invocations += n;
                                    if (wrote_egress) egress_version++;
                                  } else {
                                    stats.stale++;
                                  }
                                }, wrote_egress);
                              }));
  }

  // A reply applied with its entity's next batch: the next batch takes the
  // settled one's place among the outstanding ones and waits for the pump
  // to post it (not posted here: this runs on the store's writer thread).
  // A claim is due only when the reply queued messages for other entities.
  void continued(const Flight& prev, EntityBatch batch, std::size_t n, bool wrote_egress, bool sent) {
    auto f = std::make_shared<Flight>();
    f->batch = std::move(batch);
    f->endpoint = prev.endpoint;
    {
      std::lock_guard<std::mutex> lock(mu);
      stats.invocations += n;
      stats.continued++;
      if (wrote_egress) egress_version++;
      endpoints[f->endpoint.url].waiting.push_back(std::move(f));
      wake = true;
      if (sent) new_work = true;
    }
    wake_cv.notify_all();
    idle_cv.notify_all();
    if (wrote_egress) egress_cv.notify_all();
  }

  void on_incomplete(const std::shared_ptr<Flight>& f, const pb::FromFunction::IncompleteInvocationContext& ctx) {
    {
      std::lock_guard<std::mutex> lock(mu);
      stats.incomplete++;
    }
    std::vector<StateSpec> added;
    for (const auto& missing : ctx.missing_values()) {
      if (missing.state_name().empty()) {
        settle_dead(f, "the endpoint asked for a state value without a name (IncompleteInvocationContext)");
        return;
      }
      StateSpec spec;
      spec.name = missing.state_name();
      spec.type_name = missing.type_typename();
      spec.mode = static_cast<ExpireMode>(missing.expiration_spec().mode());
      if (missing.expiration_spec().mode() > 2 || missing.expiration_spec().mode() < 0) {
        settle_dead(f, "state '" + spec.name + "' has an unknown expiration mode " +
                           std::to_string(missing.expiration_spec().mode()));
        return;
      }
      spec.ttl_ms = missing.expiration_spec().expire_after_millis();
      if (spec.mode != ExpireMode::none && spec.ttl_ms <= 0) {
        settle_dead(f, "state '" + spec.name + "' expires after " + std::to_string(spec.ttl_ms) +
                           " ms; the time must be positive");
        return;
      }
      for (const StateSpec& known : f->batch.specs) {
        if (known.name == spec.name && known.type_name != spec.type_name) {
          // StateFun refuses to change a registered state's type.
          settle_dead(f, "state '" + spec.name + "' of " + f->batch.address.type + " is registered as type '" +
                             known.type_name + "'; the function now declares '" + spec.type_name + "'");
          return;
        }
      }
      added.push_back(std::move(spec));
    }
    if (++f->handshakes > kMaxHandshakes || added.empty()) {
      retry_or_give_up(f, Refusal{"the endpoint keeps answering IncompleteInvocationContext for state that "
                                  "was sent (registered: " + std::to_string(f->batch.specs.size()) + " values)",
                                  false});
      return;
    }
    for (const StateSpec& spec : added) {
      auto it = std::find_if(f->batch.specs.begin(), f->batch.specs.end(),
                             [&](const StateSpec& s) { return s.name == spec.name; });
      if (it == f->batch.specs.end()) f->batch.specs.push_back(spec);
    }
    // Registered, then the same batch again (its slot kept).
    store->register_specs(f->batch.address.type, std::move(added), tracked<bool>([this, f](Result<bool> done) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      if (!done.ok()) {
        retry_or_give_up(f, Refusal{"registering state specs failed: " + done.error().message(), false});
        return;
      }
      post(f);
    }));
  }

  // ---- settling a batch ----

  // The endpoint is done with the batch: its slot goes to the next one.
  void release_slot(const Flight& f) {
    bool wake_pump = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = endpoints.find(f.endpoint.url);
      if (it != endpoints.end() && it->second.in_flight > 0) {
        it->second.in_flight--;
        wake_pump = !it->second.waiting.empty();
      }
      wake = wake || wake_pump;
    }
    if (wake_pump) wake_cv.notify_all();
  }

  // The batch is settled in the store: it leaves the outstanding count, and
  // the pump looks for more (its entity may have more messages now).
  template <typename Count>
  void settled(Count count, bool wrote_egress = false) {
    {
      std::lock_guard<std::mutex> lock(mu);
      outstanding--;
      count();
      wake = true;
      new_work = true;
    }
    wake_cv.notify_all();
    idle_cv.notify_all();
    if (wrote_egress) egress_cv.notify_all();
  }

  void retry_or_give_up(const std::shared_ptr<Flight>& f, const Refusal& why) {
    const uint32_t attempt = f->batch.attempts + 1;
    if (opts.max_attempts != 0 && attempt >= opts.max_attempts) {
      settle_dead(f, "gave up after " + std::to_string(attempt) + " attempts: " + why.reason);
      return;
    }
    int64_t wait = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      wait = scheduler::policy::full_jitter_ms(scheduler::policy::backoff_cap_ms(attempt, backoff), rng);
    }
    if (opts.logger.enabled(LogLevel::info)) {
      log(LogLevel::info, "batch to " + address_text(f->batch.address) + " attempt " + std::to_string(attempt) +
                              " failed (" + why.reason + "); retrying in " + std::to_string(wait) + " ms");
    }
    release_slot(*f);
    store->fail(f->batch.address, f->batch.lease, clock->now_ms() + wait, why.reason,
                tracked<bool>([this](Result<bool> recorded) {
                  if (!recorded.ok()) log(LogLevel::error, "recording a failed batch failed: " + recorded.error().message());
                  settled([&] { stats.failed++; });
                }));
  }

  void settle_dead(const std::shared_ptr<Flight>& f, const std::string& reason) {
    release_slot(*f);
    settle_dead_after_slot(f, reason);
  }

  void settle_dead_after_slot(const std::shared_ptr<Flight>& f, const std::string& reason) {
    log(LogLevel::warn, "dead letter: " + std::to_string(f->batch.messages.size()) + " messages to " +
                            address_text(f->batch.address) + ": " + reason);
    store->dead_letter(f->batch.address, f->batch.lease, f->batch.messages.back().seq, reason, clock->now_ms(),
                       tracked<bool>([this](Result<bool> recorded) {
                         if (!recorded.ok()) {
                           log(LogLevel::error, "recording a dead letter failed: " + recorded.error().message());
                         }
                         settled([&] {
                           if (recorded.ok() && *recorded) stats.dead_letters++;
                         });
                       }));
  }

  // ---- loops ----

  void run_pump() {
    while (true) {
      auto started = step();
      if (!started.ok()) log(LogLevel::error, "delivery round failed: " + started.error().message());
      std::unique_lock<std::mutex> lock(mu);
      if (stopping) return;
      if (wake) {
        wake = false;
        continue;
      }
      lock.unlock();
      int64_t wait_ms = 1000;
      auto due = store->next_entity_due_ms();
      if (due.ok() && due->has_value()) wait_ms = std::clamp<int64_t>(**due - clock->now_ms(), 1, 1000);
      // Due but nothing could start (every slot taken): a reply wakes the
      // pump; meanwhile it need not look more often than it claims.
      if (started.ok() && *started == 0) wait_ms = std::max<int64_t>(wait_ms, kClaimEvery.count());
      lock.lock();
      wake_cv.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping || wake; });
      if (stopping) return;
      wake = false;
    }
  }

  // POSTs the records of one egress in order, each until it answers 2xx.
  void run_egress(HttpEgressSpec spec) {
    auto cursor = store->egress_cursor(spec.egress);
    uint64_t after = cursor.ok() ? *cursor : 0;
    uint32_t failures = 0;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      auto records = store->read_egress(spec.egress, after, 64);
      if (!records.ok() || records->empty()) {
        std::unique_lock<std::mutex> lock(mu);
        const uint64_t seen = egress_version;
        egress_cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping || egress_version != seen; });
        continue;
      }
      for (const scheduler::EgressRecord& rec : *records) {
        for (;;) {
          {
            std::lock_guard<std::mutex> lock(mu);
            if (stopping) return;
          }
          std::promise<Result<std::string>> p;
          auto reply = p.get_future();
          opts.poster(spec.url, rec.value, spec.timeout,
                      {{"statefun-typename", rec.type_name}, {"statefun-egress", rec.egress},
                       {"statefun-egress-seq", std::to_string(rec.seq)}},
                      [&p](Result<std::string> r) { p.set_value(std::move(r)); });
          auto r = reply.get();
          if (r.ok()) {
            auto acked = store->ack_egress_sync(spec.egress, rec.seq);
            if (!acked.ok()) log(LogLevel::error, "recording an egress acknowledgement failed: " + acked.error().message());
            after = rec.seq;
            failures = 0;
            std::lock_guard<std::mutex> lock(mu);
            stats.egress_posted++;
            break;
          }
          ++failures;
          int64_t wait = 0;
          {
            std::lock_guard<std::mutex> lock(mu);
            wait = scheduler::policy::full_jitter_ms(scheduler::policy::backoff_cap_ms(failures, backoff), rng);
          }
          log(LogLevel::warn, "egress " + spec.egress + " record " + std::to_string(rec.seq) + " to " + spec.url +
                                  ": " + r.error().message() + "; retrying in " + std::to_string(wait) + " ms");
          std::unique_lock<std::mutex> lock(mu);
          egress_cv.wait_for(lock, std::chrono::milliseconds(wait), [&] { return stopping; });
        }
      }
    }
  }

  void stop(std::chrono::milliseconds grace) {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    wake_cv.notify_all();
    egress_cv.notify_all();
    if (pump.joinable()) pump.join();
    for (std::thread& t : egress_threads) {
      if (t.joinable()) t.join();
    }
    egress_threads.clear();
    std::unique_lock<std::mutex> lock(mu);
    idle_cv.wait_for(lock, grace, [&] {
      std::size_t waiting = 0;
      for (auto& [url, ep] : endpoints) waiting += ep.waiting.size();
      return outstanding == waiting;
    });
  }
};

Result<std::unique_ptr<Runtime>> Runtime::open(RuntimeOptions options) {
  std::unique_ptr<Runtime> rt(new Runtime());
  rt->impl_ = std::make_unique<Impl>();
  Impl& impl = *rt->impl_;
  impl.opts = std::move(options);
  impl.clock = impl.opts.clock ? impl.opts.clock : &impl.system_clock;
  if (impl.opts.store == nullptr) {
    return Error(Code::invalid_argument,
                 "RuntimeOptions::store is empty; give the runtime the entities of a store "
                 "(Store::entities(), e.g. of open_sqlite_store())");
  }
  if (impl.opts.max_in_flight == 0 || impl.opts.max_endpoint_in_flight == 0 || impl.opts.max_claim == 0) {
    return Error(Code::invalid_argument,
                 "RuntimeOptions::max_in_flight, max_endpoint_in_flight and max_claim must be positive");
  }
  impl.store = impl.opts.store;
  impl.backoff.min_backoff = impl.opts.min_backoff;
  impl.backoff.max_backoff = impl.opts.max_backoff;
  if (!impl.opts.poster) impl.opts.poster = http_poster(impl.opts.decorate);
  uint64_t seed = impl.opts.seed;
  if (seed == 0) seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  impl.rng.seed(seed);
  for (const HttpEgressSpec& e : impl.opts.modules.http_egresses()) {
    // Known before any record is written, so none is swept unposted.
    auto cursor = impl.store->egress_cursor(e.egress);
    if (!cursor.ok()) return std::move(cursor).error();
    auto acked = impl.store->ack_egress_sync(e.egress, *cursor);
    if (!acked.ok()) return std::move(acked).error();
  }
  // A store shared with other running processes keeps their leases.
  auto released = impl.store->release_entity_leases_sync(impl.clock->now_ms(), !impl.store->shared());
  if (!released.ok()) return std::move(released).error();
  if (*released > 0) {
    impl.log(LogLevel::info, "recovered " + std::to_string(*released) +
                                 " batches that were in flight when the previous runtime stopped");
  }
  for (const std::string& w : impl.opts.modules.warnings()) impl.log(LogLevel::warn, w);
  impl.api = api_services(*rt);
  return rt;
}

Runtime::~Runtime() {
  if (!impl_) return;
  impl_->stop(std::chrono::milliseconds(0));
  // Store reports still to come use this runtime; then the clients go, and
  // the replies they cancel find it stopping.
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->idle_cv.wait(lock, [&] { return impl_->busy == 0; });
  }
  impl_->opts.poster = nullptr;
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(lock, [&] { return impl_->busy == 0; });
}

void Runtime::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->pump.joinable()) return;
  impl_->stopping = false;
  impl_->pump = std::thread([impl = impl_.get()] { impl->run_pump(); });
  for (const HttpEgressSpec& e : impl_->opts.modules.http_egresses()) {
    impl_->egress_threads.emplace_back([impl = impl_.get(), e] { impl->run_egress(e); });
  }
}

void Runtime::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

Result<void> Runtime::add_to(DispatchTable& table) {
  for (const ApiService* s : {&impl_->api->ingress, &impl_->api->egress, &impl_->api->admin}) {
    auto added = table.add(*s);
    if (!added.ok()) return added;
  }
  return {};
}

Result<std::vector<uint64_t>> Runtime::send(std::vector<scheduler::EntityMessage> messages) {
  return impl_->send(std::move(messages));
}

Result<std::vector<scheduler::EgressRecord>> Runtime::read_egress(const std::string& egress, uint64_t after_seq,
                                                                  std::size_t limit, std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      seen = impl_->egress_version;
    }
    auto records = impl_->store->read_egress(egress, after_seq, limit);
    if (!records.ok() || !records->empty() || std::chrono::steady_clock::now() >= until) return records;
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->egress_cv.wait_until(lock, std::min(until, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)),
                                [&] { return impl_->egress_version != seen; });
  }
}

Result<std::optional<scheduler::EntityView>> Runtime::entity(const scheduler::EntityAddress& address,
                                                             std::size_t limit) {
  return impl_->store->entity(address, limit);
}

Result<std::vector<scheduler::DeadLetter>> Runtime::dead_letters(uint64_t after_id, std::size_t limit) {
  return impl_->store->dead_letters(after_id, limit);
}

Result<uint64_t> Runtime::redrive(uint64_t dead_letter) {
  auto id = impl_->store->redrive_sync(dead_letter, impl_->clock->now_ms());
  if (id.ok()) impl_->notify();
  return id;
}

Result<std::size_t> Runtime::step() { return impl_->step(); }

void Runtime::wait_idle() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(lock, [&] {
    std::size_t waiting = 0;
    for (auto& [url, ep] : impl_->endpoints) waiting += ep.waiting.size();
    return impl_->outstanding == waiting;
  });
}

int64_t Runtime::now_ms() const { return impl_->clock->now_ms(); }

RuntimeStats Runtime::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

}  // namespace dispatch::statefun
