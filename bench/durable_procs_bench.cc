// bench-durable-procs: durable dispatch across real processes, on the store
// a user would run many dispatchd processes on. Where bench-durable holds
// the scheduler, its store and the endpoint in one process, here:
//   - 1 or 2 dispatchd processes (the built runtime/tools/dispatchd) on the
//     chosen store: a SQLite file each (SQLite allows one dispatchd per
//     file, so two dispatchd are two independent stores, the clients'
//     batches split between them), or one NATS JetStream bucket shared by
//     all of them on one nats-server (replicas 1) or a cluster of three
//     (replicas 3), started here on free 127.0.0.1 ports;
//   - an endpoint process (this binary, `endpoint` mode): the no-op function
//     of bench-durable behind dispatch::Server with the Run route, to which
//     every dispatchd delivers; it records when each call started;
//   - this process: K client connections dispatching batches through the
//     dispatchd API (round robin over the dispatchd processes), a call
//     counted as dispatched once its Dispatch request was acknowledged.
//
//   bench-durable-procs --store sqlite|nats-r1|nats-r3 --dispatchd 1|2 --dir DIR
//                       [--seconds S] [--warmup-ms M] [--clients K] [--batch B]
//                       [--backlog N] [--dispatchd-bin PATH] [--nats-server PATH]
//
// Each call carries the CLOCK_MONOTONIC time its Dispatch request was made
// (taken just before its batch is encoded; the no-op's int64 argument); the endpoint subtracts it from the time the
// function started: dispatch-to-start, across processes of one machine.
// Two phases:
//   1. latency: one call at a time, each waited for: p50/p99 with no backlog.
//   2. throughput: K clients dispatch batches of B back to back, keeping at
//      most N calls acknowledged but not yet started (default 1024 per
//      dispatchd). After --warmup-ms, a window of S seconds: completed =
//      Run calls that started at the endpoint within the window (a no-op
//      returns at once; counted at the endpoint, not in the store);
//      loaded p50/p99 over the calls sent within the window; CPU seconds
//      (user + system, /proc/<pid>/stat) of every process over the window.
//   After the window every acknowledged call must start (else the run
//   fails), and every process is stopped.
// One line of tab-separated fields on stdout:
//   store dispatchd clients batch seconds completed completed_per_s
//   p50_us p99_us loaded_p50_us loaded_p99_us
//   client_cpu_us endpoint_cpu_us dispatchd_cpu_us nats_cpu_us cores
// *_cpu_us: CPU microseconds per completed call; dispatchd_cpu_us and
// nats_cpu_us list each process's, comma-separated ("-": no NATS).
//
// Not for: correctness under faults (the store's tests do that), or figures
// on a busy machine.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "durable_api.dispatch.h"
#include "durable_recorder.h"
#include "embedded.h"
#include "load.h"
#include "nats_cluster.h"

#ifndef BENCH_DISPATCHD
#define BENCH_DISPATCHD ""
#endif

namespace {

using Clock = std::chrono::steady_clock;
namespace remote = bench_durable::remote;
using bench::value_or_throw;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// --- the counter both processes map ------------------------------------------
// Calls started at the endpoint so far: the endpoint adds, the driver reads
// (to bound the backlog and to wait for the drain) without a round trip.
class SharedCounter {
 public:
  explicit SharedCounter(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    if (::ftruncate(fd_, 4096) != 0) throw std::runtime_error("cannot size " + path + ": " + std::strerror(errno));
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) throw std::runtime_error("cannot map " + path + ": " + std::strerror(errno));
    static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
    value_ = static_cast<std::atomic<std::uint64_t>*>(p);  // zero-filled file: a zero count
  }
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;
  ~SharedCounter() {
    ::munmap(value_, 4096);
    ::close(fd_);
  }
  std::atomic<std::uint64_t>& value() { return *value_; }

 private:
  int fd_ = -1;
  std::atomic<std::uint64_t>* value_ = nullptr;
};

// --- endpoint mode -----------------------------------------------------------
// The endpoint process: serves the no-op, records (sent, started) for each
// call, and answers the driver's questions on stdin/stdout:
//   "window FROM_NS UNTIL_NS" -> "STARTED_IN SENT_IN P50_US P99_US"
// (calls started in [FROM, UNTIL); dispatch-to-start of the calls sent in it).
class Stamps : public bench_durable::SequenceSink {
 public:
  explicit Stamps(SharedCounter& counter) : counter_(counter) { samples_.reserve(1 << 20); }
  void started(std::int64_t sent_ns) override {
    const std::int64_t at = now_ns();
    {
      std::lock_guard lock(mu_);
      samples_.push_back({sent_ns, at});
    }
    counter_.value().fetch_add(1);
  }
  std::string window(std::int64_t from, std::int64_t until) {
    std::uint64_t started_in = 0;
    std::vector<std::int64_t> latencies;
    {
      std::lock_guard lock(mu_);
      for (const auto& s : samples_) {
        if (s.started >= from && s.started < until) ++started_in;
        if (s.sent >= from && s.sent < until) latencies.push_back(s.started - s.sent);
      }
    }
    std::ostringstream out;
    out << started_in << ' ' << latencies.size() << ' ';
    if (latencies.empty()) {
      out << "0 0";
    } else {
      out << bench::quantile(latencies, 0.50) / 1000.0 << ' ' << bench::quantile(latencies, 0.99) / 1000.0;
    }
    return out.str();
  }

 private:
  struct Sample {
    std::int64_t sent;
    std::int64_t started;
  };
  SharedCounter& counter_;
  std::mutex mu_;
  std::vector<Sample> samples_;
};

int run_endpoint(int argc, char** argv) {
  if (argc != 4) throw std::invalid_argument("usage: bench-durable-procs endpoint PORT_FILE COUNTER_FILE");
  SharedCounter counter(argv[3]);
  Stamps stamps(counter);
  bench_durable::sequence_sink = &stamps;
  dispatch::DispatchTable table{&remote::durable_api_service(), &dispatch::function_service()};
  auto server = bench::serve(table);
  {
    const std::string port_file = argv[2];
    std::FILE* f = std::fopen((port_file + ".tmp").c_str(), "w");
    if (f == nullptr) throw std::runtime_error("cannot write " + port_file);
    std::fprintf(f, "%u\n", static_cast<unsigned>(server->port()));
    std::fclose(f);
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    std::int64_t from = 0, until = 0;
    if (in >> command >> from >> until && command == "window") {
      std::cout << stamps.window(from, until) << std::endl;
    } else {
      std::cout << "error: expected 'window FROM_NS UNTIL_NS', got '" << line << "'" << std::endl;
    }
  }
  server->stop();  // stdin closed: the driver is done
  bench_durable::sequence_sink = nullptr;
  return 0;
}

// --- driver ------------------------------------------------------------------
struct Args {
  std::string store;  // sqlite, nats-r1, nats-r3
  int dispatchd = 1;
  std::string dir;
  int seconds = 10;
  int warmup_ms = 1000;
  int clients = 8;
  int batch = 64;
  int backlog = 0;  // 0: 1024 per dispatchd
  std::string dispatchd_bin = BENCH_DISPATCHD;
  std::string nats_server;
};

Args parse_args(int argc, char** argv) {
  Args args;
  auto number = [](const std::string& flag, const char* text, int min, int max) {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
      throw std::invalid_argument(flag + " must be an integer in [" + std::to_string(min) + ", " +
                                  std::to_string(max) + "], got '" + text + "'");
    }
    return static_cast<int>(v);
  };
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const char* value = argv[++i];
    if (flag == "--store") args.store = value;
    else if (flag == "--dispatchd") args.dispatchd = number(flag, value, 1, 2);
    else if (flag == "--dir") args.dir = value;
    else if (flag == "--seconds") args.seconds = number(flag, value, 1, 3600);
    else if (flag == "--warmup-ms") args.warmup_ms = number(flag, value, 0, 600000);
    else if (flag == "--clients") args.clients = number(flag, value, 1, 256);
    else if (flag == "--batch") args.batch = number(flag, value, 1, 10000);
    else if (flag == "--backlog") args.backlog = number(flag, value, 1, 10000000);
    else if (flag == "--dispatchd-bin") args.dispatchd_bin = value;
    else if (flag == "--nats-server") args.nats_server = value;
    else throw std::invalid_argument("unknown option " + flag);
  }
  if (args.store != "sqlite" && args.store != "nats-r1" && args.store != "nats-r3") {
    throw std::invalid_argument("--store must be sqlite, nats-r1 or nats-r3, got '" + args.store + "'");
  }
  if (args.dir.empty()) throw std::invalid_argument("--dir DIR is required (stores, logs; emptied first)");
  if (args.dispatchd_bin.empty()) throw std::invalid_argument("--dispatchd-bin PATH is required (dispatchd was not built beside this)");
  if (args.backlog == 0) args.backlog = 1024 * args.dispatchd;
  if (args.store != "sqlite" && args.nats_server.empty()) {
    args.nats_server = bench::NatsCluster::find_binary();
    if (args.nats_server.empty()) {
      throw std::invalid_argument("--store " + args.store +
                                  " needs nats-server (Debian: apt-get install nats-server; or --nats-server PATH)");
    }
  }
  return args;
}

// The endpoint process and the pipe the driver asks it questions on.
class Endpoint {
 public:
  Endpoint(const std::string& dir, SharedCounter& counter) : counter_(counter) {
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    bench::SpawnOptions o;
    const std::string port_file = dir + "/endpoint.port";
    // This binary again, in endpoint mode.
    o.argv = {std::filesystem::read_symlink("/proc/self/exe").string(), "endpoint", port_file, dir + "/endpoint.counter"};
    o.stdin_fd = to_child[0];
    o.stdout_fd = from_child[1];
    o.stderr_path = dir + "/endpoint.log";
    process_ = bench::ChildProcess("the endpoint", o);
    ::close(to_child[0]);
    ::close(from_child[1]);
    to_ = ::fdopen(to_child[1], "w");
    from_ = ::fdopen(from_child[0], "r");
    port_ = bench::wait_for_port_file(port_file, process_, o.stderr_path, std::chrono::seconds(10));
  }
  ~Endpoint() {
    if (to_ != nullptr) std::fclose(to_);  // EOF: the endpoint stops serving and exits
    process_.stop();
    if (from_ != nullptr) std::fclose(from_);
  }
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  struct Window {
    std::uint64_t started = 0, sent = 0;
    double p50_us = 0, p99_us = 0;
  };
  Window window(std::int64_t from, std::int64_t until) {
    std::fprintf(to_, "window %lld %lld\n", static_cast<long long>(from), static_cast<long long>(until));
    std::fflush(to_);
    char line[256];
    if (std::fgets(line, sizeof line, from_) == nullptr) throw std::runtime_error("the endpoint did not answer");
    Window w;
    std::istringstream in(line);
    if (!(in >> w.started >> w.sent >> w.p50_us >> w.p99_us)) {
      throw std::runtime_error(std::string("the endpoint answered: ") + line);
    }
    return w;
  }
  std::uint64_t started() { return counter_.value().load(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return process_.pid(); }

 private:
  SharedCounter& counter_;
  bench::ChildProcess process_;
  std::FILE* to_ = nullptr;
  std::FILE* from_ = nullptr;
  int port_ = 0;
};

struct Dispatchd {
  bench::ChildProcess process;
  std::string url;
};

// Everything started for one run, stopped in reverse order of starting
// (dispatchd before the servers they write to) when it goes.
struct Processes {
  std::unique_ptr<bench::NatsCluster> nats;
  std::unique_ptr<Endpoint> endpoint;
  std::vector<Dispatchd> dispatchd;
  ~Processes() {
    for (auto it = dispatchd.rbegin(); it != dispatchd.rend(); ++it) it->process.stop();
    endpoint.reset();
    nats.reset();
  }
};

double cpu_or_throw(pid_t pid, const std::string& what) {
  const double s = bench::process_cpu_seconds(pid);
  if (s < 0) throw std::runtime_error(what + " (pid " + std::to_string(pid) + ") is gone");
  return s;
}

int run(const Args& args) {
  std::error_code ec;
  std::filesystem::remove_all(args.dir, ec);
  std::filesystem::create_directories(args.dir);
  const std::string dir = std::filesystem::canonical(args.dir).string();

  SharedCounter counter(dir + "/endpoint.counter");
  Processes procs;
  if (args.store != "sqlite") {
    procs.nats = std::make_unique<bench::NatsCluster>(args.nats_server, dir + "/nats", args.store == "nats-r3" ? 3 : 1);
    procs.nats->start();
  }
  procs.endpoint = std::make_unique<Endpoint>(dir, counter);
  for (int i = 0; i < args.dispatchd; ++i) {
    const std::string name = "dispatchd" + std::to_string(i);
    bench::SpawnOptions o;
    o.argv = {args.dispatchd_bin, "--listen", "127.0.0.1:0", "--port-file", dir + "/" + name + ".port"};
    if (procs.nats) {
      o.argv.insert(o.argv.end(), {"--store", procs.nats->urls(), "--nats-bucket", "dispatch_bench",
                                   "--nats-replicas", std::to_string(procs.nats->replicas())});
    } else {
      o.argv.insert(o.argv.end(), {"--db", dir + "/" + name + ".db"});
    }
    o.stderr_path = dir + "/" + name + ".log";
    Dispatchd d{bench::ChildProcess(name, o), ""};
    const int port = bench::wait_for_port_file(dir + "/" + name + ".port", d.process, o.stderr_path,
                                               std::chrono::seconds(30));
    d.url = "http://127.0.0.1:" + std::to_string(port);
    procs.dispatchd.push_back(std::move(d));
  }
  Endpoint& endpoint = *procs.endpoint;

  auto make_client = [&](int index) {
    dispatch::HttpClientOptions o;
    o.async_threads = 1;
    return std::make_unique<dispatch::HttpClient>(procs.dispatchd[index % procs.dispatchd.size()].url, o);
  };
  auto call = [](std::int64_t sent_ns) -> dispatch::PendingCall {
    return {remote::noop_stub::function, remote::noop_stub::request_type,
            value_or_throw(remote::noop_stub::encode_request(sent_ns), "encode"), {}};
  };
  auto wait_started = [&](std::uint64_t target, std::chrono::seconds timeout, const char* what) {
    const auto deadline = Clock::now() + timeout;
    while (endpoint.started() < target) {
      if (Clock::now() >= deadline) {
        throw std::runtime_error(std::to_string(target - endpoint.started()) + " " + what +
                                 " acknowledged but not started within " + std::to_string(timeout.count()) +
                                 " s; see the logs in " + dir);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  };

  // Phase 1: one call at a time, each waited for (round robin over dispatchd).
  std::uint64_t acknowledged_total = 0;
  const std::int64_t unloaded_from = now_ns();
  {
    std::vector<std::unique_ptr<dispatch::HttpClient>> http;
    std::vector<dispatch::DispatchClient> clients;
    for (int i = 0; i < args.dispatchd; ++i) http.push_back(make_client(i));
    for (auto& h : http) clients.emplace_back(*h, endpoint.url());
    const auto until = Clock::now() + std::chrono::milliseconds(std::clamp(args.seconds * 250, 500, 2000));
    for (std::size_t n = 0; Clock::now() < until && n < 2000; ++n) {
      auto ids = value_or_throw(clients[n % clients.size()].dispatch_batch({call(now_ns())}), "dispatch");
      acknowledged_total += ids.size();
      wait_started(acknowledged_total, std::chrono::seconds(30), "call");
    }
  }
  const auto unloaded = endpoint.window(unloaded_from, now_ns());

  // Phase 2: throughput with a bounded backlog.
  const std::uint64_t backlog = static_cast<std::uint64_t>(args.backlog);
  std::atomic<std::uint64_t> acknowledged{acknowledged_total};
  std::atomic<bool> stop{false};
  std::vector<std::exception_ptr> errors(args.clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < args.clients; ++c) {
    threads.emplace_back([&, c] {
      try {
        auto http = make_client(c);
        dispatch::DispatchClient client(*http, endpoint.url());
        while (!stop.load()) {
          if (acknowledged.load() > endpoint.started() + backlog) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            continue;
          }
          std::vector<dispatch::PendingCall> calls;
          const std::int64_t sent = now_ns();
          for (int i = 0; i < args.batch; ++i) calls.push_back(call(sent));
          auto ids = value_or_throw(client.dispatch_batch(std::move(calls)), "dispatch_batch");
          acknowledged += ids.size();
        }
      } catch (...) {
        errors[c] = std::current_exception();
        stop = true;
      }
    });
  }
  auto join = [&] {
    stop = true;
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  };
  struct Joiner {
    std::function<void()> f;
    ~Joiner() { f(); }
  } joiner{join};

  std::vector<std::pair<std::string, pid_t>> measured;  // the order of the row's CPU fields
  measured.push_back({"the client", ::getpid()});
  measured.push_back({"the endpoint", endpoint.pid()});
  for (auto& d : procs.dispatchd) measured.push_back({d.process.name(), d.process.pid()});
  if (procs.nats) {
    int i = 0;
    for (pid_t p : procs.nats->pids()) measured.push_back({"nats-server n" + std::to_string(i++), p});
  }
  auto cpu_all = [&] {
    std::vector<double> out;
    for (auto& [what, pid] : measured) out.push_back(cpu_or_throw(pid == ::getpid() ? 0 : pid, what));
    return out;
  };

  std::this_thread::sleep_for(std::chrono::milliseconds(args.warmup_ms));
  const std::int64_t from = now_ns();
  const auto cpu_from = cpu_all();
  std::this_thread::sleep_for(std::chrono::seconds(args.seconds));
  const std::int64_t until = now_ns();
  const auto cpu_until = cpu_all();
  join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  wait_started(acknowledged.load(), std::chrono::seconds(120), "calls were");
  const auto loaded = endpoint.window(from, until);
  if (loaded.started == 0) throw std::runtime_error("no call completed in the measured window");

  const double seconds = static_cast<double>(until - from) / 1e9;
  const double completed = static_cast<double>(loaded.started);
  auto us_per_call = [&](std::size_t i) { return (cpu_until[i] - cpu_from[i]) * 1e6 / completed; };
  auto list = [&](std::size_t first, std::size_t count) {
    if (count == 0) return std::string("-");
    std::string out;
    for (std::size_t i = first; i < first + count; ++i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%.1f", out.empty() ? "" : ",", us_per_call(i));
      out += buf;
    }
    return out;
  };
  const std::size_t nd = procs.dispatchd.size();
  const std::size_t nn = procs.nats ? procs.nats->pids().size() : 0;
  std::printf("%s\t%d\t%d\t%d\t%.2f\t%llu\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%u\n",
              args.store.c_str(), args.dispatchd, args.clients, args.batch, seconds,
              static_cast<unsigned long long>(loaded.started), completed / seconds, unloaded.p50_us,
              unloaded.p99_us, loaded.p50_us, loaded.p99_us, us_per_call(0), us_per_call(1),
              list(2, nd).c_str(), list(2 + nd, nn).c_str(), std::thread::hardware_concurrency());
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 1 && std::string(argv[1]) == "endpoint") return run_endpoint(argc, argv);
    // Children inherit it: per-call info lines would measure stderr.
    ::setenv("DISPATCH_LOG_LEVEL", "warn", 0);
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "bench-durable-procs: " << e.what() << '\n';
    return 1;
  }
}
