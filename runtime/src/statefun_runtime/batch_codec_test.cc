// StateFun's batch messages both ways, without a store or an endpoint
// (batch_codec.h).
#include "statefun_runtime/batch_codec.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace dispatch::statefun {
namespace {

namespace pb = ::io::statefun::sdk::reqreply;
using scheduler::BatchResult;
using scheduler::EntityBatch;
using scheduler::ExpireMode;

constexpr int64_t kNow = 50'000;

ModuleConfig modules() {
  return ModuleConfig::parse(R"(kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/*
  urlPathTemplate: http://127.0.0.1:8000/statefun/{function.name}
)").value();
}

EntityBatch batch() {
  EntityBatch b;
  b.address = {"shop/cart", "c1"};
  b.specs = {{"items", "shop/Items", ExpireMode::none, 0},
             {"seen", "io.statefun.types/int", ExpireMode::after_invoke, 1'000},
             {"token", "io.statefun.types/string", ExpireMode::after_write, 2'000}};
  b.state = {{"seen", "io.statefun.types/int", "\x08\x01", 0}};
  scheduler::QueuedMessage q;
  q.seq = 7;
  q.message.target = b.address;
  q.message.caller = {"shop/user", "u1"};
  q.message.type_name = "shop/Add";
  q.message.has_value = true;
  q.message.value = "add";
  b.messages.push_back(q);
  return b;
}

TEST(BatchCodec, ToFunctionCarriesEveryRegisteredValueAndTheMessagesInOrder) {
  pb::ToFunction req;
  ASSERT_TRUE(req.ParseFromString(to_function(batch())));
  const auto& inv = req.invocation();
  EXPECT_EQ(inv.target().namespace_(), "shop");
  EXPECT_EQ(inv.target().type(), "cart");
  EXPECT_EQ(inv.target().id(), "c1");
  ASSERT_EQ(inv.state_size(), 3);
  EXPECT_FALSE(inv.state(0).state_value().has_value());  // registered, absent: said so
  EXPECT_EQ(inv.state(0).state_value().typename_(), "shop/Items");
  EXPECT_TRUE(inv.state(1).state_value().has_value());
  EXPECT_EQ(inv.state(1).state_value().value(), "\x08\x01");
  ASSERT_EQ(inv.invocations_size(), 1);
  EXPECT_EQ(inv.invocations(0).caller().type(), "user");
  EXPECT_EQ(inv.invocations(0).argument().value(), "add");
}

TEST(BatchCodec, AReplyBecomesTheWritesItAsksFor) {
  pb::FromFunction::InvocationResponse r;
  auto* m = r.add_state_mutations();
  m->set_state_name("token");
  m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
  m->mutable_state_value()->set_typename_("io.statefun.types/string");
  m->mutable_state_value()->set_value("t");
  auto* out = r.add_outgoing_messages();
  out->mutable_target()->set_namespace_("shop");
  out->mutable_target()->set_type("stock");
  out->mutable_target()->set_id("s9");
  out->mutable_argument()->set_typename_("shop/Reserve");
  auto* later = r.add_delayed_invocations();
  later->mutable_target()->set_namespace_("shop");
  later->mutable_target()->set_type("cart");
  later->mutable_target()->set_id("c1");
  later->set_delay_in_ms(300);
  later->set_cancellation_token("tick");
  auto* cancel = r.add_delayed_invocations();
  cancel->set_is_cancellation_request(true);
  cancel->set_cancellation_token("old");
  auto* e = r.add_outgoing_egresses();
  e->set_egress_namespace("shop");
  e->set_egress_type("receipts");
  e->mutable_argument()->set_value("r");
  BatchResult result;
  ASSERT_FALSE(to_batch_result(batch(), r, kNow, modules(), 1024, result).has_value());
  ASSERT_EQ(result.mutations.size(), 1u);
  EXPECT_EQ(result.mutations[0].expires_at_ms, kNow + 2'000);  // expire after write
  ASSERT_EQ(result.touched.size(), 1u);                        // "seen" was read, not written
  EXPECT_EQ(result.touched[0], std::make_pair(std::string("seen"), kNow + 1'000));
  ASSERT_EQ(result.outgoing.size(), 1u);
  EXPECT_EQ(result.outgoing[0].target.type, "shop/stock");
  EXPECT_EQ(result.outgoing[0].caller.id, "c1");
  ASSERT_EQ(result.delayed.size(), 1u);
  EXPECT_EQ(result.delayed[0].due_at_ms, kNow + 300);
  EXPECT_EQ(result.cancellations, std::vector<std::string>{"old"});
  ASSERT_EQ(result.egress.size(), 1u);
}

TEST(BatchCodec, RepliesThatCannotBeAppliedAreRefusedSayingWhy) {
  struct Case {
    const char* want;
    void (*fill)(pb::FromFunction::InvocationResponse&);
  };
  const Case cases[] = {
      {"never declared", [](auto& r) {
         auto* m = r.add_state_mutations();
         m->set_state_name("ghost");
         m->set_mutation_type(pb::FromFunction::PersistedValueMutation::DELETE);
       }},
      {"it is declared as 'shop/Items'", [](auto& r) {
         auto* m = r.add_state_mutations();
         m->set_state_name("items");
         m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
         m->mutable_state_value()->set_typename_("shop/Other");
       }},
      {"more than the limit of 1024", [](auto& r) {
         auto* m = r.add_state_mutations();
         m->set_state_name("items");
         m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
         m->mutable_state_value()->set_typename_("shop/Items");
         m->mutable_state_value()->set_value(std::string(1025, 'x'));
       }},
      {"which no endpoint serves", [](auto& r) {
         auto* out = r.add_outgoing_messages();
         out->mutable_target()->set_namespace_("billing");
         out->mutable_target()->set_type("invoice");
         out->mutable_target()->set_id("i1");
       }},
      {"with an empty id", [](auto& r) {
         auto* out = r.add_outgoing_messages();
         out->mutable_target()->set_namespace_("shop");
         out->mutable_target()->set_type("stock");
       }},
      {"delays a message by -5 ms", [](auto& r) {
         auto* d = r.add_delayed_invocations();
         d->mutable_target()->set_namespace_("shop");
         d->mutable_target()->set_type("cart");
         d->mutable_target()->set_id("c1");
         d->set_delay_in_ms(-5);
       }},
      {"without a cancellation token", [](auto& r) { r.add_delayed_invocations()->set_is_cancellation_request(true); }},
      {"egress without a namespace and type", [](auto& r) { r.add_outgoing_egresses(); }},
  };
  for (const Case& c : cases) {
    pb::FromFunction::InvocationResponse r;
    c.fill(r);
    BatchResult result;
    auto refused = to_batch_result(batch(), r, kNow, modules(), 1024, result);
    ASSERT_TRUE(refused.has_value()) << c.want;
    EXPECT_TRUE(refused->permanent) << c.want;
    EXPECT_NE(refused->reason.find(c.want), std::string::npos) << refused->reason;
  }
}

// A reply's delayed_invocations, written as steps: "+tok@ms" arms a
// message to the cart in ms with token tok, "-tok" cancels tok.
pb::FromFunction::InvocationResponse delayed_steps(std::initializer_list<const char*> steps) {
  pb::FromFunction::InvocationResponse r;
  for (std::string step : steps) {
    auto* d = r.add_delayed_invocations();
    if (step[0] == '-') {
      d->set_is_cancellation_request(true);
      d->set_cancellation_token(step.substr(1));
      continue;
    }
    const std::size_t at = step.find('@');
    d->set_cancellation_token(step.substr(1, at - 1));
    d->set_delay_in_ms(std::stoll(step.substr(at + 1)));
    d->mutable_target()->set_namespace_("shop");
    d->mutable_target()->set_type("cart");
    d->mutable_target()->set_id("c1");
  }
  return r;
}

// What a store is handed for `steps`: its cancellations, and its new
// messages as "token@due".
std::pair<std::vector<std::string>, std::vector<std::string>> folded(std::initializer_list<const char*> steps) {
  BatchResult result;
  auto refused = to_batch_result(batch(), delayed_steps(steps), kNow, modules(), 1024, result);
  EXPECT_FALSE(refused.has_value()) << refused->reason;
  std::vector<std::string> armed;
  for (const auto& d : result.delayed) armed.push_back(d.cancellation_token + "@" + std::to_string(d.due_at_ms - kNow));
  return {result.cancellations, armed};
}

using Strings = std::vector<std::string>;

TEST(BatchCodec, DelayedMessagesAndCancellationsTakeEffectInTheReplysOrder) {
  // A message this reply armed and then cancelled reaches no store.
  EXPECT_EQ(folded({"+t@100", "-t"}), std::make_pair(Strings{}, Strings{}));
  // Cancelled first (a message of an earlier reply), then armed afresh.
  EXPECT_EQ(folded({"-t", "+t@100"}), std::make_pair(Strings{"t"}, Strings{"t@100"}));
  // Armed, cancelled, armed again: the second one stays.
  EXPECT_EQ(folded({"+t@100", "-t", "+t@200"}), std::make_pair(Strings{}, Strings{"t@200"}));
  EXPECT_EQ(folded({"-t", "+t@100", "-t"}), std::make_pair(Strings{"t"}, Strings{}));
  // A cancellation of another token is of an earlier reply's message.
  EXPECT_EQ(folded({"+t1@100", "-t2"}), std::make_pair(Strings{"t2"}, Strings{"t1@100"}));
  // Messages without a token are never cancelled.
  EXPECT_EQ(folded({"+@100", "-t", "+@200"}), std::make_pair(Strings{"t"}, Strings{"@100", "@200"}));
}

TEST(BatchCodec, AReplyArmingOneTokenTwiceWithoutCancellingIsRefused) {
  BatchResult result;
  auto refused = to_batch_result(batch(), delayed_steps({"+t@100", "+t@200"}), kNow, modules(), 1024, result);
  ASSERT_TRUE(refused.has_value());
  EXPECT_TRUE(refused->permanent);
  EXPECT_NE(refused->reason.find("two delayed messages with cancellation token 't'"), std::string::npos)
      << refused->reason;
}

}  // namespace
}  // namespace dispatch::statefun
