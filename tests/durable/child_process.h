// Helpers the cross-process durable tests share: a free loopback port, a
// readiness probe, starting a child with its stderr in a log file, and
// running a command line for its output and exit status, restarting
// children that exited (as a supervisor would).
// Not for: production code (no error handling beyond what a test needs).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "transport/test_child_process.h"
#include "transport/test_loopback_port.h"

namespace durable_test {

// A port for a server the test starts (transport/test_loopback_port.h).
inline uint16_t free_port() { return dispatch::testing::free_loopback_port(); }

inline bool port_open(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A child process with stderr appended to `log` and `env` set.
inline pid_t spawn(const std::vector<std::string>& args, const std::string& log,
                   const std::vector<std::pair<std::string, std::string>>& env = {}) {
  pid_t pid = dispatch::testing::fork_ending_with_parent();
  if (pid == 0) {
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// A command line's exit status (-1 when it did not exit) and its stdout and
// stderr together.
struct Output {
  int status;
  std::string out;
};
inline Output run(const std::string& command) {
  Output r{0, ""};
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed: " + command};
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// As a supervisor (systemd's Restart=always) would: each child in `pids`
// that has exited (-1: stopped on purpose, left alone) is started again by
// `restart(i)`, which stores its new pid. Returns how many were.
template <std::size_t N, typename Restart>
int restart_exited(std::array<pid_t, N>& pids, Restart&& restart) {
  int restarted = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (pids[i] > 0 && ::waitpid(pids[i], nullptr, WNOHANG) == pids[i]) {
      ++restarted;
      restart(i);
    }
  }
  return restarted;
}

// Sleeps for `d` in steps of 50 ms, calling `each` before every step.
template <typename Each>
void sleep_calling(std::chrono::milliseconds d, Each&& each) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    each();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace durable_test
