// The server's listen address and its options from the environment
// (dispatch/transport/server.h): PORT (Knative, Cloud Run, OpenFaaS),
// DISPATCH_ENDPOINT_ADDR and DISPATCH_VERIFICATION_KEY.
//
// Not for: running the server (http_server.cc).
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dispatch/transport/server.h"
#include "transport/cors.h"
#include "transport/http_text.h"
#include "transport/secure_options.h"

namespace dispatch {

Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view address) {
  auto bad = [&](const char* why) {
    return Error(Code::invalid_argument,
                 "listen address '" + std::string(address) + "' " + why + "; expected host:port");
  };
  std::string host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return bad("has an unterminated or portless [IPv6] host");
    }
    host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    host = std::string(address.substr(0, colon));
    port = address.substr(colon + 1);
  }
  if (host.empty()) return bad("has no host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535) {
    return bad("has no valid port (0-65535)");
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stoul(std::string(port))));
}

Result<std::vector<std::string>> parse_cors_origins(std::string_view list, std::string_view source) {
  std::vector<std::string> origins;
  std::optional<Error> bad;
  transport::find_list_item(list, [&](std::string_view origin) {
    if (!transport::is_cors_origin(origin)) {
      bad = Error(Code::invalid_argument, std::string(source) + ": '" + std::string(origin) +
                                              "' is not an origin (scheme://host[:port], no path) or *");
      return true;
    }
    origins.emplace_back(origin);
    return false;
  });
  if (bad) return std::move(*bad);
  return origins;
}

Result<ServerOptions> ServerOptions::from_env() {
  ServerOptions options;
  if (const char* port = std::getenv("PORT"); port != nullptr && *port != '\0') {
    // Digits only: "0.0.0.0:" + "8080:1" would parse as host "0.0.0.0:8080".
    const bool digits = std::string_view(port).find_first_not_of("0123456789") == std::string_view::npos;
    auto parsed = parse_listen_address(std::string("0.0.0.0:") + port);
    if (!digits || !parsed.ok()) {
      return Error(Code::invalid_argument, "PORT='" + std::string(port) + "' is not a port number (0-65535)");
    }
    options.host = parsed->first;
    options.port = parsed->second;
  } else if (const char* addr = std::getenv("DISPATCH_ENDPOINT_ADDR"); addr != nullptr && *addr != '\0') {
    auto parsed = parse_listen_address(addr);
    if (!parsed.ok()) return std::move(parsed).error().with_context("DISPATCH_ENDPOINT_ADDR");
    options.host = parsed->first;
    options.port = parsed->second;
  }
  auto verifier = transport::verifier_from_env("DISPATCH_VERIFICATION_KEY");
  if (!verifier.ok()) return std::move(verifier).error();
  options.verifier = std::move(*verifier);
  options.warn_if_unverified = true;
  if (const char* origins = std::getenv("DISPATCH_CORS_ORIGINS"); origins != nullptr) {
    auto parsed = parse_cors_origins(origins, "DISPATCH_CORS_ORIGINS");
    if (!parsed.ok()) return std::move(parsed).error();
    options.cors_origins = std::move(*parsed);
  }
  return options;
}

}  // namespace dispatch
