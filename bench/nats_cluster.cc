// Starting and stopping the benchmark's nats-servers (nats_cluster.h).
// Readiness is checked with nats.c the way dispatchd will use the servers:
// a key-value bucket with the run's replica count is created and deleted.
#include "nats_cluster.h"

#include <nats/nats.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace bench {

NatsCluster::NatsCluster(std::string binary, std::string dir, int servers)
    : binary_(std::move(binary)), dir_(std::move(dir)), servers_(servers) {
  if (servers_ != 1 && servers_ != 3) {
    throw std::invalid_argument("a NATS cluster of " + std::to_string(servers_) + " servers: only 1 or 3");
  }
}

std::string NatsCluster::find_binary() {
  if (const char* env = std::getenv("NATS_SERVER"); env != nullptr && *env != '\0') return env;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  dirs += ":/usr/sbin:/usr/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t colon = dirs.find(':', start);
    const std::string d = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!d.empty() && ::access((d + "/nats-server").c_str(), X_OK) == 0) return d + "/nats-server";
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

void NatsCluster::start(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<int> cluster_ports;
  for (int i = 0; i < servers_; ++i) {
    client_ports_.push_back(free_loopback_port());
    if (servers_ > 1) cluster_ports.push_back(free_loopback_port());
  }
  for (int i = 0; i < servers_; ++i) {
    const std::string name = "n" + std::to_string(i);
    const std::string store = dir_ + "/" + name;
    std::filesystem::create_directories(store);
    SpawnOptions o;
    o.argv = {binary_, "-js", "-a", "127.0.0.1", "-p", std::to_string(client_ports_[i]), "-sd", store,
              "--server_name", name, "-l", dir_ + "/" + name + ".log"};
    if (servers_ > 1) {
      std::string routes;
      for (int j = 0; j < servers_; ++j) {
        if (j == i) continue;
        if (!routes.empty()) routes += ",";
        routes += "nats://127.0.0.1:" + std::to_string(cluster_ports[j]);
      }
      o.argv.insert(o.argv.end(), {"--cluster_name", "bench", "--cluster",
                                   "nats://127.0.0.1:" + std::to_string(cluster_ports[i]), "--routes", routes});
    }
    processes_.emplace_back("nats-server " + name, o);
  }
  for (int i = 0; i < servers_; ++i) {
    while (!loopback_accepts(client_ports_[i])) {
      if (processes_[i].exited()) {
        throw std::runtime_error("nats-server n" + std::to_string(i) + " exited at start; see " + dir_ + "/n" +
                                 std::to_string(i) + ".log");
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        throw std::runtime_error("nats-server n" + std::to_string(i) + " did not accept connections on 127.0.0.1:" +
                                 std::to_string(client_ports_[i]));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  wait_until_ready(deadline);
}

void NatsCluster::wait_until_ready(std::chrono::steady_clock::time_point deadline) {
  std::vector<std::string> url_strings;
  for (int port : client_ports_) url_strings.push_back("nats://127.0.0.1:" + std::to_string(port));
  std::vector<const char*> urls;
  for (const auto& u : url_strings) urls.push_back(u.c_str());
  std::string last = "no attempt";
  while (std::chrono::steady_clock::now() < deadline) {
    natsOptions* opts = nullptr;
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    kvStore* kv = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, nullptr);
    if (s == NATS_OK) {
      kvConfig cfg;
      kvConfig_Init(&cfg);
      cfg.Bucket = "bench_ready";
      cfg.Replicas = servers_;
      s = js_CreateKeyValue(&kv, js, &cfg);
      if (s == NATS_OK) {
        kvStore_Destroy(kv);
        s = js_DeleteKeyValue(js, "bench_ready");
      }
    }
    if (s != NATS_OK) last = std::string(natsStatus_GetText(s)) + ": " + nats_GetLastError(nullptr);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    if (s == NATS_OK) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error("the NATS servers accept connections but a bucket with " + std::to_string(servers_) +
                           " replicas could not be created (last: " + last + "); see the logs in " + dir_);
}

std::string NatsCluster::urls() const {
  std::string out;
  for (int port : client_ports_) {
    if (!out.empty()) out += ",";
    out += "nats://127.0.0.1:" + std::to_string(port);
  }
  return out;
}

std::vector<pid_t> NatsCluster::pids() const {
  std::vector<pid_t> out;
  for (const auto& p : processes_) out.push_back(p.pid());
  return out;
}

}  // namespace bench
