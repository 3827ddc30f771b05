// Keys from the environment for servers and clients, and the server's
// credential check; see secure_options.h. The key formats and every parse
// error come from the security layer; this file only names the variable and
// splits a rotation list.
#include "transport/secure_options.h"

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/security/keys.h"
#include "dispatch/transport/grpc_client.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"

namespace dispatch::transport {
namespace {

std::string_view trim(std::string_view s) {
  // Literal "\n" sequences are part of a PEM's text, not whitespace here; the
  // key parser turns them into newlines.
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

Result<std::shared_ptr<const security::Verifier>> verifier_from_env(const char* variable) {
  const char* value = std::getenv(variable);
  // Unset, empty or blank: verification off (as VerificationKey::from_env).
  if (value == nullptr || trim(value).empty()) return std::shared_ptr<const security::Verifier>();
  std::vector<std::string_view> parts;
  for (std::string_view rest = value;;) {
    const auto comma = rest.find(',');
    parts.push_back(trim(rest.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  std::vector<security::NamedKey> keys;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string where = parts.size() == 1 ? std::string(variable)
                                                : std::string(variable) + " (key " + std::to_string(i + 1) +
                                                      " of " + std::to_string(parts.size()) + ")";
    if (parts[i].empty()) {
      return Error(Code::invalid_argument,
                   where + ": empty key; separate several public keys with single commas");
    }
    auto key = security::VerificationKey::parse(parts[i]);
    if (!key.ok()) return std::move(key).error().with_context(where);
    keys.push_back({"default", std::move(*key)});
  }
  return std::shared_ptr<const security::Verifier>(std::make_shared<security::Verifier>(std::move(keys)));
}

Result<std::shared_ptr<const security::Signer>> signer_from_env(const char* variable) {
  // SigningKey::from_env names the variable in its errors.
  auto key = security::SigningKey::from_env(variable);
  if (!key.ok()) return std::move(key).error();
  if (!key->has_value()) return std::shared_ptr<const security::Signer>();
  return std::shared_ptr<const security::Signer>(std::make_shared<security::Signer>(std::move(**key)));
}

Result<void> check_credentials(const security::Verifier* verifier, const security::BearerKeys* bearer_keys,
                               const security::HttpRequestView& request) {
  if (bearer_keys != nullptr) {
    auto authorized = bearer_keys->authorize(request.header("authorization"));
    if (!authorized.ok()) return std::move(authorized).error().with_context("API key");
  }
  if (verifier != nullptr) {
    auto verified = verifier->verify(request);
    if (!verified.ok()) return std::move(verified).error().with_context("request signature");
  }
  return {};
}

}  // namespace dispatch::transport

namespace dispatch {

Result<HttpClientOptions> HttpClientOptions::try_from_env() {
  HttpClientOptions options;
  if (const char* key = std::getenv("DISPATCH_API_KEY"); key != nullptr) options.api_key = key;
  auto signer = transport::signer_from_env("DISPATCH_SIGNING_KEY");
  if (!signer.ok()) return std::move(signer).error();
  options.signer = std::move(*signer);
  return options;
}

HttpClientOptions HttpClientOptions::from_env() { return try_from_env().value(); }

Result<GrpcClientOptions> GrpcClientOptions::try_from_env() {
  GrpcClientOptions options;
  if (const char* key = std::getenv("DISPATCH_API_KEY"); key != nullptr) options.api_key = key;
  auto signer = transport::signer_from_env("DISPATCH_SIGNING_KEY");
  if (!signer.ok()) return std::move(signer).error();
  options.signer = std::move(*signer);
  return options;
}

GrpcClientOptions GrpcClientOptions::from_env() { return try_from_env().value(); }

}  // namespace dispatch
