// A generated workflow across real processes, signed: the stub's
// dispatch() hands it to dispatchd, which drives the server dispatch-gen and
// dispatch_add_server() made (no hand-written Method or Definition) through
// the Dispatch protocol's Run and Poll, with a child workflow, a gather and
// a sleep; the caller gets the typed result through the handle dispatch()
// returns (wait(), or co_await without blocking a thread), or the
// workflow's error with its code.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "workflows_processes.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/security/keys.h"
#include "dispatch/transport/http_client.h"
#include "eager_task.h"
#include "workflows/api.dispatch.h"

namespace {

using namespace std::chrono_literals;

class GeneratedWorkflowsE2E : public workflows_test::Processes {
 protected:
  GeneratedWorkflowsE2E() : Processes("workflows_e2e") {}
};

// Awaits a dispatched call's handle from a coroutine: it resumes on the
// scheduler client's thread once the call ends.
dispatch::test::EagerTask await_receipt(dispatch::Dispatched<flows::Receipt> call,
                                        std::promise<dispatch::Result<flows::Receipt>>* got) {
  try {
    got->set_value(co_await call);
  } catch (const dispatch::Error& e) {
    got->set_value(e);
  }
}

TEST_F(GeneratedWorkflowsE2E, ADispatchedWorkflowEndsWithItsTypedResult) {
  dispatch::HttpClientOptions options;
  options.api_key = "k1";
  dispatch::HttpClient http(api_url_, options);
  dispatch::DispatchClient scheduler(http, ep_url_);

  auto call = flows::remote::checkout.dispatch(scheduler, "o1", {"ab", "cde"}, 50ms);
  ASSERT_TRUE(call.ok()) << call.error().what();
  EXPECT_FALSE(call->id().empty());
  dispatch::Result<flows::Receipt> receipt = call->wait(30s);
  ASSERT_TRUE(receipt.ok()) << receipt.error().what() << " (logs in " << dir_ << ")";
  EXPECT_EQ(*receipt, (flows::Receipt{"o1", 500, {"reserved ab", "reserved cde"}}));

  // A void workflow under its remote name.
  auto tick = flows::remote::tick.dispatch(scheduler, "nightly");
  ASSERT_TRUE(tick.ok()) << tick.error().what();
  dispatch::Result<void> ticked = tick->wait(30s);
  EXPECT_TRUE(ticked.ok()) << ticked.error().what();

  // co_await on the handle: the same result, no thread blocked on it.
  auto awaited = flows::remote::checkout.dispatch(scheduler, "o3", {"f"}, 1ms);
  ASSERT_TRUE(awaited.ok()) << awaited.error().what();
  std::promise<dispatch::Result<flows::Receipt>> got;
  auto future = got.get_future();
  await_receipt(std::move(*awaited), &got);
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  auto co_receipt = future.get();
  ASSERT_TRUE(co_receipt.ok()) << co_receipt.error().what();
  EXPECT_EQ(*co_receipt, (flows::Receipt{"o3", 100, {"reserved f"}}));

  // What the workflow throws reaches the caller with its code.
  auto bad = flows::remote::checkout.dispatch(scheduler, "o2", {}, 1ms);
  ASSERT_TRUE(bad.ok()) << bad.error().what();
  auto failed = bad->wait(30s);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), dispatch::Code::invalid_argument) << failed.error().what();
  EXPECT_NE(failed.error().message().find("order o2 has no items"), std::string::npos) << failed.error().message();

  // The server takes only signed requests: what reached it came through
  // dispatchd, signed.
  dispatch::HttpClient direct(ep_url_);
  auto unsigned_call = flows::remote::price.try_call(direct, "abc");
  ASSERT_FALSE(unsigned_call.ok());
  EXPECT_EQ(unsigned_call.error().code(), dispatch::Code::unauthenticated) << unsigned_call.error().what();
}

}  // namespace
