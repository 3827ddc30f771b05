// Crash safety across real processes over loopback: dispatchd and an endpoint
// run as child processes; client threads dispatch a steady load (each call
// with its own idempotency key, re-sent until acknowledged); the test
// kill -9s the scheduler and, separately, the endpoint at random moments and
// restarts them. Afterwards every acknowledged dispatch must be completed
// exactly once in the store (one row, completed, with the function's result),
// no retried Dispatch may have created a second call, and the endpoint must
// have seen each call at least once. The counts are printed. Then the same
// for generated workflows (trees of calls, a sleep and a nested workflow).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "child_process.h"
#include "crash_flows/api.dispatch.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/security/keys.h"
#include "dispatch/transport/http_client.h"

namespace {

using namespace std::chrono_literals;

using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;

void wait_listening(uint16_t port, pid_t pid) {
  for (int i = 0; i < 500 && !port_open(port); ++i) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "child exited before listening";
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(port_open(port));
}

void kill9(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

int64_t query_int(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  return v;
}

TEST(Durable, KillNineSchedulerAndEndpointUnderLoad) {
  const std::string dir = ::testing::TempDir() + "durable_crash_" + std::to_string(::getpid()) + "/";
  ASSERT_EQ(::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  const std::string db = dir + "dispatch.db", seen = dir + "seen.log";
  const uint16_t api_port = free_port(), ep_port = free_port();
  const std::string endpoint_url = "http://127.0.0.1:" + std::to_string(ep_port);
  // Signed: dispatchd signs every Run, the endpoint refuses unsigned ones.
  const auto key = dispatch::security::SigningKey::generate();
  const std::string signing = key.to_pem();
  const std::string verification = key.public_key().to_base64();

  auto start_scheduler = [&] {
    pid_t pid = spawn({DISPATCHD, "--db", db, "--listen", "127.0.0.1:" + std::to_string(api_port),
                       "--api-key", "test-key", "--max-attempts", "0", "--min-backoff-ms", "20",
                       "--max-backoff-ms", "300"},
                      dir + "dispatchd.log", {{"DISPATCH_SIGNING_KEY", signing}});
    wait_listening(api_port, pid);
    return pid;
  };
  auto start_endpoint = [&] {
    pid_t pid = spawn({DURABLE_ENDPOINT, "--listen", "127.0.0.1:" + std::to_string(ep_port), "--log", seen},
                      dir + "endpoint.log", {{"DISPATCH_VERIFICATION_KEY", verification}});
    wait_listening(ep_port, pid);
    return pid;
  };
  pid_t scheduler = start_scheduler();
  pid_t endpoint = start_endpoint();

  // Load: each thread dispatches calls one at a time, re-sending a call with
  // the same idempotency key until the scheduler acknowledges it.
  std::mutex mu;
  std::map<int, std::string> acked;  // call number -> dispatch ID
  std::atomic<int> next{0};
  std::atomic<bool> stop_load{false};
  std::atomic<int> resent{0};
  auto load = [&] {
    dispatch::HttpClientOptions o;
    o.api_key = "test-key";
    o.connect_timeout = 500ms;
    o.default_timeout = 3000ms;
    dispatch::HttpClient http("http://127.0.0.1:" + std::to_string(api_port), o);
    dispatch::DispatchClient client(http, endpoint_url);
    while (!stop_load) {
      const int n = next++;
      dispatch::DispatchOptions opts;
      opts.idempotency_key = "call-" + std::to_string(n);
      for (;;) {
        auto id = client.dispatch("durable.record", "durable.RecordRequest", std::to_string(n), opts);
        if (id.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked[n] = *id;
          break;
        }
        ++resent;
        std::this_thread::sleep_for(20ms);
      }
      std::this_thread::sleep_for(4ms);
    }
  };
  std::vector<std::thread> loaders;
  for (int i = 0; i < 3; ++i) loaders.emplace_back(load);

  // Chaos: scheduler and endpoint kills, interleaved, at random moments.
  std::mt19937 rng(std::random_device{}());
  const std::string plan = "SESSESSE";
  int scheduler_kills = 0, endpoint_kills = 0;
  // Each kill also waits for 70 more acknowledgements (at most 30 s), so the
  // run reaches the load the final check demands however slow the build is
  // (ASan, TSan, a busy machine) instead of killing on a fixed clock.
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  for (char who : plan) {
    const size_t before = acked_count();
    std::this_thread::sleep_for(std::chrono::milliseconds(700 + rng() % 1300));
    for (int i = 0; i < 300 && acked_count() < before + 70; ++i) std::this_thread::sleep_for(100ms);
    if (who == 'S') {
      kill9(scheduler);
      ++scheduler_kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
      scheduler = start_scheduler();
    } else {
      kill9(endpoint);
      ++endpoint_kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
      endpoint = start_endpoint();
    }
  }
  stop_load = true;
  for (auto& t : loaders) t.join();

  // Let the scheduler finish everything it acknowledged.
  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(reader, 5000);
  int64_t unfinished = -1;
  for (int i = 0; i < 600; ++i) {
    unfinished = query_int(reader, "SELECT count(*) FROM calls WHERE state != 3");
    if (unfinished == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(unfinished, 0) << "calls not completed 60 s after the load stopped";
  {
    // The endpoint really verifies: an unsigned Run is refused.
    dispatch::HttpClient unsigned_client(endpoint_url);
    auto refused = unsigned_client.call(dispatch::kRunPath, "", {});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code(), dispatch::Code::unauthenticated) << refused.error().what();
  }
  ::kill(scheduler, SIGTERM);
  ::kill(endpoint, SIGTERM);
  int status = 0;
  ::waitpid(scheduler, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "dispatchd did not drain cleanly";
  ::waitpid(endpoint, &status, 0);

  // The store: one completed row per acknowledged call, holding its result.
  const int64_t rows = query_int(reader, "SELECT count(*) FROM calls");
  std::unordered_map<std::string, std::pair<int, std::string>> stored;  // id -> state, output
  std::unordered_map<std::string, int64_t> stored_attempts;
  {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(reader, "SELECT id, state, output, attempts FROM calls", -1, &s, nullptr);
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string id(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
      auto* out = static_cast<const char*>(sqlite3_column_blob(s, 2));
      stored[id] = {sqlite3_column_int(s, 1),
                    out ? std::string(out, static_cast<std::size_t>(sqlite3_column_bytes(s, 2))) : ""};
      stored_attempts[id] = sqlite3_column_int64(s, 3);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(reader);

  // The endpoint's log: every execution it started.
  std::unordered_map<std::string, int> seen_count;
  std::size_t executions = 0;
  bool attempt_beyond_store = false;
  {
    std::ifstream in(seen);
    std::string id;
    int64_t attempt = 0;
    while (in >> id >> attempt) {
      ++executions;
      ++seen_count[id];
      auto it = stored_attempts.find(id);
      if (it != stored_attempts.end() && attempt > it->second) attempt_beyond_store = true;
    }
  }

  int completed = 0, wrong_output = 0, unseen = 0, redelivered = 0, max_seen = 0;
  for (const auto& [n, id] : acked) {
    auto it = stored.find(id);
    if (it == stored.end()) continue;
    completed += it->second.first == 3;
    wrong_output += it->second.second != std::to_string(n);
    const int c = seen_count.count(id) ? seen_count[id] : 0;
    unseen += c == 0;
    redelivered += c > 1;
    max_seen = std::max(max_seen, c);
  }
  std::printf(
      "durable crash test: %d scheduler kills, %d endpoint kills; %zu dispatches acknowledged "
      "(%d Dispatch requests re-sent), %lld rows in the store, %d completed; endpoint executions "
      "%zu, calls executed more than once %d (max %d), never executed %d\n",
      scheduler_kills, endpoint_kills, acked.size(), resent.load(), static_cast<long long>(rows),
      completed, executions, redelivered, max_seen, unseen);
  EXPECT_GT(acked.size(), 500u) << "the load was too light to mean anything";
  EXPECT_EQ(static_cast<std::size_t>(rows), acked.size()) << "a re-sent Dispatch created a second call";
  EXPECT_EQ(static_cast<std::size_t>(completed), acked.size());
  EXPECT_EQ(wrong_output, 0);
  EXPECT_EQ(unseen, 0);
  EXPECT_FALSE(attempt_beyond_store) << "the endpoint saw an attempt the store never leased";
  // Distinct IDs: no two acknowledged calls share one.
  std::set<std::string> ids;
  for (const auto& [n, id] : acked) ids.insert(id);
  EXPECT_EQ(ids.size(), acked.size());
  // Nothing was refused for its signature.
  std::ifstream endpoint_log(dir + "endpoint.log");
  std::stringstream endpoint_text;
  endpoint_text << endpoint_log.rdbuf();
  // The one refusal logged is the unsigned probe above.
  const std::string text = endpoint_text.str();
  const auto first = text.find("rejected");
  EXPECT_TRUE(first != std::string::npos && text.find("rejected", first + 1) == std::string::npos)
      << text;
  if (!::testing::Test::HasFailure()) ::system(("rm -rf " + dir).c_str());
}

// Generated workflows under the same chaos: 200 crash.tree workflows
// (crash_flows/api.h: dispatch_generate() and the server
// dispatch_add_server() makes, so the journal-replay runtime is what runs),
// each fanning out 10 crash.square calls with all(), sleeping 50 ms and
// calling the crash.nested workflow (a square of its own) as a child, are
// dispatched while dispatchd and the endpoint are each SIGKILLed three
// times at random moments. Every workflow must end completed exactly once
// (one row) with the right sum, every child must have run at least once
// (the endpoint's log of square executions), and the store must hold 14
// calls per tree with no orphan. Every wait is bounded: a lost workflow or
// a hang fails with what was missing. The counts are printed.
TEST(Durable, KillNineWhileGeneratedWorkflowsRun) {
  const std::string dir = ::testing::TempDir() + "durable_wf_crash_" + std::to_string(::getpid()) + "/";
  ASSERT_EQ(::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  const std::string db = dir + "dispatch.db", children_log = dir + "squares.log";
  const uint16_t api_port = free_port(), ep_port = free_port();
  const std::string endpoint_url = "http://127.0.0.1:" + std::to_string(ep_port);
  const auto key = dispatch::security::SigningKey::generate();
  auto start_scheduler = [&] {
    pid_t pid = spawn({DISPATCHD, "--db", db, "--listen", "127.0.0.1:" + std::to_string(api_port),
                       "--api-key", "test-key", "--max-attempts", "0", "--min-backoff-ms", "20",
                       "--max-backoff-ms", "300"},
                      dir + "dispatchd.log", {{"DISPATCH_SIGNING_KEY", key.to_pem()}});
    wait_listening(api_port, pid);
    return pid;
  };
  auto start_endpoint = [&] {
    pid_t pid = spawn({CRASH_FLOWS_SERVER}, dir + "endpoint.log",
                      {{"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:" + std::to_string(ep_port)},
                       {"DISPATCH_VERIFICATION_KEY", key.public_key().to_base64()},
                       {"DISPATCH_LOG_LEVEL", "warn"},
                       {"CRASH_CHILD_LOG", children_log}});
    wait_listening(ep_port, pid);
    return pid;
  };
  pid_t scheduler = start_scheduler();
  pid_t endpoint = start_endpoint();
  // Whatever fails below, neither child outlives the test.
  struct Reaper {
    pid_t* pids[2];
    ~Reaper() {
      for (pid_t* p : pids) {
        if (*p > 0) kill9(*p);
      }
    }
  } reaper{{&scheduler, &endpoint}};

  sqlite3* reader = nullptr;
  // Opened before the loader starts: nothing below may return with it running.
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(reader, 5000);

  constexpr int kWorkflows = 200, kFanOut = 10, kCallsPerTree = 1 + kFanOut + 1 + 1 + 1;
  constexpr auto kPause = 50ms;
  auto expected = [](int64_t n) {
    int64_t sum = (100000 + n) * (100000 + n) + 1;
    for (int64_t i = 0; i < kFanOut; ++i) sum += (10 * n + i) * (10 * n + i);
    return sum;
  };
  std::mutex mu;
  std::map<int, std::string> acked;
  std::atomic<int> resent{0};
  std::atomic<bool> gave_up{false};
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  std::thread loader([&] {
    dispatch::HttpClientOptions o;
    o.api_key = "test-key";
    o.connect_timeout = 500ms;
    o.default_timeout = 3000ms;
    dispatch::HttpClient http("http://127.0.0.1:" + std::to_string(api_port), o);
    dispatch::DispatchClient client(http, endpoint_url);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (int n = 0; n < kWorkflows && !gave_up; ++n) {
      dispatch::DispatchOptions opts;
      opts.idempotency_key = "tree-" + std::to_string(n);
      for (;;) {
        auto id = crash::remote::tree.dispatch(client, n, kPause, opts);
        if (id.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked[n] = id->id();
          break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
          gave_up = true;
          break;
        }
        ++resent;
        std::this_thread::sleep_for(20ms);
      }
    }
  });

  std::mt19937 rng(std::random_device{}());
  int scheduler_kills = 0, endpoint_kills = 0, scheduler_kills_mid_run = 0, endpoint_kills_mid_run = 0;
  for (char who : std::string("SESESE")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 250));
    // Kills that land while some workflow has not ended are the ones that
    // test anything.
    const bool mid_run =
        acked_count() < static_cast<std::size_t>(kWorkflows) ||
        query_int(reader, "SELECT count(*) FROM calls WHERE parent_id = '' AND state != 3") > 0;
    (who == 'S' ? scheduler_kills_mid_run : endpoint_kills_mid_run) += mid_run ? 1 : 0;
    if (who == 'S') {
      kill9(scheduler);
      ++scheduler_kills;
      scheduler = start_scheduler();
    } else {
      kill9(endpoint);
      ++endpoint_kills;
      endpoint = start_endpoint();
    }
  }
  loader.join();
  ASSERT_FALSE(gave_up) << "dispatchd acknowledged only " << acked_count() << " of " << kWorkflows
                        << " workflows in 60 s (logs in " << dir << ")";
  // Everything ends, or the test fails saying how much did not (a lost
  // workflow, a hang).
  int64_t unfinished = -1;
  for (int i = 0; i < 600; ++i) {
    unfinished = query_int(reader, "SELECT count(*) FROM calls WHERE state != 3");
    if (unfinished == 0 &&
        query_int(reader, "SELECT count(*) FROM calls WHERE parent_id = ''") >= int64_t{kWorkflows}) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(unfinished, 0) << "calls not completed 60 s after the last kill (logs in " << dir << ")";
  ::kill(scheduler, SIGTERM);
  ::kill(endpoint, SIGTERM);
  int status = 0;
  ::waitpid(scheduler, &status, 0);
  ::waitpid(endpoint, &status, 0);
  scheduler = endpoint = -1;

  // The workflows: one top-level row each, completed, with the right sum
  // (decoded with the generated stub, as a caller would).
  std::map<std::string, int> by_id;
  for (const auto& [n, id] : acked) by_id[id] = n;
  int right = 0, wrong = 0, strangers = 0;
  std::string first_wrong;
  {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(reader, "SELECT id, state, output FROM calls WHERE parent_id = ''", -1, &s, nullptr);
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string id(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
      auto* out = static_cast<const char*>(sqlite3_column_blob(s, 2));
      std::string output = out ? std::string(out, static_cast<std::size_t>(sqlite3_column_bytes(s, 2))) : "";
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        ++strangers;
        continue;
      }
      auto value = crash::remote::tree.decode_reply(dispatch::Result<std::string>(std::move(output)));
      if (sqlite3_column_int(s, 1) == 3 && value.ok() && *value == expected(it->second)) {
        ++right;
      } else {
        ++wrong;
        if (first_wrong.empty()) {
          first_wrong = "tree " + std::to_string(it->second) + " (" + id + "): state " +
                        std::to_string(sqlite3_column_int(s, 1)) + ", " +
                        (value.ok() ? std::to_string(*value) : std::string(value.error().what())) + ", expected " +
                        std::to_string(expected(it->second));
        }
      }
    }
    sqlite3_finalize(s);
  }
  const int64_t rows = query_int(reader, "SELECT count(*) FROM calls");
  const int64_t children = query_int(reader, "SELECT count(*) FROM calls WHERE parent_id != ''");
  const int64_t orphans = query_int(
      reader, "SELECT count(*) FROM calls c WHERE c.parent_id != '' AND NOT EXISTS "
              "(SELECT 1 FROM calls p WHERE p.id = c.parent_id)");
  sqlite3_close(reader);

  // The children: every square each tree needs ran at least once.
  std::map<int64_t, int> runs;  // x -> executions
  std::size_t executions = 0;
  {
    std::ifstream in(children_log);
    std::string id;
    int64_t x = 0;
    while (in >> id >> x) {
      ++executions;
      ++runs[x];
    }
  }
  int never_ran = 0, ran_again = 0;
  std::string first_missing;
  for (const auto& [n, id] : acked) {
    std::vector<int64_t> xs;
    for (int64_t i = 0; i < kFanOut; ++i) xs.push_back(10 * int64_t{n} + i);
    xs.push_back(100000 + int64_t{n});
    for (int64_t x : xs) {
      const int c = runs.count(x) ? runs[x] : 0;
      never_ran += c == 0;
      ran_again += c > 1;
      if (c == 0 && first_missing.empty()) first_missing = "square(" + std::to_string(x) + ") of tree " + std::to_string(n);
    }
  }
  std::printf(
      "generated workflow crash test: %d scheduler kills (%d while workflows ran), %d endpoint kills (%d while "
      "workflows ran); %zu workflows acknowledged (%d Dispatch requests re-sent); %d completed once with the "
      "right result, %d wrong, %d unexpected; %lld rows (%lld children) in the store, %lld orphans; %zu child "
      "executions, %d children never ran, %d ran more than once\n",
      scheduler_kills, scheduler_kills_mid_run, endpoint_kills, endpoint_kills_mid_run, acked.size(),
      resent.load(), right, wrong, strangers, static_cast<long long>(rows), static_cast<long long>(children),
      static_cast<long long>(orphans), executions, never_ran, ran_again);
  EXPECT_EQ(acked.size(), static_cast<std::size_t>(kWorkflows));
  EXPECT_GE(scheduler_kills_mid_run, 1) << "no scheduler kill landed while workflows ran";
  EXPECT_GE(endpoint_kills_mid_run, 1) << "no endpoint kill landed while workflows ran";
  EXPECT_EQ(right, kWorkflows) << first_wrong;
  EXPECT_EQ(wrong, 0) << first_wrong;
  EXPECT_EQ(strangers, 0) << "a re-sent Dispatch created a second workflow";
  EXPECT_EQ(rows, int64_t{kWorkflows} * kCallsPerTree);
  EXPECT_EQ(orphans, 0);
  EXPECT_EQ(never_ran, 0) << first_missing;
  if (!::testing::Test::HasFailure()) ::system(("rm -rf " + dir).c_str());
}

}  // namespace
