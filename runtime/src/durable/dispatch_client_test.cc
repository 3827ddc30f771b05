// DispatchClient: the DispatchRequest it builds and how it checks replies.
#include "dispatch/durable/dispatch_client.h"

#include <gtest/gtest.h>

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
