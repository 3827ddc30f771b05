// dispatch::GrpcClient: a dispatch::Client that speaks gRPC (HTTP/2
// cleartext with prior knowledge, or over TLS with ALPN "h2" for an
// https:// target), so generated stubs can call an existing gRPC
// service that has the same contract (the .proto dispatch-gen emits), or a
// dispatch::Server over its gRPC side.
//
//   dispatch::GrpcClient client("127.0.0.1:50051");
//   int64_t sum = shop::remote::add(client, 1, 2);
//
// Each call takes an idle connection from a small pool (or opens one) and
// runs one stream on it from the calling thread; a server's grpc-status
// comes back as that dispatch::Code with grpc-message and the details of
// grpc-status-details-bin. The call's deadline is sent as grpc-timeout and
// kept locally (deadline_exceeded). Inside a running call, its W3C trace
// context is sent on (traceparent, tracestate). With a signer, every request
// is signed (RFC 9421) as HttpClient signs Connect calls, so a verifying
// dispatch::Server accepts it on its gRPC side.
//
// Not for: streaming, many streams multiplexed on one connection (one call
// per connection at a time; connections are pooled), client certificates.
// Public header: compiles as C++17 and C++20; no Boost, no nghttp2.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dispatch/core/client.h"
#include "dispatch/core/result.h"

namespace dispatch {

namespace security {
class Signer;
}  // namespace security

struct GrpcClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  // Per-call timeout when CallOptions::timeout is unset; nullopt: none.
  std::optional<std::chrono::milliseconds> default_timeout;
  // Idle connections kept for reuse.
  std::size_t max_idle_connections = 16;
  // Replies larger than this (decompressed) are resource_exhausted.
  std::size_t max_response_bytes = 64u << 20;
  // Send request messages gzip-compressed (grpc-encoding: gzip).
  bool gzip_requests = false;
  // When set, sent as "authorization: Bearer <api_key>".
  std::string api_key;
  // When set, every request is signed (RFC 9421, Ed25519; docs/security.md):
  // content-digest of the request body as sent (the framed, possibly
  // gzipped message), signature-input and signature over "@method" "@path"
  // "@authority" "content-type" "content-digest", created now.
  std::shared_ptr<const security::Signer> signer;
  // https:// targets: verify the server's certificate chain (the system's
  // CAs, plus `ca_file` when set) and its name (host name or IP address).
  bool verify_tls = true;
  std::string ca_file;
  // call_async(): threads running blocking calls (so also the most calls in
  // flight from call_async at once).
  std::size_t async_threads = 4;

  // Defaults, with api_key from DISPATCH_API_KEY and `signer` from
  // DISPATCH_SIGNING_KEY, as HttpClientOptions::try_from_env() reads them
  // (a malformed key is invalid_argument naming the variable); from_env()
  // throws that error as dispatch::Error.
  static Result<GrpcClientOptions> try_from_env();
  static GrpcClientOptions from_env();
};

class GrpcClient final : public Client {
 public:
  // `target`: "host:port", "[v6]:port", "http://host:port" or
  // "https://host:port" (TLS). A malformed target, or a ca_file that cannot
  // be read, throws dispatch::Error(invalid_argument); create() returns it.
  explicit GrpcClient(std::string_view target, GrpcClientOptions options = {});
  static Result<std::unique_ptr<GrpcClient>> create(std::string_view target, GrpcClientOptions options = {});
  ~GrpcClient() override;
  GrpcClient(const GrpcClient&) = delete;
  GrpcClient& operator=(const GrpcClient&) = delete;

  // On the calling thread: one stream on a pooled connection.
  Result<std::string> call(std::string_view path, std::string request, const CallOptions& options) override;
  // A blocking call() on one of `async_threads` threads, which also runs
  // `done`. Destroying the client waits for the calls in flight.
  void call_async(std::string_view path, std::string request, const CallOptions& options, Callback done) override;

  // Connections opened so far (for tests of reuse).
  std::size_t connections_opened() const noexcept;

 private:
  struct Impl;
  // The parsed target and, for https://, the TLS context: built once,
  // by the constructor and by create() alike.
  static Result<std::unique_ptr<Impl>> prepare(std::string_view target, GrpcClientOptions options);
  explicit GrpcClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch
