// gRPC and gRPC-Web on dispatch::Server, seen on the wire: what a good
// client gets (gzip answered in kind, trailers), and what bad input gets
// (each refused with its status or a closed connection, other connections
// unharmed). gRPC C++ and Python clients are in tests/interop/grpc.
#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>

#include <cctype>
#include <chrono>
#include <thread>
#include <vector>

#include "dispatch/metrics/registry.h"
#include "dispatch/transport/server.h"
#include "transport/grpc_framing.h"
#include "transport/http2_test_client.h"
#include "transport/request_handler.h"
#include "transport/test_service.h"

namespace dispatch::transport {
namespace {

using testing::Http2TestClient;
using testing::http2_frame;

const Http2TestClient::Headers kGrpc = {{"content-type", "application/grpc"}, {"te", "trailers"}};

class GrpcServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.logger = Logger(LogLevel::off);
    server_ = std::make_unique<Server>(table_, std::move(options));
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  // add(40, 2) over a fresh connection works: the server still serves.
  void expect_serving() {
    Http2TestClient c(server_->port());
    const int32_t id = c.request("/t.TService/add", kGrpc,
                                 grpc::frame_message(dispatch::testing::varint_field(1, 40) +
                                                     dispatch::testing::varint_field(2, 2)));
    ASSERT_TRUE(c.wait_closed(id));
    EXPECT_EQ(c.status_field(id, "grpc-status"), "0");
    ASSERT_GE(c.stream(id).data.size(), 5u);
    EXPECT_EQ(dispatch::testing::read_varints(c.stream(id).data.substr(5))[1], 42u);
  }

  DispatchTable table_{&dispatch::testing::test_service()};
  std::unique_ptr<Server> server_;
};

// Calls of a function that waits (Method::waits) run on a pool of their
// own: more of them waiting at once than there are workers, as streams of
// one connection, do not hold up a call that needs a worker.
TEST_F(GrpcServerTest, CallsThatWaitHoldUpNoOtherCall) {
  ServerOptions options;
  options.workers = 2;
  options.waiting_threads = 8;
  options.inline_limit = std::chrono::microseconds(0);  // every other call needs a worker
  start(options);
  dispatch::testing::Gate& gate = dispatch::testing::gate();
  gate.reset();
  Http2TestClient c(server_->port());
  std::vector<int32_t> waiting;
  for (int i = 0; i < 6; ++i) waiting.push_back(c.request("/t.TService/wait", kGrpc, grpc::frame_message("")));
  const bool all_waiting = gate.wait_entered(6, std::chrono::seconds(10));
  const int32_t id = c.request("/t.TService/add", kGrpc,
                               grpc::frame_message(dispatch::testing::varint_field(1, 40) +
                                                   dispatch::testing::varint_field(2, 2)));
  const bool added = c.wait_closed(id);
  gate.release();
  ASSERT_TRUE(all_waiting) << "the waiting calls did not all start: they queued for the workers";
  ASSERT_TRUE(added) << "a call that needs a worker waited behind the waiting calls";
  EXPECT_EQ(c.status_field(id, "grpc-status"), "0");
  for (int32_t w : waiting) {
    ASSERT_TRUE(c.wait_closed(w));
    EXPECT_EQ(c.status_field(w, "grpc-status"), "0");
  }
}

TEST_F(GrpcServerTest, AUnaryCallHasHeadersOneMessageAndTrailers) {
  start();
  expect_serving();
  Http2TestClient c(server_->port());
  const int32_t id = c.request("/t.TService/echo", kGrpc, grpc::frame_message("hello"));
  ASSERT_TRUE(c.wait_closed(id));
  auto& s = c.stream(id);
  EXPECT_EQ(Http2TestClient::find(s.headers, ":status"), "200");
  EXPECT_EQ(Http2TestClient::find(s.headers, "content-type"), "application/grpc");
  EXPECT_EQ(s.data, grpc::frame_message("hello"));
  EXPECT_EQ(Http2TestClient::find(s.trailers, "grpc-status"), "0");
}

// The answer's fixed header and trailer blocks survive a body that waits
// on flow control: 300 KB each way, over the client's 64 KiB windows.
TEST_F(GrpcServerTest, AMessageLargerThanTheWindowsKeepsItsHeadersAndTrailers) {
  start();
  Http2TestClient c(server_->port());
  std::string message(300 * 1000, '\0');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i * 7 + i / 1000);
  const int32_t id = c.request("/t.TService/echo", kGrpc, grpc::frame_message(message));
  ASSERT_TRUE(c.wait_closed(id));
  auto& s = c.stream(id);
  const Http2TestClient::Headers expected_headers = {
      {":status", "200"}, {"content-type", "application/grpc"}, {"grpc-accept-encoding", "identity,gzip"}};
  EXPECT_EQ(s.headers, expected_headers);
  EXPECT_EQ(s.data, grpc::frame_message(message));
  const Http2TestClient::Headers expected_trailers = {{"grpc-status", "0"}};
  EXPECT_EQ(s.trailers, expected_trailers);
  // Then a small call on the same connection: nothing of the first is left.
  const int32_t next = c.request("/t.TService/echo", kGrpc, grpc::frame_message("after"));
  ASSERT_TRUE(c.wait_closed(next));
  EXPECT_EQ(c.stream(next).data, grpc::frame_message("after"));
  EXPECT_EQ(c.stream(next).trailers, expected_trailers);
}

TEST_F(GrpcServerTest, GzipIsAnsweredInKind) {
  start();
  Http2TestClient c(server_->port());
  const std::string message(4000, 'x');
  Http2TestClient::Headers h = kGrpc;
  h.emplace_back("grpc-encoding", "gzip");
  h.emplace_back("grpc-accept-encoding", "identity,gzip");
  const int32_t id = c.request("/t.TService/echo", h, grpc::frame_message(grpc::gzip_compress(message), true));
  ASSERT_TRUE(c.wait_closed(id));
  auto& s = c.stream(id);
  EXPECT_EQ(Http2TestClient::find(s.headers, "grpc-encoding"), "gzip");
  ASSERT_GE(s.data.size(), 5u);
  EXPECT_EQ(s.data[0], 1);  // the compressed flag
  EXPECT_LT(s.data.size(), 200u);
  EXPECT_EQ(*grpc::gzip_decompress(s.data.substr(5), 10000), message);
  // A gzip request from a client that does not accept gzip gets identity.
  Http2TestClient::Headers no_accept = kGrpc;
  no_accept.emplace_back("grpc-encoding", "gzip");
  const int32_t plain = c.request("/t.TService/echo", no_accept, grpc::frame_message(grpc::gzip_compress("ab"), true));
  ASSERT_TRUE(c.wait_closed(plain));
  EXPECT_EQ(c.stream(plain).data, grpc::frame_message("ab"));
}

TEST_F(GrpcServerTest, BadGrpcRequestsGetTheirStatus) {
  start();
  Http2TestClient c(server_->port());
  struct Case {
    const char* what;
    std::string path;
    Http2TestClient::Headers headers;
    std::string body;
    std::string status;
  };
  auto with = [](std::initializer_list<std::pair<std::string, std::string>> extra) {
    Http2TestClient::Headers h = kGrpc;
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
  };
  std::string oversized("\0\xff\xff\xff\xff", 5);  // declares 4 GiB
  std::string wrong_length = grpc::frame_message("hello").substr(0, 7);
  const std::vector<Case> cases = {
      {"unknown method", "/t.TService/nope", kGrpc, grpc::frame_message(""), "12"},
      {"compressed flag without grpc-encoding", "/t.TService/echo", kGrpc, grpc::frame_message("x", true), "13"},
      {"message over the limit", "/t.TService/echo", kGrpc, oversized, "8"},
      {"length prefix longer than the body", "/t.TService/echo", kGrpc, wrong_length, "13"},
      {"two messages on a unary call", "/t.TService/echo", kGrpc, grpc::frame_message("a") + grpc::frame_message("b"),
       "13"},
      {"no message", "/t.TService/echo", kGrpc, "", "13"},
      {"malformed grpc-timeout", "/t.TService/echo", with({{"grpc-timeout", "soon"}}), grpc::frame_message(""), "3"},
      {"unknown grpc-encoding", "/t.TService/echo", with({{"grpc-encoding", "snappy"}}), grpc::frame_message(""), "12"},
      {"gzip that is not gzip", "/t.TService/echo", with({{"grpc-encoding", "gzip"}}),
       grpc::frame_message("not gzip", true), "13"},
      {"function error", "/t.TService/fail", kGrpc, grpc::frame_message(""), "5"},
  };
  for (const Case& k : cases) {
    const int32_t id = c.request(k.path, k.headers, k.body);
    ASSERT_TRUE(c.wait_closed(id)) << k.what;
    EXPECT_EQ(Http2TestClient::find(c.stream(id).headers, ":status"), "200") << k.what;
    EXPECT_EQ(c.status_field(id, "grpc-status"), k.status) << k.what;
    EXPECT_FALSE(c.status_field(id, "grpc-message").empty()) << k.what;
  }
  expect_serving();
}

// What is not gRPC is answered over HTTP/2 as over HTTP/1.1: Connect's
// unary calls (JSON and binary, errors with their HTTP status and JSON
// body), the probes and /metrics, a content type nobody serves (415), a
// body over the limit (413); no HTTP/1.1 connection fields in the answers.
TEST_F(GrpcServerTest, ConnectAndPlainHttpAreServedOverHttp2) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  start(std::move(options));
  Http2TestClient c(server_->port());
  auto status = [&](int32_t id) { return Http2TestClient::find(c.stream(id).headers, ":status"); };
  auto header = [&](int32_t id, const char* name) { return Http2TestClient::find(c.stream(id).headers, name); };

  const int32_t json = c.request("/t.TService/add", {{"content-type", "application/json"}}, R"({"a":40,"b":"2"})");
  const int32_t binary = c.request("/t.TService/add", {{"content-type", "application/proto"}},
                                   dispatch::testing::varint_field(1, 40) + dispatch::testing::varint_field(2, 2));
  const int32_t failed = c.request("/t.TService/fail", {{"content-type", "application/json"}}, "{}");
  const int32_t missing = c.request("/t.TService/nope", {{"content-type", "application/json"}}, "{}");
  const int32_t text = c.request("/t.TService/echo", {{"content-type", "text/plain"}}, "x");
  const int32_t big = c.request("/t.TService/echo", {{"content-type", "application/json"}},
                                "{\"s\":\"" + std::string(2000, 'x') + "\"}");
  const int32_t probe = c.request("/healthz", {{":method", "GET"}}, "");
  const int32_t metrics = c.request("/metrics", {{":method", "GET"}}, "");
  for (int32_t id : {json, binary, failed, missing, text, big, probe, metrics}) ASSERT_TRUE(c.wait_closed(id)) << id;

  EXPECT_EQ(status(json), "200");
  EXPECT_EQ(header(json, "content-type"), "application/json");
  EXPECT_EQ(c.stream(json).data, R"({"result":"42"})");
  EXPECT_EQ(status(binary), "200");
  EXPECT_EQ(header(binary, "content-type"), "application/proto");
  EXPECT_EQ(dispatch::testing::read_varints(c.stream(binary).data)[1], 42u);
  EXPECT_EQ(status(failed), "404");  // fail answers not_found
  EXPECT_NE(c.stream(failed).data.find(R"("code":"not_found")"), std::string::npos) << c.stream(failed).data;
  EXPECT_EQ(status(missing), "404");
  EXPECT_NE(c.stream(missing).data.find(R"("code":"unimplemented")"), std::string::npos);
  EXPECT_EQ(status(text), "415");
  EXPECT_EQ(status(big), "413");
  EXPECT_NE(c.stream(big).data.find(R"("code":"resource_exhausted")"), std::string::npos);
  EXPECT_EQ(status(probe), "200");
  EXPECT_EQ(c.stream(probe).data, "ok\n");
  EXPECT_EQ(status(metrics), "200");
  EXPECT_NE(c.stream(metrics).data.find("dispatch_server_calls_total"), std::string::npos);
  for (int32_t id : {json, binary, failed, missing, text, big, probe, metrics}) {
    for (const auto& [name, value] : c.stream(id).headers) {
      EXPECT_TRUE(name != "connection" && name != "keep-alive" && name != "transfer-encoding") << name;
      EXPECT_EQ(name, [&] {
        std::string lower = name;
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return lower;
      }());
    }
  }
  expect_serving();
}

// gRPC-Web over HTTP/2 is gRPC-Web as over HTTP/1.1: the trailers end the
// body as a trailer frame (a browser's fetch reads no HTTP/2 trailers), and
// -text bodies are base64 both ways; no HTTP/2 trailers are sent.
TEST_F(GrpcServerTest, GrpcWebOverHttp2PutsItsTrailersInTheBody) {
  start();
  Http2TestClient c(server_->port());
  const Http2TestClient::Headers web = {{"content-type", "application/grpc-web+proto"}, {"x-grpc-web", "1"}};
  const Http2TestClient::Headers text = {{"content-type", "application/grpc-web-text"}, {"x-grpc-web", "1"}};
  const int32_t binary = c.request("/t.TService/echo", web, grpc::frame_message("hi"));
  const int32_t base64 = c.request("/t.TService/echo", text, grpc::encode_web_text(grpc::frame_message("hi")));
  const int32_t failed = c.request("/t.TService/fail", web, grpc::frame_message(""));
  const int32_t health = c.request("/grpc.health.v1.Health/Check", web, grpc::frame_message(""));
  for (int32_t id : {binary, base64, failed, health}) ASSERT_TRUE(c.wait_closed(id)) << id;
  const std::string trailer = grpc::web_trailer_frame({{"grpc-status", "0"}});
  auto header = [&](int32_t id, const char* name) { return Http2TestClient::find(c.stream(id).headers, name); };

  EXPECT_EQ(header(binary, ":status"), "200");
  EXPECT_EQ(header(binary, "content-type"), "application/grpc-web+proto");
  EXPECT_EQ(c.stream(binary).data, grpc::frame_message("hi") + trailer);
  EXPECT_EQ(header(base64, "content-type"), "application/grpc-web-text+proto");
  auto decoded = grpc::decode_web_text(c.stream(base64).data);
  ASSERT_TRUE(decoded.ok()) << c.stream(base64).data;
  EXPECT_EQ(*decoded, grpc::frame_message("hi") + trailer);
  // An error is trailers-only: its status in the headers, no body.
  EXPECT_EQ(header(failed, ":status"), "200");
  EXPECT_EQ(header(failed, "grpc-status"), "5");
  EXPECT_TRUE(c.stream(failed).data.empty());
  EXPECT_EQ(c.stream(health).data, grpc::frame_message("\x08\x01") + trailer);  // SERVING
  for (int32_t id : {binary, base64, failed, health}) EXPECT_TRUE(c.stream(id).trailers.empty()) << id;
  expect_serving();
}

// "+json": the messages are protobuf's JSON mapping, over gRPC as over
// gRPC-Web, answered in kind; JSON that does not fit the request is
// INVALID_ARGUMENT, and the built-in services (protobuf only) refuse it.
TEST_F(GrpcServerTest, JsonMessagesAreAnsweredInJson) {
  start();
  Http2TestClient c(server_->port());
  const Http2TestClient::Headers grpc_json = {{"content-type", "application/grpc+json"}, {"te", "trailers"}};
  const Http2TestClient::Headers web_json = {{"content-type", "application/grpc-web+json"}};
  const int32_t add = c.request("/t.TService/add", grpc_json, grpc::frame_message(R"({"a":40,"b":"2"})"));
  const int32_t empty = c.request("/t.TService/add", grpc_json, grpc::frame_message(""));
  const int32_t bad = c.request("/t.TService/add", grpc_json, grpc::frame_message(R"({"a":"x"})"));
  const int32_t not_json = c.request("/t.TService/add", grpc_json, grpc::frame_message("\x08\x01"));
  const int32_t failed = c.request("/t.TService/fail", grpc_json, grpc::frame_message("{}"));
  const int32_t health = c.request("/grpc.health.v1.Health/Check", grpc_json, grpc::frame_message("{}"));
  const int32_t web = c.request("/t.TService/add", web_json, grpc::frame_message(R"({"a":1,"b":"2"})"));
  for (int32_t id : {add, empty, bad, not_json, failed, health, web}) ASSERT_TRUE(c.wait_closed(id)) << id;
  auto header = [&](int32_t id, const char* name) { return Http2TestClient::find(c.stream(id).headers, name); };

  EXPECT_EQ(header(add, "content-type"), "application/grpc+json");
  EXPECT_EQ(c.stream(add).data, grpc::frame_message(R"({"result":"42"})"));
  EXPECT_EQ(c.status_field(add, "grpc-status"), "0");
  EXPECT_EQ(c.stream(empty).data, grpc::frame_message(R"({"result":"0"})"));  // the empty message: 0 + 0
  EXPECT_EQ(c.status_field(bad, "grpc-status"), "3");
  EXPECT_EQ(c.status_field(not_json, "grpc-status"), "3");
  EXPECT_EQ(c.status_field(failed, "grpc-status"), "5");
  EXPECT_EQ(c.status_field(health, "grpc-status"), "12");
  EXPECT_NE(c.status_field(health, "grpc-message").find("protobuf only"), std::string::npos);
  // Errors are trailers-only answers in the codec asked for, whichever
  // step refused them: a client may check the content type first.
  for (int32_t id : {bad, not_json, failed, health}) {
    EXPECT_EQ(header(id, "content-type"), "application/grpc+json") << id;
    EXPECT_TRUE(c.stream(id).data.empty()) << id;
  }
  EXPECT_EQ(header(web, "content-type"), "application/grpc-web+json");
  EXPECT_EQ(c.stream(web).data,
            grpc::frame_message(R"({"result":"3"})") + grpc::web_trailer_frame({{"grpc-status", "0"}}));
  expect_serving();
}

TEST_F(GrpcServerTest, ABadPrefaceClosesThatConnectionOnly) {
  start();
  Http2TestClient bad(server_->port(), /*send_preface=*/false);
  bad.send_raw("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
  EXPECT_TRUE(bad.wait_eof());
  expect_serving();
}

TEST_F(GrpcServerTest, AnOversizedFrameEndsTheConnectionWithGoaway) {
  start();
  Http2TestClient c(server_->port());
  c.send_raw(http2_frame(0 /* DATA */, 0, 1, std::string(20000, 'a')));  // over the 16 KiB default
  EXPECT_TRUE(c.wait_eof());
  EXPECT_TRUE(c.got_goaway());
  EXPECT_EQ(c.goaway_code(), 6u);  // FRAME_SIZE_ERROR
  expect_serving();
}

TEST_F(GrpcServerTest, WindowAbuseEndsTheConnection) {
  start();
  Http2TestClient c(server_->port());
  // WINDOW_UPDATE on the connection taking its window past 2^31 - 1.
  std::string increment("\x7f\xff\xff\xff", 4);
  c.send_raw(http2_frame(8 /* WINDOW_UPDATE */, 0, 0, increment) + http2_frame(8, 0, 0, increment));
  EXPECT_TRUE(c.wait_eof());
  EXPECT_TRUE(c.got_goaway());
  EXPECT_EQ(c.goaway_code(), 3u);  // FLOW_CONTROL_ERROR
  expect_serving();
}

TEST_F(GrpcServerTest, AHeaderBlockOverTheLimitResetsItsStreamOnly) {
  ServerOptions options;
  options.max_header_bytes = 4096;
  start(std::move(options));
  Http2TestClient c(server_->port());
  Http2TestClient::Headers h = kGrpc;
  for (int i = 0; i < 20; ++i) h.emplace_back("x-big-" + std::to_string(i), std::string(1000, 'v'));
  const int32_t bomb = c.request("/t.TService/echo", h, grpc::frame_message("x"));
  ASSERT_TRUE(c.wait_closed(bomb));
  EXPECT_TRUE(c.stream(bomb).reset);
  // The same connection goes on serving.
  const int32_t ok = c.request("/t.TService/echo", kGrpc, grpc::frame_message("fine"));
  ASSERT_TRUE(c.wait_closed(ok));
  EXPECT_EQ(c.stream(ok).data, grpc::frame_message("fine"));
}

TEST_F(GrpcServerTest, StreamsOverTheLimitAreRefused) {
  ServerOptions options;
  options.max_concurrent_streams = 4;
  start(std::move(options));
  Http2TestClient c(server_->port());
  // Open streams that never end their request.
  std::vector<int32_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(c.request("/t.TService/echo", kGrpc, "", /*end=*/false));
  ASSERT_TRUE(c.run_until([&] {
    int refused = 0;
    for (int32_t id : ids) refused += c.stream(id).reset && c.stream(id).reset_code == 7 ? 1 : 0;
    return refused == 4;
  })) << "expected 4 streams refused with REFUSED_STREAM";
  expect_serving();
}

// A request must arrive whole within the read timeout (300 ms here) of its
// headers: PINGs every 100 ms keep the connection reading but do not
// stretch it. The stream is answered DEADLINE_EXCEEDED and the connection
// goes on serving.
TEST_F(GrpcServerTest, ARequestNotWholeWithinTheReadTimeoutIsDeadlineExceeded) {
  ServerOptions options;
  options.read_timeout = std::chrono::milliseconds(300);
  start(std::move(options));
  Http2TestClient c(server_->port());
  const auto began = std::chrono::steady_clock::now();
  // Part of a message: its prefix says 10 bytes, 3 of them come.
  const int32_t slow =
      c.request("/t.TService/echo", kGrpc, grpc::frame_message("0123456789").substr(0, 8), /*end=*/false);
  bool answered = false;
  for (int i = 0; i < 30 && !answered; ++i) {
    c.send_raw(http2_frame(6 /* PING */, 0, 0, std::string(8, '\0')));
    c.run_until([&] { return !c.status_field(slow, "grpc-status").empty(); }, std::chrono::milliseconds(100));
    answered = !c.status_field(slow, "grpc-status").empty();
  }
  ASSERT_TRUE(answered) << "no answer within 3 s";
  EXPECT_GE(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(300));
  EXPECT_EQ(c.status_field(slow, "grpc-status"), "4");  // DEADLINE_EXCEEDED
  EXPECT_NE(c.status_field(slow, "grpc-message").find("read timeout of 300 ms"), std::string::npos)
      << c.status_field(slow, "grpc-message");
  EXPECT_FALSE(c.got_goaway());
  const int32_t ok = c.request("/t.TService/echo", kGrpc, grpc::frame_message("fine"));
  ASSERT_TRUE(c.wait_closed(ok));
  EXPECT_EQ(c.stream(ok).data, grpc::frame_message("fine"));
  // A Connect request not whole in time: 408 with Connect's error body, as
  // over HTTP/1.1.
  const int32_t connect = c.request("/t.TService/echo", {{"content-type", "application/json"}}, "{", /*end=*/false);
  auto connect_answered = [&] { return !c.stream(connect).data.empty(); };
  for (int i = 0; i < 30 && !connect_answered(); ++i) {
    c.send_raw(http2_frame(6 /* PING */, 0, 0, std::string(8, '\0')));
    c.run_until(connect_answered, std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(connect_answered()) << "no answer within 3 s";
  EXPECT_EQ(Http2TestClient::find(c.stream(connect).headers, ":status"), "408");
  EXPECT_NE(c.stream(connect).data.find(R"("code":"deadline_exceeded")"), std::string::npos) << c.stream(connect).data;
}

TEST_F(GrpcServerTest, ManyStreamsOnOneConnectionAllAnswer) {
  start();
  Http2TestClient c(server_->port());
  std::vector<int32_t> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(c.request("/t.TService/echo", kGrpc, grpc::frame_message(std::to_string(i))));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.wait_closed(ids[i]));
    EXPECT_EQ(c.stream(ids[i]).data, grpc::frame_message(std::to_string(i)));
  }
}

TEST_F(GrpcServerTest, MetricsCountGrpcCallsAndRejections) {
  auto registry = std::make_shared<metrics::Registry>();
  ServerOptions options;
  options.metrics = registry;
  options.max_body_bytes = 1024;
  start(std::move(options));
  expect_serving();
  Http2TestClient c(server_->port());
  const int32_t id = c.request("/t.TService/nope", kGrpc, grpc::frame_message(""));
  // Bodies over the limit, refused before their requests are whole: each
  // counted under its own protocol.
  const std::string big(2048, 'x');
  const int32_t web = c.request("/t.TService/echo", {{"content-type", "application/grpc-web+proto"}}, big);
  const int32_t connect = c.request("/t.TService/echo", {{"content-type", "application/proto"}}, big);
  for (int32_t each : {id, web, connect}) ASSERT_TRUE(c.wait_closed(each)) << each;
  EXPECT_EQ(Http2TestClient::find(c.stream(web).headers, ":status"), "413");
  const std::string text = registry->expose();
  EXPECT_NE(text.find("dispatch_server_rejected_total{protocol=\"grpc-web\",code=\"resource_exhausted\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dispatch_server_rejected_total{protocol=\"connect\",code=\"resource_exhausted\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dispatch_server_calls_total{function=\"t.add\",protocol=\"grpc\",code=\"ok\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dispatch_server_rejected_total{protocol=\"grpc\",code=\"unimplemented\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dispatch_server_connections_accepted_total 2"), std::string::npos) << text;
}

// gRPC-Web and /metrics over HTTP/1.1, through the handler (no socket).
class GrpcWebTest : public ::testing::Test {
 protected:
  GrpcWebTest() { options_.logger = Logger(LogLevel::off); }
  Response answer(const std::string& content_type, const std::string& body, const std::string& path = "/t.TService/echo") {
    auto r = handler_.serve_bytes(dispatch::testing::post(path, content_type, body));
    EXPECT_TRUE(r.has_value());
    return r ? *r : Response{};
  }
  DispatchTable table_{&dispatch::testing::test_service()};
  ServerOptions options_;
  RequestHandler handler_{table_, options_};
};

TEST_F(GrpcWebTest, BinaryAndTextBodiesEndWithATrailerFrame) {
  Response r = answer("application/grpc-web+proto", grpc::frame_message("hi"));
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/grpc-web+proto");
  const std::string expected_trailer = grpc::web_trailer_frame({{"grpc-status", "0"}});
  EXPECT_EQ(r.body(), grpc::frame_message("hi") + expected_trailer);

  r = answer("application/grpc-web-text", grpc::encode_web_text(grpc::frame_message("hi")));
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(*grpc::decode_web_text(r.body()), grpc::frame_message("hi") + expected_trailer);
}

TEST_F(GrpcWebTest, ErrorsAreTrailersOnly) {
  Response r = answer("application/grpc-web", grpc::frame_message(""), "/t.TService/fail");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r["grpc-status"], "5");
  EXPECT_TRUE(r.body().empty());
  r = answer("application/grpc-web", grpc::frame_message("x", true));
  EXPECT_EQ(r["grpc-status"], "13");
  r = answer("application/grpc-web-text", "not base64!");
  EXPECT_EQ(r["grpc-status"], "3");
  r = answer("application/grpc-web", grpc::frame_message(""), "/t.TService/nope");
  EXPECT_EQ(r["grpc-status"], "12");
}

TEST_F(GrpcWebTest, JsonMessagesAreAnsweredInJson) {
  Response r = answer("application/grpc-web-text+json", grpc::encode_web_text(grpc::frame_message(R"({"text":"hi"})")));
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/grpc-web-text+json");
  EXPECT_EQ(*grpc::decode_web_text(r.body()),
            grpc::frame_message(R"({"text":"hi"})") + grpc::web_trailer_frame({{"grpc-status", "0"}}));
  r = answer("application/grpc-web+json", grpc::frame_message(R"({"text":1})"));
  EXPECT_EQ(r["grpc-status"], "3");
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/grpc-web+json");
  r = answer("application/grpc-web+json", grpc::frame_message("{}"), "/grpc.health.v1.Health/Check");
  EXPECT_EQ(r["grpc-status"], "12");
  r = answer("application/grpc-web+cbor", grpc::frame_message("{}"));
  EXPECT_EQ(r.result_int(), 415u);
}

// Full-body compression with Content-Encoding (PROTOCOL-WEB.md): a gzip
// body is inflated before its frames are read, binary or text; another
// coding is refused by name.
TEST_F(GrpcWebTest, AGzipBodyIsInflatedAndAnotherCodingRefused) {
  auto with_coding = [&](const std::string& content_type, const std::string& body, const std::string& coding) {
    auto r = handler_.serve_bytes(
        dispatch::testing::post("/t.TService/echo", content_type, body, "Content-Encoding: " + coding + "\r\n"));
    EXPECT_TRUE(r.has_value());
    return r ? *r : Response{};
  };
  const std::string expected = grpc::frame_message("hi") + grpc::web_trailer_frame({{"grpc-status", "0"}});
  Response r = with_coding("application/grpc-web+proto", grpc::gzip_compress(grpc::frame_message("hi")), "gzip");
  EXPECT_EQ(r["grpc-status"], "") << r["grpc-message"];
  EXPECT_EQ(r.body(), expected);
  r = with_coding("application/grpc-web-text", grpc::gzip_compress(grpc::encode_web_text(grpc::frame_message("hi"))),
                  "gzip");
  EXPECT_EQ(*grpc::decode_web_text(r.body()), expected) << r["grpc-message"];
  r = with_coding("application/grpc-web+proto", grpc::frame_message("hi"), "br");
  EXPECT_EQ(r["grpc-status"], "12");
  EXPECT_NE(r["grpc-message"].find("Content-Encoding"), boost::beast::string_view::npos) << r["grpc-message"];
  r = with_coding("application/grpc-web+proto", "not gzip", "gzip");
  EXPECT_EQ(r["grpc-status"], "3") << r["grpc-message"];
}

TEST_F(GrpcWebTest, PlainGrpcOverHttp1IsRefused) {
  Response r = answer("application/grpc", grpc::frame_message("hi"));
  EXPECT_EQ(r.result_int(), 415u);
  EXPECT_NE(r.body().find("HTTP/2"), std::string::npos);
}

TEST_F(GrpcWebTest, HealthAnswersOverGrpcWeb) {
  Response r = answer("application/grpc-web", grpc::frame_message(""), "/grpc.health.v1.Health/Check");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body().substr(0, 7), grpc::frame_message("\x08\x01"));  // SERVING
}

TEST_F(GrpcWebTest, MetricsAreServedInTheTextFormat) {
  answer("application/proto", dispatch::testing::varint_field(1, 1), "/t.TService/add");
  auto r = handler_.serve_bytes("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200u);
  EXPECT_EQ((*r)[boost::beast::http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r->body().find("dispatch_server_calls_total{function=\"t.add\",protocol=\"connect\",code=\"ok\"} 1"),
            std::string::npos)
      << r->body();
  EXPECT_NE(r->body().find("# TYPE dispatch_server_call_duration_seconds histogram"), std::string::npos);
}

}  // namespace
}  // namespace dispatch::transport
