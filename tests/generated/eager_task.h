// A minimal eager coroutine type for tests (C++20): enough to co_await a
// generated stub's co() from a test body. Starts at once, keeps no result;
// an exception escaping the coroutine terminates the test.
#pragma once

#if __cplusplus >= 202002L
#include <coroutine>
#include <exception>

namespace dispatch::test {

struct EagerTask {
  struct promise_type {
    EagerTask get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

}  // namespace dispatch::test
#endif
