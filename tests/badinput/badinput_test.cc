// The end-to-end bad-input table: each row is a request no good
// client sends, written to a running dispatch::Server over a raw socket; the
// row says what the server must answer (HTTP status and Connect code, or
// closing without an answer). After every row a good call on a new
// connection must still succeed. Below the table: clients that misbehave in
// time rather than in bytes (slow-loris, vanishing mid-request and
// mid-response, a burst of reset connections).
//
// Not for: signatures (badinput_signature_test.cc), load (scripts/soak.sh).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/transport/server.h"
#include "raw_http.h"
#include "transport/test_service.h"

namespace dispatch::badinput {
namespace {

using namespace std::chrono_literals;

// Small limits and short timeouts so every limit is reachable quickly.
ServerOptions small_limits() {
  ServerOptions o;
  o.port = 0;
  o.io_threads = 1;
  o.workers = 2;
  o.max_body_bytes = 64 * 1024;
  o.max_header_bytes = 8 * 1024;
  o.header_timeout = 500ms;
  o.read_timeout = 1000ms;
  o.idle_timeout = 1500ms;
  o.logger = Logger(LogLevel::off);
  return o;
}

class Served : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    table_ = new DispatchTable{&testing::test_service(), &strict::service()};
    server_ = new Server(*table_, small_limits());
    auto started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().what();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete table_;
  }
  static uint16_t port() { return server_->port(); }

  // A good call on a fresh connection: proves the server still serves.
  static void expect_serving() {
    RawSocket s(port());
    ASSERT_TRUE(s.send(request("POST", "/bad.Strict/check", "application/proto", strict::nested(2))));
    const Answer a = s.read();
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.body, std::string("\x08\x02", 2));
  }

  static DispatchTable* table_;
  static Server* server_;
};
DispatchTable* Served::table_ = nullptr;
Server* Served::server_ = nullptr;

enum class Then { read, eof_then_read };

struct Row {
  const char* name;
  std::string bytes;
  int status;            // 0: the server closes without an answer
  const char* code;      // Connect code in the JSON error body ("" for none)
  const char* says = "";  // text the error message must contain
  Then then = Then::read;
};

void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

std::string varint(std::uint64_t v) {
  std::string out;
  do {
    unsigned char b = v & 0x7f;
    v >>= 7;
    out.push_back(static_cast<char>(v ? b | 0x80 : b));
  } while (v);
  return out;
}

std::string json_nested(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "{\"child\":";
  s += "{}";
  for (int i = 0; i < n; ++i) s += "}";
  return s;
}

const std::string kCheck = "/bad.Strict/check";
const std::string kProto = "application/proto";
const std::string kJson = "application/json";

std::vector<Row> rows() {
  const std::string post_head = "POST " + kCheck + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/proto\r\n";
  return {
      // Controls: the table's checks can tell good from bad.
      {"good_proto", request("POST", kCheck, kProto, strict::nested(3)), 200, ""},
      {"good_json", request("POST", kCheck, kJson, "{\"n\":1,\"child\":{\"s\":\"x\"}}"), 200, ""},
      // Bodies that are cut short or too long.
      {"truncated_body_then_eof", post_head + "Content-Length: 10\r\n\r\n\x08\x01", 0, "", "",
       Then::eof_then_read},
      {"truncated_body_stalls", post_head + "Content-Length: 10\r\n\r\n\x08\x01", 408, "deadline_exceeded",
       "read timeout", Then::read},
      {"declared_oversized_body", post_head + "Content-Length: 100000\r\n\r\n", 413, "resource_exhausted",
       "limit of 65536 bytes"},
      {"chunked_oversized_body", post_head + "Transfer-Encoding: chunked\r\n\r\n20000\r\n\x08\x01", 413,
       "resource_exhausted", "limit of 65536 bytes"},
      {"content_length_not_a_number", post_head + "Content-Length: ten\r\n\r\n", 400, "invalid_argument",
       "malformed HTTP request"},
      // Content types.
      {"missing_content_type", request("POST", kCheck, "", strict::nested(1)), 415, "unimplemented",
       "not supported"},
      {"wrong_content_type", request("POST", kCheck, "text/plain", "hello"), 415, "unimplemented",
       "'text/plain' is not supported"},
      {"near_miss_content_type", request("POST", kCheck, "application/protobuf", ""), 415, "unimplemented"},
      {"content_encoding_unsupported", request("POST", kCheck, kProto, "", "Content-Encoding: br\r\n"), 501,
       "unimplemented", "'br' is not supported; supported: gzip, identity"},
      {"content_encoding_gzip_not_gzip", request("POST", kCheck, kProto, "plain", "Content-Encoding: gzip\r\n"),
       400, "invalid_argument", "not valid gzip"},
      // Invalid protobuf, decoded by wire_io.h as generated code does.
      {"overlong_varint", request("POST", kCheck, kProto, "\x08" + std::string(10, '\xff') + "\x01"), 400,
       "invalid_argument", "bad.Strict.n"},
      {"truncated_varint", request("POST", kCheck, kProto, "\x08\xff"), 400, "invalid_argument", "bad.Strict.n"},
      {"int32_overflow", request("POST", kCheck, kProto, "\x08" + varint(1ull << 40)), 400, "invalid_argument",
       "does not fit in int32"},
      {"wrong_wire_type", request("POST", kCheck, kProto, std::string("\x0a\x01x")), 400, "invalid_argument",
       "bad.Strict.n"},
      {"length_past_end", request("POST", kCheck, kProto, "\x12\x64" "abc"), 400, "invalid_argument",
       "runs past the end"},
      {"nested_length_past_end", request("POST", kCheck, kProto, "\x1a\x05\x08"), 400, "invalid_argument",
       "runs past the end"},
      {"field_number_zero", request("POST", kCheck, kProto, std::string("\x00\x01", 2)), 400, "invalid_argument",
       "malformed field tag"},
      {"string_not_utf8", request("POST", kCheck, kProto, "\x12\x02\xc0\xaf"), 400, "invalid_argument",
       "UTF-8"},
      {"unknown_field_malformed", request("POST", kCheck, kProto, "\x7a\x09" "ab"), 400, "invalid_argument"},
      {"deep_nesting", request("POST", kCheck, kProto, strict::nested(150)), 400, "invalid_argument",
       "nested too deeply"},
      // Invalid JSON and JSON of the wrong shape.
      {"json_syntax_error", request("POST", kCheck, kJson, "{\"n\":"), 400, "invalid_argument"},
      {"json_not_an_object", request("POST", kCheck, kJson, "[1,2]"), 400, "invalid_argument"},
      {"json_string_for_int", request("POST", kCheck, kJson, "{\"n\":\"abc\"}"), 400, "invalid_argument"},
      {"json_array_for_int", request("POST", kCheck, kJson, "{\"n\":[1]}"), 400, "invalid_argument"},
      {"json_number_for_message", request("POST", kCheck, kJson, "{\"child\":5}"), 400, "invalid_argument"},
      {"json_int32_overflow", request("POST", kCheck, kJson, "{\"n\":99999999999}"), 400, "invalid_argument"},
      // A field this side does not know (a newer client's) is skipped,
      // as in the binary format; its value must still be JSON.
      {"json_unknown_field_skipped", request("POST", kCheck, kJson, "{\"zzz\":{\"a\":[1]}}"), 200, ""},
      {"json_unknown_field_bad_value", request("POST", kCheck, kJson, "{\"zzz\":tru}"), 400, "invalid_argument"},
      {"json_deep_nesting", request("POST", kCheck, kJson, json_nested(150)), 400, "invalid_argument"},
      {"json_not_utf8", request("POST", kCheck, kJson, "{\"s\":\"\xc0\xaf\"}"), 400, "invalid_argument"},
      // Routing and method.
      {"unknown_method", request("POST", "/bad.Strict/nope", kProto, ""), 404, "unimplemented",
       "no function is served at /bad.Strict/nope"},
      {"unknown_service", request("POST", "/x.Y/z", kProto, ""), 404, "unimplemented"},
      // The error message quotes the path: the JSON must stay UTF-8.
      {"unknown_method_not_utf8", request("POST", "/bad.Strict/\xff\xfe", kProto, ""), 404, "unimplemented"},
      {"content_type_not_utf8", request("POST", kCheck, "text/\xc0\xaf", ""), 415, "unimplemented"},
      {"get_instead_of_post", request("GET", kCheck, "", ""), 405, "unimplemented", "POST"},
      // Headers.
      {"huge_header", request("POST", kCheck, kProto, "", "X-Big: " + std::string(9000, 'a') + "\r\n"), 431,
       "resource_exhausted", "limit of 8192 bytes"},
      {"many_headers", request("POST", kCheck, kProto, "",
                               [] {
                                 std::string h;
                                 for (int i = 0; i < 1000; ++i) h += "X-" + std::to_string(i) + ": v\r\n";
                                 return h;
                               }()),
       431, "resource_exhausted"},
      {"bad_connect_timeout", request("POST", kCheck, kProto, "", "Connect-Timeout-Ms: soon\r\n"), 400,
       "invalid_argument", "Connect-Timeout-Ms"},
      {"bad_protocol_version", request("POST", kCheck, kProto, "", "Connect-Protocol-Version: 2\r\n"), 400,
       "invalid_argument", "Connect-Protocol-Version"},
      {"bad_dispatch_attempt", request("POST", kCheck, kProto, "", "Dispatch-Attempt: 0\r\n"), 400,
       "invalid_argument"},
      // Not HTTP at all.
      {"garbage_request_line", "HELLO THERE\r\n\r\n", 400, "invalid_argument", "malformed HTTP request"},
      {"tls_client_hello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n", 400,
       "invalid_argument"},
      {"header_without_colon", "POST /bad.Strict/check HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 400,
       "invalid_argument"},
  };
}

class BadInput : public Served, public ::testing::WithParamInterface<Row> {};

TEST_P(BadInput, AnswersAndKeepsServing) {
  const Row& row = GetParam();
  {
    RawSocket s(port());
    // The server may refuse before reading everything (a declared size over
    // the limit): a failed send is fine, the answer is what counts.
    (void)s.send(row.bytes);
    if (row.then == Then::eof_then_read) s.shutdown_write();
    const Answer a = s.read();
    EXPECT_EQ(a.status, row.status) << row.name << ": " << a.body;
    if (row.status >= 400) {
      EXPECT_EQ(a.code(), row.code) << a.body;
      EXPECT_TRUE(wire::is_valid_utf8(a.body)) << "the JSON error body is not UTF-8: " << a.body;
      EXPECT_EQ(a.headers.count("content-type") ? a.headers.at("content-type") : "", "application/json");
      EXPECT_NE(a.body.find(row.says), std::string::npos) << "message should say '" << row.says << "': " << a.body;
    }
  }
  expect_serving();
}

INSTANTIATE_TEST_SUITE_P(Table, BadInput, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) { return std::string(info.param.name); });

// Header lines 150 ms apart, each well within the header timeout (500 ms)
// of the one before, never reaching the blank line: the timeout bounds the
// headers as a whole, so the client gets a 408 and the connection is
// closed, and other clients are served meanwhile.
TEST_F(Served, SlowLorisHeadersGet408AndClose) {
  RawSocket loris(port());
  const auto began = std::chrono::steady_clock::now();
  std::atomic<bool> stop{false};
  std::thread drip([&] {
    std::string line = "POST /bad.Strict/check HTTP/1.1\r\n";
    for (int i = 0; i < 40 && !stop; ++i) {  // 6 s at most
      if (!loris.send(line)) return;
      line = "X-Line-" + std::to_string(i) + ": v\r\n";
      std::this_thread::sleep_for(150ms);
    }
  });
  expect_serving();  // while the loris holds its connection
  const Answer a = loris.read();
  const auto waited = std::chrono::steady_clock::now() - began;
  stop = true;
  drip.join();
  EXPECT_EQ(a.status, 408) << a.body;
  EXPECT_EQ(a.code(), "deadline_exceeded");
  EXPECT_NE(a.body.find("header timeout of 500 ms"), std::string::npos) << a.body;
  EXPECT_EQ(a.headers.count("connection") ? a.headers.at("connection") : "", "close");
  EXPECT_GE(waited, 500ms);
  EXPECT_TRUE(loris.wait_closed());
  expect_serving();
}

// Headers a line at a time, 75 ms apart (300 ms in all, within the header
// timeout of 500 ms): served.
TEST_F(Served, SlowHeadersWithinTheHeaderTimeoutAreServed) {
  RawSocket s(port());
  const std::string body = strict::nested(2);
  const std::string lines[] = {"POST /bad.Strict/check HTTP/1.1\r\n", "Host: 127.0.0.1\r\n",
                               "Content-Type: application/proto\r\n",
                               "Content-Length: " + std::to_string(body.size()) + "\r\n", "\r\n" + body};
  for (const std::string& line : lines) {
    if (&line != &lines[0]) std::this_thread::sleep_for(75ms);
    ASSERT_TRUE(s.send(line));
  }
  const Answer a = s.read();
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body, std::string("\x08\x02", 2));
}

// Between requests a keep-alive connection waits under the idle timeout
// (1.5 s), not the header timeout (500 ms), which starts with the next
// request's first byte.
TEST_F(Served, KeepAliveWaitIsTheIdleTimeoutNotTheHeaderTimeout) {
  RawSocket s(port());
  const std::string call = request("POST", "/bad.Strict/check", "application/proto", strict::nested(1));
  ASSERT_TRUE(s.send(call));
  EXPECT_EQ(s.read().status, 200);
  std::this_thread::sleep_for(800ms);
  ASSERT_TRUE(s.send(call));
  const Answer a = s.read();
  EXPECT_EQ(a.status, 200) << a.body;
}

// A new connection's first request has the header timeout from the
// accept: one that sends nothing is closed without an answer after 500 ms,
// long before the idle timeout (1.5 s; the socket gives up at 1.2 s).
TEST_F(Served, SilentNewConnectionIsClosedAtTheHeaderTimeout) {
  RawSocket s(port(), 1200ms);
  const auto began = std::chrono::steady_clock::now();
  EXPECT_TRUE(s.wait_closed());
  EXPECT_GE(std::chrono::steady_clock::now() - began, 500ms);
}

// With one connection slot, a client stuck mid-headers holds it only until
// the header timeout: then it gets its 408, and a new client is served.
TEST(HeaderTimeout, FreesTheConnectionSlot) {
  DispatchTable table{&strict::service()};
  ServerOptions o = small_limits();
  o.max_connections = 1;
  o.header_timeout = 300ms;
  Server server(table, o);
  ASSERT_TRUE(server.start().ok());
  RawSocket loris(server.port());
  ASSERT_TRUE(loris.send("POST /bad.Strict/check HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  {
    RawSocket other(server.port());
    EXPECT_EQ(other.read().status, 503);  // the loris has the only slot
  }
  const Answer a = loris.read();
  EXPECT_EQ(a.status, 408) << a.body;
  EXPECT_NE(a.body.find("header timeout of 300 ms"), std::string::npos) << a.body;
  EXPECT_TRUE(loris.wait_closed());
  // The slot is given back as the session ends, just after the close the
  // loris saw: a client connecting at that moment may still be refused.
  const std::string call = request("POST", "/bad.Strict/check", "application/proto", strict::nested(1));
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    if (i != 0) std::this_thread::sleep_for(10ms);
    RawSocket next(server.port());
    ASSERT_TRUE(next.send(call));
    status = next.read().status;
  }
  EXPECT_EQ(status, 200);
}

// Headers on time, then the body a byte at a time: the read timeout (1 s)
// must end the connection with a 408 while other clients are served.
// Sending must stop short of the whole body.
TEST_F(Served, SlowLorisBodyGets408) {
  RawSocket loris(port());
  const std::string body = strict::nested(40);
  const std::string head = request("POST", "/bad.Strict/check", "application/proto", body);
  ASSERT_TRUE(loris.send(head.substr(0, head.size() - body.size())));
  std::atomic<bool> stop{false};
  std::thread drip([&] {
    for (char c : body) {
      if (stop || !loris.send(std::string_view(&c, 1))) return;
      std::this_thread::sleep_for(200ms);
    }
  });
  expect_serving();
  const Answer a = loris.read();
  stop = true;
  drip.join();
  EXPECT_EQ(a.status, 408) << a.body;
  EXPECT_EQ(a.code(), "deadline_exceeded");
  expect_serving();
}

// Clients that vanish: half a request line, half a body, and a reset right
// after sending a request whose answer is large or slow to come.
TEST_F(Served, DisconnectsMidRequest) {
  for (int i = 0; i < 20; ++i) {
    RawSocket a(port());
    ASSERT_TRUE(a.send("POST /bad.Str"));
    a.reset();
    RawSocket b(port());
    const std::string full = request("POST", "/bad.Strict/check", "application/proto", strict::nested(30));
    ASSERT_TRUE(b.send(full.substr(0, full.size() - 10)));
    b.reset();
  }
  expect_serving();
}

TEST_F(Served, DisconnectsMidResponse) {
  const std::string big(60 * 1024, 'x');
  for (int i = 0; i < 20; ++i) {
    RawSocket a(port());
    ASSERT_TRUE(a.send(request("POST", "/t.TService/echo", "application/proto", big)));
    a.reset();
    RawSocket b(port());  // answer comes after 50 ms, to a closed socket
    ASSERT_TRUE(b.send(request("POST", "/t.TService/slow", "application/proto", std::string("\x08\x32", 2))));
    b.reset();
  }
  expect_serving();
}

// Pipelined requests where the first is bad: answered in order, and the
// keep-alive connection keeps serving.
TEST_F(Served, RejectionKeepsConnectionUsable) {
  RawSocket s(port());
  ASSERT_TRUE(s.send(request("POST", "/bad.Strict/check", "text/plain", "x") +
                     request("POST", "/bad.Strict/check", "application/proto", "\x08\xff") +
                     request("POST", "/bad.Strict/check", "application/proto", strict::nested(1))));
  EXPECT_EQ(s.read().status, 415);
  EXPECT_EQ(s.read().status, 400);
  const Answer ok = s.read();
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, std::string("\x08\x01", 2));
}

// A user function that throws something that is not a dispatch::Error.
TEST_F(Served, ThrowingFunctionIsInternal) {
  RawSocket s(port());
  ASSERT_TRUE(s.send(request("POST", "/t.TService/crash", "application/proto", "")));
  const Answer a = s.read();
  EXPECT_EQ(a.status, 500);
  EXPECT_EQ(a.code(), "internal");
  expect_serving();
}

}  // namespace
}  // namespace dispatch::badinput
