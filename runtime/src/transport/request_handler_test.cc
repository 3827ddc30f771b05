// RequestHandler without a socket: raw request bytes in, the server's answer
// out, and the bookkeeping that decides where calls run (is_quick).
#include "transport/request_handler.h"

#include <gtest/gtest.h>

#include <boost/beast/http/parser.hpp>

#include <sodium.h>

#include <cctype>
#include <chrono>
#include <memory>
#include <thread>

#include "transport/grpc_framing.h"
#include "transport/test_service.h"

namespace dispatch::transport {
namespace {

using testing::post;

class RequestHandlerTest : public ::testing::Test {
 protected:
  RequestHandlerTest() { options_.logger = Logger(LogLevel::error, [](LogLevel, std::string_view) {}); }
  RequestHandler& handler() {
    if (!handler_) handler_ = std::make_unique<RequestHandler>(table_, options_);
    return *handler_;
  }
  Response answer(std::string_view bytes) {
    auto response = handler().serve_bytes(bytes);
    EXPECT_TRUE(response.has_value()) << "no answer to: " << bytes;
    return response ? *response : Response{};
  }
  static std::string code_of(const Response& r) {
    return std::string(code_name(connect::error_from_json(r.body(), static_cast<int>(r.result_int())).code()));
  }

  DispatchTable table_{&dispatch::testing::test_service()};
  ServerOptions options_;
  std::unique_ptr<RequestHandler> handler_;
};

TEST_F(RequestHandlerTest, ProbesAnswerForKnativeAndOpenFaasAndReadinessFailsWhileDraining) {
  auto get = [&](const char* path) {
    return answer(std::string("GET ") + path + " HTTP/1.1\r\nHost: t\r\n\r\n").result_int();
  };
  for (const char* path : {"/healthz", "/health/liveness", "/health/readiness", "/_/health", "/_/ready"}) {
    EXPECT_EQ(get(path), 200u) << path;
  }
  handler().set_draining();
  EXPECT_EQ(get("/health/readiness"), 503u);
  EXPECT_EQ(get("/_/ready"), 503u);
  EXPECT_EQ(get("/health/liveness"), 200u);
  EXPECT_EQ(get("/healthz"), 200u);
}

// RFC 9112 6.3: a Transfer-Encoding that does not end in chunked leaves the
// body's length unknown; reading the request as having no body would run
// its body as the next request (smuggling). Refused, and the connection
// closed; other transfer codings are not implemented (501).
TEST_F(RequestHandlerTest, ATransferEncodingNotEndingInChunkedIsRefusedAndCloses) {
  namespace http = boost::beast::http;
  const std::string smuggled = post("/t.TService/add", "application/proto", testing::varint_field(1, 1));
  auto with_coding = [&](const std::string& codings) {
    return "POST /t.TService/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nTransfer-Encoding: " +
           codings + "\r\n\r\n" + smuggled;
  };
  for (const char* codings : {"chunked, identity", "identity", "gzip", "chunked, chunked", "chunked;x=1, br"}) {
    const Response r = answer(with_coding(codings));
    EXPECT_EQ(r.result_int(), 400u) << codings << " -> " << r.body();
    EXPECT_EQ(code_of(r), "invalid_argument") << codings;
    EXPECT_NE(r.body().find("does not end in chunked"), std::string::npos) << r.body();
    EXPECT_FALSE(r.keep_alive()) << codings;
  }
  Response r = answer(
      "POST /t.TService/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nTransfer-Encoding: gzip\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(r.result_int(), 501u) << r.body();
  EXPECT_NE(r.body().find("transfer coding 'gzip' is not supported"), std::string::npos) << r.body();
  EXPECT_FALSE(r.keep_alive());
  // Chunked alone, in any case, is read as ever.
  r = answer("POST /t.TService/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nTransfer-Encoding: "
             "Chunked\r\n\r\n2\r\n" + testing::varint_field(1, 5) + "\r\n0\r\n\r\n");
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(testing::read_varints(r.body())[1], 5u);
}

// RFC 9112 3.2: an HTTP/1.1 request has one Host line; a server accepts an
// absolute-form target and takes its authority as the Host.
TEST_F(RequestHandlerTest, HostIsRequiredOnceAndAnAbsoluteFormTargetIsItsPath) {
  const std::string args = testing::varint_field(1, 40) + testing::varint_field(2, 2);
  auto add = [&](const std::string& target, const std::string& host_lines) {
    return answer("POST " + target + " HTTP/1.1\r\n" + host_lines +
                  "Content-Type: application/proto\r\nContent-Length: " + std::to_string(args.size()) + "\r\n\r\n" +
                  args);
  };
  Response r = add("/t.TService/add", "");
  EXPECT_EQ(r.result_int(), 400u) << r.body();
  EXPECT_NE(r.body().find("needs a Host header"), std::string::npos) << r.body();
  r = add("/t.TService/add", "Host: a\r\nHost: b\r\n");
  EXPECT_EQ(r.result_int(), 400u) << r.body();
  EXPECT_NE(r.body().find("2 Host headers"), std::string::npos) << r.body();
  r = add("http://127.0.0.1:8000/t.TService/add", "Host: elsewhere\r\n");
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(testing::read_varints(r.body())[1], 42u);
  r = add("HTTP://127.0.0.1:8000/t.TService/add?x=1", "");  // its authority is the Host
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  r = add("ftp://127.0.0.1/t.TService/add", "Host: x\r\n");
  EXPECT_EQ(r.result_int(), 400u) << r.body();
  r = add("http:///t.TService/add", "Host: x\r\n");
  EXPECT_EQ(r.result_int(), 400u) << r.body();
  EXPECT_EQ(answer("GET http://x HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 404u);  // the path "/"
  // HTTP/1.0 has no Host rule.
  EXPECT_EQ(answer("GET /healthz HTTP/1.0\r\n\r\n").result_int(), 200u);
}

// The probes and /metrics answer HEAD as GET, without the body (RFC 9110
// 9.3.2); a function's path answers HEAD with 405, as connect-go does.
TEST_F(RequestHandlerTest, ProbesAndMetricsAnswerHead) {
  namespace http = boost::beast::http;
  for (const char* path : {"/healthz", "/health/readiness", "/metrics"}) {
    const Response got = answer(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    const Response head = answer(std::string("HEAD ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(head.result_int(), 200u) << path;
    EXPECT_EQ(head.body(), "") << path;
    EXPECT_EQ(head[http::field::content_type], got[http::field::content_type]) << path;
    EXPECT_NE(head[http::field::content_length], "0") << path;
  }
  EXPECT_EQ(answer("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[http::field::content_length], "3");
  EXPECT_EQ(answer("HEAD /t.TService/echo HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 405u);
}

TEST_F(RequestHandlerTest, Healthz) {
  const Response r = answer("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), "ok\n");
}

TEST_F(RequestHandlerTest, BinaryAndJsonCalls) {
  const std::string args = testing::varint_field(1, 40) + testing::varint_field(2, 2);
  Response r = answer(post("/t.TService/add", "application/proto", args));
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/proto");
  EXPECT_EQ(testing::read_varints(r.body())[1], 42u);
  EXPECT_EQ(r[boost::beast::http::field::content_length], std::to_string(r.body().size()));

  r = answer(post("/t.TService/add", "application/json", R"({"a":"40","b":"2"})"));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/json");
  EXPECT_EQ(r.body(), R"({"result":"42"})");
}

// A query (added by a proxy or client) does not change which function is
// called; an unknown path with a query is still unknown.
TEST_F(RequestHandlerTest, QueryDoesNotChangeTheRoute) {
  const std::string args = testing::varint_field(1, 40) + testing::varint_field(2, 2);
  Response r = answer(post("/t.TService/add?trace=1&x", "application/proto", args));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(testing::read_varints(r.body())[1], 42u);
  r = answer(post("/t.TService/add?", "application/proto", args));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  r = answer(post("/t.TService/nope?add", "application/proto", args));
  EXPECT_EQ(r.result_int(), 404u) << r.body();
  r = answer("GET /t.TService/add?encoding=json HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.result_int(), 405u) << r.body();
  r = answer("GET /healthz?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.result_int(), 200u) << r.body();
}

TEST_F(RequestHandlerTest, EachRefusalHasItsStatusAndCode) {
  struct Case {
    std::string bytes;
    unsigned status;
    std::string code;
  };
  const Case cases[] = {
      {post("/t.TService/nope", "application/proto", ""), 404, "unimplemented"},
      {"GET /t.TService/add HTTP/1.1\r\nHost: x\r\n\r\n", 405, "unimplemented"},
      {post("/t.TService/add", "text/plain", ""), 415, "unimplemented"},
      {post("/t.TService/add", "application/json", "{\"a\":"), 400, "invalid_argument"},
      // Not JSON (RFC 8259), though protobuf 3.21's parser takes them.
      {post("/t.TService/add", "application/json", "{\"a\":1,}"), 400, "invalid_argument"},
      {post("/t.TService/add", "application/json", "{a:1}"), 400, "invalid_argument"},
      {post("/t.TService/add", "application/json", "{'a':1}"), 400, "invalid_argument"},
      {post("/t.TService/add", "application/json", "[1,]"), 400, "invalid_argument"},
      {post("/t.TService/add", "application/proto", "", "Connect-Protocol-Version: 2\r\n"), 400, "invalid_argument"},
      {post("/t.TService/add", "application/proto", "", "Connect-Timeout-Ms: soon\r\n"), 400, "invalid_argument"},
      {post("/t.TService/add", "application/proto", "", "Content-Encoding: br\r\n"), 501, "unimplemented"},
      {post("/t.TService/add", "application/proto", "not gzip", "Content-Encoding: gzip\r\n"), 400, "invalid_argument"},
      {post("/t.TService/fail", "application/proto", ""), 404, "not_found"},
      {post("/t.TService/crash", "application/proto", ""), 500, "internal"},
      {"BR0KEN\r\n\r\n", 400, "invalid_argument"},
  };
  for (const Case& c : cases) {
    const Response r = answer(c.bytes);
    EXPECT_EQ(r.result_int(), c.status) << c.bytes << " -> " << r.body();
    EXPECT_EQ(code_of(r), c.code) << c.bytes << " -> " << r.body();
    EXPECT_EQ(r[boost::beast::http::field::content_type], "application/json") << c.bytes;
  }
}

// Connect's GET (Unary-Get-Request), for a method whose .proto says
// idempotency_level = NO_SIDE_EFFECTS (the test service's echo): the query
// carries the message (percent-encoded, or URL-safe base64 with base64=1,
// gzip with compression=gzip) and its encoding; the answer is a POST's.
// Other methods answer 405 naming what they allow.
std::string percent_encoded(std::string_view bytes) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string base64url(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);
  return out;
}

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
}

TEST_F(RequestHandlerTest, ConnectGetCallsFunctionsWithoutSideEffects) {
  namespace http = boost::beast::http;
  ASSERT_EQ(sodium_init() >= 0, true);
  // Bytes that need escaping and base64's URL-safe digits ('-', '_').
  const std::string bytes = testing::string_field(1, std::string("a+b/c?d&e=f \xfb\xff\xbf", 15));
  Response r = answer(get("/t.TService/echo?encoding=proto&message=" + percent_encoded(bytes)));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r[http::field::content_type], "application/proto");
  EXPECT_EQ(r.body(), bytes);
  r = answer(get("/t.TService/echo?message=" + base64url(bytes) + "&base64=1&encoding=proto&connect=v1&cb=17"));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r.body(), bytes);
  r = answer(get("/t.TService/echo?encoding=json&message=" + percent_encoded(R"({"text": "1 + 1"})")));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_EQ(r.body(), R"({"text":"1 + 1"})");
  // '+' is a space, as in a form: curl --get --data-urlencode writes %2B.
  r = answer(get("/t.TService/echo?encoding=json&message=%7B%22text%22:+%22x%22%7D"));
  EXPECT_EQ(r.body(), R"({"text":"x"})") << r.body();
  r = answer(get("/t.TService/echo?encoding=proto&compression=gzip&base64=1&message=" +
                 base64url(grpc::gzip_compress(bytes))));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r.body(), bytes);
  r = answer(get("/t.TService/echo?encoding=proto&message="));  // the empty message
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r.body(), "");

  struct Case {
    std::string target;
    unsigned status;
    std::string code;
  };
  const Case refused[] = {
      {"/t.TService/echo?message=x", 415, "unimplemented"},
      {"/t.TService/echo?encoding=xml&message=x", 415, "unimplemented"},
      {"/t.TService/echo?encoding=proto&connect=v2", 400, "invalid_argument"},
      {"/t.TService/echo?encoding=proto", 400, "invalid_argument"},  // message is required
      {"/t.TService/echo?encoding=json&base64=1", 400, "invalid_argument"},
      {"/t.TService/echo?encoding=proto&message=%zz", 400, "invalid_argument"},
      {"/t.TService/echo?encoding=proto&message=%4", 400, "invalid_argument"},
      {"/t.TService/echo?encoding=proto&message=a&message=b", 400, "invalid_argument"},
      {"/t.TService/echo?encoding=proto&base64=1&message=a+b", 400, "invalid_argument"},
      {"/t.TService/echo?encoding=json&message=%7B%22text%22:1%7D", 400, "invalid_argument"},
      {"/t.TService/echo?encoding=proto&compression=br&message=a", 501, "unimplemented"},
      {"/t.TService/echo?encoding=proto&compression=gzip&message=a", 400, "invalid_argument"},
      {"/t.TService/add?encoding=proto", 405, "unimplemented"},
  };
  for (const Case& c : refused) {
    r = answer(get(c.target));
    EXPECT_EQ(r.result_int(), c.status) << c.target << " -> " << r.body();
    EXPECT_EQ(code_of(r), c.code) << c.target << " -> " << r.body();
  }
  // "Other values for the base64 parameter will simply be ignored": the
  // message is then percent-encoded as without it.
  for (const char* other : {"2", "yes", "0", ""}) {
    r = answer(get("/t.TService/echo?encoding=proto&base64=" + std::string(other) + "&message=" +
                   percent_encoded(bytes)));
    EXPECT_EQ(r.result_int(), 200u) << other << " -> " << r.body();
    EXPECT_EQ(r.body(), bytes) << other;
  }
  EXPECT_EQ(answer(get("/t.TService/add")).at(http::field::allow), "POST");
  EXPECT_EQ(answer("PUT /t.TService/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").at(http::field::allow),
            "GET, POST");
  // The query's message is held to the body's limit.
  options_.max_body_bytes = 16;
  handler_.reset();
  r = answer(get("/t.TService/echo?encoding=proto&message=" + std::string(17, 'a')));
  EXPECT_EQ(r.result_int(), 413u) << r.body();
  // POST still calls it.
  r = answer(post("/t.TService/echo", "application/proto", "abc"));
  EXPECT_EQ(r.body(), "abc");
}

// Connect unary compression: a gzip request body is inflated (an empty one
// is the empty message, not inflated); the answer is gzip when the client's
// Accept-Encoding (first supported wins) or, without one, its request's
// coding says so and the answer is at least 1 KiB; errors and small answers
// go as they are; an unsupported coding is refused naming the supported ones.
TEST_F(RequestHandlerTest, GzipRequestsAreInflatedAndLargeAnswersGzippedWhenAccepted) {
  namespace http = boost::beast::http;
  const std::string args = testing::varint_field(1, 40) + testing::varint_field(2, 2);
  Response r = answer(post("/t.TService/add", "application/proto", grpc::gzip_compress(args),
                           "Content-Encoding: gzip\r\n"));
  ASSERT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r[http::field::content_encoding], "");  // 2 bytes: not worth gzip
  EXPECT_EQ(testing::read_varints(r.body())[1], 42u);
  r = answer(post("/t.TService/add", "application/json", grpc::gzip_compress(R"({"a":"40","b":"2"})"),
                  "Content-Encoding: GZIP\r\n"));
  ASSERT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r.body(), R"({"result":"42"})");
  r = answer(post("/t.TService/add", "application/proto", "", "Content-Encoding: gzip\r\n"));
  EXPECT_EQ(r.result_int(), 200u) << r.body();

  const std::string big(5000, 'x');
  const std::string echo_args = testing::string_field(1, big);
  auto echoed = [&](const std::string& headers, const std::string& body) {
    return answer(post("/t.TService/echo", "application/proto", body, headers));
  };
  // A weight of 0 refuses a coding (RFC 9110 12.4.2).
  for (const char* refused : {"Accept-Encoding: gzip;q=0, identity\r\n", "Accept-Encoding: GZIP; Q=0.000\r\n",
                              "Content-Encoding: gzip\r\nAccept-Encoding: gzip;q=0\r\n"}) {
    const std::string body =
        std::string(refused).find("Content-Encoding") != std::string::npos ? grpc::gzip_compress(echo_args) : echo_args;
    r = echoed(refused, body);
    EXPECT_EQ(r.result_int(), 200u) << refused << r.body();
    EXPECT_EQ(r[http::field::content_encoding], "") << refused;
  }
  r = echoed("Accept-Encoding: gzip;q=0.001\r\n", echo_args);
  EXPECT_EQ(r[http::field::content_encoding], "gzip");
  r = echoed("Accept-Encoding: br, gzip;q=0.5, identity\r\n", echo_args);
  ASSERT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r[http::field::content_encoding], "gzip");
  EXPECT_LT(r.body().size(), big.size() / 10);
  EXPECT_EQ(r[http::field::content_length], std::to_string(r.body().size()));
  EXPECT_EQ(*grpc::gzip_decompress(r.body(), 1 << 20), echo_args);
  // Without Accept-Encoding, the request's own coding.
  r = echoed("Content-Encoding: gzip\r\n", grpc::gzip_compress(echo_args));
  EXPECT_EQ(r[http::field::content_encoding], "gzip");
  EXPECT_EQ(*grpc::gzip_decompress(r.body(), 1 << 20), echo_args);
  for (const char* plain : {"", "Accept-Encoding: identity, gzip\r\n", "Accept-Encoding: br\r\n",
                            "Content-Encoding: gzip\r\nAccept-Encoding: identity\r\n"}) {
    const std::string body = std::string(plain).find("Content-Encoding") != std::string::npos
                                 ? grpc::gzip_compress(echo_args)
                                 : echo_args;
    r = echoed(plain, body);
    EXPECT_EQ(r[http::field::content_encoding], "") << plain;
    EXPECT_EQ(r.body(), echo_args) << plain;
  }
  // An error answer is not compressed.
  r = answer(post("/t.TService/fail", "application/proto", "", "Accept-Encoding: gzip\r\n"));
  EXPECT_EQ(r.result_int(), 404u);
  EXPECT_EQ(r[http::field::content_encoding], "");
  EXPECT_EQ(code_of(r), "not_found");
  // Unsupported: unimplemented, naming what is.
  r = answer(post("/t.TService/add", "application/proto", args, "Content-Encoding: zstd\r\n"));
  EXPECT_EQ(r.result_int(), 501u);
  EXPECT_EQ(code_of(r), "unimplemented");
  EXPECT_NE(r.body().find("supported: gzip, identity"), std::string::npos) << r.body();
  EXPECT_EQ(r[http::field::accept_encoding], "gzip, identity");
  // A body that inflates past the server's limit is refused before it is
  // all inflated.
  options_.max_body_bytes = 4096;
  handler_.reset();
  r = answer(post("/t.TService/echo", "application/proto", grpc::gzip_compress(std::string(100000, '\0')),
                  "Content-Encoding: gzip\r\n"));
  EXPECT_EQ(r.result_int(), 413u) << r.body();
  EXPECT_EQ(code_of(r), "resource_exhausted");
}

TEST_F(RequestHandlerTest, LimitsAndTruncation) {
  options_.max_body_bytes = 8;
  const Response big = answer(post("/t.TService/echo", "application/proto", std::string(9, 'x')));
  EXPECT_EQ(big.result_int(), 413u);
  EXPECT_FALSE(big.keep_alive());
  EXPECT_NE(big.body().find("limit of 8 bytes"), std::string::npos) << big.body();
  // Bytes that end mid-request: the server would close without answering.
  const std::string whole = post("/t.TService/echo", "application/proto", "1234");
  EXPECT_FALSE(handler().serve_bytes(whole.substr(0, whole.size() - 2)).has_value());
  EXPECT_FALSE(handler().serve_bytes("POST /t.TSer").has_value());
}

Request parse_request(const std::string& bytes) {
  boost::beast::http::request_parser<boost::beast::http::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(bytes), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  return parser.release();
}

// A function that runs longer than inline_limit is no longer quick: its
// calls go to the workers. Others stay quick.
TEST_F(RequestHandlerTest, SlowFunctionStopsBeingQuick) {
  options_.inline_limit = std::chrono::milliseconds(1);
  Request slow = parse_request(post("/t.TService/slow", "application/proto", testing::varint_field(1, 20)));
  Request add = parse_request(post("/t.TService/add", "application/proto", ""));
  Request unknown = parse_request(post("/t.TService/nope", "application/proto", ""));
  EXPECT_TRUE(handler().is_quick(slow));
  EXPECT_TRUE(handler().is_quick(unknown));
  EXPECT_EQ(handler().serve(slow, std::chrono::steady_clock::now()).result_int(), 200u);
  EXPECT_FALSE(handler().is_quick(slow));
  EXPECT_EQ(handler().serve(add, std::chrono::steady_clock::now()).result_int(), 200u);
  EXPECT_TRUE(handler().is_quick(add));
}

// A route that runs another function of its table, as the Dispatch
// protocol's Run does: its request is "<path>|<message>".
const Method* run_target(const DispatchTable& table, std::string_view request) {
  return table.find(request.substr(0, request.find('|')));
}
Result<std::string> run_named(const MethodCall& call) {
  const std::size_t bar = call.request.find('|');
  const Method* target = run_target(call.table, call.request);
  if (target == nullptr || bar == std::string_view::npos) return Error(Code::not_found, "no such function");
  return call.table.invoke(*target, call.request.substr(bar + 1), call.context);
}
const Method kRunNamed{"run", "/r.RService/run", "t.Empty", "t.Empty", &run_named,
                       nullptr, nullptr, false, &run_target};
const Service kRunService{"r", "RService", &kRunNamed, 1, ""};

// Calls through such a route are placed and marked slow by the function
// they run: one slow function does not send every call of the route to the
// workers (dispatchd's calls all arrive through Run).
TEST_F(RequestHandlerTest, ARouteRunningAnotherFunctionIsPlacedByThatFunction) {
  const DispatchTable table{&dispatch::testing::test_service(), &kRunService};
  options_.inline_limit = std::chrono::milliseconds(1);
  RequestHandler handler_with_run(table, options_);
  auto handler = [&]() -> RequestHandler& { return handler_with_run; };
  auto through_run = [](const std::string& target, const std::string& message) {
    return parse_request(post("/r.RService/run", "application/proto", target + "|" + message));
  };
  // serve() takes the body: each request is made afresh.
  auto slow = [&] { return through_run("/t.TService/slow", testing::varint_field(1, 20)); };
  auto add = [&] { return through_run("/t.TService/add", testing::varint_field(1, 2) + testing::varint_field(2, 3)); };
  auto place = [&](Request request) { return handler().place(handler().resolve(request)); };
  EXPECT_EQ(place(slow()), RequestHandler::Place::io_thread);
  Request call = slow();
  Response r = handler().serve(call, std::chrono::steady_clock::now());
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(place(slow()), RequestHandler::Place::workers);
  EXPECT_EQ(place(add()), RequestHandler::Place::io_thread);
  call = add();
  r = handler().serve(call, std::chrono::steady_clock::now());
  EXPECT_EQ(testing::read_varints(r.body())[1], 5u);
  EXPECT_EQ(place(add()), RequestHandler::Place::io_thread);
  // The function itself, called by its own path, is as slow as through the route.
  EXPECT_FALSE(handler().is_quick(parse_request(post("/t.TService/slow", "application/proto", ""))));
  // JSON, compressed or unreadable bodies are placed as the route itself.
  EXPECT_EQ(place(parse_request(post("/r.RService/run", "application/json", "/t.TService/slow|"))),
            RequestHandler::Place::io_thread);
  EXPECT_EQ(&handler().target(kRunNamed, "/t.TService/nope|"), &kRunNamed);
  EXPECT_EQ(place(through_run("/t.TService/nope", "")), RequestHandler::Place::io_thread);
  EXPECT_EQ(&handler().target(kRunNamed, "/t.TService/slow|"), dispatch::testing::test_service().methods + 3);
}

// A route's answer names the function that ran (HttpAnswer::function), and
// the server times it for the quick/slow mark as it times a call; an answer
// naming none marks nothing.
class HookRoute final : public RequestRoute {
 public:
  HookRoute(const Method* slow, bool name_it) : slow_(slow), name_it_(name_it) {}
  bool takes(const RequestInfo& request) const override { return request.path == "/hook"; }
  const Method* function_for(const RequestInfo&) const override { return slow_; }
  HttpAnswer answer(const RequestInfo&, const CallContext&) const override {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    HttpAnswer a;
    a.status = 202;
    if (name_it_) a.function = slow_;
    return a;
  }

 private:
  const Method* slow_;
  bool name_it_;
};

// A route's header lines go out as given, a repeated name as two lines.
TEST_F(RequestHandlerTest, ARouteAnswersHeaderLinesGoOutAsGiven) {
  class Lines final : public RequestRoute {
   public:
    bool takes(const RequestInfo& request) const override { return request.path == "/lines"; }
    const Method* function_for(const RequestInfo&) const override { return nullptr; }
    HttpAnswer answer(const RequestInfo&, const CallContext&) const override {
      HttpAnswer a;
      a.headers = {{"Content-Type", "text/plain"}, {"Link", "</a>"}, {"Link", "</b>"}, {"ce-id", "1"}};
      a.body = "ok";
      return a;
    }
  };
  options_.routes = {std::make_shared<Lines>()};
  const Response r = answer(post("/lines", "text/plain", ""));
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r[boost::beast::http::field::content_type], "text/plain");
  EXPECT_EQ(r["ce-id"], "1");
  EXPECT_EQ(r.count("Link"), 2u);
  EXPECT_EQ(r.body(), "ok");
  EXPECT_EQ(r[boost::beast::http::field::content_length], "2");
}

// A route (CloudEvents, StateFun) reads a gzip body inflated, as the
// Connect path does; a coding it cannot read is refused before it runs.
TEST_F(RequestHandlerTest, ARouteReadsAGzipBodyInflated) {
  class Echo final : public RequestRoute {
   public:
    bool takes(const RequestInfo& request) const override { return request.path == "/echo-route"; }
    const Method* function_for(const RequestInfo&) const override { return nullptr; }
    HttpAnswer answer(const RequestInfo& request, const CallContext&) const override {
      HttpAnswer a;
      a.headers = {{"Content-Type", "text/plain"}};
      a.body = std::string(request.body);
      return a;
    }
  };
  options_.routes = {std::make_shared<Echo>()};
  const std::string text = R"({"n":41,"note":"a tick"})";
  Response r = answer(post("/echo-route", "application/json", grpc::gzip_compress(text), "Content-Encoding: gzip\r\n"));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r.body(), text);
  r = answer(post("/echo-route", "application/json", text));
  EXPECT_EQ(r.body(), text);
  r = answer(post("/echo-route", "application/json", text, "Content-Encoding: br\r\n"));
  EXPECT_EQ(r.result_int(), 501u);
  EXPECT_EQ(code_of(r), "unimplemented");
  r = answer(post("/echo-route", "application/json", text, "Content-Encoding: gzip\r\n"));
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_NE(r.body().find("not valid gzip"), std::string::npos) << r.body();
}

TEST_F(RequestHandlerTest, ARouteAnswerNamingItsFunctionMarksItSlow) {
  const Method* slow = table_.find("/t.TService/slow");
  ASSERT_NE(slow, nullptr);
  options_.inline_limit = std::chrono::milliseconds(1);
  for (bool name_it : {false, true}) {
    options_.routes = {std::make_shared<HookRoute>(slow, name_it)};
    handler_.reset();
    Request hook = parse_request(post("/hook", "application/json", "{}"));
    EXPECT_TRUE(handler().is_quick(hook));
    EXPECT_EQ(handler().serve(hook, std::chrono::steady_clock::now()).result_int(), 202u);
    EXPECT_EQ(handler().is_quick(hook), !name_it) << (name_it ? "named" : "not named");
  }
}

// A function marked slow is quick again after kQuickRunsToReturn calls in a
// row within inline_limit (a quick function preempted once must not stay on
// the workers for good); a long call on the way starts the count again.
TEST_F(RequestHandlerTest, SlowFunctionIsQuickAgainAfterEnoughQuickRunsInARow) {
  // Wide margins both ways, so a preempted short call does not restart the
  // count on a loaded machine.
  options_.inline_limit = std::chrono::milliseconds(50);
  const auto now = [] { return std::chrono::steady_clock::now(); };
  const std::string long_call = post("/t.TService/slow", "application/proto", testing::varint_field(1, 80));
  const std::string short_call = post("/t.TService/slow", "application/proto", "");  // ms = 0
  Request request = parse_request(long_call);
  ASSERT_EQ(handler().serve(request, now()).result_int(), 200u);
  ASSERT_FALSE(handler().is_quick(request));

  const uint32_t n = RequestHandler::kQuickRunsToReturn;
  for (uint32_t i = 0; i + 1 < n; ++i) {
    request = parse_request(short_call);
    ASSERT_EQ(handler().serve(request, now()).result_int(), 200u);
  }
  EXPECT_FALSE(handler().is_quick(request)) << "quick again after " << n - 1 << " quick runs";
  request = parse_request(long_call);  // the count starts again
  ASSERT_EQ(handler().serve(request, now()).result_int(), 200u);
  for (uint32_t i = 0; i + 1 < n; ++i) {
    request = parse_request(short_call);
    ASSERT_EQ(handler().serve(request, now()).result_int(), 200u);
  }
  EXPECT_FALSE(handler().is_quick(request)) << "a long call did not restart the count";
  request = parse_request(short_call);
  ASSERT_EQ(handler().serve(request, now()).result_int(), 200u);
  EXPECT_TRUE(handler().is_quick(request)) << "still slow after " << n << " quick runs in a row";
}

}  // namespace
}  // namespace dispatch::transport
