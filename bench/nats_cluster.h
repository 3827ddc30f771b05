// Bench-only: the NATS JetStream servers a benchmark runs its store on, all
// on 127.0.0.1: one server (replicas 1) or a cluster of three (replicas 3:
// server names n0..n2, one cluster name, each routing to the others), each
// with its storage under a directory of its own. start() returns once a
// key-value bucket with the asked replica count can be created (a cluster
// has elected its JetStream meta leader); the servers stop (SIGTERM, then
// SIGKILL) when the object goes.
//
// Not for: tests (runtime/src/jetstream/testing has their fixtures), or
// anything but loopback.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "child_process.h"

namespace bench {

class NatsCluster {
 public:
  // `servers`: 1 or 3; `dir`: where each server's storage and log go
  // (dir/n<i>/, dir/n<i>.log); `binary`: nats-server's path.
  NatsCluster(std::string binary, std::string dir, int servers);

  // Starts the servers and waits until a bucket with `servers` replicas can
  // be created, up to `timeout`; throws saying which server failed and
  // where its log is.
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // "nats://127.0.0.1:P0,nats://127.0.0.1:P1,..." for dispatchd's --store.
  std::string urls() const;
  std::vector<pid_t> pids() const;
  int replicas() const { return servers_; }

  // $NATS_SERVER, else nats-server on PATH, else /usr/sbin's; empty: none.
  static std::string find_binary();

 private:
  void wait_until_ready(std::chrono::steady_clock::time_point deadline);

  std::string binary_;
  std::string dir_;
  int servers_;
  std::vector<int> client_ports_;
  std::vector<ChildProcess> processes_;
};

}  // namespace bench
