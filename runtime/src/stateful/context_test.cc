// dispatch::Context<State> over the untyped endpoint, with a hand-written
// schema as generated code writes one: a field never set reads as its
// default, only changed fields are written back, clearing deletes, an
// optional set to nullopt deletes, undecodable state fails naming the field,
// typed sends go through a stub's function type and message(); and send()
// to dispatchd's ingress writes a SendRequest and reads its SendResponse.
// Compiled as C++17: the headers are public.
#include "dispatch/stateful/context.h"

#include <google/protobuf/io/coded_stream.h>
#include <gtest/gtest.h>

#include "dispatch/stateful/ingress.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"

static_assert(__cplusplus < 202002L, "this test must be compiled as C++17");

namespace dispatch::stateful {
namespace {

namespace pb = ::io::statefun::sdk::reqreply;

struct Counter {
  std::int32_t count = 0;
  std::int64_t budget = 5;
  std::optional<std::string> name;
  long long big = 0;  // a 64-bit integer however spelled
};

struct CounterSchema {
  template <typename Fields>
  static void fields(Fields& f, Counter& s) {
    f.value("count", s.count);
    f.value("budget", s.budget);
    f.value("name", s.name);
    f.value("big", s.big);
  }
};

// What a generated stub gives a Context's typed send.
struct PeerStub {
  static constexpr const char* function_type = "test/peer";
  static TypedValue message(std::int32_t v) { return typed_value(v); }
};

class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fns_.add({"test/counter",
                          {{"count", std::string(kIntType)},
                           {"budget", std::string(kLongType)},
                           {"name", std::string(kStringType)},
                           {"big", std::string(kLongType)}},
                          [this](Invocation& inv) { run<CounterSchema, Counter>(inv, body_); }})
                    .ok());
  }
  // One batch of `n` int messages with `state` (absent unless given).
  pb::FromFunction batch(std::map<std::string, TypedValue> state, int n = 1) {
    pb::ToFunction req;
    auto* b = req.mutable_invocation();
    b->mutable_target()->set_namespace_("test");
    b->mutable_target()->set_type("counter");
    b->mutable_target()->set_id("a");
    for (const char* name : {"count", "budget", "name", "big"}) {
      auto* s = b->add_state();
      s->set_state_name(name);
      auto it = state.find(name);
      if (it == state.end()) continue;
      s->mutable_state_value()->set_typename_(it->second.type_name);
      s->mutable_state_value()->set_has_value(true);
      s->mutable_state_value()->set_value(it->second.value);
    }
    for (int i = 0; i < n; ++i) {
      auto* inv = b->add_invocations();
      inv->mutable_argument()->set_typename_(std::string(kIntType));
      inv->mutable_argument()->set_has_value(true);
      inv->mutable_argument()->set_value(encode_int(i));
    }
    last_ = fns_.handle(req.SerializeAsString());
    pb::FromFunction res;
    if (last_.ok()) {
      EXPECT_TRUE(res.ParseFromString(*last_));
    }
    return res;
  }
  static const pb::FromFunction::PersistedValueMutation* mutation(const pb::FromFunction& res, const char* name) {
    for (const auto& m : res.invocation_result().state_mutations())
      if (m.state_name() == name) return &m;
    return nullptr;
  }

  StatefulFunctions fns_;
  std::function<void(Context<Counter>&)> body_;
  Result<std::string> last_ = std::string();
};

TEST_F(ContextTest, AFieldNeverSetReadsAsItsDefaultAndOnlyChangesAreWritten) {
  std::vector<Counter> seen;
  body_ = [&](Context<Counter>& ctx) {
    seen.push_back(ctx.state());
    ++ctx.state().count;
  };
  pb::FromFunction res = batch({}, 2);
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].count, 0);
  EXPECT_EQ(seen[0].budget, 5);
  EXPECT_FALSE(seen[0].name.has_value());
  EXPECT_EQ(seen[1].count, 1);  // carried to the next invocation of the batch
  ASSERT_EQ(res.invocation_result().state_mutations_size(), 1);
  EXPECT_EQ(decode_int(mutation(res, "count")->state_value().value()).value(), 2);
}

TEST_F(ContextTest, ClearingDeletesAndAnOptionalSetToNulloptDeletes) {
  body_ = [&](Context<Counter>& ctx) {
    EXPECT_EQ(ctx.state().budget, 1);
    ASSERT_TRUE(ctx.clear("budget").ok());
    EXPECT_EQ(ctx.state().budget, 5);  // its default, at once
    EXPECT_FALSE(ctx.clear("nope").ok());
    ctx.state().name.reset();
    ctx.state().big = 1LL << 40;
  };
  pb::FromFunction res = batch({{"budget", typed_value(std::int64_t{1})}, {"name", typed_value("x")}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_EQ(res.invocation_result().state_mutations_size(), 3);
  EXPECT_EQ(mutation(res, "budget")->mutation_type(), pb::FromFunction::PersistedValueMutation::DELETE);
  EXPECT_EQ(mutation(res, "name")->mutation_type(), pb::FromFunction::PersistedValueMutation::DELETE);
  EXPECT_EQ(mutation(res, "big")->state_value().typename_(), kLongType);
  EXPECT_EQ(decode_long(mutation(res, "big")->state_value().value()).value(), 1LL << 40);
}

TEST_F(ContextTest, AClearedFieldWrittenAgainIsModified) {
  body_ = [&](Context<Counter>& ctx) {
    ctx.clear("count").value();
    ctx.state().count = 9;
  };
  pb::FromFunction res = batch({{"count", typed_value(std::int32_t{3})}});
  EXPECT_EQ(mutation(res, "count")->mutation_type(), pb::FromFunction::PersistedValueMutation::MODIFY);
  EXPECT_EQ(decode_int(mutation(res, "count")->state_value().value()).value(), 9);
}

TEST_F(ContextTest, StateThatDoesNotDecodeFailsNamingTheFieldAndTheFunction) {
  // Thrown out of the function (handle() lets it escape; on the route,
  // DispatchTable::invoke() maps it), which fails the batch.
  body_ = [](Context<Counter>&) {};
  try {
    batch({{"count", TypedValue{std::string(kIntType), "\x01", true}}});
    ADD_FAILURE() << "undecodable state was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::invalid_argument);
    EXPECT_NE(e.message().find("state 'count' of test/counter: "), std::string::npos) << e.what();
  }
}

TEST_F(ContextTest, TypedAndRawSendsDelayedSendsAndEgress) {
  body_ = [](Context<Counter>& ctx) {
    EXPECT_EQ(ctx.self().type, "test/counter");
    EXPECT_EQ(ctx.id(), "a");
    EXPECT_FALSE(ctx.caller().has_value());
    EXPECT_EQ(ctx.reply(typed_value(true)).error().code(), Code::failed_precondition);
    ctx.send(PeerStub{}, "p1", 7);
    ctx.send(Address{"other/fn", "x"}, TypedValue{"type.googleapis.com/x.M", "raw"});
    ctx.send_after(std::chrono::seconds(2), PeerStub{}, "p2", 8, "tok");
    ctx.cancel_delayed("tok");
    ctx.egress("test/out", typed_value(2.5));
  };
  pb::FromFunction res = batch({});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  const auto& out = res.invocation_result();
  ASSERT_EQ(out.outgoing_messages_size(), 2);
  EXPECT_EQ(out.outgoing_messages(0).target().type(), "peer");
  EXPECT_EQ(out.outgoing_messages(0).target().id(), "p1");
  EXPECT_EQ(decode_int(out.outgoing_messages(0).argument().value()).value(), 7);
  EXPECT_EQ(out.outgoing_messages(1).argument().typename_(), "type.googleapis.com/x.M");
  EXPECT_EQ(out.outgoing_messages(1).argument().value(), "raw");
  ASSERT_EQ(out.delayed_invocations_size(), 2);
  EXPECT_EQ(out.delayed_invocations(0).delay_in_ms(), 2000);
  EXPECT_EQ(out.delayed_invocations(0).cancellation_token(), "tok");
  EXPECT_TRUE(out.delayed_invocations(1).is_cancellation_request());
  ASSERT_EQ(out.outgoing_egresses_size(), 1);
  EXPECT_EQ(out.outgoing_egresses(0).argument().typename_(), kDoubleType);
}

TEST_F(ContextTest, TypedRecordsOfBuiltinsAndOfStructsByTheTableOfTheHeader) {
  struct Note {
    std::string text;
  };
  struct Other {};
  static const MessageType list[] = {
      {&typeid(Note), "type.googleapis.com/test.Note",
       [](const void* v) { return "note:" + static_cast<const Note*>(v)->text; }}};
  static const MessageTypes table{list, 1};
  ASSERT_TRUE(fns_.add({"test/typed",
                        {{"count", std::string(kIntType)},
                         {"budget", std::string(kLongType)},
                         {"name", std::string(kStringType)},
                         {"big", std::string(kLongType)}},
                        [](Invocation& inv) {
                          run<CounterSchema, Counter>(inv, table, [](Context<Counter>& ctx) {
                            EXPECT_EQ(ctx.typed(std::int32_t{3}).value().type_name, kIntType);
                            EXPECT_EQ(ctx.typed(3L).value().type_name, kLongType);  // a long is a long
                            EXPECT_EQ(ctx.typed("s").value().type_name, kStringType);
                            EXPECT_EQ(ctx.typed(std::string("s")).value().value, encode_string("s"));
                            EXPECT_EQ(ctx.typed(false).value().type_name, kBoolType);
                            EXPECT_EQ(ctx.typed(1.5f).value().type_name, kFloatType);
                            ctx.egress("test/notes", Note{"hi"}).value();
                            Result<void> refused = ctx.egress("test/notes", Other{});
                            ASSERT_FALSE(refused.ok());
                            EXPECT_EQ(refused.error().code(), Code::invalid_argument);
                            EXPECT_NE(refused.error().message().find("Other' is not a message of the header"),
                                      std::string::npos)
                                << refused.error().message();
                            EXPECT_EQ(ctx.reply(Note{"x"}).error().code(), Code::failed_precondition);
                          });
                        }})
                  .ok());
  pb::ToFunction req;
  req.mutable_invocation()->mutable_target()->set_namespace_("test");
  req.mutable_invocation()->mutable_target()->set_type("typed");
  req.mutable_invocation()->mutable_target()->set_id("a");
  for (const char* name : {"count", "budget", "name", "big"}) req.mutable_invocation()->add_state()->set_state_name(name);
  req.mutable_invocation()->add_invocations()->mutable_argument()->set_typename_(std::string(kIntType));
  last_ = fns_.handle(req.SerializeAsString());
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  pb::FromFunction res;
  ASSERT_TRUE(res.ParseFromString(*last_));
  ASSERT_EQ(res.invocation_result().outgoing_egresses_size(), 1);
  EXPECT_EQ(res.invocation_result().outgoing_egresses(0).argument().typename_(), "type.googleapis.com/test.Note");
  EXPECT_EQ(res.invocation_result().outgoing_egresses(0).argument().value(), "note:hi");
}

TEST(StatefunRoute, IsOneRouteThatBringsTheRunRoute) {
  DispatchTable table{&statefun_route()};
  EXPECT_NE(table.find(kRoutePath), nullptr);
  EXPECT_NE(table.find("/dispatch.sdk.v1.FunctionService/Run"), nullptr);
  // No service of the table has the function type asked for.
  pb::ToFunction req;
  req.mutable_invocation()->mutable_target()->set_namespace_("a");
  req.mutable_invocation()->mutable_target()->set_type("b");
  req.mutable_invocation()->mutable_target()->set_id("c");
  auto res = table.invoke(*table.find(kRoutePath), req.SerializeAsString());
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code(), Code::not_found);
}

// Answers every call with `reply` and keeps what it was asked.
struct FakeClient : Client {
  std::string path, request;
  Result<std::string> reply = std::string();
  void call_async(std::string_view p, std::string r, const CallOptions&, Callback done) override {
    path = std::string(p);
    request = std::move(r);
    done(reply);
  }
};

TEST(Ingress, SendWritesASendRequestAndReadsTheMessageId) {
  FakeClient client;
  client.reply = std::string("\x0a\x01\x2a", 3);  // message_ids: [42], packed
  SendOptions options;
  options.idempotency_key = "k";
  auto id = send(client, {"greeter/greet", "alice"}, typed_value("hi"), options);
  ASSERT_TRUE(id.ok()) << id.error().what();
  EXPECT_EQ(*id, 42u);
  EXPECT_EQ(client.path, "/dispatch.statefun.v1.IngressService/Send");
  // SendRequest{messages: [{function_type, id, typename, value, idempotency_key}]}, read back
  // with protobuf's own reader of the same field numbers.
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(client.request.data()),
                                            static_cast<int>(client.request.size()));
  ASSERT_EQ(in.ReadTag(), (1u << 3) | 2);
  std::string message;
  std::uint32_t size = 0;
  ASSERT_TRUE(in.ReadVarint32(&size) && in.ReadString(&message, static_cast<int>(size)));
  google::protobuf::io::CodedInputStream fields(reinterpret_cast<const std::uint8_t*>(message.data()),
                                                static_cast<int>(message.size()));
  std::vector<std::string> values;
  while (std::uint32_t tag = fields.ReadTag()) {
    std::uint32_t n = 0;
    std::string v;
    ASSERT_TRUE(fields.ReadVarint32(&n) && fields.ReadString(&v, static_cast<int>(n)));
    values.push_back(std::to_string(tag >> 3) + "=" + v);
  }
  EXPECT_EQ(values, (std::vector<std::string>{"1=greeter/greet", "2=alice", "3=io.statefun.types/string",
                                              "4=" + encode_string("hi"), "5=k"}));

  client.reply = std::string("\x08\x07", 2);  // unpacked
  EXPECT_EQ(send(client, {"a/b", "c"}, typed_value(1)).value(), 7u);
  client.reply = std::string("\x0a\x05", 2);  // truncated
  EXPECT_EQ(send(client, {"a/b", "c"}, typed_value(1)).error().code(), Code::internal);
  client.reply = Error(Code::invalid_argument, "the entity id is empty");
  EXPECT_EQ(send(client, {"a/b", ""}, typed_value(1)).error().message(), "the entity id is empty");
}

}  // namespace
}  // namespace dispatch::stateful
