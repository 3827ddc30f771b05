// libFuzzer target: gRPC-Web requests through the server's request path
// (RequestHandler::serve_bytes), without a socket. The first byte picks the
// content type (binary or text, protobuf or JSON, a health or a table path); the rest is the
// body, wrapped in a well-formed HTTP/1.1 POST so the fuzzer works on the
// gRPC-Web decoding rather than on HTTP parsing (fuzz_server_request does
// that). Every answer must be HTTP 200 with a grpc-status, or a well-formed
// error.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "transport/request_handler.h"
#include "transport/test_service.h"

namespace {

struct Fixture {
  Fixture() {
    options.logger = dispatch::Logger(dispatch::LogLevel::off);
    options.max_body_bytes = 8192;
    handler.emplace(table, options);
  }
  // echo, add, fail and context only: nothing that waits.
  dispatch::DispatchTable table{&dispatch::testing::test_service()};
  dispatch::ServerOptions options;
  std::optional<dispatch::transport::RequestHandler> handler;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  if (size == 0) return 0;
  static const char* kTypes[] = {"application/grpc-web",      "application/grpc-web+proto",
                                 "application/grpc-web-text", "application/grpc-web-text+proto",
                                 "application/grpc-web+json", "Application/gRPC-Web+JSON",
                                 "application/grpc-web-text+json", "application/grpc-web-text+json; charset=utf-8"};
  static const char* kPaths[] = {"/t.TService/echo", "/t.TService/add", "/t.TService/fail",
                                 "/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                 "/grpc.health.v1.Health/Watch", "/t.TService/context"};
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string extra = (data[0] & 0x20) ? "grpc-encoding: gzip\r\ngrpc-accept-encoding: gzip\r\n" : "";
  const std::string request =
      dispatch::testing::post(kPaths[(data[0] >> 2) & 7], kTypes[(data[0] & 3) | ((data[0] >> 4) & 4)], body, extra);
  auto response = fixture.handler->serve_bytes(request);
  if (!response) std::abort();  // a whole request always has an answer
  const unsigned status = response->result_int();
  if (status == 200 && (*response)["grpc-status"].empty() && response->body().empty()) std::abort();
  if (status != 200 && (status < 400 || status > 599)) std::abort();
  return 0;
}
