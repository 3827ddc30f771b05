// The transport's use of the security layer: keys from the environment for
// ServerOptions::from_env() and HttpClientOptions::from_env(), and the
// server's built-in credential check (bearer key, then RFC 9421 signature)
// over a request view. Pure functions: no sockets, so the checks and their
// error messages are tested without a server (secure_options_test.cc).
//
// Not for: the cryptography or header parsing (runtime/src/security), or the
// placement of the check in the request path (request_handler.cc).
#pragma once

#include <memory>
#include <string_view>

#include "dispatch/core/result.h"
#include "dispatch/security/signature.h"

namespace dispatch::transport {

// A Verifier for the public key(s) in environment variable `variable`: one
// key, or several separated by commas (a rotation: old and new key side by
// side; neither PEM nor base64 contains a comma), each answering to keyid
// "default". nullptr when the variable is unset or empty. A malformed key is
// invalid_argument naming the variable, the key's position when there are
// several, and what is wrong.
Result<std::shared_ptr<const security::Verifier>> verifier_from_env(
    const char* variable = "DISPATCH_VERIFICATION_KEY");

// A Signer (label "dispatch", keyid "default") for the private key in
// `variable`; nullptr when unset or empty. Errors as verifier_from_env().
Result<std::shared_ptr<const security::Signer>> signer_from_env(
    const char* variable = "DISPATCH_SIGNING_KEY");

// The server's built-in check of a call, in order: the bearer key (when
// `bearer_keys` is set), then the signature (when `verifier` is set). Errors
// are the security layer's (401 unauthenticated / 403 permission_denied)
// with the failed credential named first: "API key: unknown API key",
// "request signature: signature 'dispatch': created 301 s ago, ...".
Result<void> check_credentials(const security::Verifier* verifier,
                               const security::BearerKeys* bearer_keys,
                               const security::HttpRequestView& request);

}  // namespace dispatch::transport
