// Base URL parsing for HttpClient (url.h).
#include "transport/url.h"

#include <string>

namespace dispatch::transport {

std::string Url::origin() const { return (tls ? "https://" : "http://") + authority; }

Result<Url> parse_url(std::string_view url, std::string_view what) {
  auto bad = [&](const std::string& why) {
    return Error(Code::invalid_argument, std::string(what) + " '" + std::string(url.substr(0, 200)) + "' " + why +
                                             "; expected http://host[:port][/prefix] or https://...");
  };
  Url out;
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return bad("has no http:// or https:// scheme");
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  out.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (slash != std::string_view::npos) {
    out.prefix = std::string(rest.substr(slash));
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  if (authority.find('@') != std::string_view::npos) return bad("carries credentials; use api_key");
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unterminated [IPv6] host");
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("has junk after the [IPv6] host");
      port = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("has no host");
  if (!port.empty() && (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
                        std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)) {
    return bad("has an invalid port");
  }
  out.port = port.empty() ? (out.tls ? "443" : "80") : std::string(port);
  out.authority = std::string(authority);
  return out;
}

}  // namespace dispatch::transport
