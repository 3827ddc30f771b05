// The harness runs workflows through the real scheduler engine in memory:
// a workflow with a plain child, a faked one, a 24-hour sleep and a child
// workflow ends in no time; a fake's error reaches the workflow with its
// code; a workflow that never ends is reported, not waited for. The
// workflows are served as generated code serves them (a Method with a Run
// entry and a Definition).
#include "dispatch/testing/harness.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "dispatch/durable/function_service.h"
#include "dispatch/workflow/serve.h"
#include "dispatch/workflow/workflow.h"

namespace dispatch::testing {
namespace {

using namespace std::chrono_literals;

Result<std::string> decode_text(std::string_view bytes) { return std::string(bytes); }

// The stubs' call() forms: requests and responses are plain text.
DurableCall<std::string> reserve(std::string item) { return {"t.reserve", "t.reserveRequest", std::move(item), &decode_text}; }
DurableCall<std::string> charge(std::string card) { return {"t.charge", "t.chargeRequest", std::move(card), &decode_text}; }
DurableCall<std::string> mail(std::string who) { return {"t.mail", "t.mailRequest", std::move(who), &decode_text}; }

Workflow<std::string> checkout(std::string order) {
  const std::string reservation = co_await reserve(order);
  std::string paid;
  try {
    paid = co_await charge("card-of-" + order);
  } catch (const Error& e) {
    if (e.code() != Code::failed_precondition) throw;
    co_return "declined:" + reservation;  // the compensation
  }
  co_await dispatch::sleep(24h);
  const std::string mailed = co_await mail(order);
  co_return reservation + "," + paid + "," + mailed;
}

// A workflow called by checkout: it sleeps too.
Workflow<std::string> mail_workflow(std::string who) {
  co_await dispatch::sleep(1h);
  co_return "mailed " + who;
}

Workflow<std::string> never_ends(std::string) {
  co_await dispatch::sleep(std::chrono::hours(24 * 365 * 3));
  co_return "late";
}

template <Workflow<std::string> (*F)(std::string)>
Result<std::unique_ptr<workflow::Instance>> start(std::string_view input) {
  auto instance = std::make_unique<workflow::InstanceOf<std::string, std::string>>();
  instance->request = std::string(input);
  instance->start(F(instance->request), [](std::string&& s) { return std::move(s); });
  return std::unique_ptr<workflow::Instance>(std::move(instance));
}

const workflow::Definition kCheckout{"t.checkout", "v1", "t.checkoutRequest", "t.checkoutResponse", &start<checkout>};
const workflow::Definition kMail{"t.mail", "v1", "t.mailRequest", "t.mailResponse", &start<mail_workflow>};
const workflow::Definition kNever{"t.never", "v1", "t.neverRequest", "t.neverResponse", &start<never_ends>};

Result<std::string> run_checkout(const MethodCall& c) { return workflow::run(c, kCheckout); }
Result<std::string> run_mail(const MethodCall& c) { return workflow::run(c, kMail); }
Result<std::string> run_never(const MethodCall& c) { return workflow::run(c, kNever); }
Result<std::string> direct(const MethodCall&) { return workflow::direct_call_refused("t.workflow"); }
Result<std::string> reserve_handler(const MethodCall& c) { return "reserved " + std::string(c.request); }
Result<std::string> charge_handler(const MethodCall&) {
  return Error(Code::internal, "the real payment service must not be called from a unit test");
}

const Method kMethods[] = {
    {"checkout", "/t.S/checkout", "t.checkoutRequest", "t.checkoutResponse", &direct, nullptr, &run_checkout},
    {"mail", "/t.S/mail", "t.mailRequest", "t.mailResponse", &direct, nullptr, &run_mail},
    {"never", "/t.S/never", "t.neverRequest", "t.neverResponse", &direct, nullptr, &run_never},
    {"reserve", "/t.S/reserve", "t.reserveRequest", "t.reserveResponse", &reserve_handler, nullptr},
    {"charge", "/t.S/charge", "t.chargeRequest", "t.chargeResponse", &charge_handler, nullptr},
};
const Service kService{"t", "S", kMethods, std::size(kMethods), {}, &function_service()};

DurableCall<std::string> checkout_call(std::string order) {
  return {"t.checkout", "t.checkoutRequest", std::move(order), &decode_text};
}

TEST(Harness, RunsAWorkflowWithItsChildrenToTheEndAndItsSleepsTakeNoTime) {
  DispatchTable table{&kService};
  Harness harness(table);
  harness.fake("t.charge", [](std::string_view card) -> Result<std::string> { return "paid with " + std::string(card); });
  const int64_t began = harness.clock().now_ms();
  const auto wall = std::chrono::steady_clock::now();
  Result<std::string> r = harness.run(checkout_call("o1"));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, "reserved o1,paid with card-of-o1,mailed o1");
  // 24 hours and 1 hour of sleeps, on the harness's clock only.
  EXPECT_GE(harness.clock().now_ms() - began, std::chrono::milliseconds(25h).count());
  EXPECT_LT(std::chrono::steady_clock::now() - wall, 60s);
  EXPECT_EQ(harness.deliveries("t.charge"), 1u);
  EXPECT_EQ(harness.deliveries("t.reserve"), 1u);
  // The tree as the scheduler kept it: reserve, charge, the sleep and the
  // child workflow, each a child of the checkout.
  auto kids = harness.children(harness.last_id());
  ASSERT_EQ(kids.size(), 4u);
  EXPECT_EQ(kids[0].function, "t.reserve");
  EXPECT_EQ(kids[1].function, "t.charge");
  EXPECT_EQ(kids[2].function, kSleepFunction);
  EXPECT_EQ(kids[3].function, "t.mail");
  for (const auto& k : kids) {
    EXPECT_EQ(k.parent_id, harness.last_id());
    EXPECT_EQ(k.root_id, harness.last_id());
    EXPECT_EQ(k.state, scheduler::CallState::completed);
  }
  auto grandchildren = harness.children(kids[3].id);
  ASSERT_EQ(grandchildren.size(), 1u);  // the mail workflow's sleep
  EXPECT_EQ(grandchildren[0].root_id, harness.last_id());
}

TEST(Harness, AFakesErrorReachesTheWorkflowWithItsCode) {
  DispatchTable table{&kService};
  Harness harness(table);
  harness.fake("t.charge", [](std::string_view) -> Result<std::string> {
    return Error(Code::failed_precondition, "card declined");
  });
  Result<std::string> r = harness.run(checkout_call("o2"));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, "declined:reserved o2");  // caught and compensated
  EXPECT_EQ(harness.deliveries("t.mail"), 0u);

  // Not caught: the workflow fails with the fake's code.
  harness.fake("t.charge", [](std::string_view) -> Result<std::string> {
    return Error(Code::permission_denied, "card stolen");
  });
  r = harness.run(checkout_call("o3"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::permission_denied);
  EXPECT_NE(r.error().message().find("card stolen"), std::string::npos) << r.error().message();
}

TEST(Harness, AWorkflowThatDoesNotEndWithinTheHorizonIsReported) {
  DispatchTable table{&kService};
  HarnessOptions options;
  options.horizon = std::chrono::hours(24 * 365);
  Harness harness(table, options);
  Result<std::string> r = harness.run(DurableCall<std::string>("t.never", "t.neverRequest", std::string("x"), &decode_text));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::deadline_exceeded);
  EXPECT_NE(r.error().message().find("t.never"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace dispatch::testing
