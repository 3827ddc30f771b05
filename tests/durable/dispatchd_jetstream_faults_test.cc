// Faults under load on the JetStream store, as processes over loopback: two
// dispatchd on one bucket and durable_endpoint; the bucket on a 3-node NATS
// cluster with three replicas when a NATS node is killed (on a 5-node one
// with five when two are), on one server when only dispatchd is. While
// calls, delayed calls and workflows are dispatched, the test SIGKILLs (a)
// one NATS node of three, (b) one of the two dispatchd (restarting it), (c)
// both at once, (d) two NATS nodes of five at once, several times at random
// moments. After each run every acknowledged dispatch has ended completed
// exactly once with the endpoint's answer (one call per idempotency key, its
// output the endpoint's), every workflow has its result, no delayed call is
// lost and none started before it was due (the endpoint logs when each
// execution started); the counts are printed. Deliveries are counted apart:
// a call whose dispatchd died after the endpoint ran it is delivered again
// after its lease lapses (at-least-once delivery), which is not a second
// completion.
//
// With replicas (three or five) on a nats-server that can let a
// compare-and-set be won twice in a clustered stream (before 2.9.21,
// nats-io/nats-server#4320; Debian bookworm's is 2.9.10), a workflow's
// parent loses a child's result now and then; the store's recovery delivers it again (docs/scheduler.md),
// so workflows are asserted on every server too.
//
// Not for: throughput figures (bench/), or faults of the endpoint
// (crash_test).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nats/nats.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/jetstream/jetstream_store.h"
#include "dispatch/jetstream/v1/records.pb.h"
#include "dispatch/transport/http_client.h"
#include "jetstream/records.h"
#include "jetstream/testing/nats_server.h"

namespace {

using namespace std::chrono_literals;
using dispatch::scheduler::testing::NatsCluster;
using dispatch::scheduler::testing::NatsServer;
using durable_test::free_port;
using durable_test::port_open;
using durable_test::restart_exited;
using durable_test::sleep_calling;
using durable_test::spawn;

// nats_node: one node of a 3-node cluster; two_nats_nodes: two of a 5-node
// one at once.
enum class Fault { nats_node, dispatchd, both, two_nats_nodes };

// Microseconds since the Unix epoch, as durable_endpoint logs a start.
int64_t wall_us(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// What the load acknowledged: one entry per request the scheduler accepted.
struct Acked {
  std::string id;
  std::string expected;  // the endpoint's answer
  enum Kind { call, delayed, workflow } kind;
  // A delayed call's: the wall clock before its first dispatch was sent
  // plus its delay. The scheduler adds the delay to its own clock when it
  // accepts the dispatch (that attempt or a later one, whose idempotency
  // key returns the same call), so the call is due no earlier than this.
  int64_t due_us = 0;
  int64_t delay_ms = 0;
};

// The scheduler's clock reads whole milliseconds: a call due at t (its
// acceptance, truncated, plus the delay) may start up to just under a
// millisecond before the test's microsecond reading of t.
constexpr int64_t kClockGranularityUs = 1000;

class DispatchdJetStreamFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
    dir_ = ::testing::TempDir() + "dispatchd_js_faults_" + std::to_string(::getpid()) + "/";
    ASSERT_EQ(::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    ep_port_ = free_port();
    ep_url_ = "http://127.0.0.1:" + std::to_string(ep_port_);
    endpoint_ = spawn({DURABLE_ENDPOINT, "--listen", "127.0.0.1:" + std::to_string(ep_port_), "--log",
                       dir_ + "seen.log", "--log-input", "yes", "--log-start", "yes"},
                      dir_ + "endpoint.log");
  }
  // The NATS side (a cluster of `nodes` with a replica on each, or one
  // server when 0), the bucket and the two dispatchd.
  void start(int nodes) {
    if (nodes > 0) {
      cluster_ = std::make_unique<NatsCluster>(nodes);
      ASSERT_TRUE(cluster_->start()) << cluster_->failure();
    } else {
      ASSERT_TRUE(single_.start()) << single_.failure();
    }
    // The bucket first, so that the two dispatchd do not race to make it
    // (on a busy machine one of them could time out and exit).
    {
      dispatch::scheduler::JetStreamOptions o;
      o.servers = urls();
      o.bucket = "faults";
      o.replicas = replicas();
      auto made = dispatch::scheduler::open_jetstream_store(o);
      for (int tries = 0; !made.ok() && tries < 5; ++tries) made = dispatch::scheduler::open_jetstream_store(o);
      ASSERT_TRUE(made.ok()) << made.error().what();
    }
    for (int i = 0; i < 2; ++i) {
      api_ports_[i] = free_port();
      start_dispatchd(i);
    }
    for (int i = 0; i < 1000 && !(port_open(api_ports_[0]) && port_open(api_ports_[1]) && port_open(ep_port_));
         ++i) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(port_open(api_ports_[0]) && port_open(api_ports_[1]) && port_open(ep_port_))
        << "see " << dir_ << "dispatchd0.log";
  }
  void TearDown() override {
    for (pid_t pid : {schedulers_[0], schedulers_[1], endpoint_}) {
      if (pid <= 0) continue;
      ::kill(pid, SIGTERM);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
    if (!HasFailure() && !dir_.empty()) ::system(("rm -rf " + dir_).c_str());
  }
  void start_dispatchd(int i) {
    // A short lease, so a dead dispatchd's running calls are taken over
    // within seconds; quick retries, so calls refused while the cluster
    // moves a leader come back soon.
    schedulers_[i] = spawn({DISPATCHD, "--store", cluster_ ? cluster_->store_spec() : single_.url(),
                            "--nats-bucket", "faults", "--nats-replicas", std::to_string(replicas()), "--listen", "127.0.0.1:" + std::to_string(api_ports_[i]),
                            "--api-key", "k1", "--run-timeout-ms", "2000", "--lease", "3s", "--min-backoff-ms",
                            "100", "--max-backoff-ms", "1000"},
                           dir_ + "dispatchd" + std::to_string(i) + ".log");
  }
  // As a supervisor (systemd's Restart=always) would: a dispatchd that
  // exited (at start it exits when the cluster cannot open the bucket in
  // time, as while a node is down and leaders move) is started again.
  void supervise() {
    respawned_ += restart_exited(schedulers_, [this](std::size_t i) { start_dispatchd(static_cast<int>(i)); });
  }
  void sleep_supervising(std::chrono::milliseconds d) {
    sleep_calling(d, [this] { supervise(); });
  }
  void kill_dispatchd(int i) {
    ::kill(schedulers_[i], SIGKILL);
    int st = 0;
    ::waitpid(schedulers_[i], &st, 0);
    schedulers_[i] = -1;
  }
  // `timeout`: of each request (a dispatch to a dispatchd that waits on
  // NATS gives up and goes to the other); none for awaiting results.
  std::unique_ptr<dispatch::HttpClient> api(int i, std::optional<std::chrono::milliseconds> timeout = 5s) {
    dispatch::HttpClientOptions o;
    o.api_key = "k1";
    o.default_timeout = timeout;
    o.connect_timeout = 2s;
    return std::make_unique<dispatch::HttpClient>("http://127.0.0.1:" + std::to_string(api_ports_[i]), o);
  }
  // Per input of durable.record: the dispatch IDs it ran under and when
  // each delivery started (microseconds since the Unix epoch).
  std::map<std::string, std::map<std::string, std::vector<int64_t>>> seen() {
    std::map<std::string, std::map<std::string, std::vector<int64_t>>> out;
    std::ifstream in(dir_ + "seen.log");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, attempt, input;
      int64_t started_us = 0;
      fields >> id >> attempt >> input >> started_us;
      out[input][id].push_back(started_us);
    }
    return out;
  }

  // A call and its children as the bucket holds them, for a failure's
  // message.
  std::string describe(const std::string& id) {
    dispatch::scheduler::JetStreamOptions o;
    o.servers = urls();
    o.bucket = "faults";
    o.replicas = replicas();
    auto store = dispatch::scheduler::open_jetstream_store(o);
    if (!store.ok()) return "(cannot open the bucket: " + store.error().message() + ")";
    std::ostringstream out;
    auto show = [&](const dispatch::scheduler::CallRecord& r) {
      out << "  " << r.id << " " << r.function << " state=" << static_cast<int>(r.state) << " attempts=" << r.attempts
          << " outstanding=" << r.outstanding << " ready=" << r.ready << " min_results=" << r.min_results
          << " next_attempt_at_ms=" << r.next_attempt_at_ms << " parent=" << r.parent_id << "\n";
    };
    auto call = (*store)->get(id);
    if (!call.ok() || !call->has_value()) return "(not in the bucket)";
    show(**call);
    auto children = (*store)->list_children(id, 100, "");
    std::vector<std::string> ids{id};
    if (children.ok()) {
      for (const auto& c : *children) {
        show(c);
        ids.push_back(c.id);
      }
    }
    // The records themselves: what is outstanding, what results wait,
    // effects not applied.
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    kvStore* kv = nullptr;
    if (natsConnection_ConnectTo(&nc, urls()[0].c_str()) == NATS_OK &&
        natsConnection_JetStream(&js, nc, nullptr) == NATS_OK && js_KeyValue(&kv, js, "faults") == NATS_OK) {
      for (const std::string& key : ids) {
        kvEntry* e = nullptr;
        const std::string group = dispatch::scheduler::jetstream::group_of(key);
        if (kvStore_Get(&e, kv, (group.empty() ? "c." + key : group).c_str()) != NATS_OK) continue;
        dispatch::jetstream::v1::Call c;
        if (group.empty()) {
          c.ParseFromArray(kvEntry_Value(e), kvEntry_ValueLen(e));
        } else {
          dispatch::jetstream::v1::Group g;
          g.ParseFromArray(kvEntry_Value(e), kvEntry_ValueLen(e));
          for (const auto& member : g.calls()) {
            if (member.id() == key) c = member;
          }
        }
        out << "  record " << key << " rev " << kvEntry_Revision(e) << ": state=" << c.state()
            << " outstanding=[";
        for (const auto& o : c.outstanding()) out << o << " ";
        out << "] results=" << c.results_size() << " result_seq=" << c.result_seq()
            << " effects=" << (c.has_effects() ? c.effects().ShortDebugString() : "none") << "\n";
        kvEntry_Destroy(e);
      }
    }
    if (kv != nullptr) kvStore_Destroy(kv);
    if (js != nullptr) jsCtx_Destroy(js);
    if (nc != nullptr) natsConnection_Destroy(nc);
    return out.str();
  }

  void run(Fault fault, const char* name);

  std::vector<std::string> urls() const { return cluster_ ? cluster_->urls() : std::vector{single_.url()}; }
  int replicas() const { return cluster_ ? cluster_->size() : 1; }
  std::unique_ptr<NatsCluster> cluster_;  // none: single_
  NatsServer single_;
  std::string dir_, ep_url_;
  uint16_t ep_port_ = 0;
  std::array<uint16_t, 2> api_ports_{};
  std::array<pid_t, 2> schedulers_{-1, -1};
  pid_t endpoint_ = -1;
  int respawned_ = 0;
};

void DispatchdJetStreamFaults::run(Fault fault, const char* name) {
  const bool nats_faults = fault != Fault::dispatchd;
  const bool dispatchd_faults = fault == Fault::dispatchd || fault == Fault::both;
  start(fault == Fault::two_nats_nodes ? 5 : nats_faults ? 3 : 0);
  if (HasFatalFailure()) return;
  constexpr int kKills = 3;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Acked> acked;
  std::atomic<int> refused{0};  // requests answered with an error, then retried
  std::atomic<int> batches{0}, batches_refused{0};  // keyless batches (one group record each)

  // Load: requests with idempotency keys, retried (on the other dispatchd
  // too) until accepted; a retry of a request that was written but whose
  // answer was lost returns the same call.
  std::atomic<bool> load_done{false};
  std::thread load([&] {
    struct Done {
      std::atomic<bool>& done;
      ~Done() { done = true; }
    } done_on_return{load_done};
    std::array<std::unique_ptr<dispatch::HttpClient>, 2> clients{api(0), api(1)};
    std::mt19937 rng(std::random_device{}());
    for (int n = 0; !stop.load(); ++n) {
      if (n % 6 == 5) {
        // A batch without idempotency keys: one group record, whose calls
        // are leased and finished together. Not retried (without keys a
        // retry of a batch written but not answered would run twice): an
        // acknowledged batch is counted, a refused one is not.
        std::vector<dispatch::PendingCall> batch;
        for (int i = 0; i < 8; ++i) {
          batch.push_back({"durable.record", "durable.RecordRequest", "g" + std::to_string(n) + "." + std::to_string(i), {}});
        }
        dispatch::DispatchClient client(*clients[n % 2], ep_url_);
        auto ids = client.dispatch_batch(batch);
        if (!ids.ok()) {
          ++batches_refused;
          std::this_thread::sleep_for(50ms);
          continue;
        }
        ++batches;
        std::lock_guard<std::mutex> lock(mu);
        for (std::size_t i = 0; i < ids->size(); ++i) {
          Acked g;
          g.kind = Acked::call;
          g.id = (*ids)[i];
          g.expected = batch[i].request;
          acked.push_back(std::move(g));
        }
        continue;
      }
      Acked a;
      std::string function = "durable.record", type = "durable.RecordRequest", input = "m" + std::to_string(n);
      dispatch::DispatchOptions options;
      options.idempotency_key = std::string(name) + "-" + std::to_string(n);
      a.kind = Acked::call;
      a.expected = input;
      if (n % 10 == 3) {
        a.kind = Acked::delayed;
        a.delay_ms = 200 + rng() % 1500;
        options.delay = std::chrono::milliseconds(a.delay_ms);
        a.due_us = wall_us(std::chrono::system_clock::now()) + a.delay_ms * 1000;
      } else if (n % 25 == 7) {
        a.kind = Acked::workflow;
        function = "durable.fan";
        type = "durable.FanRequest";
        input = "3";
        a.expected = "r0,r1,r2";
      }
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      for (int attempt = 0;; ++attempt) {
        dispatch::DispatchClient client(*clients[(n + attempt) % 2], ep_url_);
        auto id = client.dispatch(function, type, input, options);
        if (id.ok()) {
          a.id = *id;
          break;
        }
        ++refused;
        if (std::chrono::steady_clock::now() > deadline) {
          ADD_FAILURE() << "no dispatchd accepted " << options.idempotency_key << " within 60 s: " << id.error().what();
          return;
        }
        std::this_thread::sleep_for(50ms);
      }
      std::lock_guard<std::mutex> lock(mu);
      acked.push_back(std::move(a));
    }
  });

  // Faults at random moments.
  const auto started = std::chrono::steady_clock::now();
  std::mt19937 rng(std::random_device{}());
  auto between = [&](int lo_ms, int hi_ms) {
    return std::chrono::milliseconds(lo_ms + static_cast<int>(rng() % static_cast<unsigned>(hi_ms - lo_ms)));
  };
  int nats_kills = 0, dispatchd_kills = 0;
  for (int k = 0; k < kKills; ++k) {
    sleep_supervising(between(700, 2000));
    // The NATS nodes to kill together: distinct, at random.
    std::vector<int> nodes;
    if (nats_faults) {
      const int n = cluster_->size();
      const int first = static_cast<int>(rng() % static_cast<unsigned>(n));
      nodes.push_back(first);
      if (fault == Fault::two_nats_nodes) {
        nodes.push_back((first + 1 + static_cast<int>(rng() % static_cast<unsigned>(n - 1))) % n);
      }
    }
    const int proc = static_cast<int>(rng() % 2);
    for (int node : nodes) {
      cluster_->kill(node);
      ++nats_kills;
    }
    if (dispatchd_faults) {
      kill_dispatchd(proc);
      ++dispatchd_kills;
    }
    sleep_supervising(between(200, 1000));
    if (dispatchd_faults) start_dispatchd(proc);
    for (int node : nodes) {
      const auto restarting = std::chrono::steady_clock::now();
      EXPECT_TRUE(cluster_->restart(node)) << cluster_->failure();
      std::printf("NATS node %d back and caught up (R%d) in %.1f s\n", node, cluster_->size(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - restarting).count());
    }
  }
  sleep_supervising(500ms);
  stop = true;
  // Supervised until the load has stopped: its last dispatch may wait for
  // a dispatchd that exited at start after the last fault.
  while (!load_done) sleep_supervising(50ms);
  load.join();
  for (int i = 0; i < 300 && !(port_open(api_ports_[0]) && port_open(api_ports_[1])); ++i) {
    sleep_supervising(100ms);
  }

  const auto loaded = std::chrono::steady_clock::now();

  // Every acknowledged dispatch ends completed with the endpoint's answer
  // (all of them within a minute).
  auto client_api = api(0, std::nullopt);
  dispatch::DispatchClient client(*client_api, ep_url_);
  std::size_t completed = 0, workflows = 0, delayed = 0, lost = 0;
  const auto drain_deadline = loaded + 60s;
  for (const Acked& a : acked) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline - std::chrono::steady_clock::now());
    auto result = client.await_result(a.id, std::max(left, std::chrono::milliseconds(1000)));
    if (!result.ok()) {
      ++lost;
      ADD_FAILURE() << a.id << " (acknowledged) did not complete: " << result.error().what() << "\n"
                    << describe(a.id);
      continue;
    }
    EXPECT_EQ(*result, a.expected) << a.id;
    if (*result != a.expected) continue;
    ++completed;
    if (a.kind == Acked::workflow) ++workflows;
    if (a.kind == Acked::delayed) ++delayed;
  }
  // One call per request: an input of durable.record ran under one ID.
  // A delayed call's every delivery started once it was due.
  const auto deliveries = seen();
  std::size_t duplicates = 0, redelivered = 0, delivered = 0, delayed_checked = 0, early = 0;
  for (const Acked& a : acked) {
    if (a.kind == Acked::workflow) continue;
    auto it = deliveries.find(a.expected);
    if (it == deliveries.end()) {
      ADD_FAILURE() << a.id << " completed but the endpoint never saw " << a.expected;
      continue;
    }
    if (it->second.size() != 1) {
      ++duplicates;
      ADD_FAILURE() << a.expected << " ran as " << it->second.size() << " calls";
    }
    for (const auto& [id, starts] : it->second) {
      EXPECT_EQ(id, a.id) << a.expected;
      delivered += starts.size();
      if (starts.size() > 1) ++redelivered;
      if (a.kind != Acked::delayed) continue;
      ++delayed_checked;
      for (int64_t started : starts) {
        if (started >= a.due_us - kClockGranularityUs) continue;
        ++early;
        const int64_t dispatched_us = a.due_us - a.delay_ms * 1000;
        ADD_FAILURE() << std::fixed << std::setprecision(3) << "delayed call " << id << " (" << a.expected
                      << ", delay " << a.delay_ms << " ms) started " << (started - dispatched_us) / 1000.0
                      << " ms after its dispatch was sent, " << (a.due_us - started) / 1000.0
                      << " ms before it was due (due at " << a.due_us << ", started at " << started
                      << ", microseconds since the epoch)";
      }
    }
  }
  std::printf(
      "jetstream faults (%s, R%d on %d node(s)): nats_kills=%d dispatchd_kills=%d acknowledged=%zu "
      "completed_once=%zu (workflows=%zu delayed=%zu) duplicates=%zu lost=%zu; delayed_checked_not_early=%zu "
      "early=%zu; deliveries=%zu redelivered_calls=%zu "
      "refused_then_retried=%d keyless_batches=%d (refused %d) dispatchd_exits_at_start=%d; load %.1f s, drain "
      "%.1f s\n",
      name, replicas(), replicas(), nats_kills, dispatchd_kills, acked.size(), completed, workflows, delayed,
      duplicates, lost, delayed_checked, early, delivered, redelivered, refused.load(), batches.load(),
      batches_refused.load(), respawned_,
      std::chrono::duration<double>(loaded - started).count(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loaded).count());
  std::fflush(stdout);
  EXPECT_EQ(completed, acked.size());
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(early, 0u);
  EXPECT_EQ(delayed_checked, delayed) << "every delayed call that completed is checked";
  EXPECT_GT(acked.size(), 50u);
  EXPECT_GT(batches.load(), 0);
}

TEST_F(DispatchdJetStreamFaults, OneNatsNodeOfThreeKilledLosesNothing) { run(Fault::nats_node, "nats_node"); }

TEST_F(DispatchdJetStreamFaults, OneOfTwoDispatchdKilledLosesNothing) { run(Fault::dispatchd, "dispatchd"); }

TEST_F(DispatchdJetStreamFaults, BothAtOnceLoseNothing) { run(Fault::both, "both"); }

TEST_F(DispatchdJetStreamFaults, TwoNatsNodesOfFiveKilledAtOnceLoseNothing) {
  run(Fault::two_nats_nodes, "two_nats_nodes");
}

}  // namespace
