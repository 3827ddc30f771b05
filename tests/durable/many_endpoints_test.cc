// dispatchd delivering to 2,000 endpoints, each a listening socket of its
// own on 127.0.0.1 (distinct origins: the scheduler keeps one client per
// endpoint URL, so each is its own client with its own connection). The
// process's thread count must stay flat however many endpoints it has
// delivered to, and every endpoint connection must be closed once it has
// been idle for --idle-connection-ms; both read from /proc/<dispatchd>.
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/transport/http_client.h"
#include "durable/protocol.h"
#include "transport/test_multi_port_server.h"

namespace {

using namespace std::chrono_literals;
using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;

constexpr int kEndpoints = 2000;
constexpr int kWarmUp = 20;  // endpoints delivered to before the baseline is read

int threads_of(pid_t pid) {
  int n = 0;
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!dir) return -1;
  while (dirent* e = ::readdir(dir)) n += e->d_name[0] != '.';
  ::closedir(dir);
  return n;
}

// The socket inodes among `pid`'s open descriptors.
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> out;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(fd_dir.c_str());
  if (!dir) return out;
  while (dirent* e = ::readdir(dir)) {
    char target[128];
    const ssize_t n = ::readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    const std::string link(target, static_cast<std::size_t>(n));
    if (link.rfind("socket:[", 0) == 0) out.insert(link.substr(8, link.size() - 9));
  }
  ::closedir(dir);
  return out;
}

// How many of `pid`'s open sockets are TCP connections to one of `ports`
// on 127.0.0.1: its connections to the endpoints (/proc/<pid>/net/tcp maps
// a socket's inode to its remote address).
int connections_to(pid_t pid, const std::set<uint16_t>& ports) {
  const std::set<std::string> inodes = socket_inodes(pid);
  std::ifstream tcp("/proc/" + std::to_string(pid) + "/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  int n = 0;
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    in >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    const auto colon = remote.find(':');
    if (colon == std::string::npos || remote.substr(0, colon) != "0100007F") continue;  // 127.0.0.1
    const auto port = static_cast<uint16_t>(std::stoul(remote.substr(colon + 1), nullptr, 16));
    if (ports.count(port) != 0 && inodes.count(inode) != 0) ++n;
  }
  return n;
}

std::string run_ok(const std::string& input) {
  dispatch::sdk::v1::RunResponse res;
  res.set_status(dispatch::sdk::v1::STATUS_OK);
  dispatch::protocol::pack_any("durable.RecordResponse", input, res.mutable_exit()->mutable_result()->mutable_output());
  return res.SerializeAsString();
}

TEST(ManyEndpoints, ThreadsStayFlatAndIdleConnectionsClose) {
  // 2,000 listeners, 2,000 accepted connections here and 2,000 in dispatchd.
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  if (files.rlim_max != RLIM_INFINITY && files.rlim_max < 3 * kEndpoints + 1000) {
    GTEST_SKIP() << "needs " << 3 * kEndpoints + 1000 << " open files; the hard limit is " << files.rlim_max;
  }
  files.rlim_cur = files.rlim_max;  // dispatchd inherits it
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &files), 0);

  std::atomic<int> served{0};
  dispatch::testing::MultiPortServer endpoints(kEndpoints, [&](const std::string& target, const std::string& body) {
    dispatch::sdk::v1::RunRequest req;
    EXPECT_EQ(target, "/dispatch.sdk.v1.FunctionService/Run");
    EXPECT_TRUE(req.ParseFromString(body));
    served++;
    return run_ok(req.input().value());
  });
  const std::set<uint16_t> ports(endpoints.ports().begin(), endpoints.ports().end());
  ASSERT_EQ(ports.size(), static_cast<std::size_t>(kEndpoints));

  const std::string dir = ::testing::TempDir() + "many_endpoints_" + std::to_string(::getpid()) + "/";
  ASSERT_EQ(::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  const uint16_t api_port = free_port();
  const auto idle_timeout = 1500ms;
  const pid_t dispatchd =
      spawn({DISPATCHD, "--db", dir + "d.db", "--listen", "127.0.0.1:" + std::to_string(api_port), "--no-fsync",
             "--max-attempts", "1", "--delivery-threads", "2", "--idle-connection-ms",
             std::to_string(idle_timeout.count())},
            dir + "dispatchd.log", {{"DISPATCH_LOG_LEVEL", "warn"}});
  for (int i = 0; i < 500 && !port_open(api_port); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(port_open(api_port));
  struct Stop {
    pid_t pid;
    ~Stop() {
      ::kill(pid, SIGTERM);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
  } stop{dispatchd};

  dispatch::HttpClient api("http://127.0.0.1:" + std::to_string(api_port));
  dispatch::DispatchClient client(api, "");
  auto deliver = [&](int from, int to) {
    std::vector<dispatch::PendingCall> calls;
    for (int i = from; i < to; ++i) {
      dispatch::PendingCall c;
      c.function = "durable.record";
      c.request_type = "durable.RecordRequest";
      c.request = "e" + std::to_string(i);
      c.options.endpoint = endpoints.url(static_cast<std::size_t>(i));
      calls.push_back(std::move(c));
    }
    auto ids = client.dispatch_batch(std::move(calls));
    EXPECT_TRUE(ids.ok()) << ids.error().what();
    return ids.ok() ? *ids : std::vector<std::string>{};
  };
  auto await_all = [&](const std::vector<std::string>& ids, int from) {
    for (std::size_t k = 0; k < ids.size(); ++k) {
      auto r = client.await_result(ids[k], 60s);
      ASSERT_TRUE(r.ok()) << "call to endpoint " << from + static_cast<int>(k) << ": " << r.error().what();
      EXPECT_EQ(*r, "e" + std::to_string(from + static_cast<int>(k)));
    }
  };

  // Warm up: the delivery loops start and the API server has settled.
  await_all(deliver(0, kWarmUp), 0);
  const int threads_before = threads_of(dispatchd);
  ASSERT_GT(threads_before, 0);

  // Sample the threads while the rest go out.
  std::atomic<bool> sampling{true};
  std::atomic<int> threads_max{threads_before}, connections_max{0};
  std::thread sampler([&] {
    while (sampling) {
      threads_max = std::max(threads_max.load(), threads_of(dispatchd));
      connections_max = std::max(connections_max.load(), connections_to(dispatchd, ports));
      std::this_thread::sleep_for(20ms);
    }
  });
  std::vector<std::string> ids;
  for (int from = kWarmUp; from < kEndpoints; from += 500) {
    auto batch = deliver(from, std::min(from + 500, kEndpoints));
    ids.insert(ids.end(), batch.begin(), batch.end());
  }
  await_all(ids, kWarmUp);
  const int threads_after = threads_of(dispatchd);
  sampling = false;
  sampler.join();

  EXPECT_EQ(served.load(), kEndpoints);
  EXPECT_EQ(endpoints.accepted(), kEndpoints) << "each endpoint is its own connection";
  // Flat: before the shared loops, every endpoint added a thread (2,000 here).
  // A few threads of the API server come and go (a rescue thread while a
  // Dispatch waits for its commit); nothing grows with the endpoints.
  std::cout << "dispatchd threads: " << threads_before << " after " << kWarmUp << " endpoints, at most "
            << threads_max.load() << " while delivering to " << kEndpoints << ", " << threads_after
            << " after; endpoint connections open at most " << connections_max.load() << std::endl;
  EXPECT_LE(threads_max.load(), threads_before + 4);
  EXPECT_LE(threads_after, threads_before + 4);
  EXPECT_GT(connections_max.load(), 0) << "connections were not kept open between calls";

  // Idle: every endpoint connection is closed by dispatchd (the endpoints
  // never close one), within the idle timeout and a margin.
  const auto until = std::chrono::steady_clock::now() + idle_timeout + 5s;
  int open = connections_to(dispatchd, ports);
  while ((open != 0 || endpoints.open() != 0) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
    open = connections_to(dispatchd, ports);
  }
  EXPECT_EQ(open, 0) << "dispatchd still holds connections to idle endpoints";
  EXPECT_EQ(endpoints.open(), 0);
  if (!HasFailure()) ::system(("rm -rf " + dir).c_str());
}

}  // namespace
