// dispatch::faas::Gateway: calls functions we did not build, on an OpenFaaS
// gateway (or any HTTP endpoint laid out like one), as the gateway's HTTP
// API documents them: `POST /function/<name>` answers with the function's
// output; `POST /async-function/<name>` queues the call and answers 202 with
// its X-Call-Id, and the result goes to the X-Callback-Url given, if any.
//
//   auto gateway = dispatch::faas::Gateway::from_env().value();
//   auto out = gateway.invoke("figlet", "hello", "text/plain");   // Result<Output>
//
// The gateway URL and basic-auth credentials come from the options or the
// environment: OPENFAAS_URL (default http://127.0.0.1:8080),
// OPENFAAS_USERNAME (default "admin") and OPENFAAS_PASSWORD (no
// Authorization header without it).
//
// Not for: https:// (reach an outside gateway through a proxy), retries,
// connection reuse (one connection per call). Public header: compiles as
// C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "dispatch/core/result.h"

namespace dispatch::faas {

struct GatewayOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string username = "admin";
  std::string password;  // "": no basic auth
  // Connecting, sending and reading the answer together.
  std::chrono::milliseconds timeout{30'000};
  std::size_t max_output_bytes = 16u << 20;

  // From OPENFAAS_URL, OPENFAAS_USERNAME, OPENFAAS_PASSWORD; a URL that is
  // not http://host[:port] is invalid_argument naming the variable.
  static Result<GatewayOptions> from_env();
};

struct Output {
  int status = 200;
  std::string content_type;
  std::string body;
};

class Gateway {
 public:
  // invalid_argument when the URL is not http://host[:port][/prefix].
  static Result<Gateway> create(GatewayOptions options);
  static Result<Gateway> from_env();

  // POST /function/<name>. A 2xx answer is the output. Otherwise an error
  // saying what came back: 404 not_found (no such function), 401/403
  // unauthenticated/permission_denied, 429 resource_exhausted, 5xx
  // unavailable (502-504) or internal, each with the status, the content
  // type and the start of the body (an HTML error page included); cannot
  // connect: unavailable; no answer within the timeout: deadline_exceeded.
  // A name that is not lower-case letters, digits, '-' and '.' is
  // invalid_argument, before anything is sent.
  Result<Output> invoke(std::string_view function, std::string_view body,
                        std::string_view content_type = "application/json") const;

  // POST /async-function/<name>, with X-Callback-Url when `callback_url` is
  // not empty: the call id of the gateway's 202 (X-Call-Id). Errors as
  // invoke(); a 202 without a call id is internal.
  Result<std::string> invoke_async(std::string_view function, std::string_view body,
                                   std::string_view content_type = "application/json",
                                   std::string_view callback_url = {}) const;

  // DELETE /async-function/<name>/<call-id>: cancels a queued or running
  // async call (OpenFaaS answers 202). Errors as invoke(); a call id that
  // is empty or not letters, digits, '-', '_' and '.' is invalid_argument,
  // before anything is sent.
  Result<void> cancel_async(std::string_view function, std::string_view call_id) const;

  const GatewayOptions& options() const noexcept { return options_; }

 private:
  explicit Gateway(GatewayOptions options) : options_(std::move(options)) {}
  GatewayOptions options_;
};

}  // namespace dispatch::faas
