// Test-only: a raw HTTP/1.1 server listening on many loopback ports at once
// (one thread, one io_context), so that a test can call thousands of
// distinct servers without thousands of server threads; plain or TLS (with
// a self-signed certificate made here). Each request is answered 200
// application/proto with whatever `answer` returns; connections are kept
// open until the client closes them, and counted, so a test can see the
// client's connections open and close. Used by the transport's, the
// scheduler's and the durable tests.
//
// Not for: anything but tests (no limits, no timeouts).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "transport/test_certificate.h"

namespace dispatch::testing {

class MultiPortServer {
 public:
  // Answers a request (its target and body) with the reply body.
  using Answer = std::function<std::string(const std::string& target, const std::string& body)>;

  // `ports` listeners on 127.0.0.1, each on a port of its own; TLS when
  // `certificate` is given.
  MultiPortServer(std::size_t ports, Answer answer, const TestCertificate* certificate = nullptr)
      : answer_(std::move(answer)), work_(ioc_.get_executor()) {
    namespace asio = boost::asio;
    if (certificate) {
      tls_.emplace(asio::ssl::context::tls_server);
      tls_->use_certificate_chain(asio::buffer(certificate->cert_pem));
      tls_->use_private_key(asio::buffer(certificate->key_pem), asio::ssl::context::pem);
    }
    for (std::size_t i = 0; i < ports; ++i) {
      acceptors_.emplace_back(ioc_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      ports_.push_back(acceptors_.back().local_endpoint().port());
    }
    for (auto& acceptor : acceptors_) accept(acceptor);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~MultiPortServer() {
    ioc_.stop();
    thread_.join();
  }

  const std::vector<uint16_t>& ports() const { return ports_; }
  std::string url(std::size_t i) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(ports_.at(i));
  }
  int accepted() const { return accepted_.load(); }     // connections accepted in all
  int open() const { return open_.load(); }             // connections open now
  int requests() const { return requests_.load(); }     // requests answered

 private:
  using tcp = boost::asio::ip::tcp;
  using TlsStream = boost::asio::ssl::stream<tcp::socket>;

  // One connection: read a request, answer it, again until the client
  // closes. Handlers hold it by shared_ptr.
  struct Session : std::enable_shared_from_this<Session> {
    Session(MultiPortServer& server, tcp::socket socket) : server(server) {
      if (server.tls_) {
        tls.emplace(std::move(socket), *server.tls_);
      } else {
        plain.emplace(std::move(socket));
      }
    }
    ~Session() { server.open_--; }

    void start() {
      if (!tls) {
        read();
        return;
      }
      tls->async_handshake(boost::asio::ssl::stream_base::server,
                           [self = shared_from_this()](boost::system::error_code ec) {
                             if (!ec) self->read();
                           });
    }
    template <typename F>
    void with_stream(F f) {
      if (tls) {
        f(*tls);
      } else {
        f(*plain);
      }
    }
    void read() {
      request = {};
      with_stream([&](auto& stream) {
        boost::beast::http::async_read(stream, buffer, request,
                                       [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                                         if (!ec) self->reply();
                                       });
      });
    }
    void reply() {
      namespace http = boost::beast::http;
      response = {};
      response.version(11);
      response.result(http::status::ok);
      response.set(http::field::content_type, "application/proto");
      response.body() = server.answer_(std::string(request.target()), request.body());
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      server.requests_++;
      with_stream([&](auto& stream) {
        http::async_write(stream, response, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          if (!ec && self->response.keep_alive()) self->read();
        });
      });
    }

    MultiPortServer& server;
    std::optional<tcp::socket> plain;
    std::optional<TlsStream> tls;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> request;
    boost::beast::http::response<boost::beast::http::string_body> response;
  };

  void accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([this, &acceptor](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      accepted_++;
      open_++;
      std::make_shared<Session>(*this, std::move(socket))->start();
      accept(acceptor);
    });
  }

  Answer answer_;
  std::optional<boost::asio::ssl::context> tls_;
  std::atomic<int> accepted_{0}, open_{0}, requests_{0};
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<tcp::acceptor> acceptors_;
  std::vector<uint16_t> ports_;
  std::thread thread_;
};

}  // namespace dispatch::testing
