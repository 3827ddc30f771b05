// bench-durable: the durable scheduler end to end (issue 5), in the embedded
// shape the README demo uses: one process holds the endpoint (a no-op
// function behind dispatch::Server, with the Run route) and the scheduler
// (SQLite on disk, fsync'd group commits, its API behind a second
// dispatch::Server); clients dispatch through the generated stub's
// .dispatch() over HTTP, and the scheduler delivers over HTTP.
//
//   bench-durable --dir DIR [--seconds S] [--clients K] [--batch B] [--fsync on|off]
//
// --fsync off runs SQLite with synchronous=NORMAL (SqliteOptions::
// fsync_commits = false): survives a killed process, not a power loss.
//
// Two phases, one line of tab-separated results on stdout:
//   1. latency: one client dispatches one call at a time and waits until the
//      function has started: p50/p99 dispatch-to-start with no backlog
//      (from sending Dispatch to the function starting).
//   2. throughput: K clients dispatch batches of B back to back, keeping at
//      most 1024 calls acknowledged but not yet started (twice the
//      scheduler's default in-flight limit: enough to keep it busy); completed_per_s =
//      completions the store recorded during the measured window / window.
//      Dispatch-to-start under that load is reported too; it is mostly the
//      time to drain that backlog (about 1024 / completed_per_s).
// Fields: completed_per_s p50_start_us p99_start_us loaded_p50_start_us
//         loaded_p99_start_us clients batch completed seconds fsync(1|0)
//
// Not for: crash safety or correctness (the scheduler's tests do that).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/scheduler/scheduler.h"
#include "dispatch/sqlite/sqlite_store.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "embedded.h"
#include "durable_api.dispatch.h"
#include "durable_recorder.h"
#include "load.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace remote = bench_durable::remote;

struct Args {
  std::string dir;
  int seconds = 10;
  int clients = 8;
  int batch = 64;
  bool fsync = true;
};

Args parse_args(int argc, char** argv) {
  Args args;
  auto number = [](const std::string& flag, const char* text, int max) {
    char* end = nullptr;
    long v = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 1 || v > max) {
      throw std::invalid_argument(flag + " must be an integer in [1, " + std::to_string(max) + "], got '" + text + "'");
    }
    return static_cast<int>(v);
  };
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const char* value = argv[++i];
    if (flag == "--dir") args.dir = value;
    else if (flag == "--seconds") args.seconds = number(flag, value, 3600);
    else if (flag == "--clients") args.clients = number(flag, value, 256);
    else if (flag == "--batch") args.batch = number(flag, value, 10000);
    else if (flag == "--fsync" && (std::string(value) == "on" || std::string(value) == "off")) args.fsync = std::string(value) == "on";
    else if (flag == "--fsync") throw std::invalid_argument("--fsync must be on or off, got '" + std::string(value) + "'");
    else throw std::invalid_argument("unknown option " + flag);
  }
  if (args.dir.empty()) throw std::invalid_argument("--dir DIR is required (where the SQLite store goes)");
  return args;
}

using bench::check;
using bench::serve;
using bench::url;
using bench::value_or_throw;

// A dispatched call: its ID and when its Dispatch request was sent.
struct Sent {
  std::string id;
  Clock::time_point at;
};

// p50/p99 of dispatch-to-start over `sent`; calls never started are an error.
std::pair<double, double> start_latency(const std::vector<Sent>& sent, bench_durable::StartRecorder& recorder) {
  std::vector<std::int64_t> ns;
  ns.reserve(sent.size());
  for (const auto& s : sent) {
    Clock::time_point at;
    if (!recorder.wait_for(s.id, std::chrono::seconds(30), &at)) {
      throw std::runtime_error("dispatch " + s.id + " was acknowledged but never started within 30 s");
    }
    ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(at - s.at).count());
  }
  if (ns.empty()) throw std::runtime_error("no call was dispatched");
  return {bench::quantile(ns, 0.50) / 1000.0, bench::quantile(ns, 0.99) / 1000.0};
}

int run(const Args& args) {
  bench_durable::StartRecorder recorder;
  bench_durable::recorder = &recorder;

  // The endpoint: the no-op function and the Run route the scheduler calls.
  dispatch::DispatchTable endpoint_table{&remote::durable_api_service(), &dispatch::function_service()};
  auto endpoint = serve(endpoint_table);

  std::filesystem::create_directories(args.dir);
  dispatch::scheduler::SchedulerOptions options;
  dispatch::scheduler::SqliteOptions sqlite;
  sqlite.path = (std::filesystem::path(args.dir) / "dispatch.db").string();
  sqlite.fsync_commits = args.fsync;
  options.store = value_or_throw(dispatch::scheduler::open_sqlite_store(sqlite), "opening the store");
  options.logger = dispatch::Logger(dispatch::LogLevel::warn);
  auto scheduler = value_or_throw(dispatch::scheduler::Scheduler::open(std::move(options)), "opening the scheduler");
  scheduler->start();
  auto api = serve(scheduler->table());

  auto make_client = [&] {
    dispatch::HttpClientOptions o;
    o.async_threads = 1;
    return std::make_unique<dispatch::HttpClient>(url(*api), o);
  };

  // Phase 1: latency without backlog.
  std::vector<Sent> unloaded;
  {
    auto http = make_client();
    dispatch::DispatchClient client(*http, url(*endpoint));
    auto until = Clock::now() + std::chrono::seconds(std::max(2, args.seconds / 4));
    for (std::int64_t seq = 0; Clock::now() < until && seq < 5000; ++seq) {
      auto at = Clock::now();
      std::string id = value_or_throw(remote::noop.dispatch(client, seq), "dispatch").id();
      Clock::time_point started;
      if (!recorder.wait_for(id, std::chrono::seconds(30), &started)) {
        throw std::runtime_error("dispatch " + id + " did not start within 30 s");
      }
      unloaded.push_back({std::move(id), at});
    }
  }
  auto [p50, p99] = start_latency(unloaded, recorder);
  scheduler->wait_idle();

  // Phase 2: throughput with a bounded backlog.
  constexpr std::uint64_t kMaxBacklog = 1024;
  std::atomic<std::uint64_t> acknowledged{recorder.deliveries()};
  std::atomic<bool> stop{false};
  std::vector<std::vector<Sent>> sent(args.clients);
  std::vector<std::exception_ptr> errors(args.clients);
  std::vector<std::thread> threads;
  const auto warmup = std::chrono::seconds(1);
  const auto measure_from = Clock::now() + warmup;
  const auto measure_until = measure_from + std::chrono::seconds(args.seconds);
  for (int c = 0; c < args.clients; ++c) {
    threads.emplace_back([&, c] {
      try {
        auto http = make_client();
        dispatch::DispatchClient client(*http, url(*endpoint));
        std::int64_t seq = 0;
        while (!stop.load()) {
          if (acknowledged.load() > recorder.deliveries() + kMaxBacklog) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            continue;
          }
          std::vector<dispatch::PendingCall> calls;
          for (int i = 0; i < args.batch; ++i) {
            calls.push_back({remote::noop_stub::function, remote::noop_stub::request_type,
                             value_or_throw(remote::noop_stub::encode_request(++seq), "encode"), {}});
          }
          auto at = Clock::now();
          auto ids = value_or_throw(client.dispatch_batch(std::move(calls)), "dispatch_batch");
          acknowledged += ids.size();
          for (auto& id : ids) sent[c].push_back({std::move(id), at});
        }
      } catch (...) {
        errors[c] = std::current_exception();
        stop = true;
      }
    });
  }
  std::this_thread::sleep_until(measure_from);
  const auto completed_from = scheduler->stats().completed;
  std::this_thread::sleep_until(measure_until);
  const auto completed_until = scheduler->stats().completed;
  const auto window_end = Clock::now();
  stop = true;
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  std::vector<Sent> loaded;
  for (auto& v : sent) {
    for (auto& s : v) {
      if (s.at >= measure_from && s.at < measure_until) loaded.push_back(std::move(s));
    }
  }
  auto [loaded_p50, loaded_p99] = start_latency(loaded, recorder);
  scheduler->wait_idle();
  if (scheduler->stats().failed != 0) {
    throw std::runtime_error(std::to_string(scheduler->stats().failed) + " calls failed; a no-op must not");
  }

  const double seconds = std::chrono::duration<double>(window_end - measure_from).count();
  const auto completed = completed_until - completed_from;
  if (completed == 0) throw std::runtime_error("no call completed in the measured window");
  std::printf("%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%llu\t%.2f\t%d\n", completed / seconds, p50, p99, loaded_p50,
              loaded_p99, args.clients, args.batch, static_cast<unsigned long long>(completed), seconds,
              args.fsync ? 1 : 0);

  // Group commit at work: store writes per commit over the whole run.
  const auto store_stats = scheduler->store().stats();
  std::fprintf(stderr, "bench-durable: %llu store writes in %llu commits\n",
               static_cast<unsigned long long>(store_stats.writes),
               static_cast<unsigned long long>(store_stats.commits));

  api->stop();
  scheduler->stop();
  endpoint->stop();
  bench_durable::recorder = nullptr;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "bench-durable: " << e.what() << '\n';
    return 1;
  }
}
