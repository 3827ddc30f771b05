// The CloudEvents route through the server's request handler (raw HTTP in,
// the answer out, no socket), against a hand-written service standing in for
// generated [[dispatch::event]] functions: routing, data mapping in each
// content type, replies in each mode, the Knative statuses, and bad input;
// and send_event()/send_batch() against that service on a real server.
#include "dispatch/events/event_route.h"

#include <boost/asio/ip/tcp.hpp>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <memory>

#include "dispatch/core/call_headers.h"
#include "dispatch/events/event_client.h"
#include "dispatch/events/json_format.h"
#include "dispatch/wire/cloud_event.h"
#include "transport/request_handler.h"

namespace dispatch::events {
namespace {

namespace pb = google::protobuf;
using Json = nlohmann::json;

constexpr const char* kProto = R"pb(
  name: "ev/api.proto" package: "ev" syntax: "proto3"
  message_type { name: "Order"
    field { name: "id" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "id" }
    field { name: "amount" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "amount" } }
  message_type { name: "Receipt"
    field { name: "order_id" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "orderId" }
    field { name: "total" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "total" }
    field { name: "subject" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "subject" } }
  message_type { name: "OnOrderRequest"
    field { name: "order" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".ev.Order" json_name: "order" }
    field { name: "event" number: 2 label: LABEL_OPTIONAL type: TYPE_BYTES json_name: "event" } }
  message_type { name: "OnOrderResponse"
    field { name: "result" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".ev.Receipt" json_name: "result" } }
  message_type { name: "EventRequest"
    field { name: "event" number: 1 label: LABEL_OPTIONAL type: TYPE_BYTES json_name: "event" } }
  message_type { name: "EventResponse"
    field { name: "result" number: 1 label: LABEL_OPTIONAL type: TYPE_BYTES json_name: "result" } }
  message_type { name: "Empty" }
  message_type { name: "CountRequest"
    field { name: "n" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "n" } }
  message_type { name: "CountResponse"
    field { name: "result" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "result" } }
  message_type { name: "ShoutRequest"
    field { name: "text" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "text" } }
  message_type { name: "ShoutResponse"
    field { name: "result" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "result" } }
)pb";

std::string descriptor_bytes() {
  pb::FileDescriptorProto file;
  EXPECT_TRUE(pb::TextFormat::ParseFromString(kProto, &file));
  return file.SerializeAsString();
}

// The messages of kProto, for handlers that read and write them the slow,
// obvious way.
struct Messages {
  Messages() {
    pb::FileDescriptorProto file;
    pb::TextFormat::ParseFromString(kProto, &file);
    pool.BuildFile(file);
  }
  std::unique_ptr<pb::Message> make(const char* name) {
    return std::unique_ptr<pb::Message>(factory.GetPrototype(pool.FindMessageTypeByName(name))->New());
  }
  pb::DescriptorPool pool;
  pb::DynamicMessageFactory factory{&pool};
};
Messages& messages() {
  static Messages m;
  return m;
}

std::atomic<int> calls{0};

CloudEvent event_in(const pb::Message& request, const char* field) {
  const pb::FieldDescriptor* f = request.GetDescriptor()->FindFieldByName(field);
  auto e = wire::decode_cloud_event(request.GetReflection()->GetString(request, f));
  if (!e.ok()) throw e.error();
  return *e;
}

// Receipt on_order(const Order& order, const CloudEvent& event)
Result<std::string> on_order(const MethodCall& call) {
  ++calls;
  auto req = messages().make("ev.OnOrderRequest");
  if (!req->ParseFromString(std::string(call.request))) return Error(Code::invalid_argument, "bad request");
  const CloudEvent event = event_in(*req, "event");
  if (event.data) throw Error(Code::internal, "the event field carries the data too");
  const pb::Message& order = req->GetReflection()->GetMessage(*req, req->GetDescriptor()->field(0));
  const pb::Reflection* r = order.GetReflection();
  auto resp = messages().make("ev.OnOrderResponse");
  pb::Message* receipt = resp->GetReflection()->MutableMessage(resp.get(), resp->GetDescriptor()->field(0));
  const pb::Descriptor* rd = receipt->GetDescriptor();
  receipt->GetReflection()->SetString(receipt, rd->field(0), r->GetString(order, order.GetDescriptor()->field(0)));
  receipt->GetReflection()->SetInt64(receipt, rd->field(1), 2 * r->GetInt64(order, order.GetDescriptor()->field(1)));
  receipt->GetReflection()->SetString(receipt, rd->field(2), event.subject.value_or(""));
  return resp->SerializeAsString();
}

// void ping(const CloudEvent& event); the delivery's x-tenant header, if
// any, comes back as x-tenant-seen.
Result<std::string> ping(const MethodCall&) {
  ++calls;
  if (auto tenant = request_header("x-tenant")) add_response_header("x-tenant-seen", *tenant).value();
  return std::string();
}

// CloudEvent echo(const CloudEvent& event): any type.
Result<std::string> echo(const MethodCall& call) {
  ++calls;
  auto req = messages().make("ev.EventRequest");
  req->ParseFromString(std::string(call.request));
  CloudEvent e = event_in(*req, "event");
  CloudEvent reply;
  reply.type = "echoed." + e.type;
  reply.subject = e.id;
  reply.extensions["seen"] = {"true", AttributeKind::boolean};
  if (e.type == "bad.reply") reply.extensions["BAD"] = {"x"};
  if (e.type == "no.reply") return std::string();
  reply.datacontenttype = e.datacontenttype;
  reply.data = e.data;
  auto resp = messages().make("ev.EventResponse");
  resp->GetReflection()->SetString(resp.get(), resp->GetDescriptor()->field(0), wire::encode_cloud_event(reply));
  return resp->SerializeAsString();
}

// int64_t count(int64_t n)
Result<std::string> count(const MethodCall& call) {
  ++calls;
  auto req = messages().make("ev.CountRequest");
  req->ParseFromString(std::string(call.request));
  auto resp = messages().make("ev.CountResponse");
  resp->GetReflection()->SetInt64(resp.get(), resp->GetDescriptor()->field(0),
                                  req->GetReflection()->GetInt64(*req, req->GetDescriptor()->field(0)) + 1);
  return resp->SerializeAsString();
}

// std::string shout(std::string text)
Result<std::string> shout(const MethodCall& call) {
  ++calls;
  auto req = messages().make("ev.ShoutRequest");
  req->ParseFromString(std::string(call.request));
  std::string text = req->GetReflection()->GetString(*req, req->GetDescriptor()->field(0));
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
  auto resp = messages().make("ev.ShoutResponse");
  resp->GetReflection()->SetString(resp.get(), resp->GetDescriptor()->field(0), text);
  return resp->SerializeAsString();
}

// void fail(const CloudEvent& event): the event's subject says how.
Result<std::string> fail(const MethodCall& call) {
  ++calls;
  auto req = messages().make("ev.EventRequest");
  req->ParseFromString(std::string(call.request));
  CloudEvent e = event_in(*req, "event");
  if (e.subject == "unavailable") throw Error(Code::unavailable, "the database is down");
  if (e.subject == "invalid") throw std::invalid_argument("no such customer");
  throw std::runtime_error("boom");
}

using Reply = EventBinding::Reply;
const EventBinding kOnOrder{"com.example.order.placed", "com.example.receipt", 1, 2, Reply::data};
const EventBinding kPing{"com.example.ping", "", 0, 1, Reply::none};
const EventBinding kEcho{"", "", 0, 1, Reply::event};
const EventBinding kCount{"com.example.count", "", 1, 0, Reply::data};
const EventBinding kShout{"com.example.shout", "", 1, 0, Reply::data};
const EventBinding kFail{"com.example.fail", "", 0, 1, Reply::none};

const std::string& file_descriptor() {
  static const std::string bytes = descriptor_bytes();
  return bytes;
}

const Method kTyped[] = {
    {"on_order", "/ev.ApiService/on_order", "ev.OnOrderRequest", "ev.OnOrderResponse", &on_order, &kOnOrder},
    {"ping", "/ev.ApiService/ping", "ev.EventRequest", "ev.Empty", &ping, &kPing},
    {"count", "/ev.ApiService/count", "ev.CountRequest", "ev.CountResponse", &count, &kCount},
    {"shout", "/ev.ApiService/shout", "ev.ShoutRequest", "ev.ShoutResponse", &shout, &kShout},
    {"fail", "/ev.ApiService/fail", "ev.EventRequest", "ev.Empty", &fail, &kFail},
};
const Method kAny[] = {
    {"echo", "/ev.AnyService/echo", "ev.EventRequest", "ev.EventResponse", &echo, &kEcho},
};

const Service& typed_service() {
  static const Service s{"ev", "ApiService", kTyped, std::size(kTyped), file_descriptor()};
  return s;
}
const Service& any_service() {
  static const Service s{"ev", "AnyService", kAny, std::size(kAny), file_descriptor()};
  return s;
}

struct Raw {
  int status;
  transport::Response response;
  std::string header(const char* name) const { return std::string(response[name]); }
};

class EventRouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    calls = 0;
    options_.logger = Logger(LogLevel::off);
  }
  void serve(std::initializer_list<const Service*> services) {
    for (const Service* s : services) ASSERT_TRUE(table_.add(*s).ok());
    auto route = event_route(table_, EventOptions{});
    ASSERT_TRUE(route.ok()) << route.error().what();
    options_.routes.push_back(*route);
    handler_.emplace(table_, options_);
  }
  Raw post(const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers,
           const std::string& body, const char* method = "POST") {
    std::string raw = std::string(method) + " " + target + " HTTP/1.1\r\nHost: t\r\n";
    for (const auto& [n, v] : headers) raw += n + ": " + v + "\r\n";
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    auto answer = handler_->serve_bytes(raw);
    EXPECT_TRUE(answer.has_value());
    return Raw{static_cast<int>(answer->result_int()), std::move(*answer)};
  }
  static std::vector<std::pair<std::string, std::string>> ce(const std::string& type, const std::string& content_type,
                                                            std::vector<std::pair<std::string, std::string>> more = {}) {
    std::vector<std::pair<std::string, std::string>> h = {
        {"ce-specversion", "1.0"}, {"ce-id", "evt-1"}, {"ce-source", "/tests"}, {"ce-type", type}};
    if (!content_type.empty()) h.emplace_back("Content-Type", content_type);
    for (auto& m : more) h.push_back(std::move(m));
    return h;
  }
  static std::string structured(const std::string& type, const std::string& rest) {
    return R"({"specversion":"1.0","id":"evt-2","source":"/tests","type":")" + type + "\"" + rest + "}";
  }

  DispatchTable table_;
  ServerOptions options_;
  std::optional<transport::RequestHandler> handler_;
};

TEST_F(EventRouteTest, BinaryModeWithJsonDataGetsABinaryReplyFromTheFunctionsData) {
  serve({&typed_service()});
  auto r = post("/", ce("com.example.order.placed", "application/json", {{"ce-subject", "caf%C3%A9"}}),
                R"({"id":"o-1","amount":21})");
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.header("ce-specversion"), "1.0");
  EXPECT_EQ(r.header("ce-type"), "com.example.receipt");
  EXPECT_EQ(r.header("ce-source"), "/ev.ApiService/on_order");
  const std::string id = r.header("ce-id");  // a version 4 UUID
  ASSERT_EQ(id.size(), 36u);
  for (std::size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(id[i], '-') << id;
  EXPECT_EQ(id[14], '4') << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef-"), std::string::npos) << id;
  EXPECT_NE(post("/", ce("com.example.order.placed", "application/json"), "{}").header("ce-id"), id);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  // The result struct printed as protobuf's JSON mapping prints it: fields in
  // declaration order.
  EXPECT_EQ(r.response.body(), R"({"orderId":"o-1","total":"42","subject":"café"})");
}

// A struct's JSON data is read as protobuf's JSON mapping reads the
// parameter's message: original field names too, whitespace around it,
// and null for no data at all.
TEST_F(EventRouteTest, StructDataTakesTheJsonMappingsSpellingsAndNull) {
  serve({&typed_service()});
  auto r = post("/", ce("com.example.order.placed", "application/json"), " \n{\"id\":\"o-3\",\"amount\":\"4\"}\n ");
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.response.body(), R"({"orderId":"o-3","total":"8","subject":""})");
  auto null = post("/", ce("com.example.order.placed", "application/json"), " null ");
  ASSERT_EQ(null.status, 200) << null.response.body();
  EXPECT_EQ(Json::parse(null.response.body()), Json::parse(R"({"orderId":"","total":"0","subject":""})"));
  // A field the struct does not have (a newer producer's) is skipped, as
  // in a Connect request.
  auto newer = post("/", ce("com.example.order.placed", "application/json"),
                    R"({"id":"o-4","currency":{"code":"EUR"},"amount":"5"})");
  ASSERT_EQ(newer.status, 200) << newer.response.body();
  EXPECT_EQ(newer.response.body(), R"({"orderId":"o-4","total":"10","subject":""})");
}

TEST_F(EventRouteTest, StructuredModeGetsAStructuredReply) {
  serve({&typed_service()});
  auto r = post("/", {{"Content-Type", "application/cloudevents+json; charset=utf-8"}},
                structured("com.example.order.placed", R"(,"subject":"s","data":{"id":"o-2","amount":"5"})"));
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.header("Content-Type"), "application/cloudevents+json; charset=utf-8");
  auto reply = from_json(r.response.body());
  ASSERT_TRUE(reply.ok()) << reply.error().what();
  EXPECT_EQ(reply->type, "com.example.receipt");
  EXPECT_EQ(reply->datacontenttype, "application/json");
  EXPECT_EQ(Json::parse(*reply->data), Json::parse(R"({"orderId":"o-2","total":"10","subject":"s"})"));
}

TEST_F(EventRouteTest, ProtobufDataDecodesIntoAStructAndRepliesInProtobuf) {
  serve({&typed_service()});
  auto order = messages().make("ev.Order");
  pb::TextFormat::ParseFromString(R"(id: "o-3" amount: 7)", order.get());
  auto r = post("/", ce("com.example.order.placed", "application/protobuf"), order->SerializeAsString());
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.header("Content-Type"), "application/protobuf");
  auto receipt = messages().make("ev.Receipt");
  ASSERT_TRUE(receipt->ParseFromString(r.response.body()));
  EXPECT_EQ(receipt->ShortDebugString(), R"(order_id: "o-3" total: 14)");
}

TEST_F(EventRouteTest, ScalarAndTextDataMapThroughTheParameterType) {
  serve({&typed_service()});
  auto n = post("/", ce("com.example.count", "application/json"), "41");
  ASSERT_EQ(n.status, 200) << n.response.body();
  EXPECT_EQ(n.response.body(), R"("42")");  // int64 in proto3 JSON
  auto zero = post("/", ce("com.example.count", "application/json"), "-1");
  ASSERT_EQ(zero.status, 200);
  EXPECT_EQ(zero.response.body(), R"("0")");  // a default value is still data
  auto t = post("/", ce("com.example.shout", "text/plain; charset=utf-8"), "hello");
  ASSERT_EQ(t.status, 200) << t.response.body();
  EXPECT_EQ(t.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(t.response.body(), "HELLO");
  auto j = post("/", ce("com.example.shout", "application/json"), R"("json string")");
  ASSERT_EQ(j.status, 200);
  EXPECT_EQ(j.response.body(), R"("JSON STRING")");
}

TEST_F(EventRouteTest, AFunctionWithoutAResultAnswers202WithNoBody) {
  serve({&typed_service()});
  auto r = post("/", ce("com.example.ping", ""), "");
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(r.response.body().empty());
  EXPECT_EQ(calls, 1);
}

TEST_F(EventRouteTest, AWholeEventComesBackAsTheReplyWithMissingAttributesFilledIn) {
  serve({&any_service()});
  auto r = post("/", ce("anything.at.all", "text/plain"), "payload");
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.header("ce-type"), "echoed.anything.at.all");
  EXPECT_EQ(r.header("ce-subject"), "evt-1");
  EXPECT_EQ(r.header("ce-seen"), "true");
  EXPECT_EQ(r.header("ce-source"), "/ev.AnyService/echo");
  EXPECT_EQ(r.header("Content-Type"), "text/plain");
  EXPECT_EQ(r.response.body(), "payload");
  EXPECT_EQ(post("/", ce("no.reply", ""), "").status, 202);
  auto bad = post("/", ce("bad.reply", ""), "");
  EXPECT_EQ(bad.status, 500);
  EXPECT_NE(bad.response.body().find("not valid"), std::string::npos) << bad.response.body();
}

TEST_F(EventRouteTest, AReplyThatCannotBeSentIsLoggedAsTheFailureItIs) {
  // The function returned, but its event is not valid: the answer is 500,
  // and the delivery's line must not say "ok" (an operator reading the log
  // would not see why Knative retries).
  std::vector<std::pair<LogLevel, std::string>> lines;
  options_.logger = Logger(LogLevel::info, [&lines](LogLevel level, std::string_view line) {
    lines.emplace_back(level, std::string(line));
  });
  serve({&any_service()});
  ASSERT_EQ(post("/", ce("bad.reply", ""), "").status, 500);
  bool said = false;
  for (const auto& [level, line] : lines) {
    if (line.find("bad.reply (evt-1)") == std::string::npos) continue;
    EXPECT_EQ(line.find(": ok in"), std::string::npos) << line;
    EXPECT_NE(line.find("internal"), std::string::npos) << line;
    EXPECT_NE(line.find("not valid"), std::string::npos) << line;
    EXPECT_EQ(level, LogLevel::warn) << line;
    said = true;
  }
  EXPECT_TRUE(said) << "no line for the delivery";
}

TEST_F(EventRouteTest, BatchesRunInOrderAndReplyAsABatch) {
  serve({&typed_service()});
  const std::string batch = "[" + structured("com.example.count", R"(,"data":1)") + "," +
                            structured("com.example.ping", "") + "," +
                            structured("com.example.shout", R"(,"data":"x")") + "]";
  auto r = post("/", {{"Content-Type", "application/cloudevents-batch+json"}}, batch);
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.header("Content-Type"), "application/cloudevents-batch+json; charset=utf-8");
  auto replies = from_json_batch(r.response.body());
  ASSERT_TRUE(replies.ok()) << replies.error().what();
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_EQ((*replies)[0].data, R"("2")");
  EXPECT_EQ((*replies)[1].data, R"("X")");
  EXPECT_EQ(calls, 3);
  // One malformed event: nothing runs.
  calls = 0;
  auto bad = post("/", {{"Content-Type", "application/cloudevents-batch+json"}},
                  "[" + structured("com.example.ping", "") + R"(,{"id":"x"}])");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.response.body().find("batch event 1"), std::string::npos) << bad.response.body();
  EXPECT_EQ(calls, 0);
  // Data one function cannot take (count takes a number; text/plain for a
  // number is 415, an object 400) is found before any runs too: the
  // refusal is not retried, so an event run before it would have had its
  // reply dropped.
  for (const char* data : {R"(,"data":{"n":1})", R"(,"datacontenttype":"text/plain","data":"x")"}) {
    calls = 0;
    auto undecodable = post("/", {{"Content-Type", "application/cloudevents-batch+json"}},
                            "[" + structured("com.example.count", R"(,"data":1)") + "," +
                                structured("com.example.count", data) + "]");
    EXPECT_TRUE(undecodable.status == 400 || undecodable.status == 415) << undecodable.response.body();
    EXPECT_NE(undecodable.response.body().find("batch event 1"), std::string::npos) << undecodable.response.body();
    EXPECT_EQ(calls, 0) << data;
  }
  auto empty = post("/", {{"Content-Type", "application/cloudevents-batch+json"}}, "[]");
  EXPECT_EQ(empty.status, 202);
}

TEST_F(EventRouteTest, APathNamingTheFunctionRoutesWhateverTheType) {
  serve({&typed_service()});
  auto r = post("/ev.ApiService/count", ce("some.other.type", "application/json"), "1");
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(r.response.body(), R"("2")");
  EXPECT_EQ(r.header("ce-type"), "some.other.type.reply");
}

// What the server learns before the body is read (function_for, for the
// quick/slow mark) agrees with where the event goes, however its ce-type
// header is spelled.
TEST_F(EventRouteTest, TheFunctionForABinaryEventIsFoundFromItsTypeHeaderHoweverSpelled) {
  class Headers final : public RequestInfo {
   public:
    explicit Headers(std::string type) : type_(std::move(type)) {
      method = "POST";
      path = "/";
      content_type = "application/json";
    }
    std::optional<std::string_view> header(std::string_view name) const override {
      if (name == "ce-type") return std::string_view(type_);
      return std::nullopt;
    }
    void for_each_header(const std::function<void(std::string_view, std::string_view)>& f) const override {
      f("ce-type", type_);
    }

   private:
    std::string type_;
  };
  ASSERT_TRUE(table_.add(typed_service()).ok());
  auto route = event_route(table_, EventOptions{});
  ASSERT_TRUE(route.ok()) << route.error().what();
  const Method* placed = (*route)->function_for(Headers("com.example.order.placed"));
  ASSERT_NE(placed, nullptr);
  EXPECT_EQ(std::string_view(placed->name), "on_order");
  EXPECT_EQ((*route)->function_for(Headers("\"com.example.order.placed\"")), placed);
  EXPECT_EQ((*route)->function_for(Headers("com.example.order%2Eplaced")), placed);
  EXPECT_EQ((*route)->function_for(Headers("com.example.unknown")), nullptr);
  EXPECT_EQ((*route)->function_for(Headers("com.example.order%ZZ")), nullptr);

  // The answer names the function that ran, for the server to time.
  const std::string body = R"({"id":"o-1","amount":21})";
  class Event final : public RequestInfo {
   public:
    Event(const HeaderLines& lines, std::string_view data) : lines_(lines) {
      method = "POST";
      path = "/";
      content_type = "application/json";
      body = data;
    }
    std::optional<std::string_view> header(std::string_view) const override { return std::nullopt; }
    void for_each_header(const std::function<void(std::string_view, std::string_view)>& f) const override {
      for (const auto& [n, v] : lines_) f(n, v);
    }

   private:
    const HeaderLines& lines_;
  };
  const HeaderLines lines = ce("com.example.order.placed", "application/json");
  CallContext context;
  const HttpAnswer answer = (*route)->answer(Event(lines, body), context);
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.function, placed);
}

// An event function reads the delivery's HTTP headers and adds to its
// answer's, as any function does (dispatch/core/call_headers.h).
TEST_F(EventRouteTest, AnEventFunctionSeesTheDeliverysHeadersAndAddsToItsAnswer) {
  serve({&typed_service()});
  auto r = post("/", ce("com.example.ping", "", {{"X-Tenant", "acme"}}), "");
  ASSERT_EQ(r.status, 202) << r.response.body();
  EXPECT_EQ(r.header("x-tenant-seen"), "acme");
  r = post("/", ce("com.example.ping", ""), "");
  ASSERT_EQ(r.status, 202) << r.response.body();
  EXPECT_EQ(r.header("x-tenant-seen"), "");
}

TEST_F(EventRouteTest, AConnectCallToAnEventFunctionIsStillAConnectCall) {
  serve({&typed_service()});
  auto r = post("/ev.ApiService/count", {{"Content-Type", "application/json"}}, R"({"n":"5"})");
  ASSERT_EQ(r.status, 200) << r.response.body();
  EXPECT_EQ(Json::parse(r.response.body()), Json::parse(R"({"result":"6"})"));
}

TEST_F(EventRouteTest, ATypeNoFunctionDeclaredIs404) {
  serve({&typed_service()});
  auto r = post("/", ce("com.example.unknown", ""), "");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.response.body().find("com.example.unknown"), std::string::npos);
  EXPECT_EQ(calls, 0);
}

TEST_F(EventRouteTest, MalformedEventsAre400AndRunNothing) {
  serve({&typed_service()});
  auto expect_400 = [&](const Raw& r, const char* needle) {
    EXPECT_EQ(r.status, 400) << r.response.body();
    EXPECT_NE(r.response.body().find(needle), std::string::npos) << r.response.body();
  };
  expect_400(post("/", {{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "com.example.ping"}}, ""),
             "source");
  expect_400(post("/", ce("com.example.ping", "", {{"ce-specversion", "0.3"}}), ""), "more than once");
  expect_400(post("/", {{"ce-specversion", "0.3"}, {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "com.example.ping"}},
                  ""),
             "unknown specversion");
  expect_400(post("/", ce("com.example.ping", "", {{"ce-subject", "%C0%A0"}}), ""), "UTF-8");
  expect_400(post("/", {{"Content-Type", "application/cloudevents+json"}}, "{not json"), "not valid JSON");
  expect_400(post("/", ce("com.example.order.placed", "application/json"), R"({"amount":"lots"})"), "amount");
  expect_400(post("/", ce("com.example.order.placed", "application/json"), R"({"id":"a"}, "event": "x")"),
             "not valid JSON");
  expect_400(post("/", ce("com.example.order.placed", "application/json"), R"({"id":"a"} {"id":"b"})"),
             "not valid JSON");
  expect_400(post("/", ce("com.example.order.placed", "application/json"), R"([{"id":"a"}])"), "does not decode");
  expect_400(post("/", ce("com.example.order.placed", "application/json"), R"({"id":"a","extra":tru})"),
             "not valid JSON");
  expect_400(post("/", ce("com.example.shout", "text/plain"), "\xC3\x28"), "UTF-8");
  EXPECT_EQ(calls, 0);
}

TEST_F(EventRouteTest, FormatsAndDataTypesAFunctionCannotTakeAre415) {
  serve({&typed_service()});
  auto avro = post("/", {{"Content-Type", "application/cloudevents+avro"}}, "x");
  EXPECT_EQ(avro.status, 415);
  EXPECT_NE(avro.header("Accept-Post").find("application/cloudevents+json"), std::string::npos);
  auto text_to_struct = post("/", ce("com.example.order.placed", "text/plain"), "o-1");
  EXPECT_EQ(text_to_struct.status, 415);
  EXPECT_NE(text_to_struct.response.body().find("text/plain"), std::string::npos) << text_to_struct.response.body();
  auto proto_to_int = post("/", ce("com.example.count", "application/protobuf"), "\x08\x01");
  EXPECT_EQ(proto_to_int.status, 415);
  auto untyped = post("/", ce("com.example.count", ""), "1");
  EXPECT_EQ(untyped.status, 415);
  EXPECT_EQ(calls, 0);
}

TEST_F(EventRouteTest, OnlyPostDeliversEvents) {
  serve({&typed_service()});
  auto r = post("/", ce("com.example.ping", ""), "", "PUT");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "POST");
}

TEST_F(EventRouteTest, AFailedFunctionAnswersItsCodesStatusSoKnativeRetries5xx) {
  serve({&typed_service()});
  EXPECT_EQ(post("/", ce("com.example.fail", "", {{"ce-subject", "unavailable"}}), "").status, 503);
  EXPECT_EQ(post("/", ce("com.example.fail", "", {{"ce-subject", "crash"}}), "").status, 500);
  EXPECT_EQ(post("/", ce("com.example.fail", "", {{"ce-subject", "invalid"}}), "").status, 400);
  // And the server goes on serving.
  EXPECT_EQ(post("/", ce("com.example.ping", ""), "").status, 202);
}

TEST_F(EventRouteTest, RequestsWithoutCloudEventsMarksAreNotEvents) {
  serve({&typed_service()});
  auto r = post("/", {{"Content-Type", "application/json"}}, "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(calls, 0);
}

TEST(EventRouteBuild, TwoFunctionsDeclaringOneTypeAreRefused) {
  DispatchTable table;
  ASSERT_TRUE(table.add(typed_service()).ok());
  static const Method kAgain[] = {
      {"ping2", "/ev.Other/ping2", "ev.EventRequest", "ev.Empty", &ping, &kPing},
  };
  static const Service other{"ev", "Other", kAgain, 1, file_descriptor()};
  ASSERT_TRUE(table.add(other).ok());
  auto route = event_route(table);
  ASSERT_FALSE(route.ok());
  EXPECT_EQ(route.error().code(), Code::failed_precondition);
  EXPECT_NE(route.error().message().find("ev.ping and ev.ping2"), std::string::npos) << route.error().message();
  EXPECT_EQ(event_function_count(table), 6u);
}

// The client side against a real server on loopback: send_event() and
// send_batch() in each mode, replies read back, and their errors.
class EventClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(table_.add(typed_service()).ok());
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.logger = Logger(LogLevel::off);
    auto route = event_route(table_);
    ASSERT_TRUE(route.ok()) << route.error().what();
    options.routes.push_back(std::move(*route));
    server_ = std::make_unique<Server>(table_, std::move(options));
    ASSERT_TRUE(server_->start().ok());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port()) + "/";
  }
  static CloudEvent count_event(const char* id, const char* n) {
    CloudEvent e;
    e.id = id;
    e.source = "/client-test";
    e.type = "com.example.count";
    e.datacontenttype = "application/json";
    e.data = n;
    return e;
  }
  DispatchTable table_;
  std::unique_ptr<Server> server_;
  std::string url_;
};

TEST_F(EventClientTest, SendsInBinaryAndStructuredModeAndReadsTheReply) {
  for (ContentMode mode : {ContentMode::binary, ContentMode::structured}) {
    SendOptions options;
    options.mode = mode;
    auto reply = send_event(url_, count_event("c-1", "41"), options);
    ASSERT_TRUE(reply.ok()) << reply.error().what();
    ASSERT_TRUE(reply->has_value());
    const CloudEvent& r = **reply;
    EXPECT_EQ(r.type, "com.example.count.reply");
    EXPECT_EQ(r.specversion, "1.0");
    EXPECT_FALSE(r.id.empty());
    ASSERT_TRUE(r.data.has_value());
    EXPECT_EQ(Json::parse(*r.data), Json("42")) << *r.data;
  }
}

TEST_F(EventClientTest, NoReplyIsNullopt) {
  CloudEvent ping = count_event("p-1", "{}");
  ping.type = "com.example.ping";
  auto reply = send_event(url_, ping);
  ASSERT_TRUE(reply.ok()) << reply.error().what();
  EXPECT_FALSE(reply->has_value());
}

TEST_F(EventClientTest, SendsABatchAndGetsTheRepliesInOrder) {
  auto replies = send_batch(url_, {count_event("b-1", "1"), count_event("b-2", "10")});
  ASSERT_TRUE(replies.ok()) << replies.error().what();
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_EQ(Json::parse(*(*replies)[0].data), Json("2"));
  EXPECT_EQ(Json::parse(*(*replies)[1].data), Json("11"));
}

TEST_F(EventClientTest, ErrorsSayWhatWentWrong) {
  CloudEvent unknown = count_event("u-1", "1");
  unknown.type = "com.example.nobody";
  auto not_found = send_event(url_, unknown);
  ASSERT_FALSE(not_found.ok());
  EXPECT_EQ(not_found.error().code(), Code::not_found) << not_found.error().what();

  CloudEvent no_id = count_event("", "1");
  auto invalid = send_event(url_, no_id);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code(), Code::invalid_argument);
  EXPECT_NE(invalid.error().message().find("id"), std::string::npos) << invalid.error().message();

  for (const char* url : {"https://127.0.0.1/", "ftp://x/", "http://", "http://h:0/", "http://h:99999/"}) {
    auto bad = send_event(url, count_event("x", "1"));
    ASSERT_FALSE(bad.ok()) << url;
    EXPECT_EQ(bad.error().code(), Code::invalid_argument) << url;
  }

  // A sink that takes the connection and never answers.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  SendOptions quick;
  quick.timeout = std::chrono::milliseconds(200);
  auto late = send_event("http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/",
                         count_event("t-1", "1"), quick);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), Code::deadline_exceeded) << late.error().what();

  const std::string closed = url_;
  server_->stop();
  auto refused = send_event(closed, count_event("r-1", "1"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::unavailable) << refused.error().what();
}

}  // namespace
}  // namespace dispatch::events
