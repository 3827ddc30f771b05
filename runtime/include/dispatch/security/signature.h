// RFC 9421 HTTP Message Signatures with Ed25519, as the Dispatch protocol
// uses them: a Signer that produces the Content-Digest, Signature-Input and
// Signature headers for a request, and a Verifier that a server runs before
// any user code sees the request. Pure functions over a view of the request:
// the transport supplies method, target, authority, headers and body.
//
// Not for: sockets, responses (only requests are signed), algorithms other
// than Ed25519, components with parameters (";sf", ";key", ";req", ";bs").
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/core/result.h"
#include "dispatch/security/content_digest.h"
#include "dispatch/security/keys.h"
#include "dispatch/security/structured_fields.h"

namespace dispatch::security {

// The covered components the Dispatch protocol requires, in its order.
inline const std::vector<std::string>& dispatch_components() {
  static const std::vector<std::string> components = {"@method", "@path", "@authority",
                                                      "content-type", "content-digest"};
  return components;
}

// What the security layer needs of a request. Views: they must outlive the call.
struct HttpRequestView {
  std::string_view method;     // "POST"
  std::string_view target;     // request target as received: "/pkg.Svc/Method?x=1"
  std::string_view authority;  // Host header or :authority, "example.com:8080"
  // A header's value by lowercase name, repeated lines combined with ", "
  // (RFC 9110 5.3); nullopt when absent.
  std::function<std::optional<std::string_view>(std::string_view lower_name)> header;
  std::string_view body;
};

// The value a covered component contributes to the signature base
// (RFC 9421 2.1 and 2.2): @method, @path, @query, @authority,
// @request-target and header fields (trimmed); @authority is lowercased and
// loses a default port (":80" or ":443"). Errors: unauthenticated,
// naming the component (unsupported, absent header).
Result<std::string> component_value(const HttpRequestView& request, std::string_view component);

// The signature base (RFC 9421 2.5) for a Signature-Input member: one line per
// covered component and the "@signature-params" line, which is the member's
// serialization. Errors: unauthenticated.
Result<std::string> signature_base(const HttpRequestView& request, const sf::InnerList& params);

// Signature parameters as an inner list: components as strings, then
// created, keyid and alg when given, in that order.
sf::InnerList make_signature_params(const std::vector<std::string>& components,
                                    std::optional<int64_t> created,
                                    std::optional<std::string> keyid,
                                    std::optional<std::string> alg);

struct SignerOptions {
  std::string label = "dispatch";
  std::string keyid = "default";
  DigestAlgorithm digest = DigestAlgorithm::sha512;
};

class Signer {
 public:
  explicit Signer(SigningKey key, SignerOptions options = {});

  // The headers to add, in this order: Content-Digest, Signature-Input,
  // Signature. Signature-Input is
  //   dispatch=("@method" "@path" "@authority" "content-type" "content-digest");created=<now>;keyid="default";alg="ed25519"
  // `target` is the request target; @path signs its path part.
  std::vector<std::pair<std::string, std::string>> sign(
      std::string_view method, std::string_view target, std::string_view authority,
      std::string_view content_type, std::string_view body,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  const SigningKey& key() const { return key_; }
  const SignerOptions& options() const { return options_; }

 private:
  SigningKey key_;
  SignerOptions options_;
};

struct VerifierOptions {
  // A signature older than this is refused (replay window).
  std::chrono::seconds max_age{300};
  // Allowed clock skew: created may be this far in the future, and an
  // expires this far in the past.
  std::chrono::seconds clock_tolerance{5};
  // Every one must be covered by the accepted signature. When content-digest
  // is among them, the Content-Digest header must also match the body.
  std::vector<std::string> required_components = dispatch_components();
  // Signatures beyond this many in one request are refused (bounds the work
  // an unauthenticated client can cause).
  size_t max_signatures = 8;
};

// A verification key and the keyid it answers to. Several keys may share a
// keyid: during a rotation both the old and the new key are tried.
struct NamedKey {
  std::string keyid;
  VerificationKey key;
};

class Verifier {
 public:
  // One key, keyid "default" (what Dispatch schedulers send).
  explicit Verifier(VerificationKey key, VerifierOptions options = {});
  // Several keys (rotation). A signature with a keyid tries the keys with that
  // keyid; one without tries every key.
  explicit Verifier(std::vector<NamedKey> keys, VerifierOptions options = {});

  // Ok when at least one signature in the request covers every required
  // component, has `created`, is fresh, verifies with a configured key, and
  // the body matches Content-Digest. Otherwise:
  //   Code::unauthenticated: no Signature / Signature-Input header, either
  //     is malformed, or no signature meets the requirements (a required
  //     component not covered, no created, alg not ed25519, a covered header
  //     absent, missing or malformed Content-Digest).
  //   Code::permission_denied: a signature that meets them fails a check:
  //     unknown keyid, created too old or in the future, expired, signature
  //     does not verify, Content-Digest does not match the body.
  // @authority is checked in its normalized form and, when the request's
  // authority carries a default port, also as received (a signer that did
  // not normalize). The message names the signature label and the check
  // that failed, for every signature (permission_denied when any of them
  // was usable).
  Result<void> verify(const HttpRequestView& request,
                      std::chrono::system_clock::time_point now =
                          std::chrono::system_clock::now()) const;

  const VerifierOptions& options() const { return options_; }

 private:
  Result<void> verify_one(const HttpRequestView& request, std::string_view label,
                          const sf::InnerList& params, std::string_view signature,
                          int64_t now) const;

  std::vector<NamedKey> keys_;
  VerifierOptions options_;
};

// Bearer tokens (Authorization: Bearer <key>) from a configured set, compared
// in constant time so that timing reveals neither a key nor its length.
class BearerKeys {
 public:
  explicit BearerKeys(std::vector<std::string> keys);

  // True when `authorization` is "Bearer <one of the keys>" (scheme
  // case-insensitive).
  bool check(std::string_view authorization) const;
  // The same as a result: unauthenticated with "missing Authorization
  // header", "Authorization is not a Bearer token" or "unknown API key".
  Result<void> authorize(std::optional<std::string_view> authorization) const;

  bool empty() const { return digests_.empty(); }

 private:
  std::vector<std::string> digests_;  // SHA-256 of each key
};

}  // namespace dispatch::security
