// A Dispatch endpoint for the cross-process durability tests: serves
// durable.Endpoint/record and the protocol's Run route. Each execution
// appends "<dispatch id> <attempt>\n" to a log file with one write(2), so the
// line survives a kill -9 of this process, and answers its input back.
//
//   durable_endpoint --listen 127.0.0.1:PORT --log seen.log
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

#include "dispatch/durable/function_service.h"
#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/server.h"

namespace {

int log_fd = -1;

dispatch::Result<std::string> record(const dispatch::MethodCall& method_call) {
  const dispatch::CallContext& call = dispatch::this_call();
  // A little work, so that kills land while calls are in flight.
  thread_local std::mt19937 rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
  std::string line = call.dispatch_id + " " + std::to_string(call.attempt) + "\n";
  if (::write(log_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    throw dispatch::Error(dispatch::Code::unavailable, "could not append to the log");
  }
  return std::string(method_call.request);
}

const dispatch::Method kMethods[] = {
    {"record", "/durable.Endpoint/record", "durable.RecordRequest", "durable.RecordResponse", &record},
};
const dispatch::Service kService{"durable", "Endpoint", kMethods, 1, {}};

}  // namespace

int main(int argc, char** argv) {
  std::string listen, log;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--listen") listen = argv[i + 1];
    else if (a == "--log") log = argv[i + 1];
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
