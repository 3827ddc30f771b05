// dispatch::Awaitable<T>: what a generated stub's C++20 `co()` form returns.
// `co_await stub.co(client, args...)` starts the call and resumes the
// coroutine from the transport's completion callback: no thread hop, no
// executor. A call that completes before suspension (the in-process client
// does) does not suspend at all. The result is T, or a thrown dispatch::Error.
//
// Not for: C++17 (the header is empty there), nor scheduling: the coroutine
// continues on whatever thread the transport completes on.
// Public header: compiles as C++17 and C++20.
#pragma once

#if __cplusplus >= 202002L && __has_include(<coroutine>)
#include <atomic>
#include <coroutine>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "dispatch/core/result.h"

namespace dispatch {

template <typename T>
class [[nodiscard]] Awaitable {
 public:
  using Done = std::function<void(Result<T>)>;
  // `start` begins the operation and calls its argument exactly once, on any
  // thread, possibly before returning.
  explicit Awaitable(std::function<void(Done)> start) : start_(std::move(start)) {}

  // The form generated stubs use (dispatch/core/stub_calls.h): an operation
  // that produces a reply's bytes, started like `start` above, and the
  // function that turns them into T. Neither depends on the function called,
  // so a stub's co() needs no callable of its own, which keeps a header of
  // many functions quick to compile.
  using BytesDone = std::function<void(Result<std::string>)>;
  using Decode = Result<T> (*)(Result<std::string> bytes);
  Awaitable(std::function<void(BytesDone)> start, Decode decode)
      : start_bytes_(std::move(start)), decode_(decode) {}

  Awaitable(const Awaitable&) = delete;
  Awaitable& operator=(const Awaitable&) = delete;

  bool await_ready() const noexcept { return false; }

  bool await_suspend(std::coroutine_handle<> waiter) {
    if (decode_ != nullptr) {
      start_bytes_([this, waiter](Result<std::string> bytes) { arrive(decode_(std::move(bytes)), waiter); });
    } else {
      start_([this, waiter](Result<T> r) { arrive(std::move(r), waiter); });
    }
    // Completed synchronously: do not suspend.
    return !arrived_.exchange(true, std::memory_order_acq_rel);
  }

  T await_resume() {
    if constexpr (std::is_void_v<T>) {
      result_->value();
    } else {
      return std::move(*result_).value();
    }
  }

 private:
  void arrive(Result<T> r, std::coroutine_handle<> waiter) {
    result_.emplace(std::move(r));
    // Second to arrive resumes: if await_suspend has already returned true,
    // the coroutine is suspended and waits for us.
    if (arrived_.exchange(true, std::memory_order_acq_rel)) waiter.resume();
  }

  std::function<void(Done)> start_;
  std::function<void(BytesDone)> start_bytes_;
  Decode decode_ = nullptr;
  std::optional<Result<T>> result_;
  std::atomic<bool> arrived_{false};
};

}  // namespace dispatch
#endif
