// The delivery loop. One pump thread leases due calls from the store (fair
// across keys), queues them per endpoint, and starts as many Run calls as
// each endpoint's AIMD limit allows. Each reply becomes an Outcome (done,
// failed, or pending again after a jittered backoff) recorded under the
// call's lease, so a completion is recorded once even if the call was
// delivered twice. Everything the pump keeps in memory can be lost: the
// store's leases and start-up release make a crashed delivery happen again.
#include "dispatch/scheduler/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <google/protobuf/empty.pb.h>

#include "dispatch/durable/function_service.h"
#include "dispatch/metrics/registry.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/transport/http_client.h"
#include "durable/protocol.h"
#include "scheduler/api.h"
#include "scheduler/coroutine.h"
#include "scheduler/end_waiters.h"
#include "scheduler/new_call.h"
#include "scheduler/policy.h"

namespace dispatch::scheduler {
namespace {

// The longest a due call waits for a lease while every endpoint is busy.
constexpr std::chrono::milliseconds kClaimEvery{10};
// Endpoints shown by name in the metrics; the others are summed as "other",
// so the number of series stays bounded however many endpoints there are.
constexpr std::size_t kNamedEndpoints = 20;
// How often the calls past their retention are looked for (at most).
constexpr std::chrono::milliseconds kSweepEvery{10'000};

// "7d", "36h", "90m", "45s", "1500ms": the largest unit that divides it.
std::string duration_text(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  for (auto [unit, name] : {std::pair<int64_t, const char*>{86'400'000, "d"}, {3'600'000, "h"},
                            {60'000, "m"}, {1000, "s"}}) {
    if (ms % unit == 0) return std::to_string(ms / unit) + name;
  }
  return std::to_string(ms) + "ms";
}

class SystemClock final : public Clock {
 public:
  int64_t now_ms() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

struct Scheduler::Impl {
  SchedulerOptions opts;
  std::unique_ptr<Store> store;
  SystemClock system_clock;
  Clock* clock = nullptr;
  std::optional<ApiServices> api;  // the routes, carrying this scheduler
  DispatchTable table;

  struct Endpoint {
    double limit = 1;
    std::size_t in_flight = 0;
    std::deque<CallRecord> waiting;
    std::shared_ptr<Client> client;
  };

  mutable std::mutex mu;
  std::condition_variable wake_cv;
  std::condition_variable idle_cv;
  std::unordered_map<std::string, Endpoint> endpoints;
  std::size_t outstanding = 0;  // leased and not yet recorded
  std::mt19937_64 rng;
  bool wake = false;
  bool new_work = false;  // a dispatch or retry since the last claim
  int64_t last_claim_ms = 0;
  bool stopping = false;
  std::thread pump;
  int64_t last_release_ms = 0;
  std::optional<int64_t> last_sweep_ms;  // step() only
  bool sweeping = false;                 // a delete_ended runs
  SchedulerStats stats;
  EndWaiters end_waiters;  // Gets waiting for a call to end

  // Metrics: counted where they happen, read at scrape time otherwise.
  metrics::Counter* deliveries = nullptr;
  metrics::Histogram* queue_delay = nullptr;
  metrics::Counter* outcome_completed = nullptr;
  metrics::Counter* outcome_failed = nullptr;
  metrics::Counter* outcome_retried = nullptr;
  metrics::Counter* outcome_suspended = nullptr;
  metrics::Counter* outcome_stale = nullptr;
  uint64_t collector = 0;

  void init_metrics() {
    metrics::Registry& r = *opts.metrics;
    deliveries = &r.counter("dispatch_scheduler_deliveries_total", "Run calls started (attempts delivered).");
    queue_delay = &r.histogram("dispatch_scheduler_queue_delay_seconds",
                               "Time from when a call was due to when its delivery started, in seconds.",
                               metrics::latency_buckets());
    const char* help = "Attempts whose outcome was recorded, by outcome.";
    outcome_completed = &r.counter("dispatch_scheduler_outcomes_total", help, {{"outcome", "completed"}});
    outcome_failed = &r.counter("dispatch_scheduler_outcomes_total", help, {{"outcome", "failed"}});
    outcome_retried = &r.counter("dispatch_scheduler_outcomes_total", help, {{"outcome", "retried"}});
    outcome_suspended = &r.counter("dispatch_scheduler_outcomes_total", help, {{"outcome", "suspended"}});
    outcome_stale = &r.counter("dispatch_scheduler_outcomes_total", help, {{"outcome", "stale"}});
    collector = r.add_collector([this](metrics::SampleWriter& w) { collect(w); });
  }

  // Scrape time: calls by state from the store, each endpoint's AIMD limit
  // and calls in flight (the first kNamedEndpoints by name, the rest summed
  // under endpoint="other").
  void collect(metrics::SampleWriter& w) {
    if (auto counts = store->count_by_state(); counts.ok()) {
      for (int s = 1; s < static_cast<int>(counts->size()); ++s) {
        w.gauge("dispatch_scheduler_calls", "Calls in the store, by state.",
                {{"state", std::string(state_name(static_cast<CallState>(s)))}}, static_cast<double>((*counts)[s]));
      }
    }
    std::vector<std::pair<std::string, std::pair<double, double>>> rows;
    {
      std::lock_guard<std::mutex> lock(mu);
      std::vector<const std::string*> names;
      for (auto& [url, ep] : endpoints) names.push_back(&url);
      std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
      double other_limit = 0, other_in_flight = 0;
      for (std::size_t i = 0; i < names.size(); ++i) {
        const Endpoint& ep = endpoints.at(*names[i]);
        if (i < kNamedEndpoints) {
          rows.push_back({*names[i], {ep.limit, static_cast<double>(ep.in_flight)}});
        } else {
          other_limit += ep.limit;
          other_in_flight += static_cast<double>(ep.in_flight);
        }
      }
      if (names.size() > kNamedEndpoints) rows.push_back({"other", {other_limit, other_in_flight}});
    }
    for (const auto& [name, values] : rows) {
      w.gauge("dispatch_scheduler_endpoint_concurrency_limit",
              "Each endpoint's AIMD limit on deliveries in flight (other: the sum over the endpoints past the "
              "first 20 by name).",
              {{"endpoint", name}}, values.first);
      w.gauge("dispatch_scheduler_endpoint_in_flight", "Deliveries in flight to each endpoint.", {{"endpoint", name}},
              values.second);
    }
  }

  ~Impl() {
    if (collector != 0) opts.metrics->remove_collector(collector);
    stop(std::chrono::milliseconds(0));
    // Replies may still arrive while clients shut down; they record through
    // the store, which goes last so its callbacks find everything alive.
    std::vector<std::shared_ptr<Client>> clients;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [url, ep] : endpoints) clients.push_back(std::move(ep.client));
    }
    clients.clear();
    store.reset();
  }

  const FunctionPolicy& policy_for(const std::string& function) const {
    return policy::policy_for(opts, function);
  }

  void log(LogLevel level, const std::string& line) const { opts.logger.log(level, line); }

  // What a Get, Cancel or Retry of an ID the store does not know answers.
  Error unknown_call(std::string_view id) const {
    std::string message = "no call has ID " + std::string(id);
    if (opts.retention.count() > 0) {
      message += ": it was never dispatched to this scheduler, or it ended more than " +
                 duration_text(opts.retention) + " ago and was deleted (retention)";
    }
    return Error(Code::not_found, std::move(message));
  }

  // Deletes the calls that ended more than `retention` ago, one sweep at a
  // time, every kSweepEvery (or every `retention`, when shorter). The store
  // deletes in small transactions between the other writes; this thread
  // does not wait for it.
  void sweep_if_due(int64_t now) {
    const int64_t retention = opts.retention.count();
    if (retention <= 0 || now - retention <= 0) return;
    if (last_sweep_ms && now - *last_sweep_ms < std::min<int64_t>(kSweepEvery.count(), retention)) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (sweeping) return;
      sweeping = true;
    }
    last_sweep_ms = now;
    store->delete_ended(now - retention, [this](Result<std::size_t> deleted) {
      if (!deleted.ok()) {
        log(LogLevel::error, "deleting the calls past their retention failed: " + deleted.error().message());
      } else if (*deleted > 0 && opts.logger.enabled(LogLevel::info)) {
        log(LogLevel::info, "deleted " + std::to_string(*deleted) + " calls that ended more than " +
                                duration_text(opts.retention) + " ago");
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        sweeping = false;
      }
      idle_cv.notify_all();
    });
  }

  void notify() {
    {
      std::lock_guard<std::mutex> lock(mu);
      wake = true;
      new_work = true;
    }
    wake_cv.notify_all();
  }

  Result<std::shared_ptr<Client>> client_for(const std::string& endpoint) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto& ep = endpoints[endpoint];
      if (ep.client) return ep.client;
    }
    Result<std::shared_ptr<Client>> made = Error(Code::internal, "no client factory");
    if (opts.client_factory) {
      made = opts.client_factory(endpoint);
    } else {
      HttpClientOptions o;
      o.decorate = opts.decorate;
      // Every endpoint's Run calls (http:// and https://) and their replies
      // (on_reply, so that must not block) run on the shared loops; each
      // endpoint keeps its own connections, and the AIMD limit, not the
      // client, decides how many calls are in flight.
      o.loops = opts.client_loops;
      o.max_connections = static_cast<std::size_t>(std::max(1.0, opts.max_endpoint_concurrency));
      o.max_idle_connections = std::max(o.max_idle_connections, o.max_connections);
      auto http = HttpClient::create(endpoint, std::move(o));
      if (http.ok()) {
        made = std::shared_ptr<Client>(std::move(http).value());
      } else {
        made = std::move(http).error();
      }
    }
    if (!made.ok()) return made;
    std::lock_guard<std::mutex> lock(mu);
    auto& ep = endpoints[endpoint];
    if (!ep.client) ep.client = made.value();
    return ep.client;
  }

  Result<std::size_t> step() {
    const int64_t now = clock->now_ms();
    if (now - last_release_ms >= 1000) {
      last_release_ms = now;
      auto released = store->release_leases_sync(now, false);
      if (!released.ok()) return std::move(released).error();
      if (*released > 0) {
        log(LogLevel::warn, std::to_string(*released) + " calls outlived their lease; delivering them again");
      }
    }
    sweep_if_due(now);
    ClaimOptions claim;
    std::vector<CallRecord> timers;
    bool hungry = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      claim.max = opts.max_in_flight > outstanding ? opts.max_in_flight - outstanding : 0;
      // Lease when there is new work, when some endpoint has a quarter of
      // its limit free, or every kClaimEvery (calls due after a backoff,
      // endpoints not seen yet). Not at every reply: a busy endpoint would
      // then be fed one call per lease, one store round trip each.
      hungry = new_work || endpoints.empty() || now - last_claim_ms >= kClaimEvery.count();
      for (auto& [url, ep] : endpoints) {
        const double queued = static_cast<double>(ep.in_flight + ep.waiting.size());
        if (queued >= ep.limit) {
          claim.skip_endpoints.push_back(url);
        } else if (queued <= ep.limit * 0.75) {
          hungry = true;
        }
      }
      if (hungry) new_work = false;
    }
    if (claim.max > 0 && hungry) {
      last_claim_ms = now;
      claim.per_key_max = claim.max;
      claim.now_ms = now;
      claim.lease_until_ms = now + opts.lease.count();
      auto claimed = store->claim_sync(std::move(claim));
      if (!claimed.ok()) return std::move(claimed).error();
      std::lock_guard<std::mutex> lock(mu);
      outstanding += claimed->size();
      for (CallRecord& c : *claimed) {
        auto [it, fresh] = endpoints.try_emplace(c.endpoint);
        if (fresh) it->second.limit = opts.initial_endpoint_concurrency;
        if (c.function == kSleepFunction) {
          // A timer ends when it is leased: no endpoint limit holds it back.
          it->second.in_flight++;
          timers.push_back(std::move(c));
        } else {
          it->second.waiting.push_back(std::move(c));
        }
      }
    }
    // Start what the endpoints' limits allow, outside the lock: a client may
    // answer inline. Each endpoint's client is looked up here, under the
    // lock already held, not once per call (the lock is shared with every
    // reply on the delivery clients' threads).
    std::vector<std::pair<CallRecord, std::shared_ptr<Client>>> ready;
    for (CallRecord& c : timers) ready.emplace_back(std::move(c), nullptr);
    timers.clear();
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [url, ep] : endpoints) {
        while (!ep.waiting.empty() && static_cast<double>(ep.in_flight) < ep.limit) {
          ep.in_flight++;
          ready.emplace_back(std::move(ep.waiting.front()), ep.client);
          ep.waiting.pop_front();
        }
      }
    }
    uint64_t delivered = 0;
    for (auto& [c, client] : ready) delivered += deliver(std::move(c), std::move(client)) ? 1 : 0;
    if (delivered != 0) {
      std::lock_guard<std::mutex> lock(mu);
      stats.delivered += delivered;
    }
    return ready.size();
  }

  // Sends one Run call (through `known`, the endpoint's client when there
  // is one already); false when the call ended without being sent (expired,
  // endpoint unusable).
  bool deliver(CallRecord c, std::shared_ptr<Client> known) {
    const int64_t now = clock->now_ms();
    if (c.expiration_at_ms != 0 && now >= c.expiration_at_ms) {
      Outcome o;
      o.state = CallState::failed;
      o.status = static_cast<int>(RunStatus::timeout);
      o.error_type = "expired";
      o.error_message = "the call expired before it could complete (" +
                        std::to_string(c.attempts - 1) + " attempts made)";
      if (!c.error_message.empty()) o.error_message += "; last error: " + c.error_message;
      finish(std::move(c), std::move(o));
      return false;
    }
    if (c.function == kSleepFunction) {
      // A timer is delivered nowhere: leased, it is due, so it is over.
      Outcome o;
      o.state = CallState::completed;
      o.status = static_cast<int>(RunStatus::ok);
      o.output_type_url = "type.googleapis.com/google.protobuf.Empty";
      finish(std::move(c), std::move(o));
      return false;
    }
    auto client = known ? Result<std::shared_ptr<Client>>(std::move(known)) : client_for(c.endpoint);
    if (!client.ok()) {
      Outcome o;
      o.state = CallState::failed;
      o.status = static_cast<int>(RunStatus::permanent_error);
      o.error_type = "invalid_endpoint";
      o.error_message = "cannot reach endpoint '" + c.endpoint + "': " + client.error().message();
      finish(std::move(c), std::move(o));
      return false;
    }
    const FunctionPolicy& policy = policy_for(c.function);
    sdk::v1::RunRequest req;
    req.set_function(c.function);
    if (c.polled) {
      coroutine::to_poll_result(c, req.mutable_poll_result());
    } else {
      req.mutable_input()->set_type_url(c.input_type_url);
      req.mutable_input()->set_value(c.input);
    }
    req.set_dispatch_id(c.id);
    req.set_parent_dispatch_id(c.parent_id);
    req.set_root_dispatch_id(c.root_id);
    protocol::to_timestamp(c.created_at_ms, req.mutable_creation_time());
    if (c.expiration_at_ms != 0) {
      protocol::to_timestamp(c.expiration_at_ms, req.mutable_expiration_time());
    }
    CallOptions options;
    options.timeout = policy.run_timeout;
    options.headers.emplace_back("dispatch-attempt", std::to_string(c.attempts));
    // The trace the call was dispatched in goes on to the endpoint.
    if (!c.traceparent.empty()) {
      options.headers.emplace_back("traceparent", c.traceparent);
      if (!c.tracestate.empty()) options.headers.emplace_back("tracestate", c.tracestate);
    }
    deliveries->inc();
    if (c.next_attempt_at_ms != 0) {
      queue_delay->observe(static_cast<double>(std::max<int64_t>(0, now - c.next_attempt_at_ms)) / 1000.0);
    }
    if (opts.logger.enabled(LogLevel::info)) {
      log(LogLevel::info, "dispatching call to " + c.function + " (id " + c.id + ", attempt " +
                              std::to_string(c.attempts) + ") at " + c.endpoint);
    }
    std::shared_ptr<Client> keep = client.value();
    keep->call_async(kRunPath, req.SerializeAsString(), options,
                     [this, c = std::move(c)](Result<std::string> reply) mutable {
                       on_reply(std::move(c), std::move(reply));
                     });
    return true;
  }

  void on_reply(CallRecord c, Result<std::string> reply) {
    const int64_t now = clock->now_ms();
    RunStatus status = RunStatus::ok;
    bool transport_error = false;
    Outcome o;
    if (!reply.ok()) {
      transport_error = true;
      status = protocol::status_for_transport_error(reply.error());
      o.error_type = std::string(code_name(reply.error().code()));
      o.error_message = reply.error().message();
    } else {
      sdk::v1::RunResponse res;
      if (!res.ParseFromString(reply.value())) {
        status = RunStatus::invalid_response;
        o.error_type = "invalid_response";
        o.error_message = "the endpoint's reply is not a dispatch.sdk.v1.RunResponse";
      } else if (res.directive_case() == sdk::v1::RunResponse::kPoll) {
        status = coroutine::poll_outcome(c, *res.mutable_poll(), now, opts, o);
      } else if (res.exit().has_tail_call()) {
        status = coroutine::tail_call_outcome(c, *res.mutable_exit()->mutable_tail_call(), now, opts, o);
      } else {
        status = static_cast<RunStatus>(res.status());
        if (status == RunStatus::unspecified) {
          status = RunStatus::invalid_response;
          o.error_type = "invalid_response";
          o.error_message = "the endpoint's RunResponse has no status";
        } else if (status == RunStatus::ok) {
          o.output_type_url = res.exit().result().output().type_url();
          o.output = res.exit().result().output().value();
        } else {
          o.error_type = res.exit().result().error().type();
          o.error_message = res.exit().result().error().message();
        }
      }
    }
    const Aimd aimd = status == RunStatus::ok                                  ? Aimd::increase
                      : policy::lowers_concurrency(status, transport_error) ? Aimd::decrease
                                                                            : Aimd::keep;
    o.status = static_cast<int>(status);
    // Whatever this attempt was handed is spent unless it is retried (the
    // store keeps the results for the retry then).
    for (const ChildResult& r : c.results) o.consumed.push_back(r.seq);
    if (status == RunStatus::ok && o.poll) {
      o.state = CallState::suspended;
    } else if (status == RunStatus::ok && o.tail_call) {
      o.state = CallState::pending;
    } else if (status == RunStatus::ok) {
      o.state = CallState::completed;
    } else if (!is_temporary(status)) {
      o.state = CallState::failed;
    } else {
      const FunctionPolicy& policy = policy_for(c.function);
      // A resume the function cannot take starts it again from its input.
      // Each run from the input counts against max_attempts, as each
      // delivery of a step does: a Poll resets attempts (every step has
      // max_attempts deliveries of its own) but not restarts, so a
      // function that can never take its resume ends instead of running
      // from its input again at every Poll.
      const bool restart = c.polled && status == RunStatus::incompatible_state;
      const uint32_t runs = c.restarts + 1;  // from the input, this one included
      // The n-th restart waits as the n-th retry does.
      const uint32_t retry = restart ? std::max(c.attempts, runs) : c.attempts;
      int64_t wait = 0;
      {
        std::lock_guard<std::mutex> lock(mu);
        wait = policy::full_jitter_ms(policy::backoff_cap_ms(retry, policy), rng);
      }
      o.next_attempt_at_ms = now + wait;
      if (policy.max_attempts != 0 && c.attempts >= policy.max_attempts) {
        o.state = CallState::failed;
        o.error_message = "gave up after " + std::to_string(c.attempts) + " attempts: " + o.error_message;
      } else if (restart && policy.max_attempts != 0 && runs >= policy.max_attempts) {
        o.state = CallState::failed;
        o.error_message = "gave up after " + std::to_string(runs) +
                          " runs from its input, each ended by a resume it could not take: " + o.error_message;
      } else if (c.expiration_at_ms != 0 && o.next_attempt_at_ms >= c.expiration_at_ms) {
        o.state = CallState::failed;
        o.error_message = "the call expires before its next attempt; last error: " + o.error_message;
      } else {
        o.state = CallState::pending;
        o.restart = restart;
      }
    }
    if (o.state == CallState::pending) {
      opts.metrics
          ->counter("dispatch_scheduler_retries_total",
                    "Attempts that failed temporarily and were scheduled again, by the attempt's status.",
                    {{"status", std::string(run_status_name(status))}})
          .inc();
    }
    if (o.state != CallState::completed && o.state != CallState::suspended && !o.tail_call && opts.logger.enabled(LogLevel::info)) {
      log(LogLevel::info, "call " + c.id + " to " + c.function + " attempt " +
                              std::to_string(c.attempts) + ": " +
                              std::string(run_status_name(status)) + " (" + o.error_message + ")" +
                              (o.state == CallState::pending ? ", retrying" : ", giving up"));
    }
    finish(std::move(c), std::move(o), aimd);
  }

  // Frees the call's delivery slot at once (the endpoint is done with it,
  // so the next call need not wait for this commit) and records the
  // outcome; the call stays outstanding until that is recorded.
  // How a reply moves its endpoint's concurrency limit; applied under the
  // same lock that frees the call's slot (one lock per reply, not two).
  enum class Aimd { keep, increase, decrease };

  void finish(CallRecord c, Outcome o, Aimd aimd = Aimd::keep) {
    o.leased_as(c);
    const CallState state = o.state;
    // The delivery loop is woken only when it has something to do (a call
    // waiting for this slot, an endpoint to lease for, a retry to time, room
    // to lease again): waking it at every reply cost two thread switches per
    // call.
    bool wake_pump = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto& ep = endpoints[c.endpoint];
      if (aimd == Aimd::increase) {
        ep.limit = policy::aimd_increase(ep.limit, opts.max_endpoint_concurrency);
      } else if (aimd == Aimd::decrease) {
        ep.limit = policy::aimd_decrease(ep.limit);
      }
      ep.in_flight--;
      wake_pump = !ep.waiting.empty() ||
                  static_cast<double>(ep.in_flight) <= ep.limit * 0.75;
      wake = wake || wake_pump;
    }
    if (wake_pump) wake_cv.notify_all();
    const bool tell_waiters =
        (state == CallState::completed || state == CallState::failed) && end_waiters.anyone_waiting();
    record(std::move(c), std::move(o), state, tell_waiters, /*may_fail_instead=*/true);
  }

  // Writes the outcome; the call (moved, not copied) stays with the write
  // until it is reported, for the Get waiting on it and for the failure
  // below.
  void record(CallRecord c, Outcome o, CallState state, bool tell_waiters, bool may_fail_instead) {
    std::string id = c.id;
    const uint64_t lease = c.lease;
    store->finish(std::move(id), lease, std::move(o), clock->now_ms(),
                  [this, state, tell_waiters, may_fail_instead, c = std::move(c)](Result<bool> recorded) mutable {
                    // An outcome larger than the store can keep (out_of_range:
                    // a JetStream server's max_payload) would be refused
                    // again at every delivery, the call delivered again each
                    // time its lease lapsed, its function run each time and
                    // its max attempts never reached: the call fails
                    // instead, final, with the store's reason.
                    if (may_fail_instead && !recorded.ok() && recorded.error().code() == Code::out_of_range) {
                      Outcome f;
                      f.state = CallState::failed;
                      f.status = static_cast<int>(RunStatus::invalid_response);
                      f.error_type = "invalid_response";
                      f.error_message = "the store cannot keep this attempt's outcome: " + recorded.error().message();
                      for (const ChildResult& r : c.results) f.consumed.push_back(r.seq);
                      f.leased_as(c);
                      log(LogLevel::warn, "call " + c.id + " to " + c.function + " attempt " +
                                              std::to_string(c.attempts) + ": " + f.error_message + ", giving up");
                      const bool tell = end_waiters.anyone_waiting();
                      record(std::move(c), std::move(f), CallState::failed, tell, /*may_fail_instead=*/false);
                      return;
                    }
                    bool wake_pump = false;
                    {
                      std::lock_guard<std::mutex> lock(mu);
                      outstanding--;
                      wake_pump = state == CallState::pending || outstanding == 0 ||
                                  outstanding == opts.max_in_flight * 3 / 4;
                      if (!recorded.ok() || !*recorded) {
                        stats.stale++;
                        outcome_stale->inc();
                      } else if (state == CallState::completed) {
                        stats.completed++;
                        outcome_completed->inc();
                      } else if (state == CallState::failed) {
                        stats.failed++;
                        outcome_failed->inc();
                      } else if (state == CallState::suspended) {
                        stats.polls++;
                        outcome_suspended->inc();
                      } else {
                        stats.retried++;
                        outcome_retried->inc();
                      }
                      wake = wake || wake_pump;
                    }
                    if (!recorded.ok()) {
                      log(LogLevel::error, "recording an outcome failed: " + recorded.error().message());
                    } else if (*recorded && tell_waiters) {
                      end_waiters.ended(c.id);
                    }
                    if (wake_pump) wake_cv.notify_all();
                    idle_cv.notify_all();
                  });
  }

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
      // Sleep until the next call is due (at most a second, so lapsed leases
      // are noticed), or until woken by a dispatch or a reply.
      lock.unlock();
      int64_t wait_ms = 1000;
      auto due = store->next_due_ms();
      if (due.ok() && due->has_value()) {
        wait_ms = std::clamp<int64_t>(**due - clock->now_ms(), 0, 1000);
      }
      // Due but nothing could start (endpoints saturated): wait for a reply.
      if (wait_ms == 0 && started.ok() && *started == 0) wait_ms = 50;
      lock.lock();
      wake_cv.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping || wake; });
      if (stopping) return;
      wake = false;
    }
  }

  void stop(std::chrono::milliseconds grace) {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    wake_cv.notify_all();
    if (pump.joinable()) pump.join();
    // Leased calls still waiting for a slot stay leased; the next start
    // releases them. Wait for the ones on the wire.
    std::unique_lock<std::mutex> lock(mu);
    idle_cv.wait_for(lock, grace, [&] {
      std::size_t waiting = 0;
      for (auto& [url, ep] : endpoints) waiting += ep.waiting.size();
      return outstanding == waiting;
    });
  }
};

Result<std::unique_ptr<Scheduler>> Scheduler::open(SchedulerOptions options) {
  std::unique_ptr<Scheduler> s(new Scheduler());
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.opts = std::move(options);
  impl.clock = impl.opts.clock ? impl.opts.clock : &impl.system_clock;
  if (impl.opts.retention.count() < 0) {
    return Error(Code::invalid_argument,
                 "SchedulerOptions::retention is negative; give how long to keep ended calls, or 0 to "
                 "keep them forever");
  }
  if (!impl.opts.store) {
    return Error(Code::invalid_argument,
                 "SchedulerOptions::store is empty; give the scheduler a store, e.g. "
                 "dispatch::scheduler::open_sqlite_store() (dispatch/sqlite/sqlite_store.h)");
  }
  impl.store = std::move(impl.opts.store);
  if (!impl.opts.metrics) impl.opts.metrics = std::make_shared<metrics::Registry>();
  impl.init_metrics();
  // Threads start only when a default client first delivers.
  if (!impl.opts.client_loops) impl.opts.client_loops = std::make_shared<ClientLoops>();
  uint64_t seed = impl.opts.seed;
  if (seed == 0) seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  impl.rng.seed(seed);
  // A store shared with other schedulers keeps their leases: only lapsed
  // ones are released (as the pump does every second).
  const bool shared = impl.store->shared();
  auto released = impl.store->release_leases_sync(impl.clock->now_ms(), !shared);
  if (!released.ok()) return std::move(released).error();
  if (*released > 0) {
    impl.log(LogLevel::info, "recovered " + std::to_string(*released) +
                                 (shared ? " calls whose lease lapsed" :
                                         " calls that were running when the previous scheduler stopped"));
  }
  impl.api = api_services(*s);
  auto added = s->add_to(impl.table);
  if (!added.ok()) return std::move(added).error();
  return s;
}

Scheduler::~Scheduler() = default;

void Scheduler::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->pump.joinable()) return;
  impl_->stopping = false;
  impl_->pump = std::thread([impl = impl_.get()] { impl->run_pump(); });
}

void Scheduler::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

void Scheduler::end_waits() { impl_->end_waiters.close(); }

const DispatchTable& Scheduler::table() const noexcept { return impl_->table; }

Result<void> Scheduler::add_to(DispatchTable& table) {
  auto added = table.add(impl_->api->dispatch);
  if (!added.ok()) return added;
  return table.add(impl_->api->admin);
}

Result<std::vector<std::string>> Scheduler::dispatch(std::vector<NewCall> calls) {
  const std::size_t n = calls.size();
  const int64_t now = impl_->clock->now_ms();
  // The policy's expiration counts from when the call may first run.
  for (NewCall& c : calls) {
    if (c.expiration_at_ms == 0) {
      c.expiration_at_ms = std::max(now, c.not_before_ms) + impl_->policy_for(c.function).expiration.count();
    }
  }
  auto ids = impl_->store->enqueue_sync(std::move(calls), now);
  if (ids.ok()) {
    impl_->notify();
    if (impl_->opts.logger.enabled(LogLevel::debug)) {
      impl_->log(LogLevel::debug, "accepted " + std::to_string(n) + " calls, first id " + ids->front());
    }
  }
  return ids;
}

Result<CallRecord> Scheduler::get(std::string_view id, std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  // Woken when this scheduler records the end; a look at the store every
  // 10 ms sees ends recorded elsewhere (end_waiters.h).
  std::optional<EndWaiters::Wait> waiter;
  for (;;) {
    auto r = impl_->store->get(id);
    if (!r.ok()) return std::move(r).error();
    if (!r->has_value()) return impl_->unknown_call(id);
    if (is_final((*r)->state) || std::chrono::steady_clock::now() >= until || impl_->end_waiters.closed()) {
      return std::move(**r);
    }
    if (!waiter) {
      // Registered, then read again: an end recorded in between is in the store.
      waiter.emplace(impl_->end_waiters, std::string(id));
      continue;
    }
    waiter->sleep(std::chrono::milliseconds(10), until);
  }
}

Result<std::vector<CallRecord>> Scheduler::list(std::optional<CallState> state, std::size_t limit,
                                                std::string_view after_id) {
  return impl_->store->list(state, limit, after_id);
}

Result<std::vector<CallRecord>> Scheduler::children(std::string_view parent_id, std::size_t limit,
                                                    std::string_view after_id) {
  auto parent = impl_->store->get(parent_id);
  if (!parent.ok()) return std::move(parent).error();
  if (!parent->has_value()) return impl_->unknown_call(parent_id);
  return impl_->store->list_children(parent_id, limit, after_id);
}

Result<CallRecord> Scheduler::cancel(std::string_view id) {
  auto r = impl_->store->cancel_sync(std::string(id), impl_->clock->now_ms());
  if (!r.ok() && r.error().code() == Code::not_found) return impl_->unknown_call(id);
  if (r.ok()) impl_->end_waiters.ended(id);
  return r;
}

Result<CallRecord> Scheduler::retry(std::string_view id) {
  auto r = impl_->store->retry_sync(std::string(id), impl_->clock->now_ms());
  if (!r.ok() && r.error().code() == Code::not_found) return impl_->unknown_call(id);
  if (r.ok()) impl_->notify();
  return r;
}

Result<std::size_t> Scheduler::step() { return impl_->step(); }

void Scheduler::wait_idle() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(lock, [&] {
    std::size_t waiting = 0;
    for (auto& [url, ep] : impl_->endpoints) waiting += ep.waiting.size();
    return impl_->outstanding == waiting && !impl_->sweeping;
  });
}

int64_t Scheduler::now_ms() const { return impl_->clock->now_ms(); }

double Scheduler::endpoint_concurrency(const std::string& endpoint) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->endpoints.find(endpoint);
  return it == impl_->endpoints.end() ? impl_->opts.initial_endpoint_concurrency : it->second.limit;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

Store& Scheduler::store() noexcept { return *impl_->store; }

const std::shared_ptr<metrics::Registry>& Scheduler::metrics() const noexcept { return impl_->opts.metrics; }

const FunctionPolicy& Scheduler::policy_for(const std::string& function) const {
  return impl_->policy_for(function);
}

}  // namespace dispatch::scheduler
