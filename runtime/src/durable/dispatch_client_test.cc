// DispatchClient: the DispatchRequest it builds and how it checks replies.
#include "dispatch/durable/dispatch_client.h"

#include <gtest/gtest.h>

#include <coroutine>
#include <cstdlib>
#include <exception>
#include <optional>

#include "dispatch/durable/dispatched.h"
#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "durable/protocol.h"

namespace dispatch {
namespace {


// Records the request and answers one ID per call (or a chosen count).
class FakeScheduler : public Client {
 public:
  void call_async(std::string_view path, std::string request, const CallOptions&,
                  Callback done) override {
    path_ = std::string(path);
    last_.ParseFromString(request);
    sdk::v1::DispatchResponse res;
    int n = ids_ >= 0 ? ids_ : last_.calls_size();
    for (int i = 0; i < n; ++i) res.add_dispatch_ids("id-" + std::to_string(i));
    done(res.SerializeAsString());
  }
  std::string path_;
  sdk::v1::DispatchRequest last_;
  int ids_ = -1;
};

TEST(DispatchClient, BuildsTheDispatchRequest) {
  FakeScheduler scheduler;
  DispatchClient client(scheduler, "http://127.0.0.1:8000");
  DispatchOptions options;
  options.idempotency_key = "order-7";
  options.tenant = "acme";
  options.expiration = std::chrono::milliseconds(90500);
  auto id = client.dispatch("shop.add", "shop.AddRequest", "\x08\x01", options);
  ASSERT_TRUE(id.ok()) << id.error().what();
  EXPECT_EQ(*id, "id-0");
  EXPECT_EQ(scheduler.path_, "/dispatch.sdk.v1.DispatchService/Dispatch");
  ASSERT_EQ(scheduler.last_.calls_size(), 1);
  const sdk::v1::Call& call = scheduler.last_.calls(0);
  EXPECT_EQ(call.endpoint(), "http://127.0.0.1:8000");
  EXPECT_EQ(call.function(), "shop.add");
  EXPECT_EQ(call.input().type_url(), "type.googleapis.com/shop.AddRequest");
  EXPECT_EQ(call.input().value(), "\x08\x01");
  EXPECT_EQ(call.expiration().seconds(), 90);
  EXPECT_EQ(call.expiration().nanos(), 500000000);
  EXPECT_EQ(call.idempotency_key(), "order-7");
  EXPECT_EQ(call.tenant(), "acme");
}

TEST(DispatchClient, BatchKeepsOrderAndPerCallEndpoints) {
  FakeScheduler scheduler;
  DispatchClient client(scheduler, "http://a");
  std::vector<PendingCall> calls(3);
  for (int i = 0; i < 3; ++i) {
    calls[i].function = "f" + std::to_string(i);
    calls[i].request_type = "t.R";
  }
  calls[1].options.endpoint = "http://b";
  auto ids = client.dispatch_batch(std::move(calls));
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 3u);
  EXPECT_EQ(scheduler.last_.calls(1).endpoint(), "http://b");
  EXPECT_EQ(scheduler.last_.calls(2).endpoint(), "http://a");
  EXPECT_EQ(scheduler.last_.calls(2).function(), "f2");
}

TEST(DispatchClient, RejectsBadCallsBeforeSending) {
  FakeScheduler scheduler;
  DispatchClient no_endpoint(scheduler, "");
  if (std::getenv("DISPATCH_ENDPOINT_URL") == nullptr) {
    auto r = no_endpoint.dispatch("shop.add", "shop.AddRequest", "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find("DISPATCH_ENDPOINT_URL"), std::string::npos);
  }
  DispatchClient client(scheduler, "http://a");
  EXPECT_EQ(client.dispatch("9lives", "t.R", "").error().code(), Code::invalid_argument);
  EXPECT_EQ(client.dispatch("f g", "t.R", "").error().code(), Code::invalid_argument);
  EXPECT_EQ(client.dispatch("f", "", "").error().code(), Code::invalid_argument);
  EXPECT_EQ(client.dispatch_batch({}).error().code(), Code::invalid_argument);
  EXPECT_TRUE(scheduler.path_.empty());  // nothing was sent
}

TEST(DispatchClient, ADelayOrAStartTimeTravelsWithTheCall) {
  FakeScheduler scheduler;
  DispatchClient client(scheduler, "http://a");
  DispatchOptions later;
  later.delay = std::chrono::milliseconds(90'250);
  ASSERT_TRUE(client.dispatch("f", "t.R", "", later).ok());
  EXPECT_EQ(scheduler.last_.calls(0).delay().seconds(), 90);
  EXPECT_EQ(scheduler.last_.calls(0).delay().nanos(), 250'000'000);
  EXPECT_FALSE(scheduler.last_.calls(0).has_start_time());
  DispatchOptions at;
  at.start_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'900'000'000'123));
  ASSERT_TRUE(client.dispatch("f", "t.R", "", at).ok());
  EXPECT_EQ(scheduler.last_.calls(0).start_time().seconds(), 1'900'000'000);
  EXPECT_EQ(scheduler.last_.calls(0).start_time().nanos(), 123'000'000);
  EXPECT_FALSE(scheduler.last_.calls(0).has_delay());
  // Both, or a negative delay: refused before anything is sent.
  scheduler.path_.clear();
  DispatchOptions both = later;
  both.start_at = at.start_at;
  auto r = client.dispatch("f", "t.R", "", both);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("both a delay and a start time"), std::string::npos);
  DispatchOptions negative;
  negative.delay = std::chrono::milliseconds(-1);
  EXPECT_EQ(client.dispatch("f", "t.R", "", negative).error().code(), Code::invalid_argument);
  EXPECT_TRUE(scheduler.path_.empty());
}

// DISPATCH_API_URL and DISPATCH_API_KEY configure the client side.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1); else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1); else ::unsetenv(name_);
  }
 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(DispatchClient, FromEnvReadsTheApiUrlAndItsEndpoint) {
  ScopedEnv key("DISPATCH_API_KEY", "k");
  ScopedEnv endpoint("DISPATCH_ENDPOINT_URL", "http://127.0.0.1:9/fns");
  {
    ScopedEnv url("DISPATCH_API_URL", "http://127.0.0.1:1");
    auto client = DispatchClient::from_env();
    ASSERT_TRUE(client.ok()) << client.error().what();
    EXPECT_EQ(client->default_endpoint(), "http://127.0.0.1:9/fns");
    // Nothing listens on port 1: the Dispatch goes there and fails to connect.
    auto r = client->dispatch("f", "t.R", "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::unavailable);
    EXPECT_NE(r.error().message().find("127.0.0.1:1"), std::string::npos) << r.error().message();
  }
  {
    ScopedEnv url("DISPATCH_API_URL", "ftp://scheduler");
    auto client = DispatchClient::from_env();
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.error().code(), Code::invalid_argument);
    EXPECT_NE(client.error().message().find("DISPATCH_API_URL"), std::string::npos);
  }
  {
    ScopedEnv url("DISPATCH_API_URL", nullptr);  // dispatchd's default address
    EXPECT_TRUE(DispatchClient::from_env().ok());
  }
  {
    ScopedEnv url("DISPATCH_API_URL", "http://127.0.0.1:1");
    ScopedEnv bad_key("DISPATCH_SIGNING_KEY", "not a key");
    auto client = DispatchClient::from_env();
    ASSERT_FALSE(client.ok());
    EXPECT_NE(client.error().message().find("DISPATCH_SIGNING_KEY"), std::string::npos) << client.error().message();
  }
}

// Answers Get with a call that ends after `polls` Gets, as `info` says.
class FakeGets : public Client {
 public:
  void call_async(std::string_view path, std::string request, const CallOptions&, Callback done) override {
    EXPECT_EQ(path, "/dispatch.scheduler.v1.AdminService/Get");
    scheduler::v1::GetRequest get;
    EXPECT_TRUE(get.ParseFromString(request));
    scheduler::v1::CallInfo reply = info;
    reply.set_id(get.id());
    const bool final = info.state() >= scheduler::v1::CALL_STATE_COMPLETED &&
                       info.state() <= scheduler::v1::CALL_STATE_CANCELLED;
    if (++gets < polls && final) reply.set_state(scheduler::v1::CALL_STATE_RUNNING);
    done(reply.SerializeAsString());
  }
  scheduler::v1::CallInfo info;
  int polls = 1;
  int gets = 0;
};

// A response message holding one varint (field 1), as a generated
// decode_result() would read it.
Result<int> decode_int(std::string_view bytes) {
  if (bytes.size() != 2 || bytes[0] != 0x08) return Error(Code::internal, "not an IntResponse");
  return static_cast<int>(bytes[1]);
}

TEST(Dispatched, WaitGivesTheFunctionsTypedResultOrItsError) {
  FakeGets scheduler;
  DispatchClient client(scheduler, "http://a");
  scheduler.info.set_state(scheduler::v1::CALL_STATE_COMPLETED);
  scheduler.info.set_output_value(std::string("\x08\x2a", 2));
  scheduler.polls = 3;  // running twice, then done: wait() asks again
  Dispatched<int> call(client, "id-1", &decode_int);
  EXPECT_EQ(call.id(), "id-1");
  auto r = call.wait(std::chrono::milliseconds(1000));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(scheduler.gets, 3);

  scheduler.gets = 0;
  scheduler.polls = 1;
  scheduler.info.set_state(scheduler::v1::CALL_STATE_FAILED);
  scheduler.info.set_status(static_cast<int>(RunStatus::not_found));
  scheduler.info.set_error_type("not_found");
  scheduler.info.set_error_message("no order o-1");
  auto failed = call.wait();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), Code::not_found);
  EXPECT_EQ(failed.error().message(), "no order o-1");
  // An error type that is no code name: the status says what it means.
  scheduler.info.set_error_type("expired");
  scheduler.info.set_status(static_cast<int>(RunStatus::timeout));
  EXPECT_EQ(call.wait().error().code(), Code::deadline_exceeded);
  scheduler.info.set_state(scheduler::v1::CALL_STATE_CANCELLED);
  EXPECT_EQ(call.wait().error().code(), Code::canceled);
  // Still running at the timeout.
  scheduler.info.set_state(scheduler::v1::CALL_STATE_SUSPENDED);
  scheduler.polls = 1000;
  auto late = call.wait(std::chrono::milliseconds(0));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), Code::deadline_exceeded);
  EXPECT_NE(late.error().message().find("suspended"), std::string::npos) << late.error().message();
}

// A plain coroutine that awaits a Dispatched handle (not a workflow).
struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

Detached await_into(Dispatched<int> call, Result<int>* out) {
  try {
    *out = co_await call;
  } catch (const Error& e) {
    *out = e;
  }
}

TEST(Dispatched, CoAwaitGivesTheResultWithoutBlocking) {
  FakeGets scheduler;
  DispatchClient client(scheduler, "http://a");
  scheduler.info.set_state(scheduler::v1::CALL_STATE_COMPLETED);
  scheduler.info.set_output_value(std::string("\x08\x07", 2));
  scheduler.polls = 2;
  Result<int> got = Error(Code::unknown, "not yet");
  await_into(Dispatched<int>(client, "id-2", &decode_int), &got);
  ASSERT_TRUE(got.ok()) << got.error().what();
  EXPECT_EQ(*got, 7);
  scheduler.info.set_output_value("garbage");
  await_into(Dispatched<int>(client, "id-3", &decode_int), &got);
  EXPECT_EQ(got.error().code(), Code::internal);
}

TEST(DispatchClient, WrongIdCountIsAnError) {
  FakeScheduler scheduler;
  scheduler.ids_ = 0;
  DispatchClient client(scheduler, "http://a");
  auto r = client.dispatch("f", "t.R", "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("0 IDs for 1 calls"), std::string::npos);
}

}  // namespace
}  // namespace dispatch
