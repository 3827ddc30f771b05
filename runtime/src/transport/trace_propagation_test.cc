// W3C trace context across a server and the calls its functions make: the
// server continues a caller's trace (or starts one) for every call, and
// HttpClient sends the running call's trace on, so one trace id shows in the
// log lines of both servers.
#include <gtest/gtest.h>

#include <mutex>

#include "dispatch/transport/grpc_client.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "transport/test_service.h"

namespace dispatch::transport {
namespace {

class CapturingServer {
 public:
  explicit CapturingServer(const DispatchTable& table) {
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.logger = Logger(LogLevel::info, [this](LogLevel, std::string_view line) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(line);
    });
    server_ = std::make_unique<Server>(table, std::move(options));
    EXPECT_TRUE(server_->start().ok());
  }
  ~CapturingServer() { server_->stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::string line_with(const std::string& text) {
    std::lock_guard lock(mu_);
    for (const auto& l : lines_) {
      if (l.find(text) != std::string::npos) return l;
    }
    return {};
  }
  std::string last_trace_id_of(const std::string& text) {
    std::lock_guard lock(mu_);
    for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
      const auto at = it->find("trace_id=");
      if (it->find(text) != std::string::npos && at != std::string::npos) return it->substr(at + 9, 32);
    }
    return {};
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::unique_ptr<Server> server_;
};

Client* downstream = nullptr;  // the client "relay" calls through (set by the test)

Result<std::string> relay(const MethodCall& call) {
  return downstream->call("/t.TService/echo", std::string(call.request), {});
}

TEST(TracePropagation, ACallMadeInsideAFunctionCarriesItsTrace) {
  DispatchTable inner_table{&dispatch::testing::test_service()};
  CapturingServer inner(inner_table);
  static const Method relay_method{"relay", "/r.RService/relay", "r.In", "r.Out", &relay};
  static const Service relay_service{"r", "RService", &relay_method, 1, {}};
  DispatchTable outer_table{&relay_service};
  CapturingServer outer(outer_table);
  HttpClient to_inner(inner.url());
  downstream = &to_inner;

  HttpClient client(outer.url());
  CallOptions options;
  options.headers.emplace_back("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(client.call("/r.RService/relay", "x", options).ok());
  EXPECT_NE(outer.line_with("executing: r.relay").find("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
            std::string::npos)
      << outer.line_with("executing: r.relay");
  EXPECT_NE(inner.line_with("executing: t.echo").find("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
            std::string::npos)
      << inner.line_with("executing: t.echo");

  // Without a traceparent the outer server starts a trace, and the inner
  // call is in that same trace.
  ASSERT_TRUE(client.call("/r.RService/relay", "y", {}).ok());
  const std::string started = outer.last_trace_id_of("executing: r.relay");
  EXPECT_EQ(started.size(), 32u);
  EXPECT_NE(started, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(inner.last_trace_id_of("executing: t.echo"), started);
  downstream = nullptr;
}

TEST(TracePropagation, GrpcClientCarriesTheTraceToo) {
  DispatchTable inner_table{&dispatch::testing::test_service()};
  CapturingServer inner(inner_table);
  static const Method relay_method{"relay", "/r.RService/relay", "r.In", "r.Out", &relay};
  static const Service relay_service{"r", "RService", &relay_method, 1, {}};
  DispatchTable outer_table{&relay_service};
  CapturingServer outer(outer_table);
  GrpcClient to_inner(inner.url());  // the inner server's gRPC side
  downstream = &to_inner;
  HttpClient client(outer.url());
  CallOptions options;
  options.headers.emplace_back("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(client.call("/r.RService/relay", "x", options).ok());
  EXPECT_EQ(inner.last_trace_id_of("executing: t.echo"), "4bf92f3577b34da6a3ce929d0e0e4736");
  downstream = nullptr;
}

TEST(TracePropagation, OutsideACallNoTraceIsSent) {
  DispatchTable table{&dispatch::testing::test_service()};
  CapturingServer server(table);
  HttpClient client(server.url());
  ASSERT_TRUE(client.call("/t.TService/echo", "x", {}).ok());
  // The server started a trace of its own: a fresh id, 32 hex digits.
  const std::string line = server.line_with("executing: t.echo");
  const auto at = line.find("trace_id=");
  ASSERT_NE(at, std::string::npos) << line;
  EXPECT_EQ(line.substr(at + 9).size(), 32u);
}

}  // namespace
}  // namespace dispatch::transport
