// Crash safety of dispatchd as a StateFun runtime, across real processes
// over loopback: dispatchd (--statefun-module) and a counter function
// (counter_endpoint) run as child processes; client threads send numbered
// messages to 1,000 counter entities (each re-sent with its idempotency key
// until acknowledged; one in ten also arms a delayed tick); the test kill
// -9s dispatchd and, separately, the endpoint at random moments and
// restarts them. Afterwards every entity's state must count each
// acknowledged message exactly once, in order (the function counts a gap or
// a repeat in "disorder"), and each armed tick must have fired once; no
// message may be left or dead-lettered. The counts are printed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../durable/child_process.h"
#include "dispatch/stateful/value_types.h"
#include "dispatch/statefun/v1/runtime.pb.h"
#include "dispatch/transport/http_client.h"

namespace {

using namespace std::chrono_literals;
using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;
namespace v1 = ::dispatch::statefun::v1;
namespace st = ::dispatch::stateful;

constexpr int kEntities = 1000;
constexpr int kClients = 4;

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

std::string entity_id(int e) { return "c" + std::to_string(e); }

TEST(StatefunCrash, KillNineDispatchdAndEndpointUnderLoad) {
  const std::string dir = ::testing::TempDir() + "statefun_crash_" + std::to_string(::getpid()) + "/";
  ASSERT_EQ(::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  const uint16_t api_port = free_port(), ep_port = free_port();
  {
    std::ofstream yaml(dir + "module.yaml");
    yaml << "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: test/*\n  urlPathTemplate: http://127.0.0.1:"
         << ep_port << "/statefun\n  maxNumBatchRequests: 50\n";
  }
  const std::vector<std::string> dispatchd_args = {
      DISPATCHD, "--db", dir + "d.db", "--listen", "127.0.0.1:" + std::to_string(api_port),
      "--statefun-module", dir + "module.yaml", "--statefun-max-attempts", "0"};
  const std::vector<std::string> endpoint_args = {COUNTER_ENDPOINT, "--port", std::to_string(ep_port)};
  const std::vector<std::pair<std::string, std::string>> quiet = {{"DISPATCH_LOG_LEVEL", "warn"}};
  pid_t dispatchd = spawn(dispatchd_args, dir + "dispatchd.log", quiet);
  pid_t endpoint = spawn(endpoint_args, dir + "endpoint.log", quiet);
  wait_listening(api_port, dispatchd);
  wait_listening(ep_port, endpoint);

  dispatch::HttpClientOptions ho;
  ho.default_timeout = 5s;
  auto api = dispatch::HttpClient::create("http://127.0.0.1:" + std::to_string(api_port), ho).value();

  // Per entity: messages acknowledged (numbered 1..acked) and ticks armed.
  std::vector<int64_t> acked(kEntities, 0), armed(kEntities, 0);
  std::atomic<bool> stop{false};
  std::atomic<bool> broken{false};
  std::atomic<uint64_t> resent{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(static_cast<unsigned>(c + 1));
      while (!stop) {
        // Each client owns the entities e with e % kClients == c: their
        // messages go out in order, one acknowledged before the next.
        const int e = c + kClients * static_cast<int>(rng() % (kEntities / kClients));
        const int64_t n = acked[e] + 1;
        const bool arm = rng() % 10 == 0;
        v1::SendRequest req;
        auto* m = req.add_messages();
        m->set_function_type("test/counter");
        m->set_id(entity_id(e));
        m->set_typename_(std::string(st::kLongType));
        m->set_value(st::encode_long(arm ? -n : n));
        m->set_idempotency_key(entity_id(e) + "-" + std::to_string(n));
        const std::string body = req.SerializeAsString();
        for (int attempt = 0;; ++attempt) {
          if (broken) return;  // dispatchd did not come back: the test has failed
          auto reply = api->call("/dispatch.statefun.v1.IngressService/Send", body, {});
          if (reply.ok()) break;
          if (attempt > 0) resent++;
          std::this_thread::sleep_for(50ms);
        }
        acked[e] = n;
        if (arm) armed[e]++;
      }
    });
  }

  int dispatchd_kills = 0, endpoint_kills = 0;
  std::mt19937 rng(12345);
  const auto load_until = std::chrono::steady_clock::now() + 8s;
  while (std::chrono::steady_clock::now() < load_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1000));
    if (rng() % 5 < 3) {
      kill9(dispatchd);
      ++dispatchd_kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
      dispatchd = spawn(dispatchd_args, dir + "dispatchd.log", quiet);
      wait_listening(api_port, dispatchd);
    } else {
      kill9(endpoint);
      ++endpoint_kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
      endpoint = spawn(endpoint_args, dir + "endpoint.log", quiet);
      wait_listening(ep_port, endpoint);
    }
    if (HasFatalFailure()) break;  // a restart failed: end here, not hang
  }
  stop = true;
  broken = HasFatalFailure();
  for (auto& t : clients) t.join();
  ASSERT_FALSE(broken) << "a restarted process did not listen; see " << dir;

  // Let everything settle, then read every entity.
  int64_t total_acked = 0, total_armed = 0, counted = 0, ticked = 0, disorder = 0, mismatched = 0, left = 0;
  for (int e = 0; e < kEntities; ++e) {
    total_acked += acked[e];
    total_armed += armed[e];
  }
  const auto settle_until = std::chrono::steady_clock::now() + 60s;
  for (int e = 0; e < kEntities; ++e) {
    for (;;) {
      v1::GetEntityRequest req;
      req.set_function_type("test/counter");
      req.set_id(entity_id(e));
      auto reply = api->call("/dispatch.statefun.v1.StatefunAdminService/GetEntity", req.SerializeAsString(), {});
      int64_t count = 0, last = 0, ticks = 0, dis = 0;
      v1::EntityInfo info;
      if (reply.ok() && info.ParseFromString(*reply)) {
        for (const auto& s : info.state()) {
          if (s.name() == "count") count = st::decode_int(s.value()).value();
          if (s.name() == "last") last = st::decode_long(s.value()).value();
          if (s.name() == "ticks") ticks = st::decode_int(s.value()).value();
          if (s.name() == "disorder") dis = st::decode_int(s.value()).value();
        }
      }
      const bool done = count == acked[e] && ticks == armed[e] && info.backlog_size() == 0 &&
                        info.delayed_size() == 0 && !info.in_flight();
      if (done || std::chrono::steady_clock::now() > settle_until) {
        counted += count;
        ticked += ticks;
        disorder += dis;
        if (count != acked[e] || last != acked[e] || ticks != armed[e]) ++mismatched;
        left += info.backlog_size() + info.delayed_size();
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  v1::ListDeadLettersRequest dl;
  v1::ListDeadLettersResponse letters;
  auto dl_reply = api->call("/dispatch.statefun.v1.StatefunAdminService/ListDeadLetters", dl.SerializeAsString(), {});
  ASSERT_TRUE(dl_reply.ok());
  ASSERT_TRUE(letters.ParseFromString(*dl_reply));

  std::printf("%d dispatchd kills, %d endpoint kills; %lld messages acknowledged to %d entities (%llu sends "
              "re-sent); counted %lld, out of order %lld, entities mismatched %lld; delayed ticks armed %lld, "
              "fired %lld; left queued %lld, dead letters %d\n",
              dispatchd_kills, endpoint_kills, static_cast<long long>(total_acked), kEntities,
              static_cast<unsigned long long>(resent.load()), static_cast<long long>(counted),
              static_cast<long long>(disorder), static_cast<long long>(mismatched), static_cast<long long>(total_armed),
              static_cast<long long>(ticked), static_cast<long long>(left), letters.dead_letters_size());
  EXPECT_GT(dispatchd_kills + endpoint_kills, 0);
  EXPECT_GT(total_acked, 1000);
  EXPECT_EQ(counted, total_acked);
  EXPECT_EQ(disorder, 0);
  EXPECT_EQ(mismatched, 0);
  EXPECT_EQ(ticked, total_armed);
  EXPECT_EQ(left, 0);
  EXPECT_EQ(letters.dead_letters_size(), 0);
  kill9(dispatchd);
  kill9(endpoint);
  if (!::testing::Test::HasFailure()) {
    EXPECT_EQ(::system(("rm -rf " + dir).c_str()), 0);
  }
}

}  // namespace
