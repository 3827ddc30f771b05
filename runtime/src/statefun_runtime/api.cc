// The runtime's routes: dispatch.statefun.v1.IngressService/Send (what
// clients, generated .send() stubs and `dispatchctl send` call),
// EgressService/Read and StatefunAdminService (an entity's state, backlog
// and delayed messages; dead letters and their redrive).
//
// Not for: authentication (the server's hook checks bearer keys first).
#include <google/protobuf/descriptor.pb.h>

#include <iterator>

#include "dispatch/statefun/v1/runtime.pb.h"
#include "durable/protocol.h"
#include "statefun_runtime/api.h"

namespace dispatch::statefun {
namespace {

namespace v1 = ::dispatch::statefun::v1;
using scheduler::EntityAddress;

Runtime& runtime_of(const MethodCall& call) { return *static_cast<const ApiService&>(call.service).runtime; }

template <typename M>
Result<M> parse(std::string_view body, const char* what) {
  M m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Error(Code::invalid_argument, std::string("the request body is not a valid ") + what);
  }
  return m;
}

std::size_t limit_of(uint32_t asked) { return asked == 0 ? 100 : std::min<uint32_t>(asked, 10'000); }

std::string caller_text(const EntityAddress& a) { return a.empty() ? "" : a.type + "/" + a.id; }

void to_pb(const scheduler::QueuedMessage& q, v1::QueuedMessage* out) {
  out->set_id(q.seq);
  out->set_caller(caller_text(q.message.caller));
  out->set_typename_(q.message.type_name);
  out->set_value(q.message.value);
  protocol::to_timestamp(q.created_at_ms, out->mutable_created_time());
}

Result<std::string> handle_send(const MethodCall& call) {
  auto req = parse<v1::SendRequest>(call.request, "dispatch.statefun.v1.SendRequest");
  if (!req.ok()) return std::move(req).error();
  std::vector<scheduler::EntityMessage> messages;
  messages.reserve(static_cast<std::size_t>(req->messages_size()));
  for (v1::IngressMessage& m : *req->mutable_messages()) {
    scheduler::EntityMessage e;
    e.target = {m.function_type(), m.id()};
    e.type_name = m.typename_();
    e.value = std::move(*m.mutable_value());
    e.idempotency_key = m.idempotency_key();
    messages.push_back(std::move(e));
  }
  auto ids = runtime_of(call).send(std::move(messages));
  if (!ids.ok()) return std::move(ids).error();
  v1::SendResponse res;
  for (uint64_t id : *ids) res.add_message_ids(id);
  return res.SerializeAsString();
}

Result<std::string> handle_read(const MethodCall& call) {
  auto req = parse<v1::ReadEgressRequest>(call.request, "dispatch.statefun.v1.ReadEgressRequest");
  if (!req.ok()) return std::move(req).error();
  if (req->egress().empty()) return Error(Code::invalid_argument, "the request names no egress");
  auto records = runtime_of(call).read_egress(req->egress(), req->after_seq(), limit_of(req->limit()),
                                              std::chrono::milliseconds(std::min<uint32_t>(req->wait_ms(), 60'000)));
  if (!records.ok()) return std::move(records).error();
  v1::ReadEgressResponse res;
  for (const scheduler::EgressRecord& r : *records) {
    v1::EgressRecord* out = res.add_records();
    out->set_seq(r.seq);
    out->set_egress(r.egress);
    out->set_typename_(r.type_name);
    out->set_value(r.value);
    protocol::to_timestamp(r.created_at_ms, out->mutable_created_time());
  }
  return res.SerializeAsString();
}

Result<std::string> handle_get_entity(const MethodCall& call) {
  auto req = parse<v1::GetEntityRequest>(call.request, "dispatch.statefun.v1.GetEntityRequest");
  if (!req.ok()) return std::move(req).error();
  if (req->function_type().empty() || req->id().empty()) {
    return Error(Code::invalid_argument, "the request needs a function_type and an id");
  }
  Runtime& rt = runtime_of(call);
  auto view = rt.entity({req->function_type(), req->id()}, limit_of(req->limit()));
  if (!view.ok()) return std::move(view).error();
  if (!view->has_value()) {
    return Error(Code::not_found, "entity " + req->function_type() + "/" + req->id() +
                                      " has no state, messages or delayed messages");
  }
  const scheduler::EntityView& v = **view;
  const int64_t now = rt.now_ms();
  v1::EntityInfo info;
  info.set_function_type(v.address.type);
  info.set_id(v.address.id);
  info.set_in_flight(v.in_flight);
  info.set_attempts(v.attempts);
  info.set_last_error(v.last_error);
  if (v.next_attempt_at_ms != 0) protocol::to_timestamp(v.next_attempt_at_ms, info.mutable_next_attempt_time());
  for (const scheduler::StateValue& s : v.state) {
    v1::StateValue* out = info.add_state();
    out->set_name(s.name);
    out->set_typename_(s.type_name);
    out->set_value(s.value);
    if (s.expires_at_ms != 0) {
      protocol::to_timestamp(s.expires_at_ms, out->mutable_expire_time());
      out->set_expired(s.expires_at_ms <= now);
    }
  }
  for (const scheduler::QueuedMessage& q : v.backlog) to_pb(q, info.add_backlog());
  for (const scheduler::DelayedRecord& d : v.delayed) {
    v1::DelayedMessage* out = info.add_delayed();
    out->set_id(d.seq);
    out->set_caller(caller_text(d.message.caller));
    out->set_typename_(d.message.type_name);
    out->set_value(d.message.value);
    protocol::to_timestamp(d.due_at_ms, out->mutable_due_time());
    out->set_cancellation_token(d.cancellation_token);
  }
  return info.SerializeAsString();
}

Result<std::string> handle_list_dead_letters(const MethodCall& call) {
  auto req = parse<v1::ListDeadLettersRequest>(call.request, "dispatch.statefun.v1.ListDeadLettersRequest");
  if (!req.ok()) return std::move(req).error();
  auto letters = runtime_of(call).dead_letters(req->after_id(), limit_of(req->limit()));
  if (!letters.ok()) return std::move(letters).error();
  v1::ListDeadLettersResponse res;
  for (const scheduler::DeadLetter& d : *letters) {
    v1::DeadLetter* out = res.add_dead_letters();
    out->set_id(d.seq);
    out->set_function_type(d.message.message.target.type);
    out->set_entity_id(d.message.message.target.id);
    to_pb(d.message, out->mutable_message());
    out->set_reason(d.reason);
    out->set_attempts(d.attempts);
    protocol::to_timestamp(d.created_at_ms, out->mutable_created_time());
  }
  return res.SerializeAsString();
}

Result<std::string> handle_redrive(const MethodCall& call) {
  auto req = parse<v1::RedriveRequest>(call.request, "dispatch.statefun.v1.RedriveRequest");
  if (!req.ok()) return std::move(req).error();
  if (req->id() == 0) return Error(Code::invalid_argument, "the request names no dead letter id");
  auto id = runtime_of(call).redrive(req->id());
  if (!id.ok()) return std::move(id).error();
  v1::RedriveResponse res;
  res.set_message_id(*id);
  return res.SerializeAsString();
}

const Method kIngressMethods[] = {
    {"Send", "/dispatch.statefun.v1.IngressService/Send", "dispatch.statefun.v1.SendRequest",
     "dispatch.statefun.v1.SendResponse", &handle_send},
};
const Method kEgressMethods[] = {
    {"Read", "/dispatch.statefun.v1.EgressService/Read", "dispatch.statefun.v1.ReadEgressRequest",
     "dispatch.statefun.v1.ReadEgressResponse", &handle_read},
};
const Method kAdminMethods[] = {
    {"GetEntity", "/dispatch.statefun.v1.StatefunAdminService/GetEntity", "dispatch.statefun.v1.GetEntityRequest",
     "dispatch.statefun.v1.EntityInfo", &handle_get_entity},
    {"ListDeadLetters", "/dispatch.statefun.v1.StatefunAdminService/ListDeadLetters",
     "dispatch.statefun.v1.ListDeadLettersRequest", "dispatch.statefun.v1.ListDeadLettersResponse",
     &handle_list_dead_letters},
    {"Redrive", "/dispatch.statefun.v1.StatefunAdminService/Redrive", "dispatch.statefun.v1.RedriveRequest",
     "dispatch.statefun.v1.RedriveResponse", &handle_redrive},
};

}  // namespace

ApiServices api_services(Runtime& runtime) {
  static const std::string descriptor = [] {
    google::protobuf::FileDescriptorProto file;
    v1::SendRequest::descriptor()->file()->CopyTo(&file);
    return file.SerializeAsString();
  }();
  return ApiServices{
      ApiService{Service{"dispatch.statefun.v1", "IngressService", kIngressMethods, std::size(kIngressMethods),
                         descriptor},
                 &runtime},
      ApiService{Service{"dispatch.statefun.v1", "EgressService", kEgressMethods, std::size(kEgressMethods),
                         descriptor},
                 &runtime},
      ApiService{Service{"dispatch.statefun.v1", "StatefunAdminService", kAdminMethods, std::size(kAdminMethods),
                         descriptor},
                 &runtime}};
}

}  // namespace dispatch::statefun
