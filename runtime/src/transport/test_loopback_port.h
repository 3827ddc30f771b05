// Test-only: a port on 127.0.0.1 for a server a test is about to start.
//
// The port comes from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), where outgoing connections never get
// their source port and `bind(port 0)` never lands. A port found by binding
// port 0 and closing is in that range: between the test choosing it and
// its server binding it, any connection of another test running at the
// same time may take it as its source port, and the server fails to start.
// Ports are chosen at random, each is checked by binding it, and one
// process never hands out the same port twice.
//
// Not for: anything but tests (two processes can still choose the same
// port; at random among some 20,000 that is rare, and bind says so).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <mutex>
#include <random>
#include <set>

namespace dispatch::testing {

// A port nothing on 127.0.0.1 is bound to at the moment, outside the
// ephemeral range; 0 when none is found.
inline uint16_t free_loopback_port() {
  int first_ephemeral = 32768, last_ephemeral = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> first_ephemeral >> last_ephemeral;
  // Below the range when there is room, above it otherwise.
  int lo = 10000, hi = first_ephemeral - 1;
  if (hi - lo < 1000) {
    lo = last_ephemeral + 1;
    hi = 65535;
  }
  if (hi - lo < 100) return 0;

  static std::mutex mu;
  static std::set<uint16_t> handed_out;
  static std::mt19937 rng{std::random_device{}()};
  std::lock_guard lock(mu);
  std::uniform_int_distribution<int> pick(lo, hi);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto port = static_cast<uint16_t>(pick(rng));
    if (handed_out.count(port) != 0) continue;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    // No SO_REUSEADDR: a port with connections in TIME_WAIT is passed over.
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (bound) {
      handed_out.insert(port);
      return port;
    }
  }
  return 0;
}

}  // namespace dispatch::testing
