// dispatch::stub: the call forms generated stubs share. Every stub's
// try_call(), async() and co() is the same plumbing around one function
// that decodes its reply; generated code passes that function here instead
// of spelling the plumbing out once per function. What depends on the result
// type is a template here; the rest is out of line in the core library.
// A stub's async() and co() are member templates in the generated header
// that pass their own template parameter on as `Deferred`: call_future() and
// call_awaitable() (and std::promise<T>, the bulk of the cost) are then
// instantiated only in the programs that call them, for the functions they
// call, instead of once per function in the generated source. This is what
// keeps the generated client of a header with many functions quick to
// compile.
//
// Not for: users' code (call the generated stubs), nor encoding or decoding
// (the generated codecs do that; a DecodeReply wraps one).
// Public header: compiles as C++17 and C++20 (call_awaitable() only as C++20).
#pragma once

#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dispatch/core/awaitable.h"
#include "dispatch/core/client.h"
#include "dispatch/core/error.h"
#include "dispatch/core/result.h"

namespace dispatch::stub {

// Turns a call's reply (the response bytes, or the transport's error) into a
// stub's result. A generated function per remote function: the error passes
// through, bytes are decoded as its response message.
template <typename T>
using DecodeReply = Result<T> (*)(Result<std::string> reply);

// The error a stub reports for a reply that is not its response message:
// internal, "malformed reply from <path>: <why>".
Error malformed_reply(std::string_view path, const Error& why);

// `options` for a function without side effects: a copy with
// CallOptions::no_side_effects set, which the stubs of such functions pass.
CallOptions without_side_effects(const CallOptions& options);

// One blocking call: the reply, or `request`'s error without calling when the
// request could not be encoded.
Result<std::string> call(Client& client, std::string_view path, Result<std::string> request,
                         const CallOptions& options);

// Receives one call's reply.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void deliver(Result<std::string> reply) = 0;
};

// Starts a call whose reply goes to `sink`, exactly once, on any thread,
// possibly before start() returns; a request that could not be encoded goes
// to `sink` as its error at once, without calling.
void start(Client& client, std::string_view path, Result<std::string> request, const CallOptions& options,
           std::unique_ptr<ReplySink> sink);

// Settles a promise with a decoded reply.
template <typename T>
class FutureReply final : public ReplySink {
 public:
  explicit FutureReply(DecodeReply<T> decode) : decode_(decode) {}
  std::future<T> get_future() { return promise_.get_future(); }

  void deliver(Result<std::string> reply) override {
    Result<T> result = decode_(std::move(reply));
    if (!result.ok()) {
      promise_.set_exception(std::make_exception_ptr(std::move(result).error()));
    } else if constexpr (std::is_void_v<T>) {
      promise_.set_value();
    } else {
      promise_.set_value(std::move(*result));
    }
  }

 private:
  DecodeReply<T> decode_;
  std::promise<T> promise_;
};

// A stub's async(): the future holds the decoded result or the
// dispatch::Error. `Deferred` is unused: it lets a caller that is itself a
// template make this call depend on its own parameter (see above).
template <typename T, typename Deferred = void>
std::future<T> call_future(Client& client, std::string_view path, Result<std::string> request,
                           const CallOptions& options, DecodeReply<T> decode) {
  auto sink = std::make_unique<FutureReply<T>>(decode);
  std::future<T> future = sink->get_future();
  start(client, path, std::move(request), options, std::move(sink));
  return future;
}

// A call to start later, as an Awaitable's starter: the client, the path,
// the encoded request (or why it could not be encoded) and the options are
// held until the returned function is called, once, with where the reply
// goes (as start() does). `client` must outlive the call, `path` the
// returned function.
std::function<void(Client::Callback)> deferred_start(Client& client, std::string_view path,
                                                     Result<std::string> request, const CallOptions& options);

#if __cplusplus >= 202002L && __has_include(<coroutine>)
// A stub's co(). The request is already encoded, so the arguments need not
// outlive the co_await; `client` must. `Deferred` as for call_future().
template <typename T, typename Deferred = void>
Awaitable<T> call_awaitable(Client& client, std::string_view path, Result<std::string> request,
                            const CallOptions& options, DecodeReply<T> decode) {
  return Awaitable<T>(deferred_start(client, path, std::move(request), options), decode);
}
#endif

}  // namespace dispatch::stub
