// bench-statefun: dispatchd's stateful-functions runtime end to end, in the
// embedded shape bench-durable uses: one process holds the endpoint (a
// counter function behind dispatch::Server answering StateFun's
// request-reply protocol: each message reads the entity's "count" and writes
// it back plus one) and the runtime (SQLite on disk, fsync'd group commits,
// its Ingress API behind a second dispatch::Server); clients send over HTTP
// and the runtime delivers over HTTP.
//
//   bench-statefun --dir DIR [--seconds S] [--clients K] [--batch B]
//                  [--addresses N] [--backlog M] [--fsync on|off]
//
// Two phases, one line of tab-separated results on stdout:
//   1. latency: one message at a time to a random address; from the Send
//      acknowledged (the runtime's Send route returning its reply: the
//      message is durable) to the function invoked with it, p50/p99. Not
//      from the client receiving the reply: the runtime starts delivering
//      as it acknowledges, so the invocation usually comes before the reply
//      has crossed the loopback, and that difference measured nothing.
//      Each probe goes once the previous one's reply is applied.
//   2. throughput: K clients send batches of B messages to random addresses
//      among N back to back, keeping at most M (--backlog, default 20,000)
//      acknowledged but not yet applied (messages that wait for their address
//      go out together as its next batch, so M / N bounds a batch's size); messages_per_s = invocations whose replies the store applied
//      during the window / window.
//      The same from the Send request leaving the client (send_p50/p99) is
//      reported too.
//      load_send_p50/p99: a throughput client's Send round trip during the
//      window (request out to acknowledgement in: a group commit and the
//      log's sync). The clients send one batch at a time, so while the
//      backlog is not full messages_per_s is at most
//      clients x batch / that round trip: the figure then measures the
//      acknowledgement path, not delivery.
// Fields: messages_per_s p50_us p99_us send_p50_us send_p99_us clients batch
//         addresses applied seconds fsync(1|0) batches load_send_p50_us
//         load_send_p99_us
//
// Not for: crash safety or correctness (tests/statefun and the runtime's
// tests do that).
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "dispatch/sqlite/sqlite_store.h"
#include "dispatch/stateful/value_types.h"
#include "dispatch/statefun/v1/runtime.pb.h"
#include "dispatch/statefun_runtime/runtime.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "embedded.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"
#include "load.h"
#include "statefun_runtime/api.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace pb = ::io::statefun::sdk::reqreply;
namespace st = ::dispatch::stateful;

struct Args {
  std::string dir;
  int seconds = 10;
  int clients = 8;
  int batch = 64;
  int addresses = 10'000;
  int backlog = 20'000;
  bool fsync = true;
};

// When the runtime acknowledged each latency probe (a message whose value
// is a negative long: its probe number, negated) and when the function saw
// it.
struct Probes {
  std::mutex mu;
  std::unordered_map<int64_t, Clock::time_point> acked;
  std::unordered_map<int64_t, Clock::time_point> invoked;
};
Probes* probes = nullptr;

// The runtime's own Send route, and the bench's in its place: the same
// handler, then the time its reply was ready for each probe it carried.
dispatch::Result<std::string> (*runtime_send)(const dispatch::MethodCall&) = nullptr;

dispatch::Result<std::string> timed_send(const dispatch::MethodCall& call) {
  auto reply = runtime_send(call);
  const auto acked = Clock::now();
  dispatch::statefun::v1::SendRequest req;
  if (reply.ok() && req.ParseFromArray(call.request.data(), static_cast<int>(call.request.size()))) {
    for (const auto& m : req.messages()) {
      auto n = st::decode_long(m.value());
      if (n.ok() && *n < 0) {
        std::lock_guard<std::mutex> lock(probes->mu);
        probes->acked.emplace(-*n, acked);
      }
    }
  }
  return reply;
}

dispatch::Result<std::string> counter(const dispatch::MethodCall& call) {
  pb::ToFunction req;
  if (!req.ParseFromArray(call.request.data(), static_cast<int>(call.request.size()))) {
    return dispatch::Error(dispatch::Code::invalid_argument, "not a ToFunction");
  }
  pb::FromFunction res;
  const auto& batch = req.invocation();
  if (batch.state_size() == 0) {
    auto* spec = res.mutable_incomplete_invocation_context()->add_missing_values();
    spec->set_state_name("count");
    spec->set_type_typename(std::string(st::kIntType));
    return res.SerializeAsString();
  }
  const pb::TypedValue& v = batch.state(0).state_value();
  int32_t count = v.has_value() ? st::decode_int(v.value()).value() : 0;
  const auto now = Clock::now();
  for (const auto& inv : batch.invocations()) {
    ++count;
    auto n = st::decode_long(inv.argument().value());
    if (n.ok() && *n < 0) {
      std::lock_guard<std::mutex> lock(probes->mu);
      probes->invoked.emplace(-*n, now);
    }
  }
  auto* m = res.mutable_invocation_result()->add_state_mutations();
  m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
  m->set_state_name("count");
  m->mutable_state_value()->set_typename_(std::string(st::kIntType));
  m->mutable_state_value()->set_has_value(true);
  m->mutable_state_value()->set_value(st::encode_int(count));
  return res.SerializeAsString();
}

const dispatch::Method kMethods[] = {
    {"statefun", "/statefun", "io.statefun.sdk.reqreply.ToFunction", "io.statefun.sdk.reqreply.FromFunction", &counter},
};
const dispatch::Service kService{"", "BenchCounter", kMethods, 1, {}};

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
    else if (flag == "--addresses") args.addresses = number(flag, value, 10'000'000);
    else if (flag == "--backlog") args.backlog = number(flag, value, 10'000'000);
    else if (flag == "--fsync" && (std::string(value) == "on" || std::string(value) == "off")) args.fsync = std::string(value) == "on";
    else if (flag == "--fsync") throw std::invalid_argument("--fsync must be on or off, got '" + std::string(value) + "'");
    else throw std::invalid_argument("unknown option " + flag);
  }
  if (args.dir.empty()) throw std::invalid_argument("--dir DIR is required (where the SQLite store goes)");
  return args;
}

using bench::value_or_throw;

// CPU time per thread name (Linux: /proc/self/task/*/stat, utime + stime
// in clock ticks), so that a window's CPU can be split by thread kind.
std::map<std::string, double> thread_cpu_ms() {
  std::map<std::string, double> out;
  const double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream f(task.path() / "stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    const auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string name = line.substr(open + 1, close - open - 1);
    // dispatch-io-0, dispatch-io-1, ...: one kind.
    while (!name.empty() && name.back() >= '0' && name.back() <= '9') name.pop_back();
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    out[name] += static_cast<double>(utime + stime) * tick_ms;
  }
  return out;
}

// 32 workers: Send requests wait for their group commit.
std::unique_ptr<dispatch::Server> serve(const dispatch::DispatchTable& table) { return bench::serve(table, 32); }

std::string send_body(std::mt19937& rng, int addresses, int batch, int64_t value) {
  dispatch::statefun::v1::SendRequest req;
  for (int i = 0; i < batch; ++i) {
    auto* m = req.add_messages();
    m->set_function_type("bench/counter");
    m->set_id("a" + std::to_string(rng() % static_cast<unsigned>(addresses)));
    m->set_typename_(std::string(st::kLongType));
    m->set_value(st::encode_long(value));
  }
  return req.SerializeAsString();
}

int run(const Args& args) {
  Probes recorded;
  probes = &recorded;
  dispatch::DispatchTable endpoint_table{&kService};
  auto endpoint = serve(endpoint_table);

  std::filesystem::create_directories(args.dir);
  dispatch::scheduler::SqliteOptions sqlite;
  sqlite.path = args.dir + "/statefun.db";
  sqlite.fsync_commits = args.fsync;
  auto store = value_or_throw(dispatch::scheduler::open_sqlite_store(sqlite), "opening the store");
  dispatch::statefun::RuntimeOptions ro;
  ro.modules = value_or_throw(
      dispatch::statefun::ModuleConfig::parse("kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n"
                                              "  urlPathTemplate: http://127.0.0.1:" +
                                              std::to_string(endpoint->port()) + "/statefun\n"),
      "module configuration");
  ro.store = store->entities();
  ro.logger = dispatch::Logger(dispatch::LogLevel::warn);
  auto rt = value_or_throw(dispatch::statefun::Runtime::open(std::move(ro)), "opening the runtime");
  // The Ingress service with its Send route timed (its handler reaches the
  // runtime through the service, which stays the runtime's).
  auto services = dispatch::statefun::api_services(*rt);
  if (services.ingress.method_count != 1) throw std::runtime_error("the Ingress service changed; update timed_send");
  runtime_send = services.ingress.methods[0].handler;
  const dispatch::Method timed_methods[] = {{services.ingress.methods[0].name, services.ingress.methods[0].path,
                                             services.ingress.methods[0].request_type,
                                             services.ingress.methods[0].response_type, &timed_send}};
  dispatch::statefun::ApiService ingress = services.ingress;
  ingress.methods = timed_methods;
  dispatch::DispatchTable api_table;
  if (auto added = api_table.add(ingress); !added.ok()) throw std::runtime_error(added.error().message());
  auto api = serve(api_table);
  rt->start();
  const std::string api_url = "http://127.0.0.1:" + std::to_string(api->port());
  const std::string send_path = "/dispatch.statefun.v1.IngressService/Send";

  // 1. Latency: one probe at a time (after one warm-up that registers the
  //    state spec).
  std::vector<int64_t> latencies, from_send;
  {
    auto client = value_or_throw(dispatch::HttpClient::create(api_url), "client");
    std::mt19937 rng(1);
    const auto until = Clock::now() + std::chrono::seconds(std::max(1, args.seconds / 3));
    for (int64_t probe = 1; Clock::now() < until || probe <= 50; ++probe) {
      const uint64_t applied_before = rt->stats().invocations;
      const auto sending = Clock::now();
      auto reply = client->call(send_path, send_body(rng, args.addresses, 1, -probe), {});
      if (!reply.ok()) throw std::runtime_error("send: " + reply.error().message());
      for (int i = 0;; ++i) {
        {
          std::lock_guard<std::mutex> lock(recorded.mu);
          auto it = recorded.invoked.find(probe);
          auto acked = recorded.acked.find(probe);
          if (acked == recorded.acked.end()) throw std::runtime_error("a probe's acknowledgement was not timed");
          if (it != recorded.invoked.end()) {
            if (probe > 1) {
              // Negative only if the pump claimed the message between its
              // commit and its sync (on its timer): counted as 0.
              latencies.push_back(std::max<int64_t>(
                  0, std::chrono::duration_cast<std::chrono::nanoseconds>(it->second - acked->second).count()));
              from_send.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(it->second - sending).count());
            }
            break;
          }
        }
        if (i > 300'000) throw std::runtime_error("a probe was never invoked");
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
      // The next probe once this one's reply is applied: sent while the
      // reply's commit is still to come, it would share that commit, and
      // the pump, woken by it, would deliver the probe before the sync that
      // its acknowledgement waits for (a message is deliverable once
      // committed): a time before its acknowledgement, that measures the
      // bench's own rhythm.
      for (int i = 0; rt->stats().invocations == applied_before; ++i) {
        if (i > 300'000) throw std::runtime_error("a probe's reply was never applied");
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }
  }
  const double p50 = bench::quantile(latencies, 0.50) / 1000.0;
  const double p99 = bench::quantile(latencies, 0.99) / 1000.0;
  const double send_p50 = bench::quantile(from_send, 0.50) / 1000.0;
  const double send_p99 = bench::quantile(from_send, 0.99) / 1000.0;

  // 2. Throughput.
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<uint64_t> sent{0};
  std::vector<std::vector<int64_t>> round_trips(static_cast<std::size_t>(args.clients));
  std::vector<std::thread> clients;
  for (int c = 0; c < args.clients; ++c) {
    clients.emplace_back([&, c] {
      auto client = value_or_throw(dispatch::HttpClient::create(api_url), "client");
      std::mt19937 rng(static_cast<unsigned>(100 + c));
      while (!stop) {
        if (sent.load() > rt->stats().invocations + static_cast<uint64_t>(args.backlog)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        const std::string body = send_body(rng, args.addresses, args.batch, 1);
        const auto sending = Clock::now();
        auto reply = client->call(send_path, body, {});
        if (measuring) {
          round_trips[static_cast<std::size_t>(c)].push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sending).count());
        }
        if (!reply.ok()) {
          std::fprintf(stderr, "bench-statefun: send failed: %s\n", reply.error().what());
          std::exit(1);
        }
        sent += static_cast<uint64_t>(args.batch);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up
  const auto s0 = rt->stats();
  const auto store0 = store->stats();
  const auto cpu0 = thread_cpu_ms();
  const auto t0 = Clock::now();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::seconds(args.seconds));
  measuring = false;
  const auto s1 = rt->stats();
  const auto store1 = store->stats();
  const auto cpu1 = thread_cpu_ms();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& t : clients) t.join();
  rt->stop();
  const uint64_t applied = s1.invocations - s0.invocations;
  std::vector<int64_t> load_sends;
  for (const auto& v : round_trips) load_sends.insert(load_sends.end(), v.begin(), v.end());
  std::printf("%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%llu\t%.2f\t%d\t%llu\t%.1f\t%.1f\n",
              static_cast<double>(applied) / secs, p50, p99, send_p50, send_p99, args.clients, args.batch,
              args.addresses, static_cast<unsigned long long>(applied), secs, args.fsync ? 1 : 0,
              static_cast<unsigned long long>(s1.batches - s0.batches), bench::quantile(load_sends, 0.50) / 1000.0,
              bench::quantile(load_sends, 0.99) / 1000.0);
  // Group commit at work in the window: what each commit and sync carried.
  std::fprintf(stderr,
               "bench-statefun: in the window %llu store writes in %llu commits, %llu log syncs, %llu checkpoints, "
               "%llu log frames (%.2f per message applied)\n",
               static_cast<unsigned long long>(store1.writes - store0.writes),
               static_cast<unsigned long long>(store1.commits - store0.commits),
               static_cast<unsigned long long>(store1.log_syncs - store0.log_syncs),
               static_cast<unsigned long long>(store1.checkpoints - store0.checkpoints),
               static_cast<unsigned long long>(store1.log_frames - store0.log_frames),
               applied ? static_cast<double>(store1.log_frames - store0.log_frames) / static_cast<double>(applied)
                       : 0.0);
  // Where the window's CPU went: ms per 1,000 messages applied, per kind
  // of thread.
  if (applied > 0) {
    std::string split;
    double total = 0;
    for (const auto& [name, ms] : cpu1) {
      auto before = cpu0.find(name);
      const double used = ms - (before == cpu0.end() ? 0.0 : before->second);
      const double per_k = used * 1000.0 / static_cast<double>(applied);
      total += per_k;
      if (per_k >= 0.05) split += " " + name + "=" + std::to_string(per_k).substr(0, std::to_string(per_k).find('.') + 2);
    }
    std::fprintf(stderr, "bench-statefun: CPU ms per 1,000 messages: total=%.1f%s\n", total, split.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-statefun: %s\n", e.what());
    return 1;
  }
}
