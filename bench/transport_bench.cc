// bench-transport: the transport benchmark's one binary, used twice by
// bench/run so that server and load generator are separate processes (as in
// production; neither steals the other's allocator or scheduler quirks):
//   bench-transport list
//   bench-transport serve SYSTEM            prints the port, serves until SIGTERM/SIGINT
//                                           (or until its parent dies)
//   bench-transport load SYSTEM PORT CONNECTIONS add|echo SECONDS [SERVER_PID [IN_FLIGHT]]
//                                           prints one tab-separated row; IN_FLIGHT
//                                           calls at once on each connection (default
//                                           1; more for the gRPC clients only)
//   bench-transport verify-rate SECONDS     raw libsodium Ed25519 verifies/s, one core
//   bench-transport grpc-request SYSTEM add|echo FILE
//                                           writes the call's gRPC request body to FILE
//                                           and prints its method path on SYSTEM
//                                           (grpc or ours) and the size of the right
//                                           answer's body, for h2load
// Rows: system connections payload qps p50_us p99_us calls server_cpu_us
// client_cpu_us (CPU microseconds per call over the measured window, of the
// server process SERVER_PID and of this load process; empty without a pid),
// and, given IN_FLIGHT, the calls in flight per connection.
//
// Not for: formatting tables or JSON (bench/run does that with jq).
#include <signal.h>
#include <sys/prctl.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "load.h"
#include "transport_systems.h"
#include "verify_rate.h"

namespace bench {

namespace {

const System& find_system(std::string_view name) {
  for (const auto& s : systems()) {
    if (name == s.name) return s;
  }
  std::string known;
  for (const auto& s : systems()) known += std::string(known.empty() ? "" : ", ") + s.name;
  throw std::invalid_argument("unknown system '" + std::string(name) + "' (built in: " + known + ")");
}

long parse_number(std::string_view what, const char* text, long min, long max) {
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
    throw std::invalid_argument(std::string(what) + " must be an integer in [" + std::to_string(min) + ", " +
                                std::to_string(max) + "], got '" + text + "'");
  }
  return value;
}

Payload parse_payload(std::string_view text) {
  if (text == "add") return Payload::add;
  if (text == "echo") return Payload::echo;
  throw std::invalid_argument("payload must be 'add' or 'echo', got '" + std::string(text) + "'");
}

int usage() {
  std::cerr << "usage: bench-transport list\n"
               "       bench-transport serve SYSTEM\n"
               "       bench-transport load SYSTEM PORT CONNECTIONS add|echo SECONDS [SERVER_PID [IN_FLIGHT]]\n"
               "       bench-transport verify-rate SECONDS\n"
               "       bench-transport grpc-request grpc|ours add|echo FILE\n";
  return 2;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string_view command = argv[1];
  if (command == "list" && argc == 2) {
    for (const auto& s : systems()) std::cout << s.name << '\n';
    return 0;
  }
  if (command == "serve" && argc == 3) {
    // Block the stop signals before any server thread exists, so every
    // thread inherits the mask and only sigwait() below receives them.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    // A killed bench/run must not leave servers behind.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    auto server = find_system(argv[2]).serve();
    std::cout << server->port() << std::endl;
    int received = 0;
    sigwait(&stop, &received);
    return 0;  // ~server stops it
  }
  if (command == "load" && argc >= 7 && argc <= 9) {
    const System& system = find_system(argv[2]);
    int port = static_cast<int>(parse_number("PORT", argv[3], 1, 65535));
    LoadOptions options;
    options.connections = static_cast<int>(parse_number("CONNECTIONS", argv[4], 1, 1024));
    Payload payload = parse_payload(argv[5]);
    options.duration = std::chrono::seconds(parse_number("SECONDS", argv[6], 1, 600));
    if (argc >= 8) options.cpu_of_pid = static_cast<int>(parse_number("SERVER_PID", argv[7], 1, 1 << 30));
    if (argc == 9) options.in_flight = static_cast<int>(parse_number("IN_FLIGHT", argv[8], 1, 1000));
    if (options.in_flight > 1 && !system.multiplexes) {
      throw std::invalid_argument(std::string(system.name) +
                                  "'s client makes one call at a time on a connection: IN_FLIGHT must be 1 for it");
    }
    LoadResult r = run_closed_loop(system.connect(port, payload), options);
    if (r.calls == 0) throw std::runtime_error("no call completed in the measured window");
    auto per_call = [&](double cpu_s) {
      return cpu_s < 0 ? std::string() : std::to_string(cpu_s * 1e6 / static_cast<double>(r.calls));
    };
    std::printf("%s\t%d\t%s\t%.0f\t%.1f\t%.1f\t%llu\t%s\t%s%s\n", system.name, options.connections, argv[5], r.qps,
                r.p50_us, r.p99_us, static_cast<unsigned long long>(r.calls), per_call(r.server_cpu_s).c_str(),
                per_call(r.client_cpu_s).c_str(), argc == 9 ? ("\t" + std::to_string(options.in_flight)).c_str() : "");
    return 0;
  }
  if (command == "grpc-request" && argc == 5) {
    const std::string_view system = argv[2];
    const Payload payload = parse_payload(argv[3]);
    const char* service = system == "grpc"   ? "/grpcbench.Bench/"
                          : system == "ours" ? "/bench_transport.TransportApiService/"
                                             : nullptr;
    if (service == nullptr) {
      throw std::invalid_argument("grpc-request: SYSTEM must be 'grpc' or 'ours', got '" + std::string(system) + "'");
    }
    const std::string body = grpc_request_body(payload);
    std::FILE* f = std::fopen(argv[4], "wb");
    if (f == nullptr || std::fwrite(body.data(), 1, body.size(), f) != body.size() || std::fclose(f) != 0) {
      throw std::runtime_error(std::string("grpc-request: cannot write ") + argv[4]);
    }
    std::printf("%s%s %zu\n", service, argv[3], grpc_answer_body_bytes(payload));
    return 0;
  }
  if (command == "verify-rate" && argc == 3) {
    double seconds = static_cast<double>(parse_number("SECONDS", argv[2], 1, 600));
    std::printf("%.0f\n", ed25519_verify_rate(seconds));
    return 0;
  }
  return usage();
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  try {
    return bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench-transport: " << e.what() << '\n';
    return 1;
  }
}
