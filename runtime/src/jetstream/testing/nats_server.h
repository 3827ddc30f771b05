// nats-server with JetStream for tests. NatsServer is one server on a free
// 127.0.0.1 port, its storage in a fresh temporary directory, stopped
// (SIGTERM, then SIGKILL) and its directory removed when the object goes;
// start() after stop() or kill() brings it back on the same port and
// directory. set_tls() makes it require TLS. Tests skip (GTEST_SKIP) only
// when nats-server is not installed: available() says so.
//
//   NatsServer nats;
//   if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
//   ASSERT_TRUE(nats.start()) << nats.failure();
//   options.servers = {nats.url()};
//
// NatsCluster is three of them clustered (R3 buckets), or five (R5), each
// node killable with SIGKILL and restartable on its own ports and
// directory:
//
//   NatsCluster cluster;  // NatsCluster cluster(5) for five nodes
//   ASSERT_TRUE(cluster.start()) << cluster.failure();  // meta leader elected
//   options.servers = cluster.urls();
//   cluster.kill(1);  ...  ASSERT_TRUE(cluster.restart(1)) << cluster.failure();
//
// Not for: production.
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

#include <nats/nats.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "transport/test_child_process.h"
#include "transport/test_loopback_port.h"

namespace dispatch::scheduler::testing {

using dispatch::testing::free_loopback_port;

// Whether something accepts connections on 127.0.0.1:port.
inline bool loopback_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline std::string fresh_temp_dir(const char* prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

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
    if (owns_dir_ && !dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Before the first start(): require TLS with this certificate chain and
  // key (PEM files).
  void set_tls(std::string cert_file, std::string key_file) {
    tls_cert_ = std::move(cert_file);
    tls_key_ = std::move(key_file);
  }
  // Before the first start(): run from this configuration file (in `dir`,
  // which the caller owns) on `port` instead of the command line's flags.
  void set_config(std::string dir, std::string config_file, int port) {
    dir_ = std::move(dir);
    owns_dir_ = false;
    config_ = std::move(config_file);
    port_ = port;
  }

  // Starts it (on its earlier port and directory, when it ran before) and
  // waits (up to 10 s) until it accepts connections.
  bool start() {
    const std::string bin = binary();
    if (bin.empty()) return fail(kMissing);
    if (pid_ > 0) return true;
    if (dir_.empty()) {
      dir_ = fresh_temp_dir("dispatch-nats");
      if (dir_.empty()) return fail("mkdtemp failed");
    }
    if (port_ == 0) port_ = free_loopback_port();
    if (port_ == 0) return fail("no free port on 127.0.0.1");
    const std::string port = std::to_string(port_);
    const std::string log = dir_ + "/nats.log";
    std::vector<std::string> args{bin};
    if (!config_.empty()) {
      args.insert(args.end(), {"-c", config_});
    } else {
      args.insert(args.end(), {"-js", "-a", "127.0.0.1", "-p", port, "-sd", dir_});
      if (!tls_cert_.empty()) args.insert(args.end(), {"--tls", "--tlscert", tls_cert_, "--tlskey", tls_key_});
    }
    args.insert(args.end(), {"-l", log});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = dispatch::testing::fork_ending_with_parent();
    if (pid_ < 0) return fail("fork failed");
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return fail("nats-server exited at start; see " + log);
      }
      if (loopback_accepts(port_)) return true;
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

  // SIGKILL, as a machine that dies; waits for it.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  bool running() const { return pid_ > 0; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& failure() const { return failure_; }

 private:
  bool fail(std::string why) {
    failure_ = std::move(why);
    return false;
  }

  std::string dir_;
  bool owns_dir_ = true;
  std::string config_;
  std::string tls_cert_, tls_key_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string failure_;
};

// Three (or `nodes`) nats-servers in one JetStream cluster on 127.0.0.1
// (client and cluster ports free at start, each node's storage in its own
// directory), stopped and their directories removed when the object goes
// (kept, with the servers' logs, when the cluster did not become ready).
// Node i's server name is "n<i>".
class NatsCluster {
 public:
  // The nodes of a cluster made without a count.
  static constexpr int kNodes = 3;

  explicit NatsCluster(int nodes = kNodes) : nodes_(static_cast<std::size_t>(nodes)) { assert(nodes >= 1); }
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;
  ~NatsCluster() {
    for (auto& n : nodes_) n.reset();
    if (!dir_.empty() && !keep_dir_) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Starts the nodes and waits (up to 60 s: a loaded machine elects
  // slowly) until JetStream's meta leader is elected and a stream with a
  // replica on every node can be made.
  bool start() {
    if (!NatsServer::available()) return fail(NatsServer::kMissing);
    dir_ = fresh_temp_dir("dispatch-nats-cluster");
    if (dir_.empty()) return fail("mkdtemp failed");
    const int n = size();
    std::vector<int> client(nodes_.size()), route(nodes_.size());
    for (int i = 0; i < n; ++i) {
      client[i] = free_loopback_port();
      route[i] = free_loopback_port();
      if (client[i] == 0 || route[i] == 0) return fail("no free port on 127.0.0.1");
    }
    for (int i = 0; i < n; ++i) {
      const std::string node_dir = dir_ + "/n" + std::to_string(i);
      std::filesystem::create_directories(node_dir);
      const std::string config = node_dir + "/nats.conf";
      std::ofstream out(config);
      out << "server_name: n" << i << "\n"
          << "listen: 127.0.0.1:" << client[i] << "\n"
          << "jetstream { store_dir: \"" << node_dir << "/js\" }\n"
          << "cluster {\n  name: dispatch-test\n  listen: 127.0.0.1:" << route[i] << "\n  routes: [\n";
      for (int j = 0; j < n; ++j) {
        if (j != i) out << "    nats-route://127.0.0.1:" << route[j] << "\n";
      }
      out << "  ]\n}\n";
      out.close();
      if (!out) return fail("cannot write " + config);
      nodes_[i] = std::make_unique<NatsServer>();
      nodes_[i]->set_config(node_dir, config, client[i]);
    }
    for (int i = 0; i < n; ++i) {
      if (!nodes_[i]->start()) return fail("node " + std::to_string(i) + ": " + nodes_[i]->failure());
    }
    return wait_ready(std::chrono::seconds(60));
  }

  // SIGKILL of node i, as a machine that dies.
  void kill(int i) { nodes_.at(i)->kill(); }
  // Node i again, on its ports and with its storage; waits until it
  // accepts connections, the cluster has a meta leader (and, once every
  // node runs, places a stream on all of them), and every stream has a
  // leader and its replicas on the running nodes current (the node has
  // caught up), up to 60 s. Replicas on nodes still down are not waited
  // for, so that nodes killed together can be restarted one by one. Only
  // then may another node die without taking a stream's quorum with it:
  // killing a node while the last one restarted still catches up is the
  // loss of two of three.
  bool restart(int i) {
    if (!nodes_.at(i)->start()) return fail("node " + std::to_string(i) + ": " + nodes_[i]->failure());
    return wait_ready(std::chrono::seconds(30)) && wait_for("every stream's replicas current",
                                                            std::chrono::seconds(60),
                                                            [this](std::string& why) { return streams_current(why); });
  }
  bool running(int i) const { return nodes_.at(i)->running(); }
  int size() const { return static_cast<int>(nodes_.size()); }
  // The node that leads `stream` (a bucket's is "KV_<bucket>"), as the
  // running nodes report it; -1 while it has none or cannot be asked, with
  // `why` saying so.
  int leader_of(const std::string& stream, std::string* why = nullptr) {
    Session session(live_urls());
    std::string failure;
    int leader = -1;
    if (session.status != NATS_OK) {
      failure = session.failure(session.status);
    } else {
      jsStreamInfo* si = nullptr;
      const natsStatus s = js_GetStreamInfo(&si, session.js, stream.c_str(), nullptr, nullptr);
      if (s != NATS_OK) {
        failure = "stream " + stream + ": " + session.failure(s);
      } else {
        const char* name = si->Cluster != nullptr ? si->Cluster->Leader : nullptr;
        leader = name != nullptr ? node_named(name) : -1;
        if (leader < 0) failure = "stream " + stream + " has no leader";
        jsStreamInfo_Destroy(si);
      }
    }
    if (why != nullptr) *why = failure;
    return leader;
  }

  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_) out.push_back(n->url());
    return out;
  }
  // "nats://127.0.0.1:P0,127.0.0.1:P1,127.0.0.1:P2", as dispatchd --store takes it.
  std::string store_spec() const {
    std::string out = "nats://";
    for (int i = 0; i < size(); ++i) {
      out += (i == 0 ? "" : ",") + std::string("127.0.0.1:") + std::to_string(nodes_[i]->port());
    }
    return out;
  }
  NatsServer& node(int i) { return *nodes_.at(i); }
  const std::string& failure() const { return failure_; }

 private:
  bool fail(std::string why) {
    failure_ = std::move(why);
    return false;
  }
  // The cluster answers JetStream requests (a meta leader is elected) and,
  // when every node runs, places a stream with a replica on each; the
  // probe stream is deleted again. While a node is down the meta leader
  // is only asked for the streams' names: a leader elected since the node
  // died can count it as online for a while and place a replica of the
  // probe on it, where the probe stalls without a quorum.
  bool wait_ready(std::chrono::seconds within) {
    if (static_cast<int>(live_urls().size()) < size()) {
      return wait_for("answering with a meta leader", within, [this](std::string& why) { return meta_answers(why); });
    }
    return wait_for("ready for R" + std::to_string(size()) + " streams", within,
                    [this](std::string& why) { return probe(why); });
  }
  // The meta leader answers a list of the streams (no other server does).
  bool meta_answers(std::string& why) {
    Session session(live_urls());
    if (session.status != NATS_OK) {
      why = session.failure(session.status);
      return false;
    }
    jsStreamNamesList* names = nullptr;
    const natsStatus s = js_StreamNames(&names, session.js, nullptr, nullptr);
    if (names != nullptr) jsStreamNamesList_Destroy(names);
    if (s == NATS_OK || s == NATS_NOT_FOUND) return true;
    why = "listing streams: " + session.failure(s);
    return false;
  }
  // The node whose server name is `name` ("n<i>"), or -1.
  int node_named(const std::string& name) const {
    for (int i = 0; i < size(); ++i) {
      if (name == "n" + std::to_string(i)) return i;
    }
    return -1;
  }
  // Polls `check` every 200 ms until it holds or `within` has passed;
  // failure() then names `what` and the check's last answer.
  template <typename Check>
  bool wait_for(const std::string& what, std::chrono::seconds within, Check check) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    std::string last = "no attempt";
    while (std::chrono::steady_clock::now() < deadline) {
      if (check(last)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    keep_dir_ = true;  // for its logs
    return fail("the NATS cluster was not " + what + " within " + std::to_string(within.count()) + " s: " + last +
                " (logs in " + dir_ + "/n*/nats.log)");
  }
  // A JetStream context on the running nodes, closed when it goes.
  struct Session {
    natsOptions* opts = nullptr;
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    natsStatus status = NATS_OK;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    explicit Session(const std::vector<std::string>& urls) {
      std::vector<const char*> servers;
      for (const auto& u : urls) servers.push_back(u.c_str());
      status = natsOptions_Create(&opts);
      if (status == NATS_OK) status = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
      if (status == NATS_OK) status = natsOptions_SetTimeout(opts, 1000);
      if (status == NATS_OK) status = natsConnection_Connect(&nc, opts);
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = 2000;
      if (status == NATS_OK) status = natsConnection_JetStream(&js, nc, &jo);
    }
    ~Session() {
      if (js != nullptr) jsCtx_Destroy(js);
      if (nc != nullptr) natsConnection_Destroy(nc);
      natsOptions_Destroy(opts);
    }
    // The failure's text: the thread's last NATS error, or the status's.
    std::string failure(natsStatus s) const {
      natsStatus last = NATS_OK;
      const char* text = nats_GetLastError(&last);
      return text != nullptr && *text != '\0' ? text : natsStatus_GetText(s);
    }
  };
  std::vector<std::string> live_urls() const {
    std::vector<std::string> live;
    for (const auto& n : nodes_) {
      if (n->running()) live.push_back(n->url());
    }
    return live;
  }
  // Every stream has a leader, and each of its other replicas on a running
  // node is online and current; `why` names the first that is not. A
  // replica on a node that is down is not waited for: one named after a
  // node not running, or one offline under a name the meta leader does not
  // know ("Server name unknown at this time"), as a meta leader elected
  // after the node died reports it. So that such a name hides no running
  // node, as many replicas as nodes run (up to the stream's count) must be
  // current, the leader's among them.
  bool streams_current(std::string& why) {
    Session session(live_urls());
    if (session.status != NATS_OK) {
      why = session.failure(session.status);
      return false;
    }
    jsStreamNamesList* names = nullptr;
    natsStatus s = js_StreamNames(&names, session.js, nullptr, nullptr);
    if (s == NATS_NOT_FOUND) return true;  // no streams
    if (s != NATS_OK) {
      why = "listing streams: " + session.failure(s);
      return false;
    }
    bool ok = true;
    for (int n = 0; ok && n < names->Count; ++n) {
      jsStreamInfo* si = nullptr;
      s = js_GetStreamInfo(&si, session.js, names->List[n], nullptr, nullptr);
      if (s != NATS_OK) {
        why = std::string("stream ") + names->List[n] + ": " + session.failure(s);
        ok = false;
        break;
      }
      const jsClusterInfo* c = si->Cluster;
      if (c == nullptr || c->Leader == nullptr || *c->Leader == '\0') {
        why = std::string("stream ") + names->List[n] + " has no leader";
        ok = false;
      }
      int current = 1;  // the leader
      for (int r = 0; ok && c != nullptr && r < c->ReplicasLen; ++r) {
        const jsPeerInfo* p = c->Replicas[r];
        if (!p->Offline && p->Current) {
          ++current;
          continue;
        }
        const std::string name = p->Name != nullptr ? p->Name : "";
        const int node = node_named(name);
        if (node >= 0 ? !running(node) : p->Offline) continue;  // down: waited for when it is restarted
        why = std::string("stream ") + names->List[n] + ": replica " + name +
              (p->Offline ? " offline" : " catching up") + " (lag " + std::to_string(p->Lag) + ")";
        ok = false;
      }
      const int live = static_cast<int>(live_urls().size());
      if (ok && c != nullptr && current < std::min(live, 1 + c->ReplicasLen)) {
        why = std::string("stream ") + names->List[n] + ": " + std::to_string(current) + " replicas current with " +
              std::to_string(live) + " nodes running";
        ok = false;
      }
      jsStreamInfo_Destroy(si);
    }
    jsStreamNamesList_Destroy(names);
    return ok;
  }
  bool probe(std::string& why) {
    Session session(live_urls());
    bool ok = false;
    natsStatus s = session.status;
    jsCtx* js = session.js;
    if (s == NATS_OK) {
      jsStreamConfig cfg;
      jsStreamConfig_Init(&cfg);
      const std::string name = "READY_PROBE_" + std::to_string(++probes_);
      const std::string subject = "ready.probe." + std::to_string(probes_);
      const char* subjects[] = {subject.c_str()};
      cfg.Name = name.c_str();
      cfg.Subjects = subjects;
      cfg.SubjectsLen = 1;
      cfg.Replicas = size();
      cfg.Storage = js_MemoryStorage;
      jsStreamInfo* si = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
      if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        js_DeleteStream(js, name.c_str(), nullptr, nullptr);
        ok = true;
      }
    }
    if (!ok) why = session.failure(s);
    return ok;
  }

  std::string dir_;
  bool keep_dir_ = false;
  std::vector<std::unique_ptr<NatsServer>> nodes_;
  int probes_ = 0;
  std::string failure_;
};

// The messages in key-value bucket `bucket`'s stream (values and delete
// markers), read from the server at `url` with nats.c directly;
// UINT64_MAX when it cannot be read.
inline uint64_t bucket_stream_messages(const std::string& url, const std::string& bucket) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  jsStreamInfo* si = nullptr;
  uint64_t n = UINT64_MAX;
  if (natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK && natsConnection_JetStream(&js, nc, nullptr) == NATS_OK &&
      js_GetStreamInfo(&si, js, ("KV_" + bucket).c_str(), nullptr, nullptr) == NATS_OK) {
    n = si->State.Msgs;
  }
  if (si != nullptr) jsStreamInfo_Destroy(si);
  if (js != nullptr) jsCtx_Destroy(js);
  if (nc != nullptr) natsConnection_Destroy(nc);
  return n;
}

// Waits up to 10 s for bucket_stream_messages() to be `want`; what it was last.
inline uint64_t await_bucket_stream_messages(const std::string& url, const std::string& bucket, uint64_t want) {
  uint64_t n = bucket_stream_messages(url, bucket);
  for (int i = 0; i < 200 && n != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    n = bucket_stream_messages(url, bucket);
  }
  return n;
}

}  // namespace dispatch::scheduler::testing
