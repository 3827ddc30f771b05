// A Dispatch endpoint for the cross-process durability tests: serves
// durable.Endpoint/record, the workflow durable.fan (which records through
// the scheduler) and the protocol's Run route. Each execution
// appends "<dispatch id> <attempt>\n" to a log file with one write(2), so the
// line survives a kill -9 of this process, and answers its input back.
// With --log-input yes the line also holds durable.record's input, so a
// test can tell two calls for one request from two deliveries of one call;
// with --log-start yes, last, when the execution started (wall clock,
// microseconds since the Unix epoch), so a test can tell a delayed call
// that ran before its time.
//
//   durable_endpoint --listen 127.0.0.1:PORT --log seen.log [--log-input yes] [--log-start yes]
//
// Not for: anything but tests (it holds its log descriptor in a file-scope
// variable because a served function is a plain function pointer).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/durable/function_service.h"
#include "dispatch/workflow/serve.h"
#include "dispatch/workflow/workflow.h"
#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/server.h"

namespace {

int log_fd = -1;
bool log_input = false;
bool log_start = false;

dispatch::Result<std::string> record(const dispatch::MethodCall& method_call) {
  const auto started = std::chrono::system_clock::now();
  const dispatch::CallContext& call = dispatch::this_call();
  // A little work, so that kills land while calls are in flight.
  thread_local std::mt19937 rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
  std::string line = call.dispatch_id + " " + std::to_string(call.attempt);
  if (log_input) line += " " + std::string(method_call.request);
  if (log_start) {
    line += " " + std::to_string(
                      std::chrono::duration_cast<std::chrono::microseconds>(started.time_since_epoch()).count());
  }
  line += "\n";
  if (::write(log_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    throw dispatch::Error(dispatch::Code::unavailable, "could not append to the log");
  }
  return std::string(method_call.request);
}

dispatch::Result<std::string> same_bytes(std::string_view bytes) { return std::string(bytes); }

// durable.fan: its input is a decimal count n; it records n calls at once
// through the scheduler, sleeps 50 ms, and returns what they answered.
dispatch::Workflow<std::string> fan(int n) {
  std::vector<dispatch::DurableCall<std::string>> calls;
  for (int i = 0; i < n; ++i) {
    calls.emplace_back("durable.record", "durable.RecordRequest", "r" + std::to_string(i), &same_bytes);
  }
  std::vector<std::string> answers = co_await dispatch::all(std::move(calls));
  co_await dispatch::sleep(std::chrono::milliseconds(50));
  std::string joined;
  for (const std::string& a : answers) joined += (joined.empty() ? "" : ",") + a;
  co_return joined;
}

dispatch::Result<std::unique_ptr<dispatch::workflow::Instance>> start_fan(std::string_view input) {
  const std::string text(input);
  if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos) {
    return dispatch::Error(dispatch::Code::invalid_argument, "durable.fan takes a count of 0..999, not '" + text + "'");
  }
  auto instance = std::make_unique<dispatch::workflow::InstanceOf<int, std::string>>();
  instance->request = std::stoi(text);
  instance->start(fan(instance->request), [](std::string&& s) { return std::move(s); });
  return std::unique_ptr<dispatch::workflow::Instance>(std::move(instance));
}
const dispatch::workflow::Definition kFan{"durable.fan", "v1", "durable.FanRequest", "durable.FanResponse",
                                          &start_fan};
dispatch::Result<std::string> run_fan(const dispatch::MethodCall& c) { return dispatch::workflow::run(c, kFan); }
dispatch::Result<std::string> direct_fan(const dispatch::MethodCall&) {
  return dispatch::workflow::direct_call_refused("durable.fan");
}

const dispatch::Method kMethods[] = {
    {"record", "/durable.Endpoint/record", "durable.RecordRequest", "durable.RecordResponse", &record},
    {"fan", "/durable.Endpoint/fan", "durable.FanRequest", "durable.FanResponse", &direct_fan, nullptr, &run_fan},
};
const dispatch::Service kService{"durable", "Endpoint", kMethods, std::size(kMethods), {}};

}  // namespace

int main(int argc, char** argv) {
  std::string listen, log;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--listen") listen = argv[i + 1];
    else if (a == "--log") log = argv[i + 1];
    else if (a == "--log-input") log_input = std::string(argv[i + 1]) == "yes";
    else if (a == "--log-start") log_start = std::string(argv[i + 1]) == "yes";
  }
  if (listen.empty() || log.empty()) {
    std::fprintf(stderr, "usage: durable_endpoint --listen HOST:PORT --log FILE\n");
    return 2;
  }
  log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    std::fprintf(stderr, "durable_endpoint: cannot open %s\n", log.c_str());
    return 2;
  }
  auto address = dispatch::parse_listen_address(listen);
  if (!address.ok()) {
    std::fprintf(stderr, "durable_endpoint: %s\n", address.error().what());
    return 2;
  }
  dispatch::DispatchTable table{&kService, &dispatch::function_service()};
  dispatch::ServerOptions options;
  options.host = address->first;
  options.port = address->second;
  options.workers = 8;
  options.logger = dispatch::Logger(dispatch::LogLevel::warn);
  // Only signed Run calls are served when DISPATCH_VERIFICATION_KEY is set.
  auto key = dispatch::security::VerificationKey::from_env();
  if (!key.ok()) {
    std::fprintf(stderr, "durable_endpoint: %s\n", key.error().what());
    return 2;
  }
  if (key->has_value()) {
    auto verifier = std::make_shared<dispatch::security::Verifier>(**key);
    options.authenticate = [verifier](const dispatch::RequestInfo& r) -> dispatch::Result<void> {
      dispatch::security::HttpRequestView view;
      view.method = r.method;
      view.target = r.path;
      view.authority = r.authority;
      view.body = r.body;
      view.header = [&r](std::string_view name) { return r.header(name); };
      return verifier->verify(view);
    };
  }
  dispatch::Server server(table, options);
  server.handle_signals();
  return server.run().ok() ? 0 : 1;
}
