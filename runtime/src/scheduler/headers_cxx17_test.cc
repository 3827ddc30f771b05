// The scheduler's and the dispatch layer's public headers compile as C++17
// (this file is built with CXX_STANDARD 17) and name what they promise.
#include <gtest/gtest.h>

#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/scheduler/scheduler.h"
#include "dispatch/scheduler/store.h"

TEST(PublicHeadersCxx17, Compile) {
  static_assert(__cplusplus < 202002L, "this test must be built as C++17");
  EXPECT_EQ(dispatch::kRunPath, "/dispatch.sdk.v1.FunctionService/Run");
  EXPECT_EQ(dispatch::scheduler::state_name(dispatch::scheduler::CallState::failed), "failed");
  dispatch::scheduler::FunctionPolicy policy;
  EXPECT_EQ(policy.max_attempts, 20u);
}
