// Generated code on the durable path: a table of a generated service
// answers the Dispatch protocol's Run with no opt-in (once, however it is
// added), and the stubs' call() forms are what a workflow awaits, run here
// through the local harness (the real scheduler engine in memory).
#include <gtest/gtest.h>

#include <string>

#include "dispatch/core/in_process.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/testing/harness.h"
#include "dispatch/workflow/serve.h"
#include "dispatch/workflow/workflow.h"
#include "shop/api.dispatch.h"

namespace {

namespace sdk = ::dispatch::sdk::v1;

sdk::RunResponse run(const dispatch::DispatchTable& table, const std::string& function, std::string input_type,
                     std::string input) {
  dispatch::InProcessClient client(table);
  sdk::RunRequest req;
  req.set_function(function);
  req.set_dispatch_id("d1");
  req.mutable_input()->set_type_url("type.googleapis.com/" + input_type);
  req.mutable_input()->set_value(std::move(input));
  auto reply = client.call(dispatch::kRunPath, req.SerializeAsString(), {});
  EXPECT_TRUE(reply.ok()) << reply.error().what();
  sdk::RunResponse res;
  if (reply.ok()) {
    EXPECT_TRUE(res.ParseFromString(*reply));
  }
  return res;
}

TEST(GeneratedDurable, AGeneratedServiceAnswersRunWithoutOptingIn) {
  dispatch::DispatchTable table{&shop::remote::api_service()};
  sdk::RunResponse res = run(table, "shop.add", shop::remote::add.request_type,
                             shop::remote::add.encode_request(40, 2).value());
  EXPECT_EQ(res.status(), sdk::STATUS_OK);
  EXPECT_EQ(res.exit().result().output().type_url(), std::string("type.googleapis.com/") + shop::remote::add.response_type);
  // Added by hand as well (as before Run came along): still one route.
  dispatch::DispatchTable both{&shop::remote::api_service(), &dispatch::function_service()};
  EXPECT_EQ(run(both, "shop.add", shop::remote::add.request_type, shop::remote::add.encode_request(1, 2).value()).status(),
            sdk::STATUS_OK);
}

// A workflow over the generated stubs' call() forms, served as generated
// code would serve it.
dispatch::Workflow<int64_t> sum_then_add(int64_t x) {
  auto [a, b] = co_await dispatch::all(shop::remote::add.call(x, 1), shop::remote::add.call(x, 2));
  co_await dispatch::sleep(std::chrono::hours(24));
  try {
    co_await shop::remote::place_order.call({}, "nobody");  // throws invalid_argument in the function
  } catch (const dispatch::Error& e) {
    if (e.code() != dispatch::Code::invalid_argument) throw;
  }
  co_return co_await shop::remote::add.call(a, b);
}

struct SumRequest {
  int64_t x = 0;
};

dispatch::Result<std::unique_ptr<dispatch::workflow::Instance>> start(std::string_view input) {
  auto instance = std::make_unique<dispatch::workflow::InstanceOf<SumRequest, int64_t>>();
  instance->request.x = std::stoll(std::string(input));
  instance->start(sum_then_add(instance->request.x), [](int64_t&& v) { return std::to_string(v); });
  return std::unique_ptr<dispatch::workflow::Instance>(std::move(instance));
}
const dispatch::workflow::Definition kSum{"wf.sum", "v1", "wf.SumRequest", "wf.SumResponse", &start};
dispatch::Result<std::string> run_sum(const dispatch::MethodCall& c) { return dispatch::workflow::run(c, kSum); }
dispatch::Result<std::string> direct_sum(const dispatch::MethodCall&) {
  return dispatch::workflow::direct_call_refused("wf.sum");
}
const dispatch::Method kMethods[] = {
    {"sum", "/wf.W/sum", "wf.SumRequest", "wf.SumResponse", &direct_sum, nullptr, &run_sum}};
const dispatch::Service kWorkflows{"wf", "W", kMethods, 1, {}, &dispatch::function_service()};

dispatch::Result<int64_t> decode_int(std::string_view bytes) { return std::stoll(std::string(bytes)); }

TEST(GeneratedDurable, AWorkflowAwaitsTheGeneratedStubsCallForms) {
  dispatch::DispatchTable table{&shop::remote::api_service(), &kWorkflows};
  dispatch::testing::Harness harness(table);
  auto r = harness.run(dispatch::DurableCall<int64_t>("wf.sum", "wf.SumRequest", std::string("10"), &decode_int));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, 23);  // (10 + 1) + (10 + 2)
  EXPECT_EQ(harness.deliveries("shop.add"), 3u);
  EXPECT_EQ(harness.deliveries("shop.place_order"), 1u);
  // A stub's call() form on its own, through the scheduler.
  auto direct = harness.run(shop::remote::add.call(40, 2));
  ASSERT_TRUE(direct.ok()) << direct.error().what();
  EXPECT_EQ(*direct, 42);
}

}  // namespace
