// post_once(): one HTTP/1.1 POST on a connection of its own, synchronous,
// with one timeout over connecting, sending and reading the answer. For
// clients that post rarely to somebody else's server (an event to a
// CloudEvents sink, a call to an OpenFaaS gateway) and want neither a pool
// nor our protocol. The events and faas layers share it.
//
// Not for: calls of our own protocol (http_client.h and async_pool.h keep
// connections and speak Connect), https (the callers refuse it), or judging
// the answer: any status is a value; the caller maps it to an error.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/core/result.h"
#include "transport/url.h"

namespace dispatch::transport {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct OnePost {
  // The request's method ("POST"; "DELETE" cancels an OpenFaaS async call).
  std::string method = "POST";
  // Where to: the host, port and Host header of `url`, and `target`, the
  // request's path (with any query).
  const Url* url = nullptr;
  std::string target = "/";
  HeaderList headers;  // besides Host and Content-Length
  std::string body;
  // Over the whole exchange: connecting, sending and reading the answer.
  std::chrono::milliseconds timeout{30'000};
  // A longer answer body is resource_exhausted.
  std::size_t max_answer_bytes = 16 << 20;
  // What the error messages name, "event sink 127.0.0.1:8080" or
  // "function 'fib' on http://gw:8080".
  std::string what;
};

struct PostAnswer {
  int status = 0;
  HeaderList headers;  // as received, in order
  std::string body;
};

// The final answer, whatever its status (interim 1xx answers, such as 100
// Continue or 103 Early Hints, are read past); or: the host does not resolve, the
// connection fails or is lost (unavailable), the timeout passed
// (deadline_exceeded), the body is longer than max_answer_bytes
// (resource_exhausted). Each message begins with post.what.
Result<PostAnswer> post_once(OnePost post);

}  // namespace dispatch::transport
