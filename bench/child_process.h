// Bench-only: a child process the benchmark started and must not leave
// behind. The child dies with the thread that forked it (PR_SET_PDEATHSIG,
// so a driver killed by a signal takes its children along), and the object
// stops it (SIGTERM, then SIGKILL after a grace period) when it goes, so an
// exception anywhere in the driver stops every process it started.
//
// Not for: production process management, or forking from threads that end
// before the run does (fork from the driver's main thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace bench {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0]: the binary's path
  std::string stdout_path;        // empty: inherit; else truncated and written
  std::string stderr_path;        // empty: inherit
  int stdin_fd = -1;              // -1: /dev/null; else becomes the child's stdin
  int stdout_fd = -1;             // -1: stdout_path (or inherit); else becomes its stdout
};

class ChildProcess {
 public:
  ChildProcess() = default;
  // Throws std::runtime_error naming the binary when it cannot be started
  // (fork failed, or the binary is not an executable file).
  explicit ChildProcess(const std::string& name, const SpawnOptions& options);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }

  // SIGTERM, then SIGKILL once `grace` passed; waits for it. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // True when it has exited (reaps it); `status` gets its wait status.
  bool exited(int* status = nullptr);

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  pid_t pid_ = -1;
};

// A free TCP port on 127.0.0.1, outside the ephemeral range
// (transport/test_loopback_port.h; another process may still take it before
// the caller binds it, which the caller reports as a failed start). Throws
// when none can be had.
int free_loopback_port();

// True when something accepts TCP connections on 127.0.0.1:`port`.
bool loopback_accepts(int port);

// The port a process wrote to `path` (a number and a newline, written then
// renamed into place), waiting up to `timeout` while `child` runs; throws
// naming the child (and its log, `log`) when it exits or the time passes.
int wait_for_port_file(const std::string& path, ChildProcess& child, const std::string& log,
                       std::chrono::milliseconds timeout);

}  // namespace bench
