// bench-events: CloudEvents delivered to a generated [[dispatch::event]]
// function beside the same function called over Connect, on the same
// server. bench/run starts one server and runs every mode's load against it
// from a second process:
//   bench-events serve                          prints the port, serves until SIGTERM/SIGINT
//                                               (or until its parent dies)
//   bench-events load PORT CONNECTIONS MODE SECONDS
//                                               prints one tab-separated row
// MODE: connect (application/proto), connect-json, binary (ce- headers,
// JSON data), binary-proto (ce- headers, application/protobuf data),
// structured (application/cloudevents+json). Every mode is the same
// keep-alive HTTP/1.1 client (Boost.Beast, one connection per thread), so
// the rows differ only in what the server does with the request; each
// answer is checked (status, reply type, the function's result).
// Rows: mode connections qps p50_us p99_us calls.
//
// Not for: formatting tables or JSON (bench/run does that with jq), or
// testing the events layer (runtime/src/events, tests/generated do).
#include <signal.h>
#include <sys/prctl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/events/event_route.h"
#include "dispatch/transport/server.h"
#include "events_api.dispatch.h"
#include "load.h"

namespace bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Stub = bench_events::remote::on_tick_stub;

constexpr std::int32_t kN = 41;

struct Mode {
  const char* name;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string target;
};

const std::vector<std::pair<std::string, std::string>>& ce_headers() {
  static const std::vector<std::pair<std::string, std::string>> h = {
      {"ce-specversion", "1.0"}, {"ce-id", "tick-1"}, {"ce-source", "/bench"}, {"ce-type", "bench.tick"}};
  return h;
}

Mode mode(std::string_view name) {
  const bench_events::Tick tick{kN, "a tick of the events benchmark"};
  if (name == "connect" || name == "connect-json") {
    Mode m{name == "connect" ? "connect" : "connect-json", {}, {}, Stub::path};
    if (name == "connect") {
      m.headers = {{"Content-Type", "application/proto"}};
      auto request = Stub::encode_request(tick);
      if (!request.ok()) throw std::runtime_error("encoding the request: " + request.error().message());
      m.body = *request;
    } else {
      m.headers = {{"Content-Type", "application/json"}};
      m.body = R"({"tick":{"n":41,"note":"a tick of the events benchmark"}})";
    }
    return m;
  }
  if (name == "binary" || name == "binary-proto") {
    Mode m{name == "binary" ? "binary" : "binary-proto", ce_headers(), {}, "/"};
    if (name == "binary") {
      m.headers.emplace_back("Content-Type", "application/json");
      m.body = R"({"n":41,"note":"a tick of the events benchmark"})";
    } else {
      m.headers.emplace_back("Content-Type", "application/protobuf");
      m.body = bench_events::events_api_wire::encode(tick);
    }
    return m;
  }
  if (name == "structured") {
    return Mode{"structured",
                {{"Content-Type", "application/cloudevents+json"}},
                R"({"specversion":"1.0","id":"tick-1","source":"/bench","type":"bench.tick",)"
                R"("datacontenttype":"application/json","data":{"n":41,"note":"a tick of the events benchmark"}})",
                "/"};
  }
  throw std::invalid_argument("MODE must be connect, connect-json, binary, binary-proto or structured, got '" +
                              std::string(name) + "'");
}

class HttpConnection final : public Connection {
 public:
  HttpConnection(int port, const Mode& m) : mode_(m), stream_(io_) {
    asio::ip::tcp::resolver resolver(io_);
    stream_.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
    request_ = http::request<http::string_body>(http::verb::post, mode_.target, 11);
    request_.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [n, v] : mode_.headers) request_.set(n, v);
    request_.body() = mode_.body;
    request_.prepare_payload();
  }

  void call() override {
    http::write(stream_, request_);
    http::response<http::string_body> response;
    http::read(stream_, buffer_, response);
    if (response.result_int() != 200) {
      throw std::runtime_error(std::string(mode_.name) + ": status " + std::to_string(response.result_int()) + ": " +
                               response.body());
    }
    check(response);
  }

 private:
  void check(const http::response<http::string_body>& response) const {
    const std::string_view name = mode_.name;
    if (name == "connect") {
      auto tally = Stub::decode_reply(response.body());
      if (!tally.ok() || tally->n != kN + 1) throw std::runtime_error("connect: wrong answer");
    } else if (name == "binary" || name == "binary-proto") {
      if (response["ce-type"] != "bench.tallied") throw std::runtime_error(std::string(name) + ": not a reply event");
      if (name == "binary" && response.body() != R"({"n":42})") {
        throw std::runtime_error("binary: wrong reply data " + response.body());
      }
    } else if (response.body().find("42") == std::string::npos) {
      throw std::runtime_error(std::string(name) + ": wrong answer " + response.body());
    }
  }

  const Mode mode_;
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
};

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

int usage() {
  std::cerr << "usage: bench-events serve\n"
               "       bench-events load PORT CONNECTIONS connect|connect-json|binary|binary-proto|structured "
               "SECONDS\n";
  return 2;
}

int serve() {
  // Block the stop signals before any server thread exists, so every thread
  // inherits the mask and only sigwait() below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  // A killed bench/run must not leave the server behind.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  dispatch::DispatchTable table{&bench_events::remote::events_api_service()};
  dispatch::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  // Per-event info lines would measure stderr, not the runtime.
  options.logger = dispatch::Logger(dispatch::LogLevel::warn);
  auto route = dispatch::events::event_route(table);
  if (!route.ok()) throw std::runtime_error("the event route: " + route.error().message());
  options.routes.push_back(*route);
  dispatch::Server server(table, std::move(options));
  if (auto started = server.start(); !started.ok()) throw std::runtime_error(started.error().message());
  std::cout << server.port() << std::endl;
  int received = 0;
  sigwait(&stop, &received);
  server.stop();
  return 0;
}

int run(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "serve") return serve();
  if (argc != 6 || std::string_view(argv[1]) != "load") return usage();
  const int port = static_cast<int>(parse_number("PORT", argv[2], 1, 65535));
  LoadOptions options;
  options.connections = static_cast<int>(parse_number("CONNECTIONS", argv[3], 1, 1024));
  const Mode m = mode(argv[4]);
  options.duration = std::chrono::seconds(parse_number("SECONDS", argv[5], 1, 600));
  LoadResult r = run_closed_loop([port, &m](int) { return std::make_unique<HttpConnection>(port, m); }, options);
  if (r.calls == 0) throw std::runtime_error("no call completed in the measured window");
  std::printf("%s\t%d\t%.0f\t%.1f\t%.1f\t%llu\n", m.name, options.connections, r.qps, r.p50_us, r.p99_us,
              static_cast<unsigned long long>(r.calls));
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  try {
    return bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench-events: " << e.what() << '\n';
    return 1;
  }
}
