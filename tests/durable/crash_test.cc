// Crash safety across real processes over loopback: dispatchd and an endpoint
// run as child processes; client threads dispatch a steady load (each call
// with its own idempotency key, re-sent until acknowledged); the test
// kill -9s the scheduler and, separately, the endpoint at random moments and
// restarts them. Afterwards every acknowledged dispatch must be completed
// exactly once in the store (one row, completed, with the function's result),
// no retried Dispatch may have created a second call, and the endpoint must
// have seen each call at least once. The counts are printed. Then the same
// for workflows (trees of calls, sleeps and a nested workflow).
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

// Workflows under the same chaos: 200 durable.tree workflows, each fanning
// out 10 recorded calls and a child workflow (durable.leaf: a call and a
// sleep) and then sleeping, dispatched up front; dispatchd and the endpoint
// are SIGKILLed at random moments while they run. Every workflow must end
// completed with the right answer, and every call of every tree once in
// the store, completed. The counts, with short sleeps (50 ms and
// 20 ms) so that it runs in seconds. The counts are printed.
TEST(Durable, KillNineWhileWorkflowsRun) {
  const std::string dir = ::testing::TempDir() + "durable_wf_crash_" + std::to_string(::getpid()) + "/";
  ASSERT_EQ(::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  const std::string db = dir + "dispatch.db", seen = dir + "seen.log";
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
    pid_t pid = spawn({DURABLE_ENDPOINT, "--listen", "127.0.0.1:" + std::to_string(ep_port), "--log", seen},
                      dir + "endpoint.log", {{"DISPATCH_VERIFICATION_KEY", key.public_key().to_base64()}});
    wait_listening(ep_port, pid);
    return pid;
  };
  pid_t scheduler = start_scheduler();
  pid_t endpoint = start_endpoint();

  constexpr int kWorkflows = 200, kFanOut = 10;
  std::mutex mu;
  std::map<int, std::string> acked;
  std::atomic<int> resent{0};
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
    for (int n = 0; n < kWorkflows; ++n) {
      dispatch::DispatchOptions opts;
      opts.idempotency_key = "tree-" + std::to_string(n);
      for (;;) {
        auto id = client.dispatch("durable.tree", "durable.TreeRequest", std::to_string(kFanOut), opts);
        if (id.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked[n] = *id;
          break;
        }
        ++resent;
        std::this_thread::sleep_for(20ms);
      }
    }
  });

  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(reader, 5000);
  std::mt19937 rng(std::random_device{}());
  int scheduler_kills = 0, endpoint_kills = 0, scheduler_kills_mid_run = 0, endpoint_kills_mid_run = 0;
  for (char who : std::string("SESESE")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 200));
    // Kills that land while some workflow has not ended are the ones that
    // test anything; the first ones do, on any machine (200 trees of 15
    // calls take longer than a few hundred ms).
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
  int64_t unfinished = -1;
  for (int i = 0; i < 900; ++i) {
    unfinished = query_int(reader, "SELECT count(*) FROM calls WHERE state != 3");
    if (unfinished == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(unfinished, 0) << "calls not completed 90 s after the last kill";
  ::kill(scheduler, SIGTERM);
  ::kill(endpoint, SIGTERM);
  int status = 0;
  ::waitpid(scheduler, &status, 0);
  ::waitpid(endpoint, &status, 0);

  int right = 0;
  {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(reader, "SELECT id, output FROM calls WHERE parent_id = '' AND state = 3", -1, &s, nullptr);
    std::set<std::string> ids;
    for (const auto& [n, id] : acked) ids.insert(id);
    const std::string expected = "ok " + std::to_string(kFanOut) + " leaf" + std::to_string(kFanOut);
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string id(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
      auto* out = static_cast<const char*>(sqlite3_column_blob(s, 1));
      std::string output = out ? std::string(out, static_cast<std::size_t>(sqlite3_column_bytes(s, 1))) : "";
      right += ids.count(id) == 1 && output == expected;
    }
    sqlite3_finalize(s);
  }
  // Per tree: the workflow, its 10 calls, its sleep, the leaf workflow, the
  // leaf's call and the leaf's sleep.
  const int64_t rows = query_int(reader, "SELECT count(*) FROM calls");
  const int64_t children = query_int(reader, "SELECT count(*) FROM calls WHERE parent_id != ''");
  const int64_t orphans = query_int(
      reader, "SELECT count(*) FROM calls c WHERE c.parent_id != '' AND NOT EXISTS "
              "(SELECT 1 FROM calls p WHERE p.id = c.parent_id)");
  sqlite3_close(reader);
  std::printf(
      "workflow crash test: %d scheduler kills (%d while workflows ran), %d endpoint kills (%d while "
      "workflows ran); %zu workflows acknowledged (%d Dispatch requests re-sent); %d completed with the "
      "right answer; %lld rows (%lld children) in the store, %lld orphans\n",
      scheduler_kills, scheduler_kills_mid_run, endpoint_kills, endpoint_kills_mid_run, acked.size(),
      resent.load(), right,
      static_cast<long long>(rows), static_cast<long long>(children), static_cast<long long>(orphans));
  EXPECT_EQ(acked.size(), static_cast<std::size_t>(kWorkflows));
  EXPECT_GE(scheduler_kills_mid_run, 1) << "no scheduler kill landed while workflows ran";
  EXPECT_GE(endpoint_kills_mid_run, 1) << "no endpoint kill landed while workflows ran";
  EXPECT_EQ(right, kWorkflows);
  EXPECT_EQ(rows, int64_t{kWorkflows} * (1 + kFanOut + 1 + 1 + 2));
  EXPECT_EQ(orphans, 0);
  if (!::testing::Test::HasFailure()) ::system(("rm -rf " + dir).c_str());
}

}  // namespace
