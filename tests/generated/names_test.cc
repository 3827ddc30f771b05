// Generated code for parameters named like the generated code's own names
// (names/api.h), built with -Wshadow: each stub form calls the right function
// with the arguments in the right places. A parameter named `path` once
// replaced the stub's URL path in try_call, so read_file(client, "/x") called
// "/x".
#include <gtest/gtest.h>

#include <string>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "dispatch/durable/dispatch_client.h"
#include "eager_task.h"
#include "names/api.dispatch.h"

namespace {

namespace remote = names::remote;

class Names : public ::testing::Test {
 protected:
  dispatch::DispatchTable table_{&remote::api_service()};
  dispatch::InProcessClient client_{table_};
};

// The argument is the path of the other function, so a stub that sent the
// call to its argument would reach collide and fail, not return this.
constexpr const char* kOtherPath = "/names.ApiService/collide";

TEST_F(Names, PathParameterIsNotTheStubsPath) {
  EXPECT_STREQ(remote::read_file.path, "/names.ApiService/read_file");
  const std::string expected = std::string("contents of ") + kOtherPath;
  EXPECT_EQ(remote::read_file(client_, kOtherPath), expected);
  auto r = remote::read_file.try_call(client_, kOtherPath);
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, expected);
  EXPECT_EQ(remote::read_file.async(client_, kOtherPath).get(), expected);
}

const char* const kCollided = "f,rq,rs,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22";

TEST_F(Names, ParametersNamedLikeGeneratedNamesArriveInOrder) {
  EXPECT_EQ(remote::collide(client_, "f", "rq", "rs", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                            18, 19, 20, 21, 22),
            kCollided);
  auto r = remote::collide.try_call(client_, "f", "rq", "rs", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                    16, 17, 18, 19, 20, 21, 22);
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, kCollided);
  EXPECT_EQ(remote::collide.async(client_, "f", "rq", "rs", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22)
                .get(),
            kCollided);
}

TEST_F(Names, FunctionsNamedLikeTheServerHalfsOwnNames) {
  EXPECT_EQ(remote::kMethods(client_, 10), 11);
  EXPECT_EQ(remote::read_file_handler(client_, 10), 12);
  EXPECT_EQ(remote::read_file_stub(client_, 10), 13);
  EXPECT_EQ(remote::read_file(client_, "x"), "contents of x");
  EXPECT_EQ(remote::api_service().method_count, 8u);
}

// measure's defaults, as the function itself would see them.
constexpr const char* kMeasured = "1,box,4:b,1|2|,here,6,cm";

TEST_F(Names, DefaultArgumentsCarryOverToTheStubs) {
  EXPECT_EQ(remote::measure(client_, 1), kMeasured);
  EXPECT_EQ(remote::measure(client_, 1, "lid", {5, "c"}, {}, "there", 7, names::Unit::mm), "1,lid,5:c,,there,7,mm");
  auto r = remote::measure.try_call(client_, 1);
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, kMeasured);
  EXPECT_EQ(remote::measure.async(client_, 1).get(), kMeasured);
  auto defaulted = remote::measure.encode_request(1);
  auto spelled = remote::measure.encode_request(1, "box", {4, "b"}, {1, 2}, "here", 6, names::Unit::cm);
  ASSERT_TRUE(defaulted.ok() && spelled.ok());
  EXPECT_EQ(*defaulted, *spelled);
  EXPECT_EQ(remote::get(client_), 7);
  EXPECT_EQ(remote::get_user(client_), 8);
}

// Stands in for the scheduler's API: records the Dispatch request.
class FakeScheduler : public dispatch::Client {
 public:
  void call_async(std::string_view, std::string request, const dispatch::CallOptions&,
                  Callback done) override {
    request_ = std::move(request);
    done(std::string("\x0a\x03" "d-1", 5));  // DispatchResponse{dispatch_ids: ["d-1"]}
  }
  std::string request_;
};

TEST(NamesStub, DispatchNamesTheFunctionNotTheArguments) {
  FakeScheduler scheduler;
  dispatch::DispatchClient durable(scheduler, "http://127.0.0.1:1/");
  auto call = remote::collide.dispatch(durable, "arg-function", "arg-request-type", "arg-response-type", 1, 2, 3,
                                       4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22);
  ASSERT_TRUE(call.ok()) << call.error().what();
  EXPECT_EQ(call->id(), "d-1");
  EXPECT_NE(scheduler.request_.find("names.collide"), std::string::npos);
  EXPECT_NE(scheduler.request_.find("names.CollideRequest"), std::string::npos);
  auto request = remote::collide.encode_request("arg-function", "arg-request-type", "arg-response-type", 1, 2, 3,
                                                4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22);
  ASSERT_TRUE(request.ok());
  EXPECT_NE(scheduler.request_.find(*request), std::string::npos);
}

#if __cplusplus >= 202002L
using Task = dispatch::test::EagerTask;

Task read_and_collide(dispatch::Client& client, std::string* file, std::string* collided) {
  const std::string path = kOtherPath;  // named: see shop_test.cc on GCC 12 and temporaries
  *file = co_await remote::read_file.co(client, path);
  const std::string f = "f", rq = "rq", rs = "rs";
  *collided = co_await remote::collide.co(client, f, rq, rs, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                          17, 18, 19, 20, 21, 22);
}

// co() has defaults only for the trailing parameters without a destructor
// (scale, unit): see the emitter on GCC 12 and co_await temporaries.
Task measure_co(dispatch::Client& client, std::string* out) {
  const std::string label = "box", where = "here";
  const names::Box box{4, "b"};
  const std::vector<std::int32_t> extra{1, 2};
  *out = co_await remote::measure.co(client, 1, label, box, extra, where);
}

TEST_F(Names, CoroutineStubTakesTrailingScalarDefaults) {
  std::string out;
  measure_co(client_, &out);
  EXPECT_EQ(out, kMeasured);
}

TEST_F(Names, CoroutineStubs) {
  std::string file, collided;
  read_and_collide(client_, &file, &collided);
  EXPECT_EQ(file, std::string("contents of ") + kOtherPath);
  EXPECT_EQ(collided, kCollided);
}
#endif

}  // namespace
