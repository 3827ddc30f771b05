// Test-only: dispatchd (signing with a fresh key, API key "k1", SQLite in a
// temporary directory) and the generated workflows server (verifying with
// that key) as real processes on free loopback ports, started before each
// test and stopped after it; their logs stay in dir_ when a test fails.
// The end-to-end tests of tests/generated/workflows share it. Needs the
// DISPATCHD and WORKFLOWS_SERVER paths as compile definitions.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "child_process.h"
#include "dispatch/security/keys.h"

namespace workflows_test {

class Processes : public ::testing::Test {
 protected:
  // `name` prefixes the temporary directory.
  explicit Processes(std::string name) : name_(std::move(name)) {}

  void SetUp() override {
    using durable_test::free_port;
    using durable_test::port_open;
    using durable_test::spawn;
    dir_ = ::testing::TempDir() + name_ + "_" + std::to_string(::getpid()) + "/";
    ASSERT_EQ(std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    api_port_ = free_port();
    ep_port_ = free_port();
    api_url_ = "http://127.0.0.1:" + std::to_string(api_port_);
    ep_url_ = "http://127.0.0.1:" + std::to_string(ep_port_);
    scheduler_ = spawn({DISPATCHD, "--db", dir_ + "d.db", "--listen", "127.0.0.1:" + std::to_string(api_port_),
                        "--api-key", "k1", "--max-attempts", "2", "--min-backoff-ms", "10"},
                       dir_ + "dispatchd.log", {{"DISPATCH_SIGNING_KEY", key_.to_pem()}});
    server_ = spawn({WORKFLOWS_SERVER}, dir_ + "server.log",
                    {{"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:" + std::to_string(ep_port_)},
                     {"DISPATCH_VERIFICATION_KEY", key_.public_key().to_base64()}});
    for (int i = 0; i < 500 && !(port_open(api_port_) && port_open(ep_port_)); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(port_open(api_port_) && port_open(ep_port_)) << "see the logs in " << dir_;
  }
  void TearDown() override {
    for (pid_t pid : {scheduler_, server_}) {
      ::kill(pid, SIGTERM);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
    if (!HasFailure()) std::system(("rm -rf " + dir_).c_str());
  }

  dispatch::security::SigningKey key_ = dispatch::security::SigningKey::generate();
  std::string name_, dir_, api_url_, ep_url_;
  uint16_t api_port_ = 0, ep_port_ = 0;
  pid_t scheduler_ = -1, server_ = -1;
};

}  // namespace workflows_test
