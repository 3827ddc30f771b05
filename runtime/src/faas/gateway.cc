// Gateway: one synchronous POST per call, through the transport's
// post_once() (see the header).
#include "dispatch/faas/gateway.h"

#include <openssl/evp.h>

#include <boost/beast/core/string.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "transport/post_once.h"
#include "transport/url.h"

namespace dispatch::faas {
namespace {

namespace beast = boost::beast;

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
  std::string_view method = "POST";
  std::string_view call_id = {};  // DELETE: the async call to cancel
};

std::string header_of(const transport::HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (beast::iequals(n, beast::string_view(name.data(), name.size()))) return v;
  }
  return {};
}

Result<transport::PostAnswer> post(const GatewayOptions& options, const Call& call) {
  if (!is_function_name(call.function)) {
    return Error(Code::invalid_argument, "'" + excerpt(call.function) +
                                             "' is not an OpenFaaS function name (lower-case letters, digits, "
                                             "'-', then '.<namespace>' if it has one)");
  }
  auto target = parse_url(options.url);
  if (!target.ok()) return std::move(target).error();
  transport::OnePost one;
  one.url = &*target;
  one.method = std::string(call.method);
  one.target = target->prefix + "/" + std::string(call.route) + "/" + std::string(call.function);
  if (!call.call_id.empty()) one.target += "/" + std::string(call.call_id);
  if (!call.content_type.empty()) one.headers.emplace_back("Content-Type", std::string(call.content_type));
  if (!options.password.empty()) {
    one.headers.emplace_back("Authorization", "Basic " + base64(options.username + ":" + options.password));
  }
  if (!call.callback_url.empty()) one.headers.emplace_back("X-Callback-Url", std::string(call.callback_url));
  one.body = std::string(call.body);
  one.timeout = options.timeout;
  one.max_answer_bytes = options.max_output_bytes;
  one.what = "function '" + std::string(call.function) + "' on " + options.url;
  auto answer = transport::post_once(std::move(one));
  if (!answer.ok()) return std::move(answer).error();
  if (answer->status < 200 || answer->status > 299) {
    const std::string type = header_of(answer->headers, "Content-Type");
    return Error(code_for(answer->status), "function '" + std::string(call.function) + "' on " + options.url +
                                               " answered " + std::to_string(answer->status) +
                                               (type.empty() ? "" : " (" + type + ")") + ": " +
                                               excerpt(answer->body));
  }
  return answer;
}

}  // namespace

Result<Output> Gateway::invoke(std::string_view function, std::string_view body,
                               std::string_view content_type) const {
  auto answer = post(options_, Call{"function", function, body, content_type, {}});
  if (!answer.ok()) return std::move(answer).error();
  Output out;
  out.status = answer->status;
  out.content_type = header_of(answer->headers, "Content-Type");
  out.body = std::move(answer->body);
  return out;
}

Result<std::string> Gateway::invoke_async(std::string_view function, std::string_view body,
                                          std::string_view content_type, std::string_view callback_url) const {
  auto answer = post(options_, Call{"async-function", function, body, content_type, callback_url});
  if (!answer.ok()) return std::move(answer).error();
  std::string id = header_of(answer->headers, "X-Call-Id");
  if (id.empty()) {
    return Error(Code::internal, "the gateway accepted the async call of '" + std::string(function) +
                                     "' (" + std::to_string(answer->status) + ") without an X-Call-Id");
  }
  return id;
}

Result<void> Gateway::cancel_async(std::string_view function, std::string_view call_id) const {
  const bool valid = !call_id.empty() && call_id.size() <= 200 &&
                     call_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
                         std::string_view::npos &&
                     call_id != "." && call_id != "..";
  if (!valid) {
    return Error(Code::invalid_argument, "'" + excerpt(call_id) + "' is not an async call id of function '" +
                                             excerpt(function) + "' (X-Call-Id: letters, digits, '-', '_', '.')");
  }
  Call call{"async-function", function, {}, {}, {}};
  call.method = "DELETE";
  call.call_id = call_id;
  auto answer = post(options_, call);
  if (!answer.ok()) return std::move(answer).error();
  return {};
}

}  // namespace dispatch::faas
