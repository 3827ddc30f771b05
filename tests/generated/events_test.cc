// Generated event functions that take or return a whole dispatch::CloudEvent
// (events/api.h), in process: events in binary, structured and batched mode
// through the server's request handler (raw HTTP in, the answer out, no
// socket) with the reply events checked, the Knative statuses of a failed
// function and of an invalid returned event, and the same functions called
// through their stubs, where the event crosses as the CloudEvents protobuf
// format.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "dispatch/events/event_route.h"
#include "dispatch/events/json_format.h"
#include "events/api.dispatch.h"
#include "transport/request_handler.h"

namespace {

using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

struct Answer {
  int status;
  dispatch::transport::Response response;
  std::string header(const char* name) const { return std::string(response[name]); }
};

class WholeEvents : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.logger = dispatch::Logger(dispatch::LogLevel::off);
    auto route = dispatch::events::event_route(table_, dispatch::events::EventOptions{"/events-test"});
    ASSERT_TRUE(route.ok()) << route.error().what();
    options_.routes.push_back(*route);
    handler_.emplace(table_, options_);
  }

  Answer post(const Headers& headers, const std::string& body, const std::string& target = "/") {
    std::string raw = "POST " + target + " HTTP/1.1\r\nHost: t\r\n";
    for (const auto& [n, v] : headers) raw += n + ": " + v + "\r\n";
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    auto answer = handler_->serve_bytes(raw);
    EXPECT_TRUE(answer.has_value());
    return Answer{static_cast<int>(answer->result_int()), std::move(*answer)};
  }
  static Headers binary(const std::string& type, const std::string& id, Headers more = {}) {
    Headers h = {{"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-source", "/tests"}, {"ce-type", type}};
    for (auto& m : more) h.push_back(std::move(m));
    return h;
  }
  static const Headers& structured() {
    static const Headers h = {{"Content-Type", "application/cloudevents+json"}};
    return h;
  }

  dispatch::DispatchTable table_{&events::remote::api_service()};
  dispatch::ServerOptions options_;
  std::optional<dispatch::transport::RequestHandler> handler_;
};

TEST_F(WholeEvents, BinaryModeDataAndAttributesInAWholeReplyEventOut) {
  auto r = post(binary("com.example.order.shipped", "evt-1", {{"Content-Type", "application/json"}}),
                R"({"id":"o-7","amount":3})");
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.header("ce-id"), "shipment-o-7");
  EXPECT_EQ(r.header("ce-source"), "/carrier");
  EXPECT_EQ(r.header("ce-type"), "com.example.shipment.tracked");
  EXPECT_EQ(r.header("ce-subject"), "o-7");
  EXPECT_EQ(r.header("ce-causedby"), "evt-1");
  EXPECT_EQ(r.header("ce-amount"), "3");
  EXPECT_EQ(r.header("Content-Type"), "text/plain");
  // The data went to the Order parameter; the event parameter has the
  // attributes without it.
  EXPECT_EQ(r.response.body(), "shipped o-7");
}

TEST_F(WholeEvents, StructuredModeWholeEventInAndTheReplyEventStructured) {
  auto r = post(structured(), R"({"specversion":"1.0","id":"evt-2","source":"/tests","type":"com.example.audit",
                                  "subject":"s-1","traceparent":"00-abc","priority":5,
                                  "datacontenttype":"application/json","data":{"k":[1,2]}})");
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.header("Content-Type"), "application/cloudevents+json; charset=utf-8");
  auto reply = dispatch::events::from_json(r.response.body());
  ASSERT_TRUE(reply.ok()) << reply.error().what();
  EXPECT_EQ(reply->type, "com.example.audited");
  EXPECT_EQ(reply->subject, "s-1");
  EXPECT_EQ(reply->extensions.at("traceparent").text, "00-abc");
  EXPECT_EQ(reply->extensions.at("priority"), (dispatch::ExtensionValue{"5", dispatch::AttributeKind::integer}));
  EXPECT_EQ(Json::parse(reply->data.value()), Json::parse(R"({"k":[1,2]})"));
  // Left empty by the function: the server's id and the configured source.
  EXPECT_EQ(reply->id.size(), 36u);
  EXPECT_EQ(reply->source, "/events-test");
}

TEST_F(WholeEvents, AnEmptyOptionalIsNoReply) {
  auto r = post(binary("com.example.audit", "evt-3"), "");
  EXPECT_EQ(r.status, 202) << r.response.body();
  EXPECT_TRUE(r.response.body().empty());
}

TEST_F(WholeEvents, AVoidFunctionTakesTheWholeEventAndAnswers202) {
  const int64_t before = events::pings();
  auto r = post(binary("com.example.ping", "evt-4", {{"Content-Type", "application/octet-stream"}}), "\x01\x02");
  EXPECT_EQ(r.status, 202) << r.response.body();
  EXPECT_EQ(events::pings(), before + 1);
  EXPECT_EQ(events::last_ping_id(), "evt-4");
}

TEST_F(WholeEvents, ABatchRunsEachEventAndAnswersTheRepliesAsABatch) {
  const int64_t before = events::pings();
  auto r = post({{"Content-Type", "application/cloudevents-batch+json"}},
                R"([{"specversion":"1.0","id":"b-1","source":"/t","type":"com.example.order.shipped",
                     "data":{"id":"o-8","amount":1}},
                    {"specversion":"1.0","id":"b-2","source":"/t","type":"com.example.ping"},
                    {"specversion":"1.0","id":"b-3","source":"/t","type":"com.example.audit"},
                    {"specversion":"1.0","id":"b-4","source":"/t","type":"com.example.audit","subject":"x"}])");
  ASSERT_EQ(r.status, 200) << r.response.body();
  auto replies = dispatch::events::from_json_batch(r.response.body());
  ASSERT_TRUE(replies.ok()) << replies.error().what();
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_EQ((*replies)[0].type, "com.example.shipment.tracked");
  EXPECT_EQ((*replies)[0].data, "shipped o-8");
  EXPECT_EQ((*replies)[1].type, "com.example.audited");
  EXPECT_EQ((*replies)[1].subject, "x");
  EXPECT_EQ(events::pings(), before + 1);
}

TEST_F(WholeEvents, AFailedFunctionIsTheStatusOfItsCodeAndAnInvalidReplyIs500) {
  auto down = post(binary("com.example.order.shipped", "evt-5", {{"Content-Type", "application/json"}}),
                   R"({"id":"down"})");
  EXPECT_EQ(down.status, 503) << down.response.body();
  auto bad = post(binary("com.example.order.shipped", "evt-6", {{"Content-Type", "application/json"}}),
                  R"({"id":"bad"})");
  EXPECT_EQ(bad.status, 500) << bad.response.body();
  EXPECT_NE(bad.response.body().find("not valid"), std::string::npos) << bad.response.body();
  // Data that does not decode into the Order: 400, and the server goes on.
  auto malformed = post(binary("com.example.order.shipped", "evt-7", {{"Content-Type", "application/json"}}),
                        R"({"id":5})");
  EXPECT_EQ(malformed.status, 400) << malformed.response.body();
  auto ok = post(binary("com.example.audit", "evt-8", {{"ce-subject", "after"}}), "");
  EXPECT_EQ(ok.status, 200) << ok.response.body();
}

TEST_F(WholeEvents, TheStubsCarryTheWholeEventBothWays) {
  dispatch::InProcessClient client{table_};
  dispatch::CloudEvent in;
  in.id = "evt-9";
  in.source = "/stub";
  in.type = "com.example.audit";
  in.subject = "café";
  in.time = "2026-12-04T10:00:00Z";
  in.set_attribute("sampled", "true", dispatch::AttributeKind::boolean);
  in.datacontenttype = "application/octet-stream";
  in.data = std::string("\x00\xff", 2);
  std::optional<dispatch::CloudEvent> out = events::remote::audit(client, in);
  ASSERT_TRUE(out.has_value());
  dispatch::CloudEvent expected = in;
  expected.id.clear();
  expected.source.clear();
  expected.type = "com.example.audited";
  EXPECT_EQ(*out, expected);

  in.subject.reset();
  EXPECT_FALSE(events::remote::audit(client, in).has_value());

  dispatch::CloudEvent reply = events::remote::on_order_shipped(client, events::Order{"o-9", 4}, in);
  EXPECT_EQ(reply.subject, "o-9");
  EXPECT_EQ(reply.extensions.at("causedby").text, "evt-9");
  EXPECT_EQ(reply.data, "shipped o-9 (with data)");

  auto failed = events::remote::on_order_shipped.try_call(client, events::Order{"down", 0}, in);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), dispatch::Code::unavailable);
}

TEST_F(WholeEvents, BytesThatAreNotAnEventAreInvalidArgumentOnTheDirectRoute) {
  dispatch::InProcessClient client{table_};
  // AuditRequest.event = 1 holding an id field that is not UTF-8.
  const std::string request = std::string("\x0a\x03\x0a\x01\xff", 5);
  auto r = client.call("/events.ApiService/audit", request, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(r.error().message().find("AuditRequest.event"), std::string::npos) << r.error().message();
}

}  // namespace
