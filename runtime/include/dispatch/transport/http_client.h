// dispatch::HttpClient: the network dispatch::Client. Sends each call as a
// Connect unary POST (binary protobuf) to a base URL, over a pool of
// keep-alive connections shared by all threads; http:// and https://.
// call_async() runs on an event loop, the client's own or one of a
// dispatch::ClientLoops that many clients share (client_loops.h).
//
//   dispatch::HttpClient client("http://127.0.0.1:8000");
//   int64_t sum = shop::remote::add(client, 1, 2);
//
// Transport failures come back as dispatch::Errors: unavailable (cannot
// connect, connection lost) or deadline_exceeded (the call's timeout), with
// the address in the message; a server's Connect error keeps its code,
// message and details.
//
// Not for: retries (a call is sent at most once, except that a request that
// met a keep-alive connection the server had just closed is re-sent once on a
// fresh one, before any reply byte), streaming, HTTP/2.
// Public header: compiles as C++17 and C++20; no Boost (pimpl).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/core/client.h"
#include "dispatch/core/result.h"
#include "dispatch/transport/client_loops.h"

namespace dispatch {

namespace security {
class Signer;
}  // namespace security

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  // Per-call timeout when CallOptions::timeout is unset; nullopt: none.
  std::optional<std::chrono::milliseconds> default_timeout;
  // Idle keep-alive connections kept for reuse; more are closed after use.
  std::size_t max_idle_connections = 64;
  // Replies larger than this are resource_exhausted.
  std::size_t max_response_bytes = 64u << 20;
  // call_async(): at most this many connections open at once, each
  // carrying one call at a time (HTTP/1.1, no pipelining); more calls wait
  // their turn, in order.
  std::size_t max_connections = 64;
  // Unused: call_async() on https:// URLs ran on this many threads of the
  // client's own; it now runs on the event loop as http:// does, bounded by
  // max_connections. Kept so that code setting it still compiles.
  std::size_t async_threads = 4;
  // call_async(): the event-loop threads this client's calls run on, shared
  // with the other clients given the same ClientLoops; their idle_timeout
  // closes this client's unused connections. Null: the client starts a
  // loop of its own (one thread, as long as the client lives, with
  // ClientLoopsOptions' defaults) on its first call_async().
  std::shared_ptr<ClientLoops> loops;

  // Set (e.g. "application/octet-stream", as Apache Flink StateFun's
  // request-reply protocol has it): a plain binary POST instead of a Connect
  // call: sent with this content type and no Connect headers, and any 2xx
  // answer's body is the result whatever its content type; other statuses
  // are errors, mapped from the HTTP status as for Connect.
  std::string plain_content_type;

  // Calls of functions without side effects (CallOptions::no_side_effects,
  // which generated stubs set for idempotency = "no_side_effects") go as
  // Connect GET requests, the message in the URL's query (URL-safe base64),
  // so HTTP caches, CDNs and proxies may answer them, as connect-go's
  // WithHTTPGet and connect-es's useHttpGet do. Such a call is still a POST
  // when its URL would be longer than max_get_url_bytes, and always when
  // requests are signed (`signer`, `decorate`: a signature covers a POST's
  // body) or with plain_content_type.
  bool use_get = false;
  std::size_t max_get_url_bytes = 8192;

  // When set, sent as "Authorization: Bearer <api_key>".
  std::string api_key;

  // When set, every request is signed (RFC 9421, Ed25519; docs/security.md):
  // Content-Digest, Signature-Input and Signature over "@method" "@path"
  // "@authority" "content-type" "content-digest", created now.
  std::shared_ptr<const security::Signer> signer;

  // https: verify the server's certificate chain and host name (default
  // system CAs, plus `ca_file` when set).
  bool verify_tls = true;
  std::string ca_file;

  // Called for every request just before it is sent, with its final method,
  // path, authority, content type and body; may append headers (lower-case
  // names), e.g. an RFC 9421 signature.
  std::function<void(std::string_view method, std::string_view path, std::string_view authority,
                     std::string_view content_type, std::string_view body,
                     std::vector<std::pair<std::string, std::string>>& headers)>
      decorate;

  // Defaults, with api_key from DISPATCH_API_KEY and `signer` from
  // DISPATCH_SIGNING_KEY (PKCS#8 PEM, literal "\n" allowed, or base64 of the
  // 32-byte seed; keyid "default") when set. A malformed key is
  // invalid_argument naming the variable and what is wrong: try_from_env()
  // returns it, from_env() throws it (as dispatch::Error).
  static Result<HttpClientOptions> try_from_env();
  static HttpClientOptions from_env();
};

struct HttpClientStats {
  uint64_t connections_opened = 0;  // TCP (and TLS) connections established
  uint64_t calls = 0;               // calls that reached the network
};

class HttpClient final : public Client {
 public:
  // `base_url`: "http://host[:port][/prefix]" or "https://...". A malformed
  // URL throws dispatch::Error(invalid_argument) naming it; create() returns it.
  explicit HttpClient(std::string_view base_url, HttpClientOptions options = {});
  static Result<std::unique_ptr<HttpClient>> create(std::string_view base_url,
                                                    HttpClientOptions options = {});
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // The request is serialized on the calling thread and handed to the
  // client's event loop (options.loops, else the client's own, started by
  // the first call), which runs every call over non-blocking keep-alive
  // connections (TLS on https://). `done` runs on the loop's thread: it must
  // not block (it delays every other call on that loop, of this client and
  // of every client sharing it) and must not destroy this client or another
  // of the same loops. Destroying the client completes every call still in
  // flight with `canceled` before the destructor returns.
  void call_async(std::string_view path, std::string request, const CallOptions& options,
                  Callback done) override;
  // On the calling thread: one write and one read on a pooled connection.
  Result<std::string> call(std::string_view path, std::string request,
                           const CallOptions& options) override;

  HttpClientStats stats() const noexcept;
  const std::string& base_url() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch
