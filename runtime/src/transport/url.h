// An HttpClient's base URL taken apart: scheme, host, port, the Host header
// and the path prefix every call's path is appended to. Pure: no sockets,
// no Boost, so every accepted and refused form is tested alone (url_test.cc).
//
// Not for: general URLs (no query, fragment, user info or percent-decoding;
// a base URL has none of them) or resolving the host (the call paths do).
#pragma once

#include <string>
#include <string_view>

#include "dispatch/core/result.h"

namespace dispatch::transport {

struct Url {
  bool tls = false;
  std::string host;       // without brackets
  std::string port;       // always set
  std::string authority;  // Host header: host[:port], port omitted when default
  std::string prefix;     // path prefix without trailing '/'
  std::string path;       // the path as written (query included); "/" when none

  // "http://authority" or "https://authority": what error messages name.
  std::string origin() const;
};

// "http://host[:port][/prefix]" or "https://..."; anything else is
// invalid_argument naming the URL (as `what`: "base URL", "event sink URL",
// ...), what is wrong with it and what is expected.
Result<Url> parse_url(std::string_view url, std::string_view what = "base URL");

}  // namespace dispatch::transport
