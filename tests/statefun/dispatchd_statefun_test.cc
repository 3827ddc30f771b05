// dispatchd --statefun-module and dispatchctl's stateful commands as
// processes: a module file that is missing or malformed stops dispatchd at
// start with a message saying what and where; ingress refusals (no route,
// empty id) come back through dispatchctl with exit status 1 and the
// runtime's message, usage errors with 2; a message sent with dispatchctl
// reaches the function and its state is shown decoded, and an unknown entity
// is not_found.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "../durable/child_process.h"

namespace {

using namespace std::chrono_literals;

using durable_test::Output;
using durable_test::run;

class DispatchdStatefun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "dispatchd_statefun_" + std::to_string(::getpid()) + "/";
    ASSERT_EQ(::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
  }
  void TearDown() override {
    for (pid_t p : children_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    if (!HasFailure()) {
      EXPECT_EQ(::system(("rm -rf " + dir_).c_str()), 0);
    }
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ + name) << text; }
  std::string dispatchd(const std::string& module) {
    return std::string(DISPATCHD) + " --db " + dir_ + "d.db --listen 127.0.0.1:0 --statefun-module " + dir_ + module;
  }

  std::string dir_;
  std::vector<pid_t> children_;
};

TEST_F(DispatchdStatefun, AMissingOrMalformedModuleStopsItAtStartSayingWhy) {
  auto missing = run(dispatchd("nope.yaml"));
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.out.find("--statefun-module: cannot read the module configuration " + dir_ + "nope.yaml"),
            std::string::npos)
      << missing.out;
  write("bad.yaml", "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n  urlPathTemplate: ftp://x/\n");
  auto bad = run(dispatchd("bad.yaml"));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("bad.yaml, document 1: urlPathTemplate 'ftp://x/' is not an http:// or https:// URL"),
            std::string::npos)
      << bad.out;
  // The entities' lease is --lease, which must outlast every call timeout
  // (StateFun's default: 1 min).
  write("slow.yaml", "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n"
                     "  urlPathTemplate: http://127.0.0.1:1/\n");
  auto short_lease = run(dispatchd("slow.yaml") + " --lease 3s --run-timeout-ms 2000");
  EXPECT_EQ(short_lease.status, 2);
  EXPECT_NE(short_lease.out.find("--lease (3000 ms) must be longer than the call timeout (60000 ms) of the StateFun "
                                 "endpoint in " + dir_ + "slow.yaml, document 1"),
            std::string::npos)
      << short_lease.out;
}

TEST_F(DispatchdStatefun, DispatchctlSendsShowsAndIsRefusedWithReasons) {
  const uint16_t ep_port = durable_test::free_port(), api_port = durable_test::free_port();
  children_.push_back(durable_test::spawn({COUNTER_ENDPOINT, "--port", std::to_string(ep_port)}, dir_ + "ep.log"));
  write("m.yaml", "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: test/*\n  urlPathTemplate: http://127.0.0.1:" +
                      std::to_string(ep_port) + "/statefun\n");
  children_.push_back(durable_test::spawn({DISPATCHD, "--db", dir_ + "d.db", "--listen",
                                           "127.0.0.1:" + std::to_string(api_port), "--statefun-module", dir_ + "m.yaml"},
                                          dir_ + "d.log"));
  for (int i = 0; i < 300 && !(durable_test::port_open(api_port) && durable_test::port_open(ep_port)); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const std::string ctl = std::string(DISPATCHCTL) + " --url http://127.0.0.1:" + std::to_string(api_port) + " ";

  auto no_route = run(ctl + "send other/fn x --long 1");
  EXPECT_EQ(no_route.status, 1);
  EXPECT_NE(no_route.out.find("no endpoint serves function type other/fn"), std::string::npos) << no_route.out;
  auto empty_id = run(ctl + "send test/counter '' --long 1");
  EXPECT_EQ(empty_id.status, 1);
  EXPECT_NE(empty_id.out.find("the entity id is empty"), std::string::npos) << empty_id.out;
  auto two_values = run(ctl + "send test/counter a --long 1 --string x");
  EXPECT_EQ(two_values.status, 2);
  EXPECT_NE(two_values.out.find("exactly one value"), std::string::npos) << two_values.out;
  auto bad_int = run(ctl + "send test/counter a --int 99999999999");
  EXPECT_EQ(bad_int.status, 2);
  auto unknown_option = run(ctl + "entity test/counter a --colour red");
  EXPECT_EQ(unknown_option.status, 2);

  ASSERT_EQ(run(ctl + "send test/counter a --long 1").status, 0);
  ASSERT_EQ(run(ctl + "send test/counter a --long 2 --idempotency-key k2").status, 0);
  ASSERT_EQ(run(ctl + "send test/counter a --long 2 --idempotency-key k2").status, 0);  // queued once
  Output shown;
  for (int i = 0; i < 200; ++i) {
    shown = run(ctl + "entity test/counter a");
    if (shown.out.find("io.statefun.types/int = 2") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(shown.out.find("count                io.statefun.types/int = 2"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("last                 io.statefun.types/long = 2"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("disorder             io.statefun.types/int = 0"), std::string::npos) << shown.out;
  auto json = run(ctl + "--json entity test/counter a");
  EXPECT_EQ(json.status, 0);
  EXPECT_NE(json.out.find("\"functionType\": \"test/counter\""), std::string::npos) << json.out;
  auto unknown = run(ctl + "entity test/counter nobody");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.out.find("not_found"), std::string::npos) << unknown.out;
  auto letters = run(ctl + "dead-letters");
  EXPECT_EQ(letters.status, 0);
  EXPECT_EQ(letters.out.find("test/counter/a"), std::string::npos) << letters.out;
}

}  // namespace
