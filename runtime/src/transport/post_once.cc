// post_once() over Boost.Beast (see the header). Each step runs as an
// asynchronous operation on an io_context of its own, because tcp_stream's
// timeout (expires_after) applies to asynchronous operations only.
#include "transport/post_once.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>

namespace dispatch::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// Runs one asynchronous operation to its end.
template <class Start>
beast::error_code run_one(asio::io_context& io, Start start) {
  beast::error_code result;
  start([&](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  return result;
}

}  // namespace

Result<PostAnswer> post_once(OnePost post) {
  const http::verb verb = http::string_to_verb(post.method);
  if (verb == http::verb::unknown) {
    return Error(Code::invalid_argument, post.what + ": unknown HTTP method '" + post.method + "'");
  }
  const Url& url = *post.url;
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  auto failed = [&](const char* doing) {
    if (ec == beast::error::timeout) {
      return Error(Code::deadline_exceeded,
                   post.what + ": no answer within " + std::to_string(post.timeout.count()) + " ms");
    }
    return Error(Code::unavailable, post.what + ": " + doing + ": " + ec.message());
  };
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) return failed("cannot resolve the host");
  stream.expires_after(post.timeout);
  ec = run_one(io, [&](auto done) { stream.async_connect(endpoints, done); });
  if (ec) return failed("cannot connect");

  http::request<http::string_body> request(verb, post.target, 11);
  request.set(http::field::host, url.authority);
  for (auto& [name, value] : post.headers) request.set(name, value);
  request.body() = std::move(post.body);
  request.prepare_payload();
  ec = run_one(io, [&](auto done) { http::async_write(stream, request, done); });
  if (ec) return failed("cannot send");

  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  // The header first: Beast 1.74 drops the body_limit error of a
  // Content-Length over the limit when it parses eagerly, as async_read
  // does, and reads the whole body; async_read_header does not parse
  // eagerly. A chunked body's limit is checked as it arrives, and once more
  // below. An interim 1xx answer (100 Continue, 103 Early Hints) comes
  // before the final one, which a client must read on to (RFC 9110, 15.2);
  // it has no body, so its header is the whole of it.
  do {
    parser.emplace();
    parser->body_limit(post.max_answer_bytes);
    ec = run_one(io, [&](auto done) { http::async_read_header(stream, buffer, *parser, done); });
  } while (!ec && parser->get().result_int() / 100 == 1 && parser->get().result() != http::status::switching_protocols);
  if (!ec) ec = run_one(io, [&](auto done) { http::async_read(stream, buffer, *parser, done); });
  if (ec == http::error::body_limit || (!ec && parser->get().body().size() > post.max_answer_bytes)) {
    return Error(Code::resource_exhausted,
                 post.what + ": the answer is larger than " + std::to_string(post.max_answer_bytes) + " bytes");
  }
  if (ec) return failed("no answer");
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);

  http::response<http::string_body> response = parser->release();
  PostAnswer answer;
  answer.status = static_cast<int>(response.result_int());
  for (const auto& field : response) {
    answer.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  answer.body = std::move(response.body());
  return answer;
}

}  // namespace dispatch::transport
