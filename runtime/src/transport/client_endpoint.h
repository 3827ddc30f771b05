// What HttpClient's two call paths share about the server they call: its
// URL, the client's options and counters, the TLS context, and the rules
// both apply to a connection and a reply: when an idle connection may carry
// a call, when a failed one may be retried, and how a reply becomes a
// Result. http_client.cc (the blocking call path) and async_pool.cc (the
// event-driven one) each hold it.
//
// Not for: sockets or request building (the call paths), URL parsing (url.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dispatch/core/client.h"
#include "dispatch/core/result.h"
#include "dispatch/transport/http_client.h"
#include "transport/url.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl
namespace boost::system {
class error_code;
}  // namespace boost::system

namespace dispatch::transport {

struct ClientEndpoint {
  using Clock = std::chrono::steady_clock;

  Url url;
  std::string base;  // the URL as given
  HttpClientOptions options;
  // https:// only: the system CAs (plus options.ca_file) and the verify mode.
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> calls{0};

  std::string where() const { return url.origin(); }
  // The call's timeout: its own, else the client's default.
  std::optional<std::chrono::milliseconds> timeout_of(const CallOptions& call_options) const {
    return call_options.timeout ? call_options.timeout : options.default_timeout;
  }
  // A complete reply as a Result: 200 with application/proto is the
  // response message; any other 200 is internal (a proxy's page, a
  // misrouted URL); other statuses are the Connect error they carry. The
  // client asks for no compression (it sends no Accept-Encoding), but a
  // proxy may compress anyway: a gzip body is inflated within
  // max_response_bytes, another Content-Encoding is internal, naming it.
  Result<std::string> reply_result(int status, std::string_view content_type, std::string_view content_encoding,
                                   std::string reply, const std::string& target) const;
};

// Whether an idle pooled connection may carry a request. One the server has
// closed (or that holds stray bytes) reads as ready and must not. One back
// in the pool for less than 200 ms is taken as is (a poll per call costs
// more than the exchange's own parsing): a server does not close a
// connection it has just answered on, and if it did, the call is retried
// (stale_connection_error()).
bool idle_connection_usable(int fd, std::size_t buffered, ClientEndpoint::Clock::time_point idle_since);

// Whether a failed exchange on a reused connection met a close the server
// made while the connection sat idle, so that the request was never read and
// may be sent again on a fresh connection.
bool stale_connection_error(const boost::system::error_code& ec);

// Runs a user callback; an exception escaping it must not take the event
// loop (and every other call on it) down.
void run_callback(Client::Callback& done, Result<std::string> result);

}  // namespace dispatch::transport
