// dispatch::Dispatched<R>: what a generated stub's dispatch() form returns
// once the scheduler has persisted the call: its dispatch ID, and the await
// form that gives the function's C++ result (or its dispatch::Error) when
// the call ends.
//
//   auto call = shop::remote::add.dispatch(scheduler, 1, 2).value();  // persisted
//   int64_t sum = call.wait().value();              // blocks; or co_await call (C++20)
//
// Not for: calls made inside a workflow (stub.call() is the durable call
// there, see dispatch/workflow/workflow.h).
// Public header: compiles as C++17 and C++20 (co_await only in C++20).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "dispatch/core/awaitable.h"
#include "dispatch/core/result.h"
#include "dispatch/durable/dispatch_client.h"

namespace dispatch {

template <typename R>
class Dispatched {
 public:
  // Decodes the function's response message into its result.
  using Decode = Result<R> (*)(std::string_view response);

  // `client` must outlive this handle.
  Dispatched(DispatchClient& client, std::string id, Decode decode)
      : client_(&client), id_(std::move(id)), decode_(decode) {}

  // The scheduler's ID of the call (dispatchctl status <id>).
  const std::string& id() const noexcept { return id_; }

  // Waits up to `timeout` (default: until the call ends) and returns the
  // function's result. Otherwise an Error: the function's own (its code and
  // message) when the call failed, canceled when it was cancelled,
  // deadline_exceeded when it has not ended by the timeout (wait again),
  // not_found for an ID the scheduler does not know (any more).
  Result<R> wait(std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) const {
    auto response = client_->await_result(id_, timeout);
    if (!response.ok()) return std::move(response).error();
    return decode_(*response);
  }

#if __cplusplus >= 202002L && __has_include(<coroutine>)
  // The await form without blocking a thread: resumes the coroutine on the
  // scheduler client's thread once the call ends; throws its dispatch::Error.
  Awaitable<R> operator co_await() const {
    return Awaitable<R>([client = client_, id = id_, decode = decode_](typename Awaitable<R>::Done done) {
      client->await_result_async(id, std::chrono::milliseconds::max(),
                                 [decode, done = std::move(done)](Result<std::string> response) {
                                   if (!response.ok()) return done(std::move(response).error());
                                   done(decode(*response));
                                 });
    });
  }
#endif

 private:
  DispatchClient* client_;
  std::string id_;
  Decode decode_;
};

}  // namespace dispatch
