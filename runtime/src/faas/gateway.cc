// Gateway: one synchronous POST per call over Boost.Beast (see the header).
#include "dispatch/faas/gateway.h"

#include <openssl/evp.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "transport/url.h"

namespace dispatch::faas {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// http://host[:port][/prefix]; https:// is refused (see the header).
Result<transport::Url> parse_url(std::string_view url) {
  auto parsed = transport::parse_url(url, "gateway URL");
  if (parsed.ok() && parsed->tls) {
    return Error(Code::invalid_argument, "gateway URL '" + std::string(url.substr(0, 200)) +
                                             "' is https://, which this client does not speak; expected "
                                             "http://host[:port][/prefix]");
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

// OpenFaaS names functions as Kubernetes names services, with an optional
// ".<namespace>".
bool is_function_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return name.front() != '-' && name.front() != '.';
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Code code_for(int status) {
  switch (status) {
    case 400: return Code::invalid_argument;
    case 401: return Code::unauthenticated;
    case 403: return Code::permission_denied;
    case 404: return Code::not_found;
    case 408: return Code::deadline_exceeded;
    case 429: return Code::resource_exhausted;
    case 502:
    case 503: return Code::unavailable;
    case 504: return Code::deadline_exceeded;
    default: return status >= 500 ? Code::internal : Code::unknown;
  }
}

// The body as a short, printable quote for an error message.
std::string excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  if (body.size() > 200) out += "...";
  return out;
}

}  // namespace

Result<GatewayOptions> GatewayOptions::from_env() {
  GatewayOptions options;
  if (const char* url = std::getenv("OPENFAAS_URL"); url != nullptr && *url != '\0') {
    options.url = url;
    if (auto parsed = parse_url(options.url); !parsed.ok()) {
      return std::move(parsed).error().with_context("OPENFAAS_URL");
    }
  }
  if (const char* user = std::getenv("OPENFAAS_USERNAME"); user != nullptr && *user != '\0') options.username = user;
  if (const char* password = std::getenv("OPENFAAS_PASSWORD"); password != nullptr) options.password = password;
  return options;
}

Result<Gateway> Gateway::create(GatewayOptions options) {
  if (auto parsed = parse_url(options.url); !parsed.ok()) return std::move(parsed).error();
  return Gateway(std::move(options));
}

Result<Gateway> Gateway::from_env() {
  auto options = GatewayOptions::from_env();
  if (!options.ok()) return std::move(options).error();
  return create(std::move(*options));
}

namespace {

struct Call {
  std::string_view route;  // "function" or "async-function"
  std::string_view function, body, content_type, callback_url;
};

Result<http::response<http::string_body>> post(const GatewayOptions& options, const Call& call) {
  if (!is_function_name(call.function)) {
    return Error(Code::invalid_argument, "'" + excerpt(call.function) +
                                             "' is not an OpenFaaS function name (lower-case letters, digits, "
                                             "'-', then '.<namespace>' if it has one)");
  }
  auto target = parse_url(options.url);
  if (!target.ok()) return std::move(target).error();
  const std::string what = "function '" + std::string(call.function) + "' on " + options.url;
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  auto failed = [&](const char* doing) {
    if (ec == beast::error::timeout) {
      return Error(Code::deadline_exceeded, what + ": no answer within " + std::to_string(options.timeout.count()) +
                                                " ms");
    }
    return Error(Code::unavailable, what + ": " + doing + ": " + ec.message());
  };
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(target->host, target->port, ec);
  if (ec) return failed("cannot resolve the gateway");
  stream.expires_after(options.timeout);
  ec = run_one(io, [&](auto done) { stream.async_connect(endpoints, done); });
  if (ec) return failed("cannot connect to the gateway");

  const std::string path = target->prefix + "/" + std::string(call.route) + "/" + std::string(call.function);
  http::request<http::string_body> request(http::verb::post, path, 11);
  request.set(http::field::host, target->authority);
  request.set(http::field::content_type, beast::string_view(call.content_type.data(), call.content_type.size()));
  if (!options.password.empty()) {
    request.set(http::field::authorization, "Basic " + base64(options.username + ":" + options.password));
  }
  if (!call.callback_url.empty()) {
    request.set("X-Callback-Url", beast::string_view(call.callback_url.data(), call.callback_url.size()));
  }
  request.body() = std::string(call.body);
  request.prepare_payload();
  ec = run_one(io, [&](auto done) { http::async_write(stream, request, done); });
  if (ec) return failed("cannot send");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_output_bytes);
  ec = run_one(io, [&](auto done) { http::async_read(stream, buffer, parser, done); });
  if (ec == http::error::body_limit) {
    return Error(Code::resource_exhausted, what + ": the output is larger than " +
                                               std::to_string(options.max_output_bytes) + " bytes");
  }
  if (ec) return failed("no answer");
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  http::response<http::string_body> response = parser.release();
  const int status = static_cast<int>(response.result_int());
  if (status < 200 || status > 299) {
    const auto type = response[http::field::content_type];
    return Error(code_for(status), what + " answered " + std::to_string(status) +
                                       (type.empty() ? "" : " (" + std::string(type) + ")") + ": " +
                                       excerpt(response.body()));
  }
  return response;
}

}  // namespace

Result<Output> Gateway::invoke(std::string_view function, std::string_view body,
                               std::string_view content_type) const {
  auto response = post(options_, Call{"function", function, body, content_type, {}});
  if (!response.ok()) return std::move(response).error();
  Output out;
  out.status = static_cast<int>(response->result_int());
  out.content_type = std::string((*response)[http::field::content_type]);
  out.body = std::move(response->body());
  return out;
}

Result<std::string> Gateway::invoke_async(std::string_view function, std::string_view body,
                                          std::string_view content_type, std::string_view callback_url) const {
  auto response = post(options_, Call{"async-function", function, body, content_type, callback_url});
  if (!response.ok()) return std::move(response).error();
  const auto id = (*response)["X-Call-Id"];
  if (id.empty()) {
    return Error(Code::internal, "the gateway accepted the async call of '" + std::string(function) +
                                     "' (" + std::to_string(response->result_int()) + ") without an X-Call-Id");
  }
  return std::string(id);
}

}  // namespace dispatch::faas
