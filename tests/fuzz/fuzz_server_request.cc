// libFuzzer target: the server's request path from raw bytes, without a
// socket. The bytes go to transport::RequestHandler::serve_bytes(), the same
// code dispatch::Server runs for every request it reads: Beast's HTTP/1.1
// parser with the server's limits, routing, the Connect checks
// (Connect-Protocol-Version, Content-Encoding, Connect-Timeout-Ms,
// Dispatch-Attempt), JSON -> binary over the service's embedded descriptor,
// the call, binary -> JSON and the JSON error body. Nothing may crash or
// throw; every answer must be well formed, and every error body must read
// back as a Connect error with a message.
//
// Not for: timeouts and connection handling (the bad-input test in
// tests/badinput does those over real sockets).
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/error.h"
#include "dispatch/core/service.h"
#include "dispatch/transport/server.h"
#include "transport/connect.h"
#include "transport/request_handler.h"
#include "transport/test_service.h"

namespace {

namespace http = boost::beast::http;
namespace connect = dispatch::connect;

// The test service without "slow" (sleeps as long as asked), "gate" and
// "wait" (block until a test opens the gate): they are for timing tests,
// not parsing.
const dispatch::Service& fuzz_service() {
  static const std::vector<dispatch::Method> methods = [] {
    const dispatch::Service& all = dispatch::testing::test_service();
    std::vector<dispatch::Method> kept;
    for (std::size_t i = 0; i < all.method_count; ++i) {
      const auto handler = all.methods[i].handler;
      if (handler != &dispatch::testing::slow && handler != &dispatch::testing::gated) kept.push_back(all.methods[i]);
    }
    return kept;
  }();
  static const dispatch::Service service{"t", "TService", methods.data(), methods.size(),
                                         dispatch::testing::test_service().file_descriptor};
  return service;
}

struct Fixture {
  Fixture() {
    options.logger = dispatch::Logger(dispatch::LogLevel::error, [](dispatch::LogLevel, std::string_view) {});
    // Small limits, so the fuzzer reaches them.
    options.max_body_bytes = 4096;
    options.max_header_bytes = 2048;
    handler.emplace(table, options);
  }
  dispatch::DispatchTable table{&fuzz_service()};
  dispatch::ServerOptions options;
  std::optional<dispatch::transport::RequestHandler> handler;
};

void check(const dispatch::transport::Response& response) {
  const unsigned status = response.result_int();
  if (status < 200 || status > 599) std::abort();
  if (response[http::field::content_length] != std::to_string(response.body().size())) std::abort();
  if (status == 200) return;
  if (response[http::field::content_type] != "application/json") std::abort();
  const dispatch::Error error = connect::error_from_json(response.body(), static_cast<int>(status));
  // The body is a Connect error of our own making, not a stand-in derived
  // from the status.
  if (error.code() == dispatch::Code::ok || error.message().empty()) std::abort();
  if (response.body().find("\"code\":") == std::string::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  auto response = fixture.handler->serve_bytes(std::string_view(reinterpret_cast<const char*>(data), size));
  if (response) check(*response);
  return 0;
}
