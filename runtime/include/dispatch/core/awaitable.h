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
  Awaitable(const Awaitable&) = delete;
  Awaitable& operator=(const Awaitable&) = delete;

  bool await_ready() const noexcept { return false; }

  bool await_suspend(std::coroutine_handle<> waiter) {
    start_([this, waiter](Result<T> r) {
      result_.emplace(std::move(r));
      // Second to arrive resumes: if await_suspend has already returned true,
      // the coroutine is suspended and waits for us.
      if (arrived_.exchange(true, std::memory_order_acq_rel)) waiter.resume();
    });
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
  std::function<void(Done)> start_;
  std::optional<Result<T>> result_;
  std::atomic<bool> arrived_{false};
};

}  // namespace dispatch
#endif
