// post_once() against a one-connection-at-a-time server on 127.0.0.1 that
// answers as each test tells it: any status comes back as a value with its
// headers and body; a refused connection, a server that never answers and an
// answer over the size limit are errors with their codes, named by `what`.
#include "transport/post_once.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <string>
#include <thread>

namespace dispatch::transport {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Accepts one connection, reads the request's head and `body_bytes` of body,
// records them, writes `answer` (nothing when empty: the client waits) and
// closes after `hold`.
class OneAnswerServer {
 public:
  OneAnswerServer(std::string answer, std::size_t body_bytes, std::chrono::milliseconds hold = {})
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this, answer = std::move(answer), body_bytes, hold] {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      asio::streambuf buffer;
      asio::read_until(socket, buffer, "\r\n\r\n", ec);
      const std::size_t body_read = ec ? 0 : buffer.size() - head_size(buffer);
      if (!ec && body_read < body_bytes) asio::read(socket, buffer, asio::transfer_exactly(body_bytes - body_read), ec);
      request_.assign(asio::buffers_begin(buffer.data()), asio::buffers_end(buffer.data()));
      if (!answer.empty()) asio::write(socket, asio::buffer(answer), ec);
      std::this_thread::sleep_for(hold);
    });
  }
  ~OneAnswerServer() {
    if (thread_.joinable()) thread_.join();
  }
  Url url() const {
    auto u = parse_url("http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()));
    return *u;
  }
  // The request as received, once the exchange is over.
  const std::string& request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  static std::size_t head_size(const asio::streambuf& b) {
    std::string all(asio::buffers_begin(b.data()), asio::buffers_end(b.data()));
    return all.find("\r\n\r\n") + 4;
  }
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::string request_;
};

TEST(PostOnce, AnyStatusIsAnAnswerWithItsHeadersAndBody) {
  Url url;
  PostAnswer answer;
  {
    OneAnswerServer server("HTTP/1.1 418 I'm a teapot\r\nX-Call-Id: c-1\r\nContent-Length: 5\r\n\r\nshort", 4);
    url = server.url();
    OnePost post;
    post.url = &url;
    post.target = "/prefix/function/fib?x=1";
    post.headers = {{"Content-Type", "text/plain"}, {"ce-id", "e-1"}};
    post.body = "ping";
    post.what = "test server";
    auto got = post_once(std::move(post));
    ASSERT_TRUE(got.ok()) << got.error().what();
    answer = std::move(*got);
  }
  EXPECT_EQ(answer.status, 418);
  EXPECT_EQ(answer.body, "short");
  ASSERT_FALSE(answer.headers.empty());
  EXPECT_EQ(answer.headers[0], (std::pair<std::string, std::string>{"X-Call-Id", "c-1"}));
}

TEST(PostOnce, InterimAnswersAreReadPastToTheFinalOne) {
  // A 100 Continue and a 103 Early Hints (a proxy in front of a gateway may
  // send either) are not the answer: the 200 after them is.
  OneAnswerServer server(
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal",
      4);
  Url url = server.url();
  OnePost post;
  post.url = &url;
  post.body = "ping";
  post.what = "test server";
  auto got = post_once(std::move(post));
  ASSERT_TRUE(got.ok()) << got.error().what();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "final");
}

TEST(PostOnce, TheRequestCarriesTargetHostHeadersAndBody) {
  OneAnswerServer server("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 4);
  Url url = server.url();
  OnePost post;
  post.url = &url;
  post.target = "/a/b";
  post.headers = {{"ce-id", "e-1"}};
  post.body = "ping";
  post.what = "test server";
  auto got = post_once(std::move(post));
  ASSERT_TRUE(got.ok()) << got.error().what();
  EXPECT_EQ(got->status, 202);
  EXPECT_TRUE(got->body.empty());
  const std::string& request = server.request();
  EXPECT_EQ(request.rfind("POST /a/b HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("Host: 127.0.0.1:" + url.port + "\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("ce-id: e-1\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("Content-Length: 4\r\n"), std::string::npos) << request;
  EXPECT_EQ(request.substr(request.size() - 4), "ping");
}

TEST(PostOnce, AnotherMethodIsSentAndAnUnknownOneRefused) {
  OneAnswerServer server("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 0);
  Url url = server.url();
  OnePost post;
  post.method = "DELETE";
  post.url = &url;
  post.target = "/async-function/fib/c-1";
  post.what = "test server";
  auto got = post_once(std::move(post));
  ASSERT_TRUE(got.ok()) << got.error().what();
  EXPECT_EQ(got->status, 202);
  EXPECT_EQ(server.request().rfind("DELETE /async-function/fib/c-1 HTTP/1.1\r\n", 0), 0u) << server.request();

  OnePost odd;
  odd.method = "FROB";
  odd.url = &url;
  odd.what = "test server";
  auto refused = post_once(std::move(odd));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::invalid_argument);
  EXPECT_NE(refused.error().message().find("FROB"), std::string::npos) << refused.error().message();
}

TEST(PostOnce, ARefusedConnectionIsUnavailableNamingWhat) {
  Url url;
  {
    asio::io_context io;
    tcp::acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    url = *parse_url("http://127.0.0.1:" + std::to_string(closed.local_endpoint().port()));
  }  // closed: nothing listens on the port any more
  OnePost post;
  post.url = &url;
  post.what = "event sink 127.0.0.1";
  auto got = post_once(std::move(post));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), Code::unavailable);
  EXPECT_EQ(got.error().message().rfind("event sink 127.0.0.1: cannot connect: ", 0), 0u) << got.error().message();
}

TEST(PostOnce, NoAnswerWithinTheTimeoutIsDeadlineExceeded) {
  OneAnswerServer server("", 0, std::chrono::milliseconds(1500));
  Url url = server.url();
  OnePost post;
  post.url = &url;
  post.timeout = std::chrono::milliseconds(200);
  post.what = "slow server";
  const auto started = std::chrono::steady_clock::now();
  auto got = post_once(std::move(post));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), Code::deadline_exceeded);
  EXPECT_EQ(got.error().message(), "slow server: no answer within 200 ms");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1400));
}

// Beast 1.74's async_read alone reads such a body whole, without an error.
TEST(PostOnce, ABodyOverTheLimitIsResourceExhausted) {
  OneAnswerServer server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 0);
  Url url = server.url();
  OnePost post;
  post.url = &url;
  post.max_answer_bytes = 4;
  post.what = "big server";
  auto got = post_once(std::move(post));
  ASSERT_FALSE(got.ok()) << got->body;
  EXPECT_EQ(got.error().code(), Code::resource_exhausted);
  EXPECT_EQ(got.error().message(), "big server: the answer is larger than 4 bytes");
}

TEST(PostOnce, AChunkedBodyOverTheLimitIsResourceExhausted) {
  OneAnswerServer server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n012\r\n3\r\n345\r\n0\r\n\r\n",
                         0);
  Url url = server.url();
  OnePost post;
  post.url = &url;
  post.max_answer_bytes = 4;
  post.what = "chunky server";
  auto got = post_once(std::move(post));
  ASSERT_FALSE(got.ok()) << got->body;
  EXPECT_EQ(got.error().code(), Code::resource_exhausted);
}

}  // namespace
}  // namespace dispatch::transport
