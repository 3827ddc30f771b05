// "ours" in the transport benchmark: the stubs dispatch-gen generated from
// transport_api.h, through dispatch::HttpClient (one client, hence its own
// keep-alive connection, per benchmark connection) against dispatch::Server
// with its default threads (max(cores, 8) I/O threads running quick calls inline,
// workers = cores). Per-call logging
// is at warn, as a production server under load would run; gRPC logs nothing
// per call either.
// "ours-signed" is the same with RFC 9421 Ed25519 signatures, through the
// runtime's built-in support: the client signs every request
// (HttpClientOptions::signer) and the server verifies each before
// decoding (ServerOptions::verifier), as dispatchd and a verifying endpoint
// configured from DISPATCH_SIGNING_KEY / DISPATCH_VERIFICATION_KEY do.
//
// Not for: testing the transport (runtime/src/transport has those tests).
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "transport_api.dispatch.h"
#include "transport_systems.h"

namespace bench {
namespace {

namespace security = dispatch::security;

// Server and load generator are separate processes; both derive the key pair
// from this seed. A benchmark key, not a secret.
security::SigningKey bench_key() {
  static const std::string seed = "dispatch-bench-ed25519-seed-0032";
  auto key = security::SigningKey::from_seed(seed);
  if (!key.ok()) throw std::runtime_error("ours-signed: " + key.error().message());
  return *key;
}

class OursServer final : public BenchServer {
 public:
  explicit OursServer(bool verify) : table_{&bench_transport::remote::transport_api_service()} {
    dispatch::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.logger = dispatch::Logger(dispatch::LogLevel::warn);
    if (verify) options.verifier = std::make_shared<security::Verifier>(bench_key().public_key());
    // To compare thread counts (docs/benchmarks.md); the default otherwise.
    if (const char* n = std::getenv("BENCH_IO_THREADS")) options.io_threads = std::stoul(n);
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
  OursConnection(int port, Payload payload, bool sign)
      : client_("http://127.0.0.1:" + std::to_string(port), client_options(sign)), payload_(payload) {
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
  static dispatch::HttpClientOptions client_options(bool sign) {
    dispatch::HttpClientOptions options;
    options.async_threads = 1;  // the benchmark makes blocking calls only
    if (sign) options.signer = std::make_shared<security::Signer>(bench_key());
    return options;
  }

  dispatch::HttpClient client_;
  Payload payload_;
  std::vector<std::uint8_t> data_;
};

}  // namespace

std::unique_ptr<BenchServer> serve_ours() { return std::make_unique<OursServer>(false); }

ConnectionFactory connect_ours(int port, Payload payload) {
  return [port, payload](int) -> std::unique_ptr<Connection> {
    return std::make_unique<OursConnection>(port, payload, false);
  };
}

std::unique_ptr<BenchServer> serve_ours_signed() { return std::make_unique<OursServer>(true); }

ConnectionFactory connect_ours_signed(int port, Payload payload) {
  return [port, payload](int) -> std::unique_ptr<Connection> {
    return std::make_unique<OursConnection>(port, payload, true);
  };
}

}  // namespace bench
