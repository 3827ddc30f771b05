// send_event(), send_batch(): one synchronous POST over Boost.Beast (see the
// header).
#include "dispatch/events/event_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <string>
#include <utility>

#include "dispatch/events/json_format.h"
#include "transport/connect.h"
#include "transport/url.h"

namespace dispatch::events {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// http://host[:port][/path]; https:// is refused (see the header).
Result<transport::Url> sink_url(std::string_view url) {
  auto parsed = transport::parse_url(url, "event sink URL");
  if (parsed.ok() && parsed->tls) {
    return Error(Code::invalid_argument, "event sink URL '" + std::string(url.substr(0, 200)) +
                                             "' is https://, which this client does not speak; expected "
                                             "http://host[:port][/path]");
  }
  return parsed;
}

// Runs one asynchronous operation to its end: tcp_stream's timeout
// (expires_after) applies to asynchronous operations only.
template <class Start>
beast::error_code run_one(asio::io_context& io, Start start) {
  beast::error_code result;
  start([&](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  return result;
}

struct Answer {
  int status = 0;
  HeaderLines headers;
  std::string body;
};

Result<Answer> post(std::string_view url, HeaderLines headers, std::string body, const SendOptions& options) {
  auto target = sink_url(url);
  if (!target.ok()) return std::move(target).error();
  asio::io_context io;
  beast::tcp_stream stream(io);
  const std::string where = target->host + ":" + target->port;
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(target->host, target->port, ec);
  if (ec) return Error(Code::unavailable, "cannot resolve " + where + ": " + ec.message());
  stream.expires_after(options.timeout);
  ec = run_one(io, [&](auto done) { stream.async_connect(endpoints, done); });
  auto failed = [&](const char* doing) {
    if (ec == beast::error::timeout) {
      return Error(Code::deadline_exceeded, std::string(doing) + " " + where + ": no answer within " +
                                                std::to_string(options.timeout.count()) + " ms");
    }
    return Error(Code::unavailable, std::string(doing) + " " + where + ": " + ec.message());
  };
  if (ec) return failed("cannot connect to");

  http::request<http::string_body> request(http::verb::post, target->path, 11);
  request.set(http::field::host, target->authority);
  for (auto& [name, value] : headers) request.set(name, value);
  request.body() = std::move(body);
  request.prepare_payload();
  ec = run_one(io, [&](auto done) { http::async_write(stream, request, done); });
  if (ec) return failed("cannot send to");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_reply_bytes);
  ec = run_one(io, [&](auto done) { http::async_read(stream, buffer, parser, done); });
  if (ec == http::error::body_limit) {
    return Error(Code::resource_exhausted, "the reply from " + where + " is larger than " +
                                               std::to_string(options.max_reply_bytes) + " bytes");
  }
  if (ec) return failed("no answer from");
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);

  Answer answer;
  const auto& response = parser.get();
  answer.status = static_cast<int>(response.result_int());
  for (const auto& field : response) {
    answer.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  answer.body = response.body();
  if (answer.status < 200 || answer.status > 299) {
    return connect::error_from_json(answer.body, answer.status)
        .with_context("event sink " + std::string(url.substr(0, 200)));
  }
  return answer;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

std::string header_of(const HeaderLines& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (equals_ignoring_case(n, name)) return v;
  }
  return {};
}

bool has_ce_header(const HeaderLines& headers) {
  for (const auto& [n, v] : headers) {
    if (n.size() > 3 && equals_ignoring_case(std::string_view(n).substr(0, 3), "ce-")) return true;
  }
  return false;
}

Error bad_reply(const Error& why) {
  return Error(Code::invalid_argument, std::string("the sink's reply is not a valid CloudEvent: ") + why.what());
}

}  // namespace

Result<std::optional<CloudEvent>> send_event(std::string_view url, const CloudEvent& event,
                                             const SendOptions& options) {
  if (auto valid = check_event(event); !valid.ok()) return std::move(valid).error();
  HeaderLines headers;
  std::string body;
  if (options.mode == ContentMode::binary) {
    headers = binary_headers(event);
    body = event.data.value_or("");
  } else if (options.mode == ContentMode::structured) {
    headers.emplace_back("Content-Type", std::string(kStructuredJson) + "; charset=utf-8");
    body = to_json(event);
  } else {
    return Error(Code::invalid_argument, "send_event() sends one event; send_batch() sends a batch");
  }
  auto answer = post(url, std::move(headers), std::move(body), options);
  if (!answer.ok()) return std::move(answer).error();
  const std::string content_type = header_of(answer->headers, "Content-Type");
  if (answer->status == 202 || answer->status == 204) return std::optional<CloudEvent>();
  switch (content_mode(content_type)) {
    case ContentMode::structured: {
      auto reply = from_json(answer->body);
      if (!reply.ok()) return bad_reply(reply.error());
      return std::optional<CloudEvent>(std::move(*reply));
    }
    case ContentMode::batch:
      return Error(Code::invalid_argument, "the sink answered one event with a batch");
    case ContentMode::binary:
      break;
  }
  if (!has_ce_header(answer->headers)) return std::optional<CloudEvent>();
  HeaderViews views;
  for (const auto& [n, v] : answer->headers) views.emplace_back(n, v);
  auto reply = from_binary(views, answer->body);
  if (!reply.ok()) return bad_reply(reply.error());
  return std::optional<CloudEvent>(std::move(*reply));
}

Result<std::vector<CloudEvent>> send_batch(std::string_view url, const std::vector<CloudEvent>& events,
                                           const SendOptions& options) {
  for (const CloudEvent& event : events) {
    if (auto valid = check_event(event); !valid.ok()) {
      return std::move(valid).error().with_context("event '" + event.id + "' of the batch");
    }
  }
  HeaderLines headers{{"Content-Type", std::string(kBatchJson) + "; charset=utf-8"}};
  auto answer = post(url, std::move(headers), to_json_batch(events), options);
  if (!answer.ok()) return std::move(answer).error();
  if (answer->status == 202 || answer->status == 204 || answer->body.empty()) return std::vector<CloudEvent>();
  if (content_mode(header_of(answer->headers, "Content-Type")) != ContentMode::batch) {
    return Error(Code::invalid_argument, "the sink answered a batch with something other than a batch");
  }
  auto replies = from_json_batch(answer->body);
  if (!replies.ok()) return bad_reply(replies.error());
  return std::move(*replies);
}

}  // namespace dispatch::events
