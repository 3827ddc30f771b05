// How the scheduler reads a Poll and a tail call, without a store or a
// network (coroutine.h).
#include "scheduler/coroutine.h"

#include <gtest/gtest.h>
#include <google/protobuf/duration.pb.h>

#include <string>

namespace dispatch::scheduler {
namespace {

constexpr int64_t kNow = 1'000'000;

CallRecord parent() {
  CallRecord c;
  c.id = "p1";
  c.function = "wf";
  c.endpoint = "http://127.0.0.1:1/";
  c.root_id = "r0";
  c.expiration_at_ms = kNow + 5'000;
  c.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  c.tracestate = "vendor=x";
  return c;
}

sdk::v1::Call child(const std::string& function, const std::string& endpoint = "") {
  sdk::v1::Call call;
  call.set_function(function);
  call.set_endpoint(endpoint);
  call.mutable_input()->set_type_url("type.googleapis.com/t.Req");
  call.mutable_input()->set_value("x");
  return call;
}

SchedulerOptions options() {
  SchedulerOptions o;
  o.default_policy.expiration = std::chrono::hours(1);
  return o;
}

TEST(Coroutine, ChildrenInheritTreeTraceAndTheParentsExpiration) {
  sdk::v1::Poll poll;
  poll.set_min_results(1);
  poll.set_max_results(2);
  *poll.add_calls() = child("a");
  *poll.add_calls() = child("b", "http://127.0.0.1:2/");
  poll.set_coroutine_state("frame");
  Outcome o;
  ASSERT_EQ(coroutine::poll_outcome(parent(), poll, kNow, options(), o), RunStatus::ok);
  ASSERT_TRUE(o.poll.has_value());
  EXPECT_EQ(o.poll->state, "frame");
  EXPECT_EQ(o.poll->min_results, 1);
  EXPECT_EQ(o.poll->max_results, 2);
  ASSERT_EQ(o.poll->calls.size(), 2u);
  const NewCall& a = o.poll->calls[0];
  EXPECT_EQ(a.parent_id, "p1");
  EXPECT_EQ(a.root_id, "r0");
  EXPECT_EQ(a.endpoint, "http://127.0.0.1:1/");  // the parent's when it names none
  EXPECT_EQ(o.poll->calls[1].endpoint, "http://127.0.0.1:2/");
  EXPECT_EQ(a.traceparent, parent().traceparent);
  EXPECT_EQ(a.tracestate, "vendor=x");
  // The policy's hour is cut to the parent's five seconds.
  EXPECT_EQ(a.expiration_at_ms, kNow + 5'000);
}

TEST(Coroutine, ARefusedCallRefusesThemAllAndResumesWithTheError) {
  sdk::v1::Poll poll;
  *poll.add_calls() = child("fine");
  *poll.add_calls() = child("not a name!");
  Outcome o;
  ASSERT_EQ(coroutine::poll_outcome(parent(), poll, kNow, options(), o), RunStatus::ok);
  ASSERT_TRUE(o.poll.has_value());
  EXPECT_TRUE(o.poll->calls.empty());
  EXPECT_EQ(o.poll->error_type, "invalid_argument");
  EXPECT_NE(o.poll->error_message.find("call 1 ('not a name!') of the Poll"), std::string::npos)
      << o.poll->error_message;
}

TEST(Coroutine, APollThatCouldNeverResumeIsAnInvalidResponse) {
  sdk::v1::Poll poll;  // no calls, nothing outstanding, no max_wait
  Outcome o;
  EXPECT_EQ(coroutine::poll_outcome(parent(), poll, kNow, options(), o), RunStatus::invalid_response);
  EXPECT_NE(o.error_message.find("would never resume"), std::string::npos) << o.error_message;

  sdk::v1::Poll waits;
  waits.mutable_max_wait()->set_seconds(2);
  Outcome w;
  ASSERT_EQ(coroutine::poll_outcome(parent(), waits, kNow, options(), w), RunStatus::ok);
  EXPECT_EQ(w.poll->wake_at_ms, kNow + 2'000);
}

TEST(Coroutine, ResultBoundsAreChecked) {
  sdk::v1::Poll poll;
  *poll.add_calls() = child("a");
  poll.set_min_results(3);
  poll.set_max_results(2);
  Outcome o;
  EXPECT_EQ(coroutine::poll_outcome(parent(), poll, kNow, options(), o), RunStatus::invalid_response);
  EXPECT_NE(o.error_message.find("above max_results"), std::string::npos) << o.error_message;

  poll.set_max_results(1001);
  Outcome big;
  EXPECT_EQ(coroutine::poll_outcome(parent(), poll, kNow, options(), big), RunStatus::invalid_response);
  EXPECT_NE(big.error_message.find("1..1000"), std::string::npos) << big.error_message;
}

TEST(Coroutine, TypedStateComesBackAsItWasGiven) {
  sdk::v1::Poll poll;
  *poll.add_calls() = child("a");
  poll.mutable_typed_coroutine_state()->set_type_url("type.googleapis.com/t.State");
  poll.mutable_typed_coroutine_state()->set_value("s");
  Outcome o;
  ASSERT_EQ(coroutine::poll_outcome(parent(), poll, kNow, options(), o), RunStatus::ok);
  CallRecord suspended = parent();
  suspended.poll_state = o.poll->state;
  suspended.poll_state_type_url = o.poll->state_type_url;
  ChildResult done;
  done.correlation_id = 7;
  done.dispatch_id = "c7";
  done.status = static_cast<int>(RunStatus::ok);
  done.output_type_url = "type.googleapis.com/t.Res";
  done.output = "r";
  ChildResult failed;
  failed.correlation_id = 8;
  failed.status = static_cast<int>(RunStatus::permanent_error);
  failed.error_message = "no";
  suspended.results = {done, failed};
  sdk::v1::PollResult resumed;
  coroutine::to_poll_result(suspended, &resumed);
  EXPECT_EQ(resumed.typed_coroutine_state().type_url(), "type.googleapis.com/t.State");
  EXPECT_EQ(resumed.typed_coroutine_state().value(), "s");
  ASSERT_EQ(resumed.results_size(), 2);
  EXPECT_EQ(resumed.results(0).output().value(), "r");
  EXPECT_EQ(resumed.results(1).error().type(), std::string(run_status_name(RunStatus::permanent_error)));
  EXPECT_EQ(resumed.results(1).error().message(), "no");
}

TEST(Coroutine, ATailCallGoesOnWithANewLifeUnlessItIsAChild) {
  CallRecord root = parent();
  root.root_id.clear();
  sdk::v1::Call next = child("again");
  Outcome o;
  ASSERT_EQ(coroutine::tail_call_outcome(root, next, kNow, options(), o), RunStatus::ok);
  ASSERT_TRUE(o.tail_call.has_value());
  EXPECT_EQ(o.tail_call->expiration_at_ms, kNow + 3'600'000);  // the policy's, not the old life's
  EXPECT_EQ(o.tail_call->traceparent, root.traceparent);

  CallRecord kid = parent();
  kid.parent_id = "up";
  sdk::v1::Call next2 = child("again");
  Outcome k;
  ASSERT_EQ(coroutine::tail_call_outcome(kid, next2, kNow, options(), k), RunStatus::ok);
  EXPECT_EQ(k.tail_call->expiration_at_ms, kNow + 5'000);

  sdk::v1::Call bad = child("again", "ftp://x");
  Outcome b;
  EXPECT_EQ(coroutine::tail_call_outcome(root, bad, kNow, options(), b), RunStatus::invalid_response);
  EXPECT_NE(b.error_message.find("is not an http:// or https:// URL"), std::string::npos) << b.error_message;
}

}  // namespace
}  // namespace dispatch::scheduler
