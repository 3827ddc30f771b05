// CORS: origin checks, the preflight answer and the fields of an allowed
// answer (see the header).
#include "transport/cors.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include "transport/http_text.h"

namespace dispatch::transport {
namespace {

namespace http = boost::beast::http;

// Response fields a page may read besides the CORS-safelisted ones: what
// gRPC-Web clients read from headers (a trailers-only answer's status) and
// the answer's encoding.
constexpr const char* kExposed =
    "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Grpc-Encoding, Grpc-Accept-Encoding, Content-Encoding";

bool valid_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '[' || c == ']' || c == ':';
}

}  // namespace

bool is_cors_origin(std::string_view s) {
  if (s == "*") return true;
  const auto sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  for (char c : s.substr(0, sep)) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  const std::string_view host = s.substr(sep + 3);
  if (host.empty()) return false;
  for (char c : host) {
    if (!valid_host_char(c)) return false;
  }
  return true;
}

bool cors_allows(const std::vector<std::string>& allowed, std::string_view origin) {
  if (origin.empty()) return false;
  for (const std::string& a : allowed) {
    if (a == "*") return true;
    if (iequals_ascii(a, origin)) return true;
  }
  return false;
}

bool is_cors_preflight(const Request& request) {
  return request.method() == http::verb::options &&
         request.find(http::field::access_control_request_method) != request.end();
}

Response cors_preflight(const Request& request, std::string_view origin) {
  Response res{http::status::no_content, request.version()};
  res.set(http::field::access_control_allow_origin, boost::beast::string_view(origin.data(), origin.size()));
  res.set(http::field::vary, "Origin");
  res.set(http::field::access_control_allow_methods, "POST, GET");
  if (auto asked = request.find(http::field::access_control_request_headers); asked != request.end()) {
    res.set(http::field::access_control_allow_headers, asked->value());
  }
  res.set(http::field::access_control_max_age, "7200");
  res.keep_alive(request.keep_alive());
  res.prepare_payload();
  return res;
}

void add_cors_fields(Response& response, std::string_view origin) {
  // The headers a function added to its answer (add_response_header())
  // are for the page too: every field beyond the fixed list, the
  // safelisted content ones and CORS's own.
  std::string exposed = kExposed;
  for (const auto& f : response) {
    const std::string name = lowercase_ascii(std::string(f.name_string()));
    if (name.rfind("grpc-", 0) == 0 || name.rfind("access-control-", 0) == 0 || name == "content-encoding" ||
        name == "content-type" || name == "content-length" || name == "vary" || name == "connection" ||
        name == "keep-alive") {
      continue;
    }
    exposed += ", " + name;
  }
  response.set(http::field::access_control_allow_origin, boost::beast::string_view(origin.data(), origin.size()));
  response.set(http::field::vary, "Origin");
  response.set(http::field::access_control_expose_headers, exposed);
}

}  // namespace dispatch::transport
