// StateFun's batch messages both ways (batch_codec.h).
#include "statefun_runtime/batch_codec.h"

#include <map>
#include <utility>
#include <vector>

namespace dispatch::statefun {
namespace {

namespace pb = ::io::statefun::sdk::reqreply;
using scheduler::BatchResult;
using scheduler::EntityAddress;
using scheduler::EntityBatch;
using scheduler::EntityMessage;
using scheduler::ExpireMode;
using scheduler::StateSpec;

void to_pb(const EntityAddress& a, pb::Address* out) {
  auto parts = split_typename(a.type);
  if (parts) {
    out->set_namespace_(parts->first);
    out->set_type(parts->second);
  }
  out->set_id(a.id);
}

}  // namespace

std::string to_function(const EntityBatch& b) {
  pb::ToFunction req;
  pb::ToFunction::InvocationBatchRequest* batch = req.mutable_invocation();
  to_pb(b.address, batch->mutable_target());
  // Every registered value, present or not: an absent one says so with
  // has_value = false, so the function's SDK need not ask again.
  for (const StateSpec& spec : b.specs) {
    pb::ToFunction::PersistedValue* v = batch->add_state();
    v->set_state_name(spec.name);
    pb::TypedValue* tv = v->mutable_state_value();
    tv->set_typename_(spec.type_name);
    for (const scheduler::StateValue& s : b.state) {
      if (s.name != spec.name) continue;
      tv->set_typename_(s.type_name);
      tv->set_has_value(true);
      tv->set_value(s.value);
    }
  }
  for (const scheduler::QueuedMessage& q : b.messages) {
    pb::ToFunction::Invocation* inv = batch->add_invocations();
    if (!q.message.caller.empty()) to_pb(q.message.caller, inv->mutable_caller());
    pb::TypedValue* arg = inv->mutable_argument();
    arg->set_typename_(q.message.type_name);
    arg->set_has_value(q.message.has_value);
    arg->set_value(q.message.value);
  }
  return req.SerializeAsString();
}

std::optional<Refusal> to_batch_result(const EntityBatch& batch, const pb::FromFunction::InvocationResponse& r,
                                       int64_t now, const ModuleConfig& modules, std::size_t max_state_bytes,
                                       BatchResult& out) {
  std::map<std::string, const StateSpec*> specs;
  for (const StateSpec& s : batch.specs) specs[s.name] = &s;
  std::map<std::string, bool> written;
  for (const auto& m : r.state_mutations()) {
    auto spec = specs.find(m.state_name());
    if (spec == specs.end()) {
      return Refusal{"the reply changes state '" + m.state_name() + "', which " + batch.address.type +
                     " never declared (declare it in the function's SDK)"};
    }
    scheduler::StateMutation mut;
    mut.name = m.state_name();
    if (m.mutation_type() == pb::FromFunction::PersistedValueMutation::DELETE) {
      mut.remove = true;
    } else if (m.mutation_type() == pb::FromFunction::PersistedValueMutation::MODIFY) {
      const StateSpec& s = *spec->second;
      if (!s.type_name.empty() && m.state_value().typename_() != s.type_name) {
        return Refusal{"the reply writes state '" + m.state_name() + "' as type '" + m.state_value().typename_() +
                       "'; it is declared as '" + s.type_name + "'"};
      }
      if (m.state_value().value().size() > max_state_bytes) {
        return Refusal{"the reply writes " + std::to_string(m.state_value().value().size()) + " bytes to state '" +
                       m.state_name() + "', more than the limit of " + std::to_string(max_state_bytes)};
      }
      mut.type_name = m.state_value().typename_();
      mut.value = m.state_value().value();
      mut.expires_at_ms = s.mode == ExpireMode::none ? 0 : now + s.ttl_ms;
    } else {
      return Refusal{"the reply has an unknown mutation type " + std::to_string(m.mutation_type()) +
                     " for state '" + m.state_name() + "'"};
    }
    written[mut.name] = true;
    out.mutations.push_back(std::move(mut));
  }
  // Expire-after-invoke values move with every batch they see.
  for (const scheduler::StateValue& v : batch.state) {
    auto spec = specs.find(v.name);
    if (spec == specs.end() || spec->second->mode != ExpireMode::after_invoke || written.count(v.name)) continue;
    out.touched.emplace_back(v.name, now + spec->second->ttl_ms);
  }
  auto target = [&](const pb::Address& a, const char* what, EntityAddress& to) -> std::optional<Refusal> {
    if (a.namespace_().empty() || a.type().empty()) {
      return Refusal{std::string("the reply sends a ") + what + " to an address without a function type"};
    }
    to.type = a.namespace_() + "/" + a.type();
    to.id = a.id();
    if (to.id.empty()) {
      return Refusal{std::string("the reply sends a ") + what + " to " + to.type + " with an empty id"};
    }
    if (!modules.route(to.type)) {
      return Refusal{std::string("the reply sends a ") + what + " to function type " + to.type +
                     ", which no endpoint serves"};
    }
    return std::nullopt;
  };
  for (const auto& m : r.outgoing_messages()) {
    EntityMessage msg;
    if (auto bad = target(m.target(), "message", msg.target)) return bad;
    msg.caller = batch.address;
    msg.type_name = m.argument().typename_();
    msg.has_value = m.argument().has_value();
    msg.value = m.argument().value();
    out.outgoing.push_back(std::move(msg));
  }
  // StateFun applies delayed_invocations in list order: a cancellation drops
  // whatever message is pending with its token at that point, one armed
  // earlier in this reply included, and an arm after it takes the token
  // afresh. A store applies `cancellations` before `delayed`, so the list is
  // folded here into that shape: a cancellation of a token this reply armed
  // drops that new message and reaches no store; any other one cancels a
  // message of an earlier reply. (The fold cannot see earlier replies: an
  // arm of a token still pending from one, cancelled again later in the same
  // reply, leaves the earlier message pending where StateFun fails the job.)
  std::map<std::string, std::size_t> armed;  // token -> its live message in out.delayed
  std::vector<bool> dropped;                 // per out.delayed
  for (const auto& d : r.delayed_invocations()) {
    if (d.is_cancellation_request()) {
      if (d.cancellation_token().empty()) {
        return Refusal{"the reply cancels a delayed message without a cancellation token"};
      }
      auto own = armed.find(d.cancellation_token());
      if (own != armed.end()) {
        dropped[own->second] = true;
        armed.erase(own);
      } else {
        out.cancellations.push_back(d.cancellation_token());
      }
      continue;
    }
    if (!d.cancellation_token().empty() && armed.count(d.cancellation_token()) != 0) {
      // StateFun fails the job here; a store would refuse the reply.
      return Refusal{"the reply arms two delayed messages with cancellation token '" + d.cancellation_token() +
                     "' without cancelling the first; tokens must be unique among a sender's pending messages"};
    }
    scheduler::NewDelayedMessage delayed;
    if (auto bad = target(d.target(), "delayed message", delayed.message.target)) return bad;
    if (d.delay_in_ms() < 0) {
      return Refusal{"the reply delays a message by " + std::to_string(d.delay_in_ms()) + " ms"};
    }
    delayed.message.caller = batch.address;
    delayed.message.type_name = d.argument().typename_();
    delayed.message.has_value = d.argument().has_value();
    delayed.message.value = d.argument().value();
    delayed.due_at_ms = now + d.delay_in_ms();
    delayed.cancellation_token = d.cancellation_token();
    if (!delayed.cancellation_token.empty()) armed[delayed.cancellation_token] = out.delayed.size();
    out.delayed.push_back(std::move(delayed));
    dropped.push_back(false);
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; i < out.delayed.size(); ++i) {
    if (dropped[i]) continue;
    if (kept != i) out.delayed[kept] = std::move(out.delayed[i]);
    ++kept;
  }
  out.delayed.resize(kept);
  for (const auto& e : r.outgoing_egresses()) {
    if (e.egress_namespace().empty() || e.egress_type().empty()) {
      return Refusal{"the reply emits to an egress without a namespace and type"};
    }
    out.egress.push_back({e.egress_namespace() + "/" + e.egress_type(), e.argument().typename_(),
                          e.argument().value()});
  }
  return std::nullopt;
}

}  // namespace dispatch::statefun
