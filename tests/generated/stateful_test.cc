// Generated stateful functions (stateful/api.h) through the StateFun route
// their service brings, in process: ToFunction batches built from the
// protocol's messages in, FromFunction replies checked. The handshake names
// every state field with its StateFun typename and expiration; a field never
// set reads as its default; state is carried across the invocations of a
// batch; clearing deletes; typed sends, delayed sends and cancellations,
// replies and egress records come out as StateFun carries them, typed ones
// of a built-in or of a struct of the header too; a function
// taking a std::variant takes each of its message types; a message of
// another type is refused. State of types StateFun has no name for (enums,
// unsigned and narrow integers, vectors, maps) goes through its wrapper
// message: named in the handshake, readable by the .proto's descriptor,
// carried across invocations.
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/stateful/context.h"
#include "dispatch/stateful/value_types.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"
#include "stateful/api.dispatch.h"

namespace {

namespace pb = ::io::statefun::sdk::reqreply;
namespace st = ::dispatch::stateful;

constexpr const char* kGreetRequest = "type.googleapis.com/greeter.GreetRequest";
constexpr const char* kReset = "type.googleapis.com/greeter.Reset";
constexpr const char* kReceipt = "type.googleapis.com/greeter.Receipt";

struct Message {
  st::TypedValue argument;
  std::optional<st::Address> caller = std::nullopt;
};

void set_address(const st::Address& a, pb::Address* out) {
  const std::size_t slash = a.type.rfind('/');
  out->set_namespace_(a.type.substr(0, slash));
  out->set_type(a.type.substr(slash + 1));
  out->set_id(a.id);
}

st::TypedValue greeting(const std::string& name, bool remind = false, bool cancel = false) {
  return greeter::remote::greet.message(greeter::GreetRequest{name, remind, cancel});
}

class StatefulRoute : public ::testing::Test {
 protected:
  // A batch to `type`/`id` with `state` (name -> value; nullopt: declared
  // but absent; a name not listed is not carried at all).
  pb::FromFunction call(const std::string& type, const std::string& id,
                        const std::vector<std::pair<std::string, std::optional<st::TypedValue>>>& state,
                        const std::vector<Message>& messages) {
    pb::ToFunction req;
    auto* batch = req.mutable_invocation();
    set_address({type, id}, batch->mutable_target());
    for (const auto& [name, value] : state) {
      auto* s = batch->add_state();
      s->set_state_name(name);
      if (value) {
        s->mutable_state_value()->set_typename_(value->type_name);
        s->mutable_state_value()->set_has_value(true);
        s->mutable_state_value()->set_value(value->value);
      }
    }
    for (const Message& m : messages) {
      auto* inv = batch->add_invocations();
      if (m.caller) set_address(*m.caller, inv->mutable_caller());
      inv->mutable_argument()->set_typename_(m.argument.type_name);
      inv->mutable_argument()->set_has_value(true);
      inv->mutable_argument()->set_value(m.argument.value);
    }
    last_ = table_.invoke(*route_, req.SerializeAsString());
    pb::FromFunction res;
    if (last_.ok()) {
      EXPECT_TRUE(res.ParseFromString(*last_));
    }
    return res;
  }
  // Every field of greeter::Seen declared, none set.
  static std::vector<std::pair<std::string, std::optional<st::TypedValue>>> seen_absent() {
    return {{"count", std::nullopt}, {"last_name", std::nullopt}, {"budget", std::nullopt}};
  }
  // Every field of greeter::Inventory declared, none set.
  static std::vector<std::pair<std::string, std::optional<st::TypedValue>>> inventory_absent() {
    std::vector<std::pair<std::string, std::optional<st::TypedValue>>> out;
    for (const char* name : {"total", "last", "grade", "restocks", "low", "big", "items", "stock", "shelves"})
      out.emplace_back(name, std::nullopt);
    return out;
  }
  static const pb::FromFunction::PersistedValueMutation* mutation(const pb::FromFunction& res, const std::string& name) {
    for (const auto& m : res.invocation_result().state_mutations())
      if (m.state_name() == name) return &m;
    return nullptr;
  }

  dispatch::DispatchTable table_{&greeter::remote::api_service()};
  const dispatch::Method* route_ = table_.find(st::kRoutePath);
  dispatch::Result<std::string> last_ = std::string();
};

TEST_F(StatefulRoute, TheServiceBringsTheStateFunRouteAndTheRunRoute) {
  ASSERT_NE(route_, nullptr);
  EXPECT_NE(table_.find("/dispatch.sdk.v1.FunctionService/Run"), nullptr);
  EXPECT_EQ(greeter::remote::greet.function_type, std::string("greeter/greet"));
  EXPECT_EQ(greeter::remote::tally.function_type, std::string("counters/tally"));
}

TEST_F(StatefulRoute, TheHandshakeNamesEveryFieldWithItsTypenameAndExpiration) {
  pb::FromFunction res = call("greeter/greet", "alice", {}, {{greeting("alice")}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_TRUE(res.has_incomplete_invocation_context());
  const auto& missing = res.incomplete_invocation_context().missing_values();
  ASSERT_EQ(missing.size(), 3);
  EXPECT_EQ(missing[0].state_name(), "count");
  EXPECT_EQ(missing[0].type_typename(), st::kIntType);
  EXPECT_FALSE(missing[0].has_expiration_spec());
  EXPECT_EQ(missing[1].state_name(), "last_name");
  EXPECT_EQ(missing[1].type_typename(), st::kStringType);
  EXPECT_EQ(missing[1].expiration_spec().mode(), pb::FromFunction::ExpirationSpec::AFTER_WRITE);
  EXPECT_EQ(missing[1].expiration_spec().expire_after_millis(), 600000);
  EXPECT_EQ(missing[2].state_name(), "budget");
  EXPECT_EQ(missing[2].type_typename(), st::kIntType);
  // The counter's one field is a long.
  res = call("counters/tally", "alice", {}, {{st::typed_value(std::int64_t{2})}});
  ASSERT_EQ(res.incomplete_invocation_context().missing_values_size(), 1);
  EXPECT_EQ(res.incomplete_invocation_context().missing_values(0).type_typename(), st::kLongType);
}

TEST_F(StatefulRoute, AFieldNeverSetReadsAsItsDefaultAndStateIsCarriedAcrossABatch) {
  pb::FromFunction res =
      call("greeter/greet", "alice", seen_absent(), {{greeting("alice")}, {greeting("al")}, {greeting("ali")}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_TRUE(res.has_invocation_result());
  // One mutation per field that changed, with the last value of the batch.
  ASSERT_EQ(res.invocation_result().state_mutations_size(), 3);
  const auto* count = mutation(res, "count");
  ASSERT_NE(count, nullptr);
  EXPECT_EQ(count->mutation_type(), pb::FromFunction::PersistedValueMutation::MODIFY);
  EXPECT_EQ(count->state_value().typename_(), st::kIntType);
  EXPECT_EQ(st::decode_int(count->state_value().value()).value(), 3);
  EXPECT_EQ(st::decode_int(mutation(res, "budget")->state_value().value()).value(), 2);  // 5 - 3
  EXPECT_EQ(st::decode_string(mutation(res, "last_name")->state_value().value()).value(), "ali");

  // The next batch starts from what the runtime kept.
  res = call("greeter/greet", "alice",
             {{"count", st::typed_value(std::int32_t{3})}, {"last_name", st::typed_value("ali")},
              {"budget", st::typed_value(std::int32_t{2})}},
             {{greeting("alice")}});
  EXPECT_EQ(st::decode_int(mutation(res, "count")->state_value().value()).value(), 4);
  EXPECT_EQ(st::decode_int(mutation(res, "budget")->state_value().value()).value(), 1);
  EXPECT_EQ(st::decode_string(mutation(res, "last_name")->state_value().value()).value(), "alice");
}

TEST_F(StatefulRoute, OnlyWhatChangedIsWrittenBack) {
  // A greeting to admin renames; the count and budget are untouched.
  pb::FromFunction res = call("greeter/admin", "bob",
                              {{"count", st::typed_value(std::int32_t{7})}, {"last_name", std::nullopt},
                               {"budget", std::nullopt}},
                              {{greeting("bobby")}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_EQ(res.invocation_result().state_mutations_size(), 1);
  EXPECT_EQ(st::decode_string(mutation(res, "last_name")->state_value().value()).value(), "bobby");
}

TEST_F(StatefulRoute, ClearingAFieldDeletesItAndItReadsAsItsDefault) {
  const std::vector<std::pair<std::string, std::optional<st::TypedValue>>> kept = {
      {"count", st::typed_value(std::int32_t{7})},
      {"last_name", st::typed_value("bob")},
      {"budget", st::typed_value(std::int32_t{1})}};
  // A soft reset clears the budget.
  pb::FromFunction res = call("greeter/admin", "bob", kept, {{greeter::remote::admin.message(greeter::Reset{false})}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_EQ(res.invocation_result().state_mutations_size(), 1);
  EXPECT_EQ(mutation(res, "budget")->mutation_type(), pb::FromFunction::PersistedValueMutation::DELETE);

  // A hard reset clears the count and the optional name.
  res = call("greeter/admin", "bob", kept, {{greeter::remote::admin.message(greeter::Reset{true})}});
  ASSERT_EQ(res.invocation_result().state_mutations_size(), 2);
  EXPECT_EQ(mutation(res, "count")->mutation_type(), pb::FromFunction::PersistedValueMutation::DELETE);
  EXPECT_EQ(mutation(res, "last_name")->mutation_type(), pb::FromFunction::PersistedValueMutation::DELETE);
  EXPECT_EQ(mutation(res, "budget"), nullptr);
}

TEST_F(StatefulRoute, AFieldClearedEarlierInABatchReadsAsItsDefaultLaterInIt) {
  // admin and greet share no state in the runtime (each function type has
  // its own), so the batch here is admin's: a reset, then a greeting.
  pb::FromFunction res = call("greeter/admin", "bob",
                              {{"count", st::typed_value(std::int32_t{7})}, {"last_name", st::typed_value("bob")},
                               {"budget", st::typed_value(std::int32_t{1})}},
                              {{greeter::remote::admin.message(greeter::Reset{true})}, {greeting("robert")}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  EXPECT_EQ(mutation(res, "count")->mutation_type(), pb::FromFunction::PersistedValueMutation::DELETE);
  EXPECT_EQ(mutation(res, "last_name")->mutation_type(), pb::FromFunction::PersistedValueMutation::MODIFY);
  EXPECT_EQ(st::decode_string(mutation(res, "last_name")->state_value().value()).value(), "robert");
}

TEST_F(StatefulRoute, SendsDelayedSendsCancellationsRepliesAndEgressComeOutAsStateFunCarriesThem) {
  const st::Address caller{"other/fn", "c1"};
  pb::FromFunction res = call("greeter/greet", "carol", seen_absent(),
                              {{greeting("carol", /*remind=*/true), caller}, {greeting("carol", false, /*cancel=*/true)}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  const auto& out = res.invocation_result();
  // Two typed sends to the counter, then the reply to the caller.
  ASSERT_EQ(out.outgoing_messages_size(), 3);
  EXPECT_EQ(out.outgoing_messages(0).target().namespace_(), "counters");
  EXPECT_EQ(out.outgoing_messages(0).target().type(), "tally");
  EXPECT_EQ(out.outgoing_messages(0).target().id(), "carol");
  EXPECT_EQ(out.outgoing_messages(0).argument().typename_(), st::kLongType);
  EXPECT_EQ(st::decode_long(out.outgoing_messages(0).argument().value()).value(), 1);
  EXPECT_EQ(out.outgoing_messages(1).target().namespace_(), "other");
  EXPECT_EQ(out.outgoing_messages(1).target().id(), "c1");
  EXPECT_EQ(st::decode_string(out.outgoing_messages(1).argument().value()).value(), "hello carol #1");
  EXPECT_EQ(out.outgoing_messages(2).target().type(), "tally");
  // The reminder to itself, typed, with its token; then its cancellation.
  ASSERT_EQ(out.delayed_invocations_size(), 2);
  EXPECT_EQ(out.delayed_invocations(0).delay_in_ms(), 3600000);
  EXPECT_EQ(out.delayed_invocations(0).target().type(), "greet");
  EXPECT_EQ(out.delayed_invocations(0).argument().typename_(), kGreetRequest);
  EXPECT_EQ(out.delayed_invocations(0).cancellation_token(), "remind-carol");
  EXPECT_TRUE(out.delayed_invocations(1).is_cancellation_request());
  EXPECT_EQ(out.delayed_invocations(1).cancellation_token(), "remind-carol");
  // An egress record per greeting.
  ASSERT_EQ(out.outgoing_egresses_size(), 2);
  EXPECT_EQ(out.outgoing_egresses(0).egress_namespace(), "greeter");
  EXPECT_EQ(out.outgoing_egresses(0).egress_type(), "log");
  EXPECT_EQ(st::decode_string(out.outgoing_egresses(0).argument().value()).value(), "carol");
}

TEST_F(StatefulRoute, TheCounterCounts) {
  pb::FromFunction res = call("counters/tally", "x", {{"sum", st::typed_value(std::int64_t{40})}},
                              {{greeter::remote::tally.message(std::int64_t{1})}, {st::typed_value(std::int64_t{1})}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  EXPECT_EQ(st::decode_long(mutation(res, "sum")->state_value().value()).value(), 42);
  ASSERT_EQ(res.invocation_result().outgoing_egresses_size(), 2);
  EXPECT_EQ(st::decode_long(res.invocation_result().outgoing_egresses(1).argument().value()).value(), 42);
}

TEST_F(StatefulRoute, AVariantTakesEachOfItsMessageTypesAndNoOther) {
  EXPECT_EQ(greeter::remote::admin.message(greeter::Reset{}).type_name, kReset);
  EXPECT_EQ(greeter::remote::admin.message(std::variant<greeter::GreetRequest, greeter::Reset>(greeter::Reset{}))
                .type_name,
            kReset);
  call("greeter/admin", "dan", seen_absent(), {{st::typed_value("not a message it takes")}});
  ASSERT_FALSE(last_.ok());
  EXPECT_EQ(last_.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(last_.error().message().find("greeter/admin takes type.googleapis.com/greeter.GreetRequest or "
                                         "type.googleapis.com/greeter.Reset, not a message of type "
                                         "'io.statefun.types/string'"),
            std::string::npos)
      << last_.error().message();
}

TEST_F(StatefulRoute, StateThatDoesNotDecodeFailsTheBatchNamingTheField) {
  call("greeter/greet", "eve",
       {{"count", st::TypedValue{std::string(st::kIntType), "\xff\xff", true}}, {"last_name", std::nullopt},
        {"budget", std::nullopt}},
       {{greeting("eve")}});
  ASSERT_FALSE(last_.ok());
  EXPECT_NE(last_.error().message().find("state 'count' of greeter/greet"), std::string::npos)
      << last_.error().message();
}

TEST_F(StatefulRoute, RepliesAndEgressRecordsOfAStructOfTheHeaderAreTypedByTheGeneratedCodec) {
  const st::Address caller{"shop/cart", "c9"};
  pb::FromFunction res =
      call("greeter/restock", "store-1", inventory_absent(),
           {{greeter::remote::restock.message(greeter::Restock{"apple", 5, false}), caller}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  const auto& out = res.invocation_result();
  ASSERT_EQ(out.outgoing_messages_size(), 1);
  EXPECT_EQ(out.outgoing_messages(0).target().id(), "c9");
  EXPECT_EQ(out.outgoing_messages(0).argument().typename_(), kReceipt);
  greeter::Receipt replied;
  ASSERT_TRUE(greeter::api_wire::decode(out.outgoing_messages(0).argument().value(), &replied).ok());
  EXPECT_EQ(replied.item, "apple");
  EXPECT_EQ(replied.stock, 5);
  EXPECT_EQ(replied.shelf.aisle, "front");
  ASSERT_EQ(out.outgoing_egresses_size(), 1);
  EXPECT_EQ(out.outgoing_egresses(0).egress_namespace(), "inventory");
  EXPECT_EQ(out.outgoing_egresses(0).egress_type(), "receipts");
  EXPECT_EQ(out.outgoing_egresses(0).argument().typename_(), kReceipt);
  EXPECT_EQ(out.outgoing_egresses(0).argument().value(), greeter::api_wire::encode(greeter::Receipt{"apple", 5, {"front"}}));
  // The state field of the same struct has the same typename.
  EXPECT_EQ(mutation(res, "last")->state_value().typename_(), kReceipt);
}

TEST_F(StatefulRoute, ATypedRecordOfAStructNoMessageOfTheHeaderIsRefusedNamingIt) {
  pb::FromFunction res =
      call("greeter/restock", "store-2", inventory_absent(),
           {{greeter::remote::restock.message(greeter::Restock{"pear", 1, /*bad_reply=*/true})}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  const auto& out = res.invocation_result();
  ASSERT_EQ(out.outgoing_egresses_size(), 2);  // the receipt, then the error; nothing of the refused one
  EXPECT_EQ(out.outgoing_egresses(1).egress_type(), "errors");
  const std::string error = st::decode_string(out.outgoing_egresses(1).argument().value()).value();
  EXPECT_NE(error.find("greeter/restock: 'greeter::restock("), std::string::npos) << error;
  EXPECT_NE(error.find("::Unknown' is not a message of the header that declares this function"), std::string::npos)
      << error;
}

// The bytes of a state wrapper message read as another language would: by
// the .proto's descriptor (the one the generated code embeds), not through
// our codec.
class WrapperReader {
 public:
  WrapperReader() {
    google::protobuf::FileDescriptorProto file;
    EXPECT_TRUE(file.ParseFromString(std::string(greeter::remote::api_file_descriptor())));
    file_ = pool_.BuildFile(file);
    EXPECT_NE(file_, nullptr);
  }
  // The message `name` (greeter.Inventory_stock) parsed from `bytes`.
  std::unique_ptr<google::protobuf::Message> read(const std::string& name, const std::string& bytes) {
    const google::protobuf::Descriptor* d = pool_.FindMessageTypeByName(name);
    EXPECT_NE(d, nullptr) << name;
    if (d == nullptr) return nullptr;
    std::unique_ptr<google::protobuf::Message> m(factory_.GetPrototype(d)->New());
    EXPECT_TRUE(m->ParseFromString(bytes)) << name;
    return m;
  }

 private:
  google::protobuf::DescriptorPool pool_;
  const google::protobuf::FileDescriptor* file_ = nullptr;
  google::protobuf::DynamicMessageFactory factory_;
};

TEST_F(StatefulRoute, TheHandshakeNamesTheWrapperMessagesOfStateOfOtherTypes) {
  pb::FromFunction res = call("greeter/restock", "s", {}, {{greeter::remote::restock.message(greeter::Restock{})}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  const auto& missing = res.incomplete_invocation_context().missing_values();
  std::map<std::string, std::string> types;
  for (const auto& m : missing) types[m.state_name()] = m.type_typename();
  EXPECT_EQ(types.size(), 9u);
  EXPECT_EQ(types["total"], st::kLongType);
  EXPECT_EQ(types["last"], kReceipt);  // its own message (the struct order does not move it)
  for (const char* name : {"grade", "restocks", "low", "big", "items", "stock", "shelves"})
    EXPECT_EQ(types[name], std::string("type.googleapis.com/greeter.Inventory_") + name) << name;
  // Each wrapper is a message of the .proto with one field, value = 1.
  WrapperReader reader;
  for (const char* name : {"grade", "restocks", "low", "big", "items", "stock", "shelves"}) {
    auto m = reader.read(std::string("greeter.Inventory_") + name, "");
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(m->GetDescriptor()->field_count(), 1);
    EXPECT_EQ(m->GetDescriptor()->field(0)->name(), "value");
    EXPECT_EQ(m->GetDescriptor()->field(0)->number(), 1);
  }
}

TEST_F(StatefulRoute, StateOfOtherTypesRoundTripsAcrossInvocationsThroughItsWrapperMessages) {
  using greeter::Restock;
  pb::FromFunction res = call("greeter/restock", "s1", inventory_absent(),
                              {{greeter::remote::restock.message(Restock{"apple", 5, false, greeter::Grade::bruised})},
                               {greeter::remote::restock.message(Restock{"pear", 200, false, greeter::Grade::fresh})}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_TRUE(res.has_invocation_result());
  // Read by the descriptor, as a function in another language would.
  WrapperReader reader;
  auto value = [&](const char* name) {
    const auto* m = mutation(res, name);
    EXPECT_NE(m, nullptr) << name;
    EXPECT_EQ(m->state_value().typename_(), std::string("type.googleapis.com/greeter.Inventory_") + name);
    return reader.read(std::string("greeter.Inventory_") + name, m->state_value().value());
  };
  {
    auto m = value("grade");
    EXPECT_EQ(m->GetReflection()->GetEnumValue(*m, m->GetDescriptor()->field(0)), 1);  // fresh
    m = value("restocks");
    EXPECT_EQ(m->GetReflection()->GetUInt32(*m, m->GetDescriptor()->field(0)), 2u);
    m = value("low");
    EXPECT_EQ(m->GetReflection()->GetInt32(*m, m->GetDescriptor()->field(0)), -3);  // from the default, -1
    m = value("big");
    EXPECT_EQ(m->GetReflection()->GetUInt64(*m, m->GetDescriptor()->field(0)), std::uint64_t{2} << 40);
    m = value("items");
    ASSERT_EQ(m->GetReflection()->FieldSize(*m, m->GetDescriptor()->field(0)), 2);
    EXPECT_EQ(m->GetReflection()->GetRepeatedString(*m, m->GetDescriptor()->field(0), 1), "pear");
    m = value("stock");
    EXPECT_EQ(m->GetReflection()->FieldSize(*m, m->GetDescriptor()->field(0)), 2);  // map entries
    m = value("shelves");
    ASSERT_EQ(m->GetReflection()->FieldSize(*m, m->GetDescriptor()->field(0)), 1);
  }
  // Through our codec: the same values.
  greeter::remote::Inventory_stock stock;
  ASSERT_TRUE(greeter::api_wire::decode(mutation(res, "stock")->state_value().value(), &stock).ok());
  EXPECT_EQ(stock.value, (std::map<std::string, std::int64_t>{{"apple", 5}, {"pear", 200}}));
  greeter::remote::Inventory_shelves shelves;
  ASSERT_TRUE(greeter::api_wire::decode(mutation(res, "shelves")->state_value().value(), &shelves).ok());
  ASSERT_EQ(shelves.value.size(), 1u);
  EXPECT_EQ(shelves.value[0].aisle, "aisle-pear");

  // The next invocation starts from what the runtime kept: every mutation
  // back as the state.
  std::vector<std::pair<std::string, std::optional<st::TypedValue>>> kept;
  for (const auto& m : res.invocation_result().state_mutations())
    kept.emplace_back(m.state_name(), st::TypedValue{m.state_value().typename_(), m.state_value().value()});
  ASSERT_EQ(kept.size(), 9u);
  res = call("greeter/restock", "s1", kept,
             {{greeter::remote::restock.message(Restock{"apple", 1, false, greeter::Grade::fresh})}});
  ASSERT_TRUE(last_.ok()) << last_.error().what();
  ASSERT_TRUE(greeter::api_wire::decode(mutation(res, "stock")->state_value().value(), &stock).ok());
  EXPECT_EQ(stock.value, (std::map<std::string, std::int64_t>{{"apple", 6}, {"pear", 200}}));
  greeter::remote::Inventory_low low;
  ASSERT_TRUE(greeter::api_wire::decode(mutation(res, "low")->state_value().value(), &low).ok());
  EXPECT_EQ(low.value, -4);
  greeter::remote::Inventory_restocks restocks;
  ASSERT_TRUE(greeter::api_wire::decode(mutation(res, "restocks")->state_value().value(), &restocks).ok());
  EXPECT_EQ(restocks.value, 3u);
  // Unchanged, so not written back: the items, the shelves, the grade.
  EXPECT_EQ(mutation(res, "items"), nullptr);
  EXPECT_EQ(mutation(res, "shelves"), nullptr);
  EXPECT_EQ(mutation(res, "grade"), nullptr);
}

TEST_F(StatefulRoute, AWrapperValueThatDoesNotDecodeFailsTheBatchNamingTheField) {
  auto state = inventory_absent();
  for (auto& [name, value] : state)
    if (name == "stock") value = st::TypedValue{"type.googleapis.com/greeter.Inventory_stock", "\x0a\x05\x0a"};
  call("greeter/restock", "s2", state, {{greeter::remote::restock.message(greeter::Restock{"fig", 1})}});
  ASSERT_FALSE(last_.ok());
  EXPECT_NE(last_.error().message().find("state 'stock' of greeter/restock"), std::string::npos)
      << last_.error().message();
}

TEST_F(StatefulRoute, AnUnknownTypeIsNotFound) {
  call("greeter/nobody", "x", {}, {{greeting("x")}});
  ASSERT_FALSE(last_.ok());
  EXPECT_EQ(last_.error().code(), dispatch::Code::not_found);
}

}  // namespace
