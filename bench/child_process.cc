// Fork, exec, and stop of the benchmark's child processes (child_process.h).
#include "child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "transport/test_child_process.h"
#include "transport/test_loopback_port.h"

namespace bench {

ChildProcess::ChildProcess(const std::string& name, const SpawnOptions& options) : name_(name) {
  if (options.argv.empty()) throw std::invalid_argument("starting " + name + ": no argv");
  const std::string& binary = options.argv[0];
  if (::access(binary.c_str(), X_OK) != 0) {
    throw std::runtime_error("starting " + name + ": '" + binary + "' is not an executable file");
  }
  // Everything the child touches is prepared before fork: after it, only
  // async-signal-safe calls (the driver has threads by then).
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_ = dispatch::testing::fork_ending_with_parent();  // dies with the driver
  if (pid_ < 0) throw std::runtime_error("starting " + name + ": fork failed");
  if (pid_ == 0) {
    int in = options.stdin_fd >= 0 ? options.stdin_fd : ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0) ::_exit(126);
    int out = options.stdout_fd;
    if (out < 0 && !options.stdout_path.empty()) out = ::open(options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0 && ::dup2(out, 1) < 0) ::_exit(126);
    if (!options.stderr_path.empty()) {
      int err = ::open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err < 0 || ::dup2(err, 2) < 0) ::_exit(126);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : name_(std::move(other.name_)), pid_(std::exchange(other.pid_, -1)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    stop();
    name_ = std::move(other.name_);
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
}

bool ChildProcess::exited(int* status) {
  if (pid_ <= 0) return true;
  int s = 0;
  if (::waitpid(pid_, &s, WNOHANG) != pid_) return false;
  if (status != nullptr) *status = s;
  pid_ = -1;
  return true;
}

int free_loopback_port() {
  const int port = dispatch::testing::free_loopback_port();
  if (port == 0) throw std::runtime_error("no free port on 127.0.0.1");
  return port;
}

bool loopback_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

int wait_for_port_file(const std::string& path, ChildProcess& child, const std::string& log,
                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string name = child.name();
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return port;
    int status = 0;
    if (child.exited(&status)) {
      throw std::runtime_error(name + " exited before listening (status " +
                               std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) +
                               "); see " + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error(name + " did not write its port to " + path + " within " +
                           std::to_string(timeout.count()) + " ms; see " + log);
}

}  // namespace bench
