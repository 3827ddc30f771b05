// dispatch::Client: the transport-agnostic interface generated stubs call.
// A transport (the in-process one, dispatch::HttpClient, a test double) sends
// one unary call: a method path and binary protobuf request bytes in, binary
// protobuf response bytes or a dispatch::Error out.
//
// Not for: encoding (generated code does that) or retries (the scheduler's).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/core/result.h"

namespace dispatch {

struct CallOptions {
  // Deadline for the whole call, sent as Connect-Timeout-Ms over HTTP.
  // Unset: the client's default (see the transport).
  std::optional<std::chrono::milliseconds> timeout;
  // Extra request headers (lower-case names), e.g. for tracing.
  std::vector<std::pair<std::string, std::string>> headers;
  // The function changes nothing (annotated idempotency =
  // "no_side_effects"; generated stubs set this for such functions): a
  // transport may send the call as a Connect GET, which caches and proxies
  // can answer (dispatch::HttpClientOptions::use_get).
  bool no_side_effects = false;
  // Where the transport puts the answer's headers, when set: lower-case
  // names, values as sent (base64 for a "-bin" name), pseudo-headers left
  // out. A Connect answer's HTTP headers; a gRPC answer's initial metadata,
  // then its trailers. Replaced (cleared first) once an answer has come,
  // error answers too, before call() returns or the callback runs; left
  // alone when none came (the server could not be reached). The caller
  // keeps it alive until then. InProcessClient gives the headers the
  // function added.
  std::vector<std::pair<std::string, std::string>>* response_headers = nullptr;
};

class Client {
 public:
  // Invoked exactly once per call, possibly on another thread and possibly
  // before call_async() returns.
  using Callback = std::function<void(Result<std::string> response)>;

  virtual ~Client() = default;

  // Starts one unary call. `path` is "/<package>.<Service>/<method>",
  // `request` the binary protobuf request message.
  virtual void call_async(std::string_view path, std::string request,
                          const CallOptions& options, Callback done) = 0;

  // Blocking call. The default waits on call_async(); transports may
  // override it with a faster path on the calling thread.
  virtual Result<std::string> call(std::string_view path, std::string request,
                                   const CallOptions& options);
};

}  // namespace dispatch
