// A nats-server with JetStream for a test: on a free 127.0.0.1 port, its
// storage in a fresh temporary directory, stopped (SIGTERM, then SIGKILL)
// and its directory removed when the object goes. Tests skip (GTEST_SKIP)
// only when nats-server is not installed: available() says so.
//
//   NatsServer nats;
//   if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
//   ASSERT_TRUE(nats.start()) << nats.failure();
//   options.servers = {nats.url()};
//
// Not for: production, or clusters (one server, R1).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>

namespace dispatch::scheduler::testing {

class NatsServer {
 public:
  static constexpr const char* kMissing =
      "nats-server is not installed (Debian: apt-get install nats-server; scripts/deps.sh installs it)";

  // The binary: $NATS_SERVER, else nats-server on PATH, else /usr/sbin's.
  static std::string binary() {
    if (const char* env = ::getenv("NATS_SERVER"); env != nullptr && *env != '\0') return env;
    const char* path = ::getenv("PATH");
    std::string dirs = path != nullptr ? path : "";
    dirs += ":/usr/sbin:/usr/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
      const std::size_t colon = dirs.find(':', start);
      const std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!dir.empty() && ::access((dir + "/nats-server").c_str(), X_OK) == 0) return dir + "/nats-server";
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    return "";
  }
  static bool available() { return !binary().empty(); }

  NatsServer() = default;
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;
  ~NatsServer() {
    stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Starts it and waits (up to 10 s) until it accepts connections.
  bool start() {
    const std::string bin = binary();
    if (bin.empty()) return fail(kMissing);
    if (dir_.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "dispatch-nats-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) return fail("mkdtemp failed");
      dir_ = tmpl;
    }
    if (port_ == 0) port_ = free_port();
    if (port_ == 0) return fail("no free port on 127.0.0.1");
    const std::string port = std::to_string(port_);
    const std::string log = dir_ + "/nats.log";
    pid_ = ::fork();
    if (pid_ < 0) return fail("fork failed");
    if (pid_ == 0) {
      ::setpgid(0, 0);
      execl(bin.c_str(), bin.c_str(), "-js", "-a", "127.0.0.1", "-p", port.c_str(), "-sd", dir_.c_str(), "-l",
            log.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return fail("nats-server exited at start; see " + log);
      }
      if (accepts()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    return fail("nats-server did not accept connections on 127.0.0.1:" + port + " within 10 s");
  }

  // SIGTERM, then SIGKILL after 5 s; waits for it.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
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

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& failure() const { return failure_; }

 private:
  bool fail(std::string why) {
    failure_ = std::move(why);
    return false;
  }
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    return port;
  }
  bool accepts() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string failure_;
};

}  // namespace dispatch::scheduler::testing
