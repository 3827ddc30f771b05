// Gateway against a test gateway that answers as the OpenFaaS gateway's HTTP
// API documents: /function/<name> with the function's output, 404 for an
// unknown function, a 500 with an HTML page for a broken one, a function
// slower than the client's timeout, and /async-function/<name> answering
// 202 with an X-Call-Id.
#include "dispatch/faas/gateway.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace dispatch::faas {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class TestGateway {
 public:
  TestGateway() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accepting_ = std::thread([this] { accept(); });
  }
  ~TestGateway() {
    stopping_ = true;
    beast::error_code ec;
    // Wakes the blocking accept().
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    accepting_.join();
    for (auto& t : handlers_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  std::string last(const char* header) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = last_.find(header);
    return it == last_.end() ? std::string() : std::string(it->value());
  }
  std::string last_method() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::string(last_.method_string());
  }
  std::string last_target() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::string(last_.target());
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
    if (target == "/function/echo") {
      res.set(http::field::content_type, req[http::field::content_type]);
      res.body() = req.body();
    } else if (target == "/function/broken") {
      res.result(http::status::internal_server_error);
      res.set(http::field::content_type, "text/html");
      res.body() = "<html><body><h1>500 Internal Server Error</h1></body></html>";
    } else if (target == "/function/slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(800));
      res.body() = "late";
    } else if (req.method() == http::verb::delete_ && target.rfind("/async-function/", 0) == 0) {
      // As OpenFaaS: 202 for a call it knows, 404 otherwise.
      const bool known = target == "/async-function/echo/call-echo";
      res.result(known ? http::status::accepted : http::status::not_found);
      if (!known) res.body() = "call not found";
    } else if (target.rfind("/async-function/", 0) == 0) {
      res.result(http::status::accepted);
      res.set("X-Call-Id", "call-" + target.substr(16));
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
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

Gateway gateway_at(const std::string& url, std::string password = "") {
  GatewayOptions options;
  options.url = url;
  options.password = std::move(password);
  options.timeout = std::chrono::milliseconds(300);
  auto gateway = Gateway::create(options);
  EXPECT_TRUE(gateway.ok()) << gateway.error().what();
  return std::move(*gateway);
}

TEST(Gateway, InvokeReturnsTheFunctionsOutputAndSendsBasicAuth) {
  TestGateway server;
  auto out = gateway_at(server.url(), "s3cret").invoke("echo", R"({"n":10})");
  ASSERT_TRUE(out.ok()) << out.error().what();
  EXPECT_EQ(out->status, 200);
  EXPECT_EQ(out->body, R"({"n":10})");
  EXPECT_EQ(out->content_type, "application/json");
  EXPECT_EQ(server.last_target(), "/function/echo");
  EXPECT_EQ(server.last("Authorization"), "Basic YWRtaW46czNjcmV0");  // admin:s3cret
  ASSERT_TRUE(gateway_at(server.url()).invoke("echo", "hi", "text/plain").ok());
  EXPECT_EQ(server.last("Authorization"), "");
}

TEST(Gateway, InvokeAsyncReturnsTheCallIdAndPassesTheCallbackUrl) {
  TestGateway server;
  auto id = gateway_at(server.url()).invoke_async("echo", "{}", "application/json", "http://127.0.0.1:9/done");
  ASSERT_TRUE(id.ok()) << id.error().what();
  EXPECT_EQ(*id, "call-echo");
  EXPECT_EQ(server.last_target(), "/async-function/echo");
  EXPECT_EQ(server.last("X-Callback-Url"), "http://127.0.0.1:9/done");
}

TEST(Gateway, CancelAsyncDeletesTheCallById) {
  TestGateway server;
  const Gateway gateway = gateway_at(server.url());
  auto id = gateway.invoke_async("echo", "{}");
  ASSERT_TRUE(id.ok()) << id.error().what();
  auto cancelled = gateway.cancel_async("echo", *id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().what();
  EXPECT_EQ(server.last_target(), "/async-function/echo/call-echo");
  EXPECT_EQ(server.last_method(), "DELETE");
  auto unknown = gateway.cancel_async("echo", "call-gone");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::not_found);
  EXPECT_NE(unknown.error().message().find("404"), std::string::npos) << unknown.error().message();
  for (const char* bad : {"", "../function/echo", "a/b", "id with space", ".."}) {
    auto refused = gateway.cancel_async("echo", bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().code(), Code::invalid_argument) << bad;
  }
  EXPECT_EQ(server.last_target(), "/async-function/echo/call-gone");  // nothing sent for the bad ones
}

TEST(Gateway, FailuresAreErrorsSayingWhatCameBack) {
  TestGateway server;
  const Gateway gateway = gateway_at(server.url());
  auto broken = gateway.invoke("broken", "{}");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code(), Code::internal);
  EXPECT_NE(broken.error().message().find("answered 500 (text/html): <html>"), std::string::npos)
      << broken.error().message();
  auto missing = gateway.invoke("nobody", "{}");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::not_found);
  EXPECT_NE(missing.error().message().find("Cannot find service: nobody."), std::string::npos);
  auto slow = gateway.invoke("slow", "{}");
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code(), Code::deadline_exceeded) << slow.error().what();
  auto bad_name = gateway.invoke("Fib/../x", "{}");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().code(), Code::invalid_argument);
}

TEST(Gateway, NoGatewayIsUnavailableAndABadUrlInvalid) {
  std::string url;
  {
    TestGateway gone;
    url = gone.url();
  }
  auto refused = gateway_at(url).invoke("echo", "{}");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::unavailable) << refused.error().what();
  for (const char* bad : {"https://gw:8080", "gw:8080", "http://:8080", "http://gw:0", "http://gw:x"}) {
    GatewayOptions options;
    options.url = bad;
    auto gateway = Gateway::create(options);
    ASSERT_FALSE(gateway.ok()) << bad;
    EXPECT_EQ(gateway.error().code(), Code::invalid_argument) << bad;
  }
}

TEST(Gateway, FromEnvReadsTheUrlAndCredentials) {
  ::setenv("OPENFAAS_URL", "http://gateway.openfaas:8080", 1);
  ::setenv("OPENFAAS_PASSWORD", "pw", 1);
  ::unsetenv("OPENFAAS_USERNAME");
  auto options = GatewayOptions::from_env();
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->url, "http://gateway.openfaas:8080");
  EXPECT_EQ(options->username, "admin");
  EXPECT_EQ(options->password, "pw");
  ::setenv("OPENFAAS_URL", "ftp://x", 1);
  auto bad = GatewayOptions::from_env();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("OPENFAAS_URL"), std::string::npos) << bad.error().message();
  ::unsetenv("OPENFAAS_URL");
  ::unsetenv("OPENFAAS_PASSWORD");
}

}  // namespace
}  // namespace dispatch::faas
