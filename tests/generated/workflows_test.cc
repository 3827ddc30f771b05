// Generated workflows: dispatch-gen's server half of functions declared as
// returning dispatch::Workflow<T> runs them through the workflow runtime,
// here under the local harness (the real scheduler engine in memory): a
// workflow calls generated functions durably, gathers, sleeps a day and
// calls another generated workflow as a child, to its end; its stub gives
// T; its direct route refuses; bad input is a clear error; a version pinned
// by the annotation is what the journal carries, and a journal of another
// version is INCOMPATIBLE_STATE.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "dispatch/core/in_process.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/testing/harness.h"
#include "dispatch/workflow/v1/journal.pb.h"
#include "workflows/api.dispatch.h"

namespace {

using namespace std::chrono_literals;
namespace sdk = ::dispatch::sdk::v1;
namespace journal = ::dispatch::workflow::v1;

// One Run of the generated service, as the scheduler would send it.
sdk::RunResponse run(dispatch::InProcessClient& client, const sdk::RunRequest& req) {
  sdk::RunResponse res;
  auto reply = client.call(dispatch::kRunPath, req.SerializeAsString(), {});
  EXPECT_TRUE(reply.ok()) << reply.error().what();
  if (reply.ok()) {
    EXPECT_TRUE(res.ParseFromString(*reply));
  }
  return res;
}

TEST(GeneratedWorkflows, AGeneratedWorkflowRunsWithItsChildrenToTheEnd) {
  dispatch::DispatchTable table{&flows::remote::api_service()};
  dispatch::testing::Harness harness(table);
  const int64_t began = harness.clock().now_ms();
  dispatch::Result<flows::Receipt> r = harness.run(flows::remote::checkout.call("o1", {"ab", "cde", "f"}, 24h));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, (flows::Receipt{"o1", 600, {"reserved ab", "reserved cde", "reserved f"}}));
  // A day's sleep, on the harness's clock only.
  EXPECT_GE(harness.clock().now_ms() - began, std::chrono::milliseconds(24h).count());
  EXPECT_EQ(harness.deliveries("flows.reserve"), 3u);
  EXPECT_EQ(harness.deliveries("flows.price"), 3u);
  EXPECT_EQ(harness.deliveries("flows.audit"), 1u);
  // The tree: the first reservation and the child workflow, the other two
  // reservations, the sleep, the audit; the child's own calls below it.
  auto kids = harness.children(harness.last_id());
  ASSERT_EQ(kids.size(), 6u);
  EXPECT_EQ(kids[0].function, "flows.reserve");
  EXPECT_EQ(kids[1].function, "flows.total");
  EXPECT_EQ(kids[4].function, dispatch::kSleepFunction);
  EXPECT_EQ(kids[5].function, "flows.audit");
  auto prices = harness.children(kids[1].id);
  ASSERT_EQ(prices.size(), 3u);
  for (const auto& p : prices) {
    EXPECT_EQ(p.function, "flows.price");
    EXPECT_EQ(p.root_id, harness.last_id());
  }
}

TEST(GeneratedWorkflows, AVoidWorkflowUnderItsRemoteName) {
  dispatch::DispatchTable table{&flows::remote::api_service()};
  dispatch::testing::Harness harness(table);
  dispatch::Result<void> r = harness.run(flows::remote::tick.call("nightly audit"));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(harness.get(harness.last_id()).value().function, "flows.nightly");
  EXPECT_EQ(harness.deliveries("flows.audit"), 1u);
  // A failure of its child is its own, with the child's code.
  r = harness.run(flows::remote::tick.call(""));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(r.error().message().find("nothing to audit"), std::string::npos) << r.error().message();
}

TEST(GeneratedWorkflows, AFakedChildAndAWorkflowsOwnErrors) {
  dispatch::DispatchTable table{&flows::remote::api_service()};
  dispatch::testing::Harness harness(table);
  harness.fake("flows.price", [](std::string_view) -> dispatch::Result<std::string> {
    return flows::api_wire::encode(flows::remote::PriceResponse{7});
  });
  auto r = harness.run(flows::remote::total.call({"a", "b"}));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, 14);
  // What the workflow throws before its first await, with its code.
  auto empty = harness.run(flows::remote::checkout.call("o2", {}, 1ms));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(empty.error().message().find("order o2 has no items"), std::string::npos) << empty.error().message();
}

TEST(GeneratedWorkflows, AChildsTemporaryFailureEndsTheWorkflowOnceWithItsCode) {
  // The child is retried until it gives up; the workflow then throws its
  // error. Delivering that resume again would replay the same journal to the
  // same throw: the workflow fails at once, with the child's code.
  dispatch::DispatchTable table{&flows::remote::api_service()};
  dispatch::testing::HarnessOptions options;
  options.policy.max_attempts = 5;
  dispatch::testing::Harness harness(table, options);
  harness.fake("flows.price", [](std::string_view) -> dispatch::Result<std::string> {
    return dispatch::Error(dispatch::Code::unavailable, "price service down");
  });
  auto r = harness.run(flows::remote::total.call({"a"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::unavailable);
  EXPECT_EQ(harness.deliveries("flows.price"), 5u);
  // Its first run and the resume with the child's failure, not 4 more.
  EXPECT_EQ(harness.deliveries("flows.total"), 2u);
  EXPECT_EQ(r.error().message(), "gave up after 5 attempts: price service down");
}

TEST(GeneratedWorkflows, TheDirectRouteRefusesSayingToDispatchIt) {
  dispatch::DispatchTable table{&flows::remote::api_service()};
  dispatch::InProcessClient client(table);
  auto r = flows::remote::total.try_call(client, {"a"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::failed_precondition);
  EXPECT_NE(r.error().message().find("'flows.total' is a workflow"), std::string::npos) << r.error().message();
  // A plain function beside it answers directly.
  EXPECT_EQ(flows::remote::price(client, "abc"), 300);
}

TEST(GeneratedWorkflows, ARunWhoseInputDoesNotDecodeIsInvalidArgument) {
  dispatch::DispatchTable table{&flows::remote::api_service()};
  dispatch::InProcessClient client(table);
  sdk::RunRequest req;
  req.set_function("flows.total");
  req.set_dispatch_id("d1");
  req.mutable_input()->set_type_url(std::string("type.googleapis.com/") + flows::remote::total.request_type);
  req.mutable_input()->set_value("\x0a\xff");  // field 1, a length past the end
  auto reply = client.call(dispatch::kRunPath, req.SerializeAsString(), {});
  ASSERT_TRUE(reply.ok()) << reply.error().what();
  sdk::RunResponse res;
  ASSERT_TRUE(res.ParseFromString(*reply));
  EXPECT_EQ(res.status(), sdk::STATUS_INVALID_ARGUMENT);
  EXPECT_NE(res.exit().result().error().message().find("cannot start flows.total from its input"), std::string::npos)
      << res.exit().result().error().message();
}

// flows.recount's version is pinned by its annotation: its journal carries
// "2026-12.1", not a hash of its signature, and resumes under it; a journal
// another version wrote (an earlier pin, or the generated hash before the
// pin) is answered INCOMPATIBLE_STATE, so the scheduler starts it again.
TEST(GeneratedWorkflows, APinnedVersionIsTheJournalsAndAnotherIsIncompatible) {
  dispatch::DispatchTable table{&flows::remote::api_service()};
  dispatch::InProcessClient client(table);
  sdk::RunRequest first;
  first.set_function("flows.recount");
  first.set_dispatch_id("d1");
  first.mutable_input()->set_type_url(std::string("type.googleapis.com/") + flows::remote::recount.request_type);
  first.mutable_input()->set_value(flows::remote::recount.encode_request({"ab"}).value());
  const sdk::RunResponse polled = run(client, first);
  ASSERT_TRUE(polled.has_poll()) << polled.DebugString();
  ASSERT_EQ(polled.poll().calls_size(), 1);
  EXPECT_EQ(polled.poll().calls(0).function(), "flows.price");
  journal::Journal j;
  ASSERT_TRUE(j.ParseFromString(polled.poll().coroutine_state()));
  EXPECT_EQ(j.function(), "flows.recount");
  EXPECT_EQ(j.version(), "2026-12.1");

  // Resumed with its journal and the price: it ends with the sum.
  sdk::RunRequest resume;
  resume.set_function("flows.recount");
  resume.set_dispatch_id("d1");
  sdk::PollResult* poll = resume.mutable_poll_result();
  poll->set_coroutine_state(j.SerializeAsString());
  sdk::CallResult* price = poll->add_results();
  price->set_correlation_id(polled.poll().calls(0).correlation_id());
  price->mutable_output()->set_value(flows::api_wire::encode(flows::remote::PriceResponse{200}));
  const sdk::RunResponse ended = run(client, resume);
  ASSERT_TRUE(ended.has_exit()) << ended.DebugString();
  EXPECT_EQ(ended.status(), sdk::STATUS_OK);
  auto sum = flows::remote::recount.decode_reply(ended.exit().result().output().value());
  ASSERT_TRUE(sum.ok()) << sum.error().what();
  EXPECT_EQ(*sum, 200);

  // The same journal under another version.
  for (const std::string other : {"2026-11.9", "bc3485ef36059747"}) {
    j.set_version(other);
    poll->set_coroutine_state(j.SerializeAsString());
    const sdk::RunResponse restarted = run(client, resume);
    EXPECT_EQ(restarted.status(), sdk::STATUS_INCOMPATIBLE_STATE) << restarted.DebugString();
    EXPECT_NE(restarted.exit().result().error().message().find(
                  "flows.recount is now version 2026-12.1, but this run's journal was written by version " + other),
              std::string::npos)
        << restarted.exit().result().error().message();
  }
}

}  // namespace
