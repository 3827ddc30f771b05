// dispatchd --statefun-module on NATS JetStream (--store nats://...), as
// processes over loopback: two dispatchd share one bucket on a nats-server of
// the test's own and run a stateful counter, messages sent through either
// with dispatchctl: each is counted once and in order in the entity's state,
// a delayed message armed by one reply is delivered once, and the egress
// records the replies wrote are read back in order through dispatchctl from
// either process. And under faults: one of the two dispatchd SIGKILLed at
// random moments while messages go in, each message still counted once and
// in order.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../durable/child_process.h"
#include "jetstream/testing/nats_server.h"

namespace {

using namespace std::chrono_literals;
using dispatch::scheduler::testing::NatsServer;
using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;

using durable_test::Output;
using durable_test::run;

class StatefunOnJetStream : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
    ASSERT_TRUE(nats_.start()) << nats_.failure();
    dir_ = ::testing::TempDir() + "statefun_js_" + std::to_string(::getpid()) + "/";
    ASSERT_EQ(::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    const uint16_t ep_port = free_port();
    children_.push_back(spawn({COUNTER_ENDPOINT, "--port", std::to_string(ep_port), "--egress", "test/out"},
                              dir_ + "ep.log"));
    // A 2 s call timeout, so a 3 s lease may be given: a dead dispatchd's
    // addresses are taken over within seconds.
    std::ofstream(dir_ + "m.yaml") << "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: test/*\n"
                                      "  urlPathTemplate: http://127.0.0.1:"
                                   << ep_port << "/statefun\n  timeouts:\n    call: 2 s\n";
    for (int i = 0; i < 2; ++i) {
      api_ports_[i] = free_port();
      start_dispatchd(i);
    }
    for (int i = 0; i < 500 && !(port_open(api_ports_[0]) && port_open(api_ports_[1]) && port_open(ep_port)); ++i) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(port_open(api_ports_[0]) && port_open(api_ports_[1]) && port_open(ep_port))
        << "see " << dir_ << "dispatchd0.log";
  }
  void start_dispatchd(int i) {
    dispatchd_[i] = spawn({DISPATCHD, "--store", nats_.url(), "--nats-bucket", "sf", "--listen",
                           "127.0.0.1:" + std::to_string(api_ports_[i]), "--statefun-module", dir_ + "m.yaml",
                           "--lease", "3s", "--run-timeout-ms", "2000"},
                          dir_ + "dispatchd" + std::to_string(i) + ".log");
  }
  void kill_dispatchd(int i) {
    ::kill(dispatchd_[i], SIGKILL);
    ::waitpid(dispatchd_[i], nullptr, 0);
    dispatchd_[i] = -1;
  }
  void TearDown() override {
    for (pid_t pid : dispatchd_) {
      if (pid <= 0) continue;
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    for (pid_t pid : children_) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (!HasFailure() && !dir_.empty()) ::system(("rm -rf " + dir_).c_str());
  }
  std::string ctl(int i) const {
    return std::string(DISPATCHCTL) + " --url http://127.0.0.1:" + std::to_string(api_ports_[i]) + " ";
  }

  NatsServer nats_;
  std::string dir_;
  std::array<uint16_t, 2> api_ports_{};
  std::array<pid_t, 2> dispatchd_{-1, -1};
  std::vector<pid_t> children_;
};

// The value `dispatchctl entity` prints for a state field, or "".
std::string state_value(const std::string& shown, const std::string& field) {
  std::istringstream lines(shown);
  for (std::string line; std::getline(lines, line);) {
    line.erase(0, line.find_first_not_of(' '));
    if (line.rfind(field + " ", 0) != 0) continue;
    const std::size_t eq = line.rfind("= ");
    if (eq != std::string::npos) return line.substr(eq + 2);
  }
  return "";
}

TEST_F(StatefunOnJetStream, TwoDispatchdCountEachMessageOnceFireTheDelayedOneAndShowTheEgress) {
  constexpr int kMessages = 12;
  // 1..11 counted; -12 is counted and arms a tick 100 ms later.
  for (int n = 1; n <= kMessages; ++n) {
    const std::string value = n == kMessages ? "-" + std::to_string(n) : std::to_string(n);
    auto sent = run(ctl(n % 2) + "send test/counter a --long " + value);
    ASSERT_EQ(sent.status, 0) << sent.out;
  }
  // The same ingress key through the other process: queued once.
  ASSERT_EQ(run(ctl(0) + "send test/counter b --long 1 --idempotency-key once").status, 0);
  ASSERT_EQ(run(ctl(1) + "send test/counter b --long 1 --idempotency-key once").status, 0);
  Output shown;
  for (int i = 0; i < 500; ++i) {
    shown = run(ctl(i % 2) + "entity test/counter a");
    if (shown.out.find("ticks                io.statefun.types/int = 1") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(shown.out.find("count                io.statefun.types/int = " + std::to_string(kMessages)),
            std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("last                 io.statefun.types/long = " + std::to_string(kMessages)),
            std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("disorder             io.statefun.types/int = 0"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("ticks                io.statefun.types/int = 1"), std::string::npos) << shown.out;
  // The tick fired once: still one a while later.
  std::this_thread::sleep_for(300ms);
  auto later = run(ctl(0) + "entity test/counter a");
  EXPECT_NE(later.out.find("ticks                io.statefun.types/int = 1"), std::string::npos) << later.out;
  Output other;
  for (int i = 0; i < 200; ++i) {
    other = run(ctl(1) + "entity test/counter b");
    if (other.out.find("count                io.statefun.types/int = 1") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(other.out.find("count                io.statefun.types/int = 1"), std::string::npos) << other.out;
  std::this_thread::sleep_for(200ms);
  other = run(ctl(0) + "entity test/counter b");
  EXPECT_NE(other.out.find("count                io.statefun.types/int = 1"), std::string::npos) << other.out;

  // Egress: a's 12 records in order (then b's one), from either process.
  for (int i = 0; i < 2; ++i) {
    auto egress = run(ctl(i) + "egress test/out --wait-ms 2000");
    ASSERT_EQ(egress.status, 0) << egress.out;
    std::istringstream lines(egress.out);
    std::vector<std::string> values;
    for (std::string line; std::getline(lines, line);) {
      const std::size_t eq = line.rfind("= ");
      if (eq != std::string::npos) values.push_back(line.substr(eq + 2));
    }
    ASSERT_EQ(values.size(), static_cast<std::size_t>(kMessages + 1)) << egress.out;
    int expected = 1;
    int ones = 0;
    for (const std::string& v : values) {
      if (v == "1") {
        ++ones;
        continue;
      }
      ++expected;
      EXPECT_EQ(v, expected == kMessages ? "-" + std::to_string(kMessages) : std::to_string(expected)) << egress.out;
    }
    EXPECT_EQ(ones, 2) << egress.out;  // a's first and b's only
  }
  auto letters = run(ctl(0) + "dead-letters");
  EXPECT_EQ(letters.status, 0);
  EXPECT_EQ(letters.out.find("test/counter"), std::string::npos) << letters.out;
}

// One of the two dispatchd SIGKILLed three times at random moments (and
// started again) while messages go to eight addresses through either: each
// address's n-th message is sent once the n-1-th is acknowledged, with an
// ingress key, retried (on the other process too) until acknowledged. After
// the load every acknowledged message is counted once in its address's state
// and in order ("disorder" 0); a dead process's addresses are taken over once
// their 3 s leases lapse.
TEST_F(StatefunOnJetStream, ADispatchdKilledUnderLoadLosesAndRepeatsNoMessage) {
  constexpr int kAddresses = 8;
  std::mutex mu;
  std::map<std::string, int> acknowledged;  // address -> messages acknowledged
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  std::thread load([&] {
    for (int n = 1; !stop.load(); ++n) {
      for (int a = 0; a < kAddresses && !stop.load(); ++a) {
        const std::string address = "f" + std::to_string(a);
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        for (int attempt = 0;; ++attempt) {
          auto sent = run(ctl((n + a + attempt) % 2) + "send test/counter " + address + " --long " +
                          std::to_string(n) + " --idempotency-key " + address + "-" + std::to_string(n));
          if (sent.status == 0) break;
          ++refused;
          if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << address << " message " << n << " not acknowledged within 60 s: " << sent.out;
            return;
          }
          std::this_thread::sleep_for(50ms);
        }
        std::lock_guard<std::mutex> lock(mu);
        acknowledged[address] = n;
      }
    }
  });
  std::mt19937 rng(std::random_device{}());
  auto between = [&](int lo_ms, int hi_ms) {
    return std::chrono::milliseconds(lo_ms + static_cast<int>(rng() % static_cast<unsigned>(hi_ms - lo_ms)));
  };
  int kills = 0;
  for (int k = 0; k < 3; ++k) {
    std::this_thread::sleep_for(between(700, 2000));
    const int victim = static_cast<int>(rng() % 2);
    kill_dispatchd(victim);
    ++kills;
    std::this_thread::sleep_for(between(200, 1000));
    start_dispatchd(victim);
  }
  std::this_thread::sleep_for(500ms);
  stop = true;
  load.join();
  for (int i = 0; i < 500 && !(port_open(api_ports_[0]) && port_open(api_ports_[1])); ++i) {
    std::this_thread::sleep_for(10ms);
  }

  // Every address reaches its acknowledged count (leases of 3 s lapse).
  int total = 0, counted = 0, disordered = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (const auto& [address, n] : acknowledged) {
    total += n;
    Output shown;
    while (true) {
      shown = run(ctl(0) + "entity test/counter " + address);
      if (state_value(shown.out, "count") == std::to_string(n) || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(100ms);
    }
    // Still so a moment later: nothing counted twice after the takeover.
    std::this_thread::sleep_for(200ms);
    shown = run(ctl(1) + "entity test/counter " + address);
    const std::string count = state_value(shown.out, "count");
    EXPECT_EQ(count, std::to_string(n)) << address << "\n" << shown.out;
    EXPECT_EQ(state_value(shown.out, "last"), std::to_string(n)) << address << "\n" << shown.out;
    EXPECT_EQ(state_value(shown.out, "disorder"), "0") << address << "\n" << shown.out;
    if (count == std::to_string(n)) counted += n;
    if (state_value(shown.out, "disorder") != "0") ++disordered;
  }
  std::printf("statefun on jetstream faults: dispatchd_kills=%d addresses=%zu acknowledged=%d counted_once=%d "
              "addresses_out_of_order=%d refused_then_retried=%d\n",
              kills, acknowledged.size(), total, counted, disordered, refused.load());
  std::fflush(stdout);
  // Every address had messages acknowledged (under ASan dispatchctl is slow:
  // about 50 in all there, 400-700 in a plain build).
  EXPECT_EQ(acknowledged.size(), static_cast<std::size_t>(kAddresses));
  auto letters = run(ctl(0) + "dead-letters");
  EXPECT_EQ(letters.out.find("test/counter"), std::string::npos) << letters.out;
}

}  // namespace
