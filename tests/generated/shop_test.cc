// The shop example end to end over dispatch::InProcessClient: every stub form
// (sync, try_call, async, and C++20 co), void results, and how a function's
// exceptions reach the caller.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "eager_task.h"
#include "shop/api.dispatch.h"

namespace {

using shop::Item;
using shop::Order;

class Shop : public ::testing::Test {
 protected:
  dispatch::DispatchTable table_{&shop::remote::api_service()};
  dispatch::InProcessClient client_{table_};
};

TEST_F(Shop, SyncCallReturnsTheResult) {
  EXPECT_EQ(shop::remote::add(client_, 40, 2), 42);
  EXPECT_EQ(shop::remote::add(client_, INT64_MIN, 0), INT64_MIN);
  Order order = shop::remote::place_order(client_, {{"apple", 3, 0.5}, {"pear", -1, -2.25}}, "ann");
  EXPECT_EQ(order.id, "order-ann");
  EXPECT_EQ(order.customer, 3);
  ASSERT_EQ(order.items.size(), 2u);
  EXPECT_EQ(order.items[0].sku, "apple");
  EXPECT_EQ(order.items[1].qty, -1);
  EXPECT_EQ(order.items[1].price, -2.25);
  EXPECT_EQ(order.note, "placed by ann");
  EXPECT_EQ(order.status, shop::Status::pending);
  EXPECT_EQ(order.tags, (std::vector<int64_t>{3, -1}));
}

TEST_F(Shop, VoidFunction) {
  Order order = shop::remote::place_order(client_, {{"apple", 1, 1.0}}, "bob");
  EXPECT_NO_THROW(shop::remote::charge(client_, order));
  EXPECT_TRUE(shop::remote::charge.try_call(client_, order).ok());
}

TEST_F(Shop, ErrorsKeepTheirCodes) {
  // std::invalid_argument -> invalid_argument
  auto r = shop::remote::place_order.try_call(client_, {}, "ann");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument);
  EXPECT_EQ(r.error().message(), "an order needs at least one item");
  // dispatch::Error keeps its code.
  Order paid;
  paid.id = "o1";
  paid.status = shop::Status::paid;
  try {
    shop::remote::charge(client_, paid);
    FAIL() << "charge should throw";
  } catch (const dispatch::Error& e) {
    EXPECT_EQ(e.code(), dispatch::Code::failed_precondition);
    EXPECT_EQ(e.message(), "order o1 is already paid");
  }
  // Anything else -> internal with what().
  auto v = shop::remote::charge.try_call(client_, Order{});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code(), dispatch::Code::internal);
  EXPECT_EQ(v.error().message(), "nothing to charge");
}

TEST_F(Shop, AsyncFuture) {
  EXPECT_EQ(shop::remote::add.async(client_, 1, 2).get(), 3);
  auto failed = shop::remote::place_order.async(client_, {}, "x");
  EXPECT_THROW(failed.get(), dispatch::Error);
  auto done = shop::remote::charge.async(client_, shop::remote::place_order(client_, {{"a", 1, 1}}, "c"));
  EXPECT_NO_THROW(done.get());
}

TEST_F(Shop, StubKnowsItsMethod) {
  EXPECT_STREQ(shop::remote::charge.path, "/shop.ApiService/charge_v2");
  EXPECT_STREQ(shop::remote::charge.function, "shop.charge_v2");
  EXPECT_STREQ(shop::remote::add.request_type, "shop.AddRequest");
  const dispatch::Method* m = table_.find("/shop.ApiService/charge_v2");
  ASSERT_NE(m, nullptr);
  EXPECT_STREQ(m->response_type, "shop.ChargeV2Response");
  EXPECT_FALSE(shop::remote::api_service().file_descriptor.empty());
}

TEST_F(Shop, UnknownPathIsUnimplemented) {
  auto r = client_.call("/shop.ApiService/nope", "", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::unimplemented);
}

// A transport that answers every call with fixed bytes, to see what stubs do
// with a reply that is not the response message.
class CannedClient : public dispatch::Client {
 public:
  explicit CannedClient(std::string reply) : reply_(std::move(reply)) {}
  void call_async(std::string_view, std::string, const dispatch::CallOptions&, Callback done) override {
    done(reply_);
  }

 private:
  std::string reply_;
};

TEST(ShopStub, MalformedReplyIsInternal) {
  CannedClient client(std::string("\x08", 1));  // field 1 varint, value missing
  auto r = shop::remote::add.try_call(client, 1, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::internal);
  EXPECT_EQ(r.error().message(),
            "malformed reply from /shop.ApiService/add: AddResponse.result: truncated or overlong varint");
}

// Stands in for the scheduler's API: records the Dispatch request, answers
// one dispatch ID.
class FakeScheduler : public dispatch::Client {
 public:
  void call_async(std::string_view path, std::string request, const dispatch::CallOptions&,
                  Callback done) override {
    path_ = std::string(path);
    request_ = std::move(request);
    done(std::string("\x0a\x03" "d-1", 5));  // DispatchResponse{dispatch_ids: ["d-1"]}
  }
  std::string path_, request_;
};

TEST(ShopStub, DispatchHandsTheEncodedRequestToTheScheduler) {
  FakeScheduler scheduler;
  dispatch::DispatchClient durable(scheduler, "http://127.0.0.1:1/");
  // The handle of the persisted call, typed by the function's result.
  dispatch::Result<dispatch::Dispatched<int64_t>> call = shop::remote::add.dispatch(durable, 1, 2);
  ASSERT_TRUE(call.ok()) << call.error().what();
  EXPECT_EQ(call->id(), "d-1");
  EXPECT_EQ(scheduler.path_, "/dispatch.sdk.v1.DispatchService/Dispatch");
  // The Call names the function and carries AddRequest{a: 1, b: 2} packed as Any.
  auto request = shop::remote::add.encode_request(1, 2);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(*request, std::string("\x08\x01\x10\x02", 4));
  EXPECT_NE(scheduler.request_.find("shop.add"), std::string::npos);
  EXPECT_NE(scheduler.request_.find("shop.AddRequest"), std::string::npos);
  EXPECT_NE(scheduler.request_.find(*request), std::string::npos);
}

#if __cplusplus >= 202002L
using Task = dispatch::test::EagerTask;

Task add_and_charge(dispatch::Client& client, int64_t* sum, std::string* error) {
  *sum = co_await shop::remote::add.co(client, 20, 22);
  // A named argument: GCC 12 destroys some temporaries of a co_await
  // expression twice (GCC PR 105406-like), so none are used here.
  Order empty;
  try {
    co_await shop::remote::charge.co(client, empty);
  } catch (const dispatch::Error& e) {
    *error = e.message();
  }
}

TEST_F(Shop, CoroutineStub) {
  int64_t sum = 0;
  std::string error;
  add_and_charge(client_, &sum, &error);
  EXPECT_EQ(sum, 42);
  EXPECT_EQ(error, "nothing to charge");
}

// Completion from another thread: the coroutine suspends, then resumes there.
class LaterClient : public dispatch::Client {
 public:
  explicit LaterClient(dispatch::Client& inner) : inner_(inner) {}
  void call_async(std::string_view path, std::string request, const dispatch::CallOptions& options,
                  Callback done) override {
    std::lock_guard<std::mutex> lock(mutex_);
    threads_.emplace_back([this, p = std::string(path), request = std::move(request), options, done]() mutable {
      done(inner_.call(p, std::move(request), options));
    });
  }
  // Joins every call's thread, including those started by a resumed
  // coroutine while we wait.
  ~LaterClient() override {
    for (;;) {
      std::thread t;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (threads_.empty()) break;
        t = std::move(threads_.front());
        threads_.erase(threads_.begin());
      }
      t.join();
    }
  }

 private:
  dispatch::Client& inner_;
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

TEST_F(Shop, CoroutineResumesOnTheTransportsThread) {
  int64_t sum = 0;
  std::string error;
  {
    LaterClient later(client_);
    add_and_charge(later, &sum, &error);
  }  // joins: both calls have completed
  EXPECT_EQ(sum, 42);
  EXPECT_EQ(error, "nothing to charge");
}
#endif

}  // namespace
