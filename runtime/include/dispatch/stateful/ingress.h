// dispatch::stateful::send(): a message to a stateful function's entity
// through dispatchd's ingress (IngressService/Send of
// runtime/proto/dispatch/statefun/v1/runtime.proto), from outside any
// function: a client program, a test. Generated stubs of stateful functions
// call it (`greeter::remote::greet.send(client, "alice", request)`).
// `client` is a dispatch::Client to dispatchd (an HttpClient to its address,
// with its bearer key if it has one).
// Not for: sending from inside a stateful function (Context::send, which
// the reply carries). Public header: compiles as C++17 and C++20.
#pragma once

#include <cstdint>
#include <string>

#include "dispatch/core/client.h"
#include "dispatch/core/result.h"
#include "dispatch/stateful/endpoint.h"

namespace dispatch::stateful {

inline constexpr const char* kIngressSendPath = "/dispatch.statefun.v1.IngressService/Send";

struct SendOptions {
  // A message whose key dispatchd has seen is not queued again; the first
  // one's id comes back. Empty: none.
  std::string idempotency_key;
  CallOptions call;
};

// Queues `message` for the entity `to`; its message id once dispatchd has
// it on disk. dispatchd's refusals come back as its errors (invalid_argument
// for a function type no route serves or an empty id).
Result<std::uint64_t> send(Client& client, const Address& to, const TypedValue& message,
                           const SendOptions& options = {});

}  // namespace dispatch::stateful
