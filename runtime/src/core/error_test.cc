#include "dispatch/core/error.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dispatch/core/result.h"

namespace dispatch {
namespace {

TEST(Code, NamesRoundTripForEveryCode) {
  for (int i = 0; i <= 16; ++i) {
    const auto code = static_cast<Code>(i);
    auto back = code_from_name(code_name(code));
    ASSERT_TRUE(back.has_value()) << code_name(code);
    EXPECT_EQ(*back, code);
  }
  EXPECT_FALSE(code_from_name("INVALID_ARGUMENT").has_value());
  EXPECT_FALSE(code_from_name("").has_value());
}

TEST(Code, HttpStatusesFollowConnect) {
  EXPECT_EQ(code_to_http_status(Code::invalid_argument), 400);
  EXPECT_EQ(code_to_http_status(Code::unauthenticated), 401);
  EXPECT_EQ(code_to_http_status(Code::permission_denied), 403);
  EXPECT_EQ(code_to_http_status(Code::not_found), 404);
  EXPECT_EQ(code_to_http_status(Code::resource_exhausted), 429);
  EXPECT_EQ(code_to_http_status(Code::unimplemented), 501);
  EXPECT_EQ(code_to_http_status(Code::unavailable), 503);
  EXPECT_EQ(code_to_http_status(Code::deadline_exceeded), 504);
  EXPECT_EQ(code_from_http_status(404), Code::unimplemented);
  EXPECT_EQ(code_from_http_status(503), Code::unavailable);
  EXPECT_EQ(code_from_http_status(418), Code::unknown);
}

TEST(Error, WhatNamesCodeAndMessage) {
  Error e(Code::not_found, "no order 42", {{"shop.Hint", "\x08\x01"}});
  EXPECT_STREQ(e.what(), "not_found: no order 42");
  EXPECT_EQ(e.details().size(), 1u);
  Error c = e.with_context("get_order");
  EXPECT_EQ(c.message(), "get_order: no order 42");
  EXPECT_EQ(c.code(), Code::not_found);
  EXPECT_EQ(c.details(), e.details());
}

// An Error is a failure: made with ok, it is unknown, so it can never go
// out as a success (a Connect error body {"code":"ok"} from a peer).
TEST(Error, OkIsNotAnErrorCode) {
  Error e(Code::ok, "said ok");
  EXPECT_EQ(e.code(), Code::unknown);
  EXPECT_STREQ(e.what(), "unknown: said ok");
}

TEST(Error, FromCurrentExceptionMapsKinds) {
  auto map = [](auto thrower) {
    try {
      thrower();
    } catch (...) {
      return error_from_current_exception();
    }
    return Error(Code::unknown, "nothing thrown");
  };
  EXPECT_EQ(map([] { throw Error(Code::aborted, "x"); }).code(), Code::aborted);
  Error ia = map([] { throw std::invalid_argument("bad qty"); });
  EXPECT_EQ(ia.code(), Code::invalid_argument);
  EXPECT_EQ(ia.message(), "bad qty");
  Error rt = map([] { throw std::runtime_error("disk full"); });
  EXPECT_EQ(rt.code(), Code::internal);
  EXPECT_EQ(rt.message(), "disk full");
  EXPECT_EQ(map([] { throw 42; }).code(), Code::internal);
}

TEST(Result, ValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Error(Code::unavailable, "down");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::unavailable);
  EXPECT_THROW(bad.value(), Error);
  Result<void> v;
  EXPECT_TRUE(v.ok());
  Result<void> ve = Error(Code::internal, "x");
  EXPECT_THROW(ve.value(), Error);
}

// A temporary's value and error come out by value, so a loop over
// `f().value()` or a reference bound to `*f()` does not dangle (the
// temporary Result ends with the full expression that made it).
static_assert(std::is_same_v<decltype(std::declval<Result<std::vector<int>>>().value()), std::vector<int>>);
static_assert(std::is_same_v<decltype(*std::declval<Result<std::vector<int>>>()), std::vector<int>>);
static_assert(std::is_same_v<decltype(std::declval<Result<int>>().error()), Error>);
static_assert(std::is_same_v<decltype(std::declval<Result<int>&>().value()), int&>);

Result<std::vector<std::string>> words() { return std::vector<std::string>{"a long word, not kept inline", "b"}; }

TEST(Result, ALoopOverATemporarysValueSeesTheValue) {
  std::string joined;
  for (const std::string& w : words().value()) joined += w + ";";
  EXPECT_EQ(joined, "a long word, not kept inline;b;");
  const std::vector<std::string>& kept = *words();
  EXPECT_EQ(kept.size(), 2u);
}

}  // namespace
}  // namespace dispatch
