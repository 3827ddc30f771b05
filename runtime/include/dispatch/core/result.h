// dispatch::Result<T>: a value or a dispatch::Error, for the non-throwing
// stubs and for every runtime function that reports bad input. Result<void>
// carries only the error.
//
// Public header: compiles as C++17 and C++20.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "dispatch/core/error.h"

namespace dispatch {

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Error>, "Result<Error> is ambiguous");

 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // The value; throws the error when there is none. On a temporary the
  // value is moved out and returned by value, not as a reference into the
  // temporary: `for (auto& x : f().value())` and `const T& v = *f();` keep
  // what they loop over alive.
  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T value() && { check(); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }

  // The error; calling this on a value is a programmer error. On a
  // temporary, moved out by value, as value() is.
  const Error& error() const& { return std::get<1>(v_); }
  Error error() && { return std::get<1>(std::move(v_)); }

 private:
  void check() const {
    if (!ok()) throw std::get<1>(v_);
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  // Throws the error, if any.
  void value() const {
    if (error_) throw *error_;
  }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

}  // namespace dispatch
