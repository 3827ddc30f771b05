// What the generated server half of a workflow uses: the definition of a
// workflow function (its name, its version, how to start it from its
// input) and the two entries of its Method: `run` (the Dispatch protocol's
// Run of it: a first run or a resume, answered with Exit or Poll) and the
// direct route's answer (a workflow runs only through a scheduler).
//
// Not for: users' code (they write Workflow<T> functions, see workflow.h;
// dispatch-gen writes the rest).
// Public header: C++20 only.
#pragma once

#include <coroutine>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dispatch/core/result.h"
#include "dispatch/core/service.h"
#include "dispatch/workflow/workflow.h"

namespace dispatch::workflow {

// One run of a workflow: its coroutine, suspended before its first step,
// and what it was called with (which the coroutine may refer to).
class Instance {
 public:
  virtual ~Instance() = default;
  virtual detail::PromiseBase& promise() = 0;
  virtual std::coroutine_handle<> handle() = 0;
  // The ended coroutine's result, encoded as the function's response
  // message; rethrows what it threw.
  virtual std::string encoded_result() = 0;
};

namespace detail {
template <typename T>
struct EncodeOf {
  using type = std::string (*)(T&&);
};
template <>
struct EncodeOf<void> {
  using type = std::string (*)();
};
}  // namespace detail

// The instance of a workflow taking `Request` (the generated request
// message) and returning T.
template <typename Request, typename T>
class InstanceOf final : public Instance {
 public:
  // Encodes T (nothing for void) as the response message.
  using Encode = typename detail::EncodeOf<T>::type;

  Request request{};

  // `coroutine` was made from `request` (by reference or moved).
  void start(Workflow<T> coroutine, Encode encode) {
    coroutine_.emplace(std::move(coroutine));
    encode_ = encode;
  }
  detail::PromiseBase& promise() override { return coroutine_->handle().promise(); }
  std::coroutine_handle<> handle() override { return coroutine_->handle(); }
  std::string encoded_result() override {
    if constexpr (std::is_void_v<T>) {
      coroutine_->take();
      return encode_();
    } else {
      return encode_(coroutine_->take());
    }
  }

 private:
  std::optional<Workflow<T>> coroutine_;
  Encode encode_ = nullptr;
};

// A workflow function as its generated server half describes it.
struct Definition {
  const char* function;      // "shop.checkout", as the scheduler names it
  const char* version;       // what a journal must have been written by
  const char* request_type;   // "shop.CheckoutRequest"
  const char* response_type;  // "shop.CheckoutResponse"
  // Decodes the request and makes the instance, its coroutine not started.
  Result<std::unique_ptr<Instance>> (*start)(std::string_view request);
};

// The Run entry of a workflow's Method (Method::run): `call.request` is the
// RunRequest. Answers a RunResponse: Exit with the result or the error, Exit
// with a tail call, or Poll with the journal and the calls to make.
// Bad input (no state, a journal of another function, one that does not
// parse, a determinism violation) is an Error the Run route turns into a
// final status; a journal of another version INCOMPATIBLE_STATE (the
// scheduler starts the workflow again from its input).
Result<std::string> run(const MethodCall& call, const Definition& definition);

// The answer of a workflow's direct route (a plain Connect call of it, not
// through a scheduler): failed_precondition, saying how to run it.
Error direct_call_refused(const char* function);

// What a generated Definition::start is made of: decodes `input` into a new
// instance's request (a request that does not decode is the decoder's
// invalid_argument), makes the coroutine with `call` from that request,
// which lives as long as the coroutine (a `const T&` parameter may refer to
// it), and keeps `encode` for the result.
template <typename Request, typename T>
Result<std::unique_ptr<Instance>> start_instance(std::string_view input,
                                                 Result<void> (*decode)(std::string_view, Request*),
                                                 Workflow<T> (*call)(Request& request),
                                                 typename detail::EncodeOf<T>::type encode) {
  auto instance = std::make_unique<InstanceOf<Request, T>>();
  Result<void> decoded = decode(input, &instance->request);
  if (!decoded.ok()) return std::move(decoded).error();
  instance->start(call(instance->request), encode);
  return std::unique_ptr<Instance>(std::move(instance));
}

// The two entries of a workflow's Method, for its Definition `D` (an object
// of static storage duration): Method::run, and Method::handler, the direct
// route, which refuses (a workflow runs only through a scheduler).
template <const Definition& D>
Result<std::string> run_entry(const MethodCall& call) {
  return run(call, D);
}
template <const Definition& D>
Result<std::string> direct_entry(const MethodCall&) {
  return direct_call_refused(D.function);
}

}  // namespace dispatch::workflow
