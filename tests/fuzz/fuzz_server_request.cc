// libFuzzer target: the server's request path from raw bytes, without a
// socket. Bytes go through Beast's HTTP/1.1 request parser with the server's
// limits, then through the same pure functions http_server.cc's
// Session::handle() and run_call() use, in the same order: routing
// (DispatchTable::find), content-type negotiation, Connect-Timeout-Ms and
// Dispatch-Attempt parsing, JSON -> binary (JsonCodec over the service's
// embedded descriptor), invoke, binary -> JSON, and the JSON error body. Each
// refusal must be a dispatch::Error with a message; nothing may crash or
// throw past these boundaries, and every error body must read back as the
// same code.
//
// Why not the server itself: the transport has no entry point that handles a
// parsed request without I/O (Session::handle() lives on a socket's strand),
// so the routing steps are mirrored here; docs/reliability.md says what an
// entry point would add. Not for: timeouts and connection handling (the
// bad-input test in tests/badinput does those over real sockets).
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "connect.h"
#include "dispatch/error.h"
#include "dispatch/server.h"
#include "dispatch/service.h"
#include "test_service.h"

namespace {

namespace http = boost::beast::http;
namespace connect = dispatch::connect;
using dispatch::Code;
using dispatch::Error;

struct Fixture {
  dispatch::DispatchTable table{&dispatch::testing::test_service()};
  std::unique_ptr<connect::JsonCodec> codec =
      std::move(*connect::JsonCodec::create(dispatch::testing::test_service().file_descriptor));
  dispatch::ServerOptions limits;
};

// Every refusal the server sends is this body; it must read back whole.
void check_error_body(const Error& error) {
  if (error.message().empty()) std::abort();
  const std::string body = connect::error_to_json(error);
  const Error back = connect::error_from_json(body, dispatch::code_to_http_status(error.code()));
  if (back.code() != error.code()) std::abort();
}

void handle(const Fixture& f, const http::request<http::string_body>& req) {
  const std::string_view target(req.target().data(), req.target().size());
  const dispatch::Method* method = f.table.find(target);
  if (method == nullptr || req.method() != http::verb::post) {
    return check_error_body(Error(Code::unimplemented, "no function is served at " +
                                                           std::string(target.substr(0, 200))));
  }
  const auto content_type = req[http::field::content_type];
  const auto encoding =
      connect::encoding_from_content_type(std::string_view(content_type.data(), content_type.size()));
  if (!encoding) {
    return check_error_body(
        Error(Code::unimplemented, "content type '" + std::string(content_type) + "' is not supported"));
  }
  dispatch::CallContext context;
  if (auto v = req.find("connect-timeout-ms"); v != req.end()) {
    auto timeout = connect::parse_timeout(std::string_view(v->value().data(), v->value().size()));
    if (!timeout.ok()) return check_error_body(timeout.error());
  }
  if (auto v = req.find("dispatch-attempt"); v != req.end()) {
    auto attempt = connect::parse_attempt(std::string_view(v->value().data(), v->value().size()));
    if (!attempt.ok()) return check_error_body(attempt.error());
    context.attempt = *attempt;
  }
  // "slow" sleeps for as long as the request asks and "gate" blocks until a
  // test opens it: both are for timing tests, not parsing.
  if (method->name == std::string_view("slow") || method->name == std::string_view("gate")) return;
  std::string body = req.body();
  if (*encoding == connect::Encoding::json) {
    auto binary = f.codec->to_binary(method->request_type, body.empty() ? "{}" : body);
    if (!binary.ok()) return check_error_body(binary.error());
    body = std::move(*binary);
  }
  auto result = f.table.invoke(*method, body, context);
  if (!result.ok()) return check_error_body(result.error());
  if (*encoding == connect::Encoding::json) {
    auto json = f.codec->to_json(method->response_type, *result);
    if (!json.ok()) return check_error_body(json.error());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fixture;
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(fixture.limits.max_body_bytes);
  parser.header_limit(static_cast<std::uint32_t>(fixture.limits.max_header_bytes));
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec == http::error::need_more) {
    // The input ended mid-request: what the peer closing means to the parser.
    ec = {};
    parser.put_eof(ec);
  }
  if (ec || !parser.is_done()) {
    // The server answers a malformed request with this error body.
    check_error_body(Error(Code::invalid_argument, "malformed HTTP request: " + ec.message()));
    return 0;
  }
  handle(fixture, parser.get());
  return 0;
}
