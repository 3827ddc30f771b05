// "ours" in the transport benchmark: the stubs dispatch-gen generated from
// transport_api.h, through dispatch::HttpClient (one client, hence its own
// keep-alive connection, per benchmark connection) against dispatch::Server
// with its default threads (1 I/O thread, workers = cores). Per-call logging
// is at warn, as a production server under load would run; gRPC logs nothing
// per call either.
//
// Not for: testing the transport (runtime/src/transport has those tests).
#include <stdexcept>

#include "dispatch/http_client.h"
#include "dispatch/server.h"
#include "transport_api.dispatch.h"
#include "transport_systems.h"

namespace bench {
namespace {

class OursServer final : public BenchServer {
 public:
  OursServer() : table_{&bench_transport::remote::transport_api_service()} {
    dispatch::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.logger = dispatch::Logger(dispatch::LogLevel::warn);
    server_ = std::make_unique<dispatch::Server>(table_, std::move(options));
    auto started = server_->start();
    if (!started.ok()) throw std::runtime_error("ours: " + started.error().message());
  }
  ~OursServer() override { server_->stop(); }
  int port() const override { return server_->port(); }

 private:
  dispatch::DispatchTable table_;
  std::unique_ptr<dispatch::Server> server_;
};

class OursConnection final : public Connection {
 public:
  OursConnection(int port, Payload payload)
      : client_("http://127.0.0.1:" + std::to_string(port), client_options()), payload_(payload) {
    const std::string bytes = echo_payload();
    data_.assign(bytes.begin(), bytes.end());
  }

  void call() override {
    if (payload_ == Payload::add) {
      auto sum = bench_transport::remote::add.try_call(client_, 40, 2);
      if (!sum.ok()) throw std::runtime_error("ours: add failed: " + sum.error().message());
      if (*sum != 42) throw std::runtime_error("ours: add(40, 2) answered " + std::to_string(*sum));
    } else {
      auto echoed = bench_transport::remote::echo.try_call(client_, data_);
      if (!echoed.ok()) throw std::runtime_error("ours: echo failed: " + echoed.error().message());
      if (*echoed != data_) throw std::runtime_error("ours: echo answered other bytes");
    }
  }

 private:
  static dispatch::HttpClientOptions client_options() {
    dispatch::HttpClientOptions options;
    options.async_threads = 1;  // the benchmark makes blocking calls only
    return options;
  }

  dispatch::HttpClient client_;
  Payload payload_;
  std::vector<std::uint8_t> data_;
};

}  // namespace

std::unique_ptr<BenchServer> serve_ours() { return std::make_unique<OursServer>(); }

ConnectionFactory connect_ours(int port, Payload payload) {
  return [port, payload](int) -> std::unique_ptr<Connection> {
    return std::make_unique<OursConnection>(port, payload);
  };
}

}  // namespace bench
