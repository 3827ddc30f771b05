// bench-workflow: durable workflows end to end, in the embedded shape
// bench-durable uses: one process holds the endpoint (the generated
// workflows of workflow_api.h and their no-op child behind dispatch::Server,
// with the Run route) and the scheduler (SQLite on disk, fsync'd group
// commits, its API behind a second dispatch::Server); clients dispatch
// through the generated stubs over HTTP, and the scheduler runs, resumes
// and delivers over HTTP. Each phase gets a fresh store.
//
//   bench-workflow --dir DIR [--seconds S] [--clients K] [--batch B]
//                  [--sizes N,N,...] [--fsync on|off]
//
// A step is a child call completed and its parent resumed with its result.
// Three phases, tab-separated rows on stdout, first field the row's kind:
//   1. throughput (one row per shape): K clients dispatch batches of B
//      workflows back to back, keeping at most 2,048 steps' worth of
//      workflows dispatched but not finished; shape "sequence3" is 3 no-op
//      calls one after another, "fan_out10" one all() over 10.
//        throughput shape steps_per_s workflows_per_s calls_per_s runs_per_workflow
//                   clients batch workflows seconds retried
//      steps_per_s = workflows that reached their end in the window x steps
//      / window; calls_per_s = calls (children and workflows) the store
//      recorded completed / window; runs_per_workflow = Runs the scheduler
//      delivered (first runs, resumes, children) per workflow finished.
//   2. latency: one sequence3 at a time, dispatch sent -> result known to
//      the client. Alternately the client polls Get every 0.25 ms (p50/p99)
//      and waits in DispatchClient::await_result (await_p50/p99: the
//      scheduler wakes the Get when it records the end).
//        latency shape p50_us p99_us await_p50_us await_p99_us samples
//   3. size (one row per N of --sizes, default 10,100,1000): one sequence of
//      N steps at a time, dispatch -> result known (polled as in 2); the
//      median of 5 runs (N <= 10), 3 (N <= 100) or 1. Each resume replays
//      the journal and the journal is sent with each Poll, so per-step time
//      that grows with N is the replay's cost.
//        size steps total_ms per_step_us runs journal_bytes
//      journal_bytes: the largest journal (the Poll's coroutine state the
//      scheduler stores) seen by sampling the store every 20 ms; 0 when the
//      workflow ended before the first sample.
//
// Not for: crash safety or correctness (the scheduler's and the workflow
// runtime's tests, generated_workflows_e2e_test, durable_crash_test).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
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
#include "load.h"
#include "workflow_api.dispatch.h"
#include "workflow_counter.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace remote = bench_workflow::remote;

struct Args {
  std::string dir;
  int seconds = 10;
  int clients = 8;
  int batch = 16;
  std::vector<int> sizes = {10, 100, 1000};
  bool fsync = true;
};

Args parse_args(int argc, char** argv) {
  Args args;
  auto number = [](const std::string& flag, const std::string& text, int max) {
    char* end = nullptr;
    long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < 1 || v > max) {
      throw std::invalid_argument(flag + " must be an integer in [1, " + std::to_string(max) + "], got '" + text + "'");
    }
    return static_cast<int>(v);
  };
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--dir") args.dir = value;
    else if (flag == "--seconds") args.seconds = number(flag, value, 3600);
    else if (flag == "--clients") args.clients = number(flag, value, 256);
    else if (flag == "--batch") args.batch = number(flag, value, 1000);
    else if (flag == "--sizes") {
      args.sizes.clear();
      std::stringstream in(value);
      for (std::string n; std::getline(in, n, ',');) args.sizes.push_back(number("--sizes (each)", n, 100'000));
      if (args.sizes.empty()) throw std::invalid_argument("--sizes needs at least one size, e.g. 10,100,1000");
    } else if (flag == "--fsync" && (value == "on" || value == "off")) args.fsync = value == "on";
    else if (flag == "--fsync") throw std::invalid_argument("--fsync must be on or off, got '" + value + "'");
    else throw std::invalid_argument("unknown option " + flag);
  }
  if (args.dir.empty()) throw std::invalid_argument("--dir DIR is required (where the SQLite stores go)");
  return args;
}

using bench::check;
using bench::serve;
using bench::url;
using bench::value_or_throw;

std::unique_ptr<dispatch::HttpClient> make_client(const std::string& to) {
  dispatch::HttpClientOptions o;
  o.async_threads = 1;
  return std::make_unique<dispatch::HttpClient>(to, o);
}

// The endpoint and a scheduler on a fresh store of its own, for one phase.
class Stack {
 public:
  Stack(const Args& args, const dispatch::Server& endpoint, const std::string& name) : endpoint_url_(url(endpoint)) {
    const auto dir = std::filesystem::path(args.dir) / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    dispatch::scheduler::SchedulerOptions options;
    dispatch::scheduler::SqliteOptions sqlite;
    sqlite.path = (dir / "dispatch.db").string();
    sqlite.fsync_commits = args.fsync;
    options.store = value_or_throw(dispatch::scheduler::open_sqlite_store(sqlite), "opening the store");
    options.logger = dispatch::Logger(dispatch::LogLevel::warn);
    scheduler_ = value_or_throw(dispatch::scheduler::Scheduler::open(std::move(options)), "opening the scheduler");
    scheduler_->start();
    api_ = serve(scheduler_->table());
  }
  ~Stack() {
    api_->stop();
    scheduler_->stop();
  }

  dispatch::scheduler::Scheduler& scheduler() { return *scheduler_; }
  std::string api_url() const { return url(*api_); }
  const std::string& endpoint_url() const { return endpoint_url_; }

 private:
  std::string endpoint_url_;
  std::unique_ptr<dispatch::scheduler::Scheduler> scheduler_;
  std::unique_ptr<dispatch::Server> api_;
};

// A workflow as the driver dispatches it: both return how many calls they
// made.
struct Shape {
  const char* name;
  const char* function;
  const char* request_type;
  std::int64_t steps;
  std::string request;
  dispatch::Result<std::int64_t> (*decode_reply)(dispatch::Result<std::string>);
};

Shape sequence_of(std::int64_t steps, const char* name) {
  return {name,
          remote::sequence_stub::function,
          remote::sequence_stub::request_type,
          steps,
          value_or_throw(remote::sequence_stub::encode_request(steps), "encoding a sequence request"),
          &remote::sequence_stub::decode_reply};
}

Shape fan_out_of(std::int64_t width, const char* name) {
  return {name,
          remote::fan_out_stub::function,
          remote::fan_out_stub::request_type,
          width,
          value_or_throw(remote::fan_out_stub::encode_request(width), "encoding a fan_out request"),
          &remote::fan_out_stub::decode_reply};
}

// Checks a workflow's reply: it made `shape.steps` calls.
void check_reply(dispatch::Result<std::string> reply, const Shape& shape, const std::string& id) {
  auto made = shape.decode_reply(std::move(reply));
  if (!made.ok()) throw std::runtime_error("workflow " + id + " failed: " + made.error().message());
  if (*made != shape.steps) {
    throw std::runtime_error("workflow " + id + " made " + std::to_string(*made) + " calls, not " +
                             std::to_string(shape.steps));
  }
}

// Polls Get every 0.25 ms until `id` ends; returns when its result came.
// `sample` (if set) runs every 20 ms meanwhile.
Clock::time_point poll_until_done(dispatch::DispatchClient& client, const std::string& id, const Shape& shape,
                                  const std::function<void()>& sample = {}) {
  const auto give_up = Clock::now() + std::chrono::minutes(10);
  auto next_sample = Clock::now() + std::chrono::milliseconds(20);
  for (;;) {
    auto r = client.await_result(id, std::chrono::milliseconds(0));
    const auto now = Clock::now();
    if (r.ok() || r.error().code() != dispatch::Code::deadline_exceeded) {
      check_reply(std::move(r), shape, id);
      return now;
    }
    if (now > give_up) throw std::runtime_error("workflow " + id + " did not end within 10 minutes");
    if (sample && now >= next_sample) {
      sample();
      next_sample = now + std::chrono::milliseconds(20);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(250));
  }
}

// 1. Throughput with a bounded backlog.
void throughput(const Args& args, const dispatch::Server& endpoint, std::atomic<std::uint64_t>& finished,
                const Shape& shape) {
  Stack stack(args, endpoint, std::string("throughput-") + shape.name);
  const std::uint64_t max_backlog = std::max<std::uint64_t>(1, 2048 / static_cast<std::uint64_t>(shape.steps));
  const std::uint64_t finished_before = finished.load();
  std::atomic<std::uint64_t> dispatched{0};
  std::atomic<bool> stop{false};
  std::vector<std::exception_ptr> errors(args.clients);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> ids(args.clients);
  const auto measure_from = Clock::now() + std::chrono::seconds(1);  // warm-up
  const auto measure_until = measure_from + std::chrono::seconds(args.seconds);
  for (int c = 0; c < args.clients; ++c) {
    threads.emplace_back([&, c] {
      try {
        auto http = make_client(stack.api_url());
        dispatch::DispatchClient client(*http, stack.endpoint_url());
        while (!stop.load()) {
          if (dispatched.load() > finished.load() - finished_before + max_backlog) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            continue;
          }
          std::vector<dispatch::PendingCall> calls;
          for (int i = 0; i < args.batch; ++i) calls.push_back({shape.function, shape.request_type, shape.request, {}});
          auto sent = value_or_throw(client.dispatch_batch(std::move(calls)), "dispatch_batch");
          dispatched += sent.size();
          for (auto& id : sent) ids[c].push_back(std::move(id));
        }
      } catch (...) {
        errors[c] = std::current_exception();
        stop = true;
      }
    });
  }
  std::this_thread::sleep_until(measure_from);
  const auto stats_from = stack.scheduler().stats();
  const auto finished_from = finished.load();
  std::this_thread::sleep_until(measure_until);
  const auto stats_until = stack.scheduler().stats();
  const auto finished_until = finished.load();
  const double seconds = std::chrono::duration<double>(Clock::now() - measure_from).count();
  stop = true;
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }

  // Every workflow dispatched ends, with the right result.
  auto http = make_client(stack.api_url());
  dispatch::DispatchClient client(*http, stack.endpoint_url());
  for (const auto& per_client : ids) {
    for (const auto& id : per_client) check_reply(client.await_result(id, std::chrono::minutes(2)), shape, id);
  }
  stack.scheduler().wait_idle();
  const auto stats_end = stack.scheduler().stats();
  if (stats_end.failed != 0) {
    throw std::runtime_error(shape.name + std::string(": ") + std::to_string(stats_end.failed) +
                             " calls failed; no-op workflows must not");
  }

  const auto workflows = finished_until - finished_from;
  if (workflows == 0) throw std::runtime_error(shape.name + std::string(": no workflow finished in the window"));
  const double steps_per_s = static_cast<double>(workflows * static_cast<std::uint64_t>(shape.steps)) / seconds;
  const double calls_per_s = static_cast<double>(stats_until.completed - stats_from.completed) / seconds;
  const double runs_per_workflow =
      static_cast<double>(stats_until.delivered - stats_from.delivered) / static_cast<double>(workflows);
  std::printf("throughput\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t%d\t%d\t%llu\t%.2f\t%llu\n", shape.name, steps_per_s,
              static_cast<double>(workflows) / seconds, calls_per_s, runs_per_workflow, args.clients, args.batch,
              static_cast<unsigned long long>(workflows), seconds,
              static_cast<unsigned long long>(stats_end.retried));
  std::fflush(stdout);
}

// 2. Latency of one workflow at a time.
void latency(const Args& args, const dispatch::Server& endpoint, const Shape& shape) {
  Stack stack(args, endpoint, std::string("latency-") + shape.name);
  auto http = make_client(stack.api_url());
  dispatch::DispatchClient client(*http, stack.endpoint_url());
  std::vector<std::int64_t> polled, awaited;
  const auto until = Clock::now() + std::chrono::seconds(std::max(2, args.seconds / 2));
  for (int i = 0; (Clock::now() < until && i < 4000) || i < 20; ++i) {
    const auto at = Clock::now();
    auto id = value_or_throw(client.dispatch(shape.function, shape.request_type, shape.request), "dispatch");
    Clock::time_point done;
    if (i % 2 == 0) {
      done = poll_until_done(client, id, shape);
    } else {
      check_reply(client.await_result(id, std::chrono::seconds(60)), shape, id);
      done = Clock::now();
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(done - at).count();
    if (i >= 2) (i % 2 == 0 ? polled : awaited).push_back(ns);  // the first of each: warm-up
  }
  std::printf("latency\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%zu\n", shape.name, bench::quantile(polled, 0.50) / 1000.0,
              bench::quantile(polled, 0.99) / 1000.0, bench::quantile(awaited, 0.50) / 1000.0,
              bench::quantile(awaited, 0.99) / 1000.0, polled.size() + awaited.size());
  std::fflush(stdout);
}

// 3. One workflow of N sequential steps at a time.
void size(const Args& args, const dispatch::Server& endpoint, int steps) {
  Stack stack(args, endpoint, "size-" + std::to_string(steps));
  auto http = make_client(stack.api_url());
  dispatch::DispatchClient client(*http, stack.endpoint_url());
  const Shape shape = sequence_of(steps, "sequence");
  const int runs = steps <= 10 ? 5 : steps <= 100 ? 3 : 1;
  // One warm-up of a short one (connections, the store's first pages).
  {
    const Shape warm = sequence_of(3, "warm-up");
    auto id = value_or_throw(client.dispatch(warm.function, warm.request_type, warm.request), "dispatch");
    poll_until_done(client, id, warm);
  }
  std::vector<std::int64_t> ns;
  std::size_t journal_bytes = 0;
  for (int r = 0; r < runs; ++r) {
    const auto at = Clock::now();
    auto id = value_or_throw(client.dispatch(shape.function, shape.request_type, shape.request), "dispatch");
    const auto done = poll_until_done(client, id, shape, [&] {
      auto record = stack.scheduler().get(id);
      if (record.ok()) journal_bytes = std::max(journal_bytes, record->poll_state.size());
    });
    ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(done - at).count());
  }
  const double total_ms = bench::quantile(ns, 0.50) / 1e6;
  std::printf("size\t%d\t%.2f\t%.1f\t%d\t%zu\n", steps, total_ms, total_ms * 1000.0 / steps, runs, journal_bytes);
  std::fflush(stdout);
}

int run(const Args& args) {
  std::atomic<std::uint64_t> finished{0};
  bench_workflow::finished = &finished;

  // The endpoint: the workflows, their no-op child and the Run route the
  // scheduler calls.
  dispatch::DispatchTable endpoint_table{&remote::workflow_api_service(), &dispatch::function_service()};
  auto endpoint = serve(endpoint_table);

  const Shape sequence3 = sequence_of(3, "sequence3");
  const Shape fan_out10 = fan_out_of(10, "fan_out10");
  throughput(args, *endpoint, finished, sequence3);
  throughput(args, *endpoint, finished, fan_out10);
  latency(args, *endpoint, sequence3);
  for (int steps : args.sizes) size(args, *endpoint, steps);

  endpoint->stop();
  bench_workflow::finished = nullptr;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "bench-workflow: " << e.what() << '\n';
    return 1;
  }
}
