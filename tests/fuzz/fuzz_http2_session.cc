// libFuzzer target: an HTTP/2 connection's input, as the server reads it,
// without a socket. The client preface is prepended (so the fuzzer starts
// past it) and the bytes go to transport::Http2Session with the server's
// gRPC handling (GrpcCalls) over the test service: nghttp2's framing and
// HPACK, our stream bookkeeping, message framing, the calls and their
// answers, and streams that are not gRPC (Connect and plain HTTP, made
// HTTP/1.1 requests for RequestHandler::serve()). Quick calls run inline,
// as on an I/O thread. Nothing may crash,
// and the session's output must always be readable.
//
// Not for: timeouts and socket I/O (grpc_server_test.cc does those).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transport/grpc_calls.h"
#include "transport/http2_session.h"
#include "transport/request_handler.h"
#include "transport/test_service.h"

namespace {

using namespace dispatch::transport;

// The test service without "slow", "gate" and "wait" (they wait; this is
// for parsing).
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
    options.logger = dispatch::Logger(dispatch::LogLevel::off);
    options.max_body_bytes = 4096;
    options.max_header_bytes = 2048;
    options.max_concurrent_streams = 8;
    handler.emplace(table, options);
  }
  dispatch::DispatchTable table{&fuzz_service()};
  dispatch::ServerOptions options;
  std::optional<RequestHandler> handler;
};

class InlineHost final : public GrpcCalls::Host {
 public:
  GrpcCalls* calls = nullptr;
  void run(int32_t stream, RequestHandler::Place, std::function<GrpcAnswer()> call) override {
    calls->deliver(stream, call());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  static const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  InlineHost host;
  Http2Limits limits;
  limits.max_concurrent_streams = 8;
  limits.max_header_bytes = 2048;
  limits.held_budget = 64 * 1024;
  Http2Session* session_ptr = nullptr;
  // GrpcCalls and the session refer to each other, as in Http2Connection.
  struct Pair {
    Pair(const RequestHandler& h, InlineHost& host, const Http2Limits& l) : calls(session, h, host), session(calls, l) {}
    GrpcCalls calls;
    Http2Session session;
  } pair(*fixture.handler, host, limits);
  host.calls = &pair.calls;
  session_ptr = &pair.session;
  std::string out;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Fed in two pieces, so frames split across reads are exercised too.
  const std::size_t half = size / 2;
  auto first = session_ptr->receive(kPreface + std::string(input.substr(0, half)));
  session_ptr->take_output(out);
  if (first.ok()) {
    (void)session_ptr->receive(input.substr(half));
    session_ptr->take_output(out);
  }
  // The output starts with our SETTINGS frame: 9-byte header, type 4.
  if (out.size() < 9 || out[3] != 4) std::abort();
  return 0;
}
