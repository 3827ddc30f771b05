// What a function sees of its request's headers and what it adds to its
// answer's, over every protocol a server speaks: Connect and gRPC-Web over
// HTTP/1.1, gRPC over HTTP/2, on success and on error. Real gRPC clients'
// metadata: tests/interop/grpc.
#include <gtest/gtest.h>

#include <future>
#include <iterator>
#include <string>

#include "dispatch/core/call_headers.h"
#include "dispatch/transport/binary_header.h"
#include "dispatch/transport/grpc_client.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "transport/grpc_framing.h"
#include "transport/http2_test_client.h"
#include "transport/test_service.h"

namespace dispatch::transport {
namespace {

using testing::Http2TestClient;
using dispatch::testing::RawConnection;

// Reads the request's x-tenant lines and binary x-blob-bin, answers with
// what it saw, and adds headers saying so; fails (after adding them) when
// asked with x-fail.
Result<std::string> meta(const MethodCall&) {
  const CallContext& c = this_call();
  std::string seen;
  for (const std::string& t : c.request_headers->values("x-tenant")) seen += (seen.empty() ? "" : ",") + t;
  if (!add_response_header("x-tenants-seen", seen.empty() ? "-" : seen).ok()) return Error(Code::internal, "add");
  if (auto blob = request_header("X-Blob-Bin")) {
    auto bytes = decode_binary_header(*blob);
    if (!bytes.ok()) return bytes.error();
    // The bytes reversed, sent back as a binary header.
    std::string reversed(bytes->rbegin(), bytes->rend());
    if (!add_response_header("x-blob-bin", encode_binary_header(reversed)).ok()) return Error(Code::internal, "bin");
  }
  // A name the protocol owns is refused, and the call goes on.
  if (add_response_header("grpc-status", "0").ok()) return Error(Code::internal, "grpc-status was taken");
  if (request_header("x-fail")) return Error(Code::not_found, "asked to fail");
  return dispatch::testing::string_field(1, seen);
}

const Method kMethods[] = {{"meta", "/h.HService/meta", "h.MetaRequest", "h.MetaResponse", &meta}};
const Service kService{"h", "HService", kMethods, std::size(kMethods), {}};

class CallHeadersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.cors_origins = {"https://app.example.com"};
    options.host = "127.0.0.1";
    options.port = 0;
    options.logger = Logger(LogLevel::off);
    server_ = std::make_unique<Server>(table_, std::move(options));
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override { server_->stop(); }

  DispatchTable table_{&kService};
  std::unique_ptr<Server> server_;
};

TEST_F(CallHeadersTest, ConnectCallsSeeTheirHeadersAndAnswerWithTheFunctionsOwn) {
  RawConnection c(server_->port());
  c.send(dispatch::testing::post("/h.HService/meta", "application/proto", "",
                                 "X-Tenant: acme\r\nx-tenant: globex\r\nX-Blob-Bin: AQID\r\n"));
  auto r = c.read();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, dispatch::testing::string_field(1, "acme,globex"));
  EXPECT_EQ(r.headers["x-tenants-seen"], "acme,globex");
  EXPECT_EQ(decode_binary_header(r.headers["x-blob-bin"]).value(), std::string("\x03\x02\x01", 3));
  EXPECT_EQ(r.headers["content-type"], "application/proto");
  EXPECT_EQ(r.headers.count("grpc-status"), 0u);

  // An error answer carries them too.
  c.send(dispatch::testing::post("/h.HService/meta", "application/proto", "", "x-tenant: acme\r\nx-fail: 1\r\n"));
  r = c.read();
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("asked to fail"), std::string::npos) << r.body;
  EXPECT_EQ(r.headers["x-tenants-seen"], "acme");

  // A binary header that is not base64 reaches the function as sent, which
  // says what is wrong.
  c.send(dispatch::testing::post("/h.HService/meta", "application/proto", "", "x-blob-bin: %%%\r\n"));
  r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("must be standard base64"), std::string::npos) << r.body;
}

TEST_F(CallHeadersTest, GrpcCallsSeeTheirMetadataAndAnswerWithItInTheFirstBlock) {
  Http2TestClient c(server_->port());
  const Http2TestClient::Headers metadata = {{"content-type", "application/grpc"},
                                         {"te", "trailers"},
                                         {"x-tenant", "acme"},
                                         {"x-tenant", "globex"},
                                         {"x-blob-bin", "AQID"}};
  const int32_t ok = c.request("/h.HService/meta", metadata, grpc::frame_message(""));
  ASSERT_TRUE(c.wait_closed(ok));
  const auto& s = c.stream(ok);
  EXPECT_EQ(Http2TestClient::find(s.headers, ":status"), "200");
  EXPECT_EQ(Http2TestClient::find(s.headers, "content-type"), "application/grpc");
  EXPECT_EQ(Http2TestClient::find(s.headers, "x-tenants-seen"), "acme,globex");
  EXPECT_EQ(decode_binary_header(Http2TestClient::find(s.headers, "x-blob-bin")).value(),
            std::string("\x03\x02\x01", 3));
  EXPECT_EQ(Http2TestClient::find(s.trailers, "grpc-status"), "0");
  EXPECT_EQ(Http2TestClient::find(s.trailers, "x-tenants-seen"), "");
  EXPECT_EQ(s.data, grpc::frame_message(dispatch::testing::string_field(1, "acme,globex")));

  // A failed call answers trailers-only: the status and the function's lines
  // in one block.
  auto failing = metadata;
  failing.emplace_back("x-fail", "1");
  const int32_t failed = c.request("/h.HService/meta", failing, grpc::frame_message(""));
  ASSERT_TRUE(c.wait_closed(failed));
  const auto& f = c.stream(failed);
  EXPECT_TRUE(f.trailers.empty());
  EXPECT_EQ(Http2TestClient::find(f.headers, "grpc-status"), "5");
  EXPECT_EQ(Http2TestClient::find(f.headers, "x-tenants-seen"), "acme,globex");

  // Without metadata of its own, the answer is the fixed one.
  const int32_t plain = c.request("/h.HService/meta", {{"content-type", "application/grpc"}}, grpc::frame_message(""));
  ASSERT_TRUE(c.wait_closed(plain));
  EXPECT_EQ(Http2TestClient::find(c.stream(plain).headers, "x-tenants-seen"), "-");
  EXPECT_EQ(c.status_field(plain, "grpc-status"), "0");
}

TEST_F(CallHeadersTest, GrpcWebCallsSeeTheirHeadersAndAnswerWithTheFunctionsOwn) {
  RawConnection c(server_->port());
  c.send(dispatch::testing::post("/h.HService/meta", "application/grpc-web+proto", grpc::frame_message(""),
                                 "x-grpc-web: 1\r\nx-tenant: acme\r\n"));
  auto r = c.read();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-tenants-seen"], "acme");
  EXPECT_NE(r.body.find("grpc-status: 0"), std::string::npos) << r.body;

  c.send(dispatch::testing::post("/h.HService/meta", "application/grpc-web+proto", grpc::frame_message(""),
                                 "x-grpc-web: 1\r\nx-tenant: acme\r\nx-fail: 1\r\n"));
  r = c.read();
  EXPECT_EQ(r.headers["x-tenants-seen"], "acme");
  EXPECT_EQ(r.headers["grpc-status"], "5");

  // A page calling from an allowed origin may read them.
  c.send(dispatch::testing::post("/h.HService/meta", "application/grpc-web+proto", grpc::frame_message(""),
                                 "x-grpc-web: 1\r\nOrigin: https://app.example.com\r\nx-blob-bin: AQID\r\n"));
  r = c.read();
  EXPECT_EQ(r.headers["access-control-allow-origin"], "https://app.example.com");
  EXPECT_EQ(r.headers["access-control-expose-headers"],
            "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Grpc-Encoding, Grpc-Accept-Encoding, "
            "Content-Encoding, x-tenants-seen, x-blob-bin");
}

// Our clients hand the answer's headers to the caller who asks
// (CallOptions::response_headers), on success and on error, over both
// protocols and both of the HTTP client's paths.
TEST_F(CallHeadersTest, ClientsGiveTheAnswersHeadersToTheCallerWhoAsks) {
  using Lines = std::vector<std::pair<std::string, std::string>>;
  auto value = [](const Lines& lines, const std::string& name) -> std::string {
    for (const auto& [n, v] : lines) {
      if (n == name) return v;
    }
    return "(none)";
  };
  const std::string port = std::to_string(server_->port());
  HttpClient http("http://127.0.0.1:" + port);
  GrpcClient grpc_client("127.0.0.1:" + port);

  for (Client* client : {static_cast<Client*>(&http), static_cast<Client*>(&grpc_client)}) {
    Lines answer{{"stale", "line"}};
    CallOptions options;
    options.headers = {{"x-tenant", "acme"}};
    options.response_headers = &answer;
    ASSERT_TRUE(client->call("/h.HService/meta", "", options).ok());
    EXPECT_EQ(value(answer, "x-tenants-seen"), "acme");
    EXPECT_EQ(value(answer, "stale"), "(none)");  // replaced, not appended to
    for (const auto& [n, v] : answer) EXPECT_NE(n[0], ':') << n;

    options.headers.emplace_back("x-fail", "1");
    auto failed = client->call("/h.HService/meta", "", options);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code(), Code::not_found);
    EXPECT_EQ(value(answer, "x-tenants-seen"), "acme");

    options.headers = {{"x-tenant", "globex"}};
    std::promise<Result<std::string>> done;
    client->call_async("/h.HService/meta", "", options, [&](Result<std::string> r) { done.set_value(std::move(r)); });
    ASSERT_TRUE(done.get_future().get().ok());
    EXPECT_EQ(value(answer, "x-tenants-seen"), "globex");
  }
  // gRPC's status is in the trailers, which come after the metadata.
  Lines answer;
  CallOptions options;
  options.response_headers = &answer;
  ASSERT_TRUE(grpc_client.call("/h.HService/meta", "", options).ok());
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(answer.back(), (std::pair<std::string, std::string>{"grpc-status", "0"}));
}

}  // namespace
}  // namespace dispatch::transport
