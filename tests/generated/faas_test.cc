// The generated FaaS proxies (faas/api.h) against a fake OpenFaaS gateway on
// 127.0.0.1 that answers as the gateway's HTTP API documents: a struct
// function reading and writing JSON, a text function, a bytes function, a
// function answering 500 with an HTML page, one answering HTML with a 200, a
// slow one, and the async queue's 202 with an X-Call-Id; and a gateway that
// is not there.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "faas/api.dispatch.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class FakeGateway {
 public:
  FakeGateway() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accepting_ = std::thread([this] { accept(); });
  }
  ~FakeGateway() {
    stopping_ = true;
    beast::error_code ec;
    tcp::socket poke(io_);  // wakes the blocking accept()
    poke.connect(acceptor_.local_endpoint(), ec);
    accepting_.join();
    for (auto& t : handlers_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  http::request<http::string_body> last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  void accept() {
    for (;;) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_ || ec) return;
      handlers_.emplace_back([this, s = std::make_shared<tcp::socket>(std::move(socket))] { serve(*s); });
    }
  }
  void serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = req;
    }
    http::response<http::string_body> res(http::status::ok, 11);
    const std::string target(req.target());
    if (target == "/function/fibonacci") {
      // Says more than the proxy reads, and the int64 as a number.
      res.set(http::field::content_type, "application/json");
      res.body() = req.body() == R"({"n":10})" ? R"({"value": 55, "took_ms": 3})" : R"({"value": -1})";
    } else if (target == "/function/figlet") {
      res.set(http::field::content_type, "text/plain");
      res.body() = "<<" + req.body() + ">>";
    } else if (target == "/function/reverse") {
      res.set(http::field::content_type, "application/octet-stream");
      res.body() = std::string(req.body().rbegin(), req.body().rend());
    } else if (target == "/function/broken") {
      res.result(http::status::internal_server_error);
      res.set(http::field::content_type, "text/html");
      res.body() = "<html><body><h1>500 Internal Server Error</h1></body></html>";
    } else if (target == "/function/html") {
      res.set(http::field::content_type, "text/html");
      res.body() = "<html><body>Welcome to nginx!</body></html>";
    } else if (target == "/function/slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(800));
    } else if (req.method() == http::verb::delete_ && target.rfind("/async-function/", 0) == 0) {
      res.result(target == "/async-function/fibonacci/call-fibonacci" ? http::status::accepted
                                                                       : http::status::not_found);
    } else if (target.rfind("/async-function/", 0) == 0) {
      res.result(http::status::accepted);
      res.set("X-Call-Id", "call-" + target.substr(16));
    } else {
      res.result(http::status::not_found);
      res.body() = "Cannot find service: " + target.substr(target.rfind('/') + 1) + ".";
    }
    res.prepare_payload();
    http::write(socket, res, ec);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread accepting_;
  std::vector<std::thread> handlers_;
  std::mutex mu_;
  http::request<http::string_body> last_;
};

// A timeout far above any answer's time, however slow the build (ASan, TSan,
// a busy machine), except where a test wants one to pass.
dispatch::faas::Gateway gateway_at(const std::string& url,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  dispatch::faas::GatewayOptions options;
  options.url = url;
  options.timeout = timeout;
  return dispatch::faas::Gateway::create(options).value();
}

TEST(FaasProxy, AStructGoesAsJsonAndTheReplyIsReadFromJson) {
  FakeGateway server;
  auto reply = faastest::faas::fibonacci.try_call(gateway_at(server.url()), {10});
  ASSERT_TRUE(reply.ok()) << reply.error().what();
  EXPECT_EQ(reply->value, 55);
  EXPECT_EQ(server.last().target(), "/function/fibonacci");
  EXPECT_EQ(server.last()[http::field::content_type], "application/json");
  EXPECT_EQ(server.last().body(), R"({"n":10})");
  // The throwing form gives the same.
  EXPECT_EQ(faastest::faas::fibonacci(gateway_at(server.url()), {10}).value, 55);
}

TEST(FaasProxy, TextAndBytesGoAsThemselves) {
  FakeGateway server;
  auto art = faastest::faas::render.try_call(gateway_at(server.url()), "hi");
  ASSERT_TRUE(art.ok()) << art.error().what();
  EXPECT_EQ(*art, "<<hi>>");
  EXPECT_EQ(server.last()[http::field::content_type], "text/plain; charset=utf-8");
  auto reversed = faastest::faas::reverse.try_call(gateway_at(server.url()), {1, 0, 255});
  ASSERT_TRUE(reversed.ok()) << reversed.error().what();
  EXPECT_EQ(*reversed, (std::vector<std::uint8_t>{255, 0, 1}));
  EXPECT_EQ(server.last()[http::field::content_type], "application/octet-stream");
}

TEST(FaasProxy, AFunctionAnswering500IsAnErrorValueNamingIt) {
  FakeGateway server;
  auto reply = faastest::faas::broken.try_call(gateway_at(server.url()), {1});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code(), dispatch::Code::internal);
  EXPECT_NE(reply.error().message().find("function 'broken'"), std::string::npos) << reply.error().message();
  EXPECT_NE(reply.error().message().find("500"), std::string::npos) << reply.error().message();
  EXPECT_THROW(faastest::faas::broken(gateway_at(server.url()), {1}), dispatch::Error);
}

TEST(FaasProxy, HtmlWhereJsonWasExpectedIsAnErrorValue) {
  FakeGateway server;
  auto reply = faastest::faas::html.try_call(gateway_at(server.url()), {1});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code(), dispatch::Code::internal);
  const std::string& m = reply.error().message();
  EXPECT_NE(m.find("function 'html' answered 200 (text/html)"), std::string::npos) << m;
  EXPECT_NE(m.find("faastest.FibReply"), std::string::npos) << m;
  EXPECT_NE(m.find("Welcome to nginx"), std::string::npos) << m;
}

TEST(FaasProxy, AnUnreachableGatewayIsUnavailable) {
  std::string url;
  {
    FakeGateway closed;  // a port that was just free, and is closed again
    url = closed.url();
  }
  auto reply = faastest::faas::fibonacci.try_call(gateway_at(url), {10});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code(), dispatch::Code::unavailable);
  EXPECT_NE(reply.error().message().find("function 'fibonacci'"), std::string::npos) << reply.error().message();
}

TEST(FaasProxy, ASlowFunctionIsDeadlineExceeded) {
  FakeGateway server;
  auto done = faastest::faas::slow.try_call(gateway_at(server.url(), std::chrono::milliseconds(300)));
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.error().code(), dispatch::Code::deadline_exceeded);
  EXPECT_NE(done.error().message().find("function 'slow'"), std::string::npos) << done.error().message();
}

TEST(FaasProxy, TheAsyncQueueTakesTheBodyAndTheCallbackAndGivesTheCallId) {
  FakeGateway server;
  auto id = faastest::faas::fibonacci.invoke_async(gateway_at(server.url()), {7}, "http://127.0.0.1:9/done");
  ASSERT_TRUE(id.ok()) << id.error().what();
  EXPECT_EQ(*id, "call-fibonacci");
  EXPECT_EQ(server.last().target(), "/async-function/fibonacci");
  EXPECT_EQ(server.last()["X-Callback-Url"], "http://127.0.0.1:9/done");
  EXPECT_EQ(server.last().body(), R"({"n":7})");
  // And it can be cancelled by that id (DELETE /async-function/<name>/<id>).
  auto cancelled = faastest::faas::fibonacci.cancel_async(gateway_at(server.url()), *id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().what();
  EXPECT_EQ(server.last().method(), http::verb::delete_);
  EXPECT_EQ(server.last().target(), "/async-function/fibonacci/call-fibonacci");
  auto gone = faastest::faas::fibonacci.cancel_async(gateway_at(server.url()), "call-gone");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), dispatch::Code::not_found);
  // What the callback then receives decodes as a call's output does.
  auto reply = faastest::faas::fibonacci.decode_output({200, "application/json", R"({"value":"13"})"});
  ASSERT_TRUE(reply.ok()) << reply.error().what();
  EXPECT_EQ(reply->value, 13);
}

TEST(FaasProxy, TheFutureFormHoldsTheResultOrTheError) {
  FakeGateway server;
  auto fib = faastest::faas::fibonacci.async(gateway_at(server.url()), {10});
  auto art = faastest::faas::render.async(gateway_at(server.url()), std::string("x"));
  auto broken = faastest::faas::broken.async(gateway_at(server.url()), {1});
  EXPECT_EQ(fib.get().value, 55);
  EXPECT_EQ(art.get(), "<<x>>");
  EXPECT_THROW(broken.get(), dispatch::Error);
}

}  // namespace
