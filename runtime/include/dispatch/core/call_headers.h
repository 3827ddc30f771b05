// A call's headers as its function sees them: the request's (HTTP headers
// of a Connect call, the metadata of a gRPC or gRPC-Web one) and the ones
// the function adds to its answer. Values are as they travel: a binary
// header (name ending in "-bin") carries base64, as gRPC and Connect send it
// (dispatch/transport/binary_header.h decodes and encodes it).
//
// Not for: the headers the protocols own (content type, timeouts, status),
// which the transports read and write themselves.
//
// Public header: compiles as C++17 and C++20.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/core/result.h"

namespace dispatch {

// The request's headers, valid while the function runs. Names are compared
// in any case and given lower-case; HTTP/2 pseudo-headers (":path") are left
// out. Each transport reads its own parsed request: nothing is copied
// unless asked.
class RequestHeaders {
 public:
  using Visitor = std::function<void(std::string_view name, std::string_view value)>;

  // Every line in the order received: lower-case name, value as sent.
  virtual void for_each(const Visitor& visit) const = 0;

  // The first line named `name` (any case), or nullopt when none came.
  std::optional<std::string> get(std::string_view name) const;
  // Every line named `name`, in order (a header sent several times, as
  // gRPC metadata may be).
  std::vector<std::string> values(std::string_view name) const;
  // Every line, lower-case names, in order.
  std::vector<std::pair<std::string, std::string>> all() const;

 protected:
  ~RequestHeaders() = default;
};

// RequestHeaders over lines held elsewhere (in-process calls and tests):
// names as given are compared in any case and lower-cased when visited.
class RequestHeaderList final : public RequestHeaders {
 public:
  explicit RequestHeaderList(const std::vector<std::pair<std::string, std::string>>& lines) : lines_(lines) {}
  void for_each(const Visitor& visit) const override;

 private:
  const std::vector<std::pair<std::string, std::string>>& lines_;
};

// Headers a function adds to its answer: HTTP headers of a Connect or
// gRPC-Web answer, the initial metadata of a gRPC one (in its trailers-only
// block when the call fails). They go with errors too.
class ResponseHeaders {
 public:
  // The most a function may add, counting names and values: what gRPC
  // clients take by default (8 KiB of metadata) less room for the protocol's
  // own fields.
  static constexpr std::size_t kMaxBytes = 4096;

  // Adds one line. The name: lower-case letters, digits, '-', '_' and '.'
  // (gRPC's metadata keys), and none the protocols or the server own
  // (content-*, grpc-*, connect-*, access-control-*, CloudEvents' ce-*, and
  // the HTTP/1.1 connection fields). The value: printable ASCII (0x20-0x7E) without
  // leading or trailing spaces; base64 for a name ending in "-bin". Errors:
  // invalid_argument saying what is wrong, resource_exhausted past
  // kMaxBytes; nothing is added then.
  Result<void> add(std::string_view name, std::string_view value);

  const std::vector<std::pair<std::string, std::string>>& lines() const noexcept { return lines_; }
  bool empty() const noexcept { return lines_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
  std::size_t bytes_ = 0;
};

// The request headers of the call the current thread serves (this_call()),
// by name in any case: the first line's value, or nullopt when none came or
// no call with headers is running (a durable call's Run, whose headers are
// the scheduler's, shows none).
std::optional<std::string> request_header(std::string_view name);

// Adds a header to the answer of the call the current thread serves, as
// ResponseHeaders::add() checks it. failed_precondition when that answer
// carries no headers: outside a call, or in a durable call (its result goes
// to the scheduler, not to a caller's connection).
Result<void> add_response_header(std::string_view name, std::string_view value);

}  // namespace dispatch
