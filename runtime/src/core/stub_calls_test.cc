// Tests of the call forms generated stubs share (dispatch/core/stub_calls.h),
// over a recording Client: what reaches the transport, how replies, decode
// failures and unencodable requests reach the caller, and replies that come
// later, from another thread, or never.
#include "dispatch/core/stub_calls.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#if __cplusplus >= 202002L
#include <coroutine>
#endif

namespace dispatch::stub {
namespace {

// Records calls; answers at once with `reply`, or keeps the callback for the
// test to answer (hold = true).
class RecordingClient : public Client {
 public:
  void call_async(std::string_view path, std::string request, const CallOptions& options,
                  Callback done) override {
    paths.emplace_back(path);
    requests.push_back(std::move(request));
    timeouts.push_back(options.timeout);
    if (hold) {
      held.push_back(std::move(done));
    } else {
      done(reply);
    }
  }

  bool hold = false;
  Result<std::string> reply = std::string("reply");
  std::vector<std::string> paths, requests;
  std::vector<std::optional<std::chrono::milliseconds>> timeouts;
  std::vector<Callback> held;
};

// A DecodeReply as generated code writes one: the reply's length, or an
// error for a reply that is "bad".
Result<int> decode_length(Result<std::string> reply) {
  if (!reply.ok()) return std::move(reply).error();
  if (*reply == "bad") return malformed_reply("/p.S/m", Error(Code::invalid_argument, "Resp.x: truncated"));
  return static_cast<int>(reply->size());
}
Result<void> decode_nothing(Result<std::string> reply) {
  if (!reply.ok()) return std::move(reply).error();
  return {};
}

const Error kUnencodable(Code::out_of_range, "Req.d: duration outside google.protobuf.Duration's range");

TEST(StubCalls, MalformedReplyIsInternalAndNamesThePath) {
  Error e = malformed_reply("/p.S/m", Error(Code::invalid_argument, "Resp.x: truncated"));
  EXPECT_EQ(e.code(), Code::internal);
  EXPECT_EQ(e.message(), "malformed reply from /p.S/m: Resp.x: truncated");
}

TEST(StubCalls, BlockingCallSendsTheRequestWithItsOptions) {
  RecordingClient client;
  CallOptions options;
  options.timeout = std::chrono::milliseconds(250);
  Result<std::string> reply = call(client, "/p.S/m", std::string("req"), options);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(*reply, "reply");
  ASSERT_EQ(client.paths.size(), 1u);
  EXPECT_EQ(client.paths[0], "/p.S/m");
  EXPECT_EQ(client.requests[0], "req");
  EXPECT_EQ(client.timeouts[0], std::chrono::milliseconds(250));
}

TEST(StubCalls, BlockingCallWithAnUnencodableRequestDoesNotCall) {
  RecordingClient client;
  Result<std::string> reply = call(client, "/p.S/m", kUnencodable, {});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code(), Code::out_of_range);
  EXPECT_TRUE(client.paths.empty());
}

TEST(StubCalls, FutureHoldsTheDecodedReply) {
  RecordingClient client;
  std::future<int> f = call_future<int>(client, "/p.S/m", std::string("req"), {}, &decode_length);
  EXPECT_EQ(f.get(), 5);
  EXPECT_EQ(client.requests.at(0), "req");
}

TEST(StubCalls, FutureOfVoid) {
  RecordingClient client;
  std::future<void> f = call_future<void>(client, "/p.S/m", std::string("req"), {}, &decode_nothing);
  EXPECT_NO_THROW(f.get());
}

TEST(StubCalls, FutureThrowsTheTransportsError) {
  RecordingClient client;
  client.reply = Error(Code::unavailable, "connection refused");
  std::future<int> f = call_future<int>(client, "/p.S/m", std::string("req"), {}, &decode_length);
  try {
    f.get();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::unavailable);
    EXPECT_EQ(e.message(), "connection refused");
  }
}

TEST(StubCalls, FutureThrowsAMalformedReplyAsInternal) {
  RecordingClient client;
  client.reply = std::string("bad");
  std::future<int> f = call_future<int>(client, "/p.S/m", std::string("req"), {}, &decode_length);
  try {
    f.get();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::internal);
  }
}

TEST(StubCalls, FutureOfAnUnencodableRequestFailsWithoutCalling) {
  RecordingClient client;
  std::future<int> f = call_future<int>(client, "/p.S/m", kUnencodable, {}, &decode_length);
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_THROW(f.get(), Error);
  EXPECT_TRUE(client.paths.empty());
}

TEST(StubCalls, FutureIsSettledByALaterReplyOnAnotherThread) {
  RecordingClient client;
  client.hold = true;
  std::future<int> f = call_future<int>(client, "/p.S/m", std::string("req"), {}, &decode_length);
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  ASSERT_EQ(client.held.size(), 1u);
  std::thread replier([cb = std::move(client.held[0])] { cb(std::string("later")); });
  EXPECT_EQ(f.get(), 5);
  replier.join();
}

TEST(StubCalls, FutureOfACallTheTransportDropsIsABrokenPromise) {
  RecordingClient client;
  client.hold = true;
  std::future<int> f = call_future<int>(client, "/p.S/m", std::string("req"), {}, &decode_length);
  client.held.clear();  // the transport gives up without answering
  try {
    f.get();
    FAIL() << "no error";
  } catch (const std::future_error& e) {
    EXPECT_EQ(e.code(), std::future_errc::broken_promise);
  }
}

#if __cplusplus >= 202002L
// Starts at once and keeps nothing; enough to co_await from a test.
struct EagerTask {
  struct promise_type {
    EagerTask get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

EagerTask await_length(Client& client, Result<std::string> request, std::optional<int>* out,
                       std::optional<Code>* error) {
  try {
    *out = co_await call_awaitable<int>(client, "/p.S/m", std::move(request), {}, &decode_length);
  } catch (const Error& e) {
    *error = e.code();
  }
}

TEST(StubCalls, AwaitableCompletedAtOnce) {
  RecordingClient client;
  std::optional<int> out;
  std::optional<Code> error;
  await_length(client, std::string("req"), &out, &error);
  EXPECT_EQ(out, 5);
  EXPECT_FALSE(error);
  EXPECT_EQ(client.requests.at(0), "req");
}

TEST(StubCalls, AwaitableResumedByALaterReply) {
  RecordingClient client;
  client.hold = true;
  std::optional<int> out;
  std::optional<Code> error;
  await_length(client, std::string("req"), &out, &error);
  EXPECT_FALSE(out);
  ASSERT_EQ(client.held.size(), 1u);
  std::thread replier([cb = std::move(client.held[0])] { cb(std::string("later")); });
  replier.join();
  EXPECT_EQ(out, 5);
}

TEST(StubCalls, AwaitableThrowsErrors) {
  RecordingClient client;
  client.reply = std::string("bad");
  std::optional<int> out;
  std::optional<Code> error;
  await_length(client, std::string("req"), &out, &error);
  EXPECT_EQ(error, Code::internal);

  RecordingClient unused;
  error.reset();
  await_length(unused, kUnencodable, &out, &error);
  EXPECT_EQ(error, Code::out_of_range);
  EXPECT_TRUE(unused.paths.empty());
}
#endif

}  // namespace
}  // namespace dispatch::stub
