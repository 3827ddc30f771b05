// dispatchd --statefun-module on NATS JetStream (--store nats://...), as
// processes over loopback: two dispatchd share one bucket on a nats-server of
// the test's own and run a stateful counter, messages sent through either
// with dispatchctl: each is counted once and in order in the entity's state,
// a delayed message armed by one reply is delivered once, and the egress
// records the replies wrote are read back in order through dispatchctl from
// either process.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
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
    std::ofstream(dir_ + "m.yaml") << "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: test/*\n"
                                      "  urlPathTemplate: http://127.0.0.1:"
                                   << ep_port << "/statefun\n";
    for (int i = 0; i < 2; ++i) {
      api_ports_[i] = free_port();
      children_.push_back(spawn({DISPATCHD, "--store", nats_.url(), "--nats-bucket", "sf", "--listen",
                                 "127.0.0.1:" + std::to_string(api_ports_[i]), "--statefun-module", dir_ + "m.yaml"},
                                dir_ + "dispatchd" + std::to_string(i) + ".log"));
    }
    for (int i = 0; i < 500 && !(port_open(api_ports_[0]) && port_open(api_ports_[1]) && port_open(ep_port)); ++i) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(port_open(api_ports_[0]) && port_open(api_ports_[1]) && port_open(ep_port))
        << "see " << dir_ << "dispatchd0.log";
  }
  void TearDown() override {
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
  std::vector<pid_t> children_;
};

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

}  // namespace
