// The endpoint side of the request-reply protocol, with the protocol's own
// messages (libprotobuf classes generated from request_reply.proto): resolve
// the declared state against the request (the handshake), run the batch in
// order, collect what changed. Follows StateFun's SDKs: a value that
// arrives with another typename than declared is refused, only values that
// changed are sent back, and a cancellation carries only its token.
#include "dispatch/stateful/endpoint.h"

#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "io/statefun/sdk/reqreply/request_reply.pb.h"

namespace dispatch::stateful {
namespace {

namespace pb = ::io::statefun::sdk::reqreply;

std::optional<std::pair<std::string, std::string>> split(std::string_view type) {
  const std::size_t slash = type.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == type.size()) return std::nullopt;
  return std::make_pair(std::string(type.substr(0, slash)), std::string(type.substr(slash + 1)));
}

void to_pb(const Address& a, pb::Address* out) {
  if (auto parts = split(a.type)) {
    out->set_namespace_(parts->first);
    out->set_type(parts->second);
  }
  out->set_id(a.id);
}

void to_pb(const TypedValue& v, pb::TypedValue* out) {
  out->set_typename_(v.type_name);
  out->set_has_value(v.has_value);
  out->set_value(v.value);
}

std::optional<Address> from_pb(const pb::Address& a) {
  if (a.namespace_().empty() && a.type().empty() && a.id().empty()) return std::nullopt;
  return Address{a.namespace_() + "/" + a.type(), a.id()};
}

// The route's service: carries the functions it serves.
struct Route : Service {
  const StatefulFunctions* owner = nullptr;
};

}  // namespace

// ---- Invocation ----

Result<const TypedValue*> Invocation::state(std::string_view name) const {
  auto it = cells_->find(name);
  if (it == cells_->end()) {
    return Error(Code::invalid_argument, "state '" + std::string(name) + "' is not declared by " + self_.type);
  }
  return it->second.value && it->second.value->has_value ? &*it->second.value : nullptr;
}

Result<void> Invocation::set_state(std::string_view name, std::string value) {
  auto it = cells_->find(name);
  if (it == cells_->end()) {
    return Error(Code::invalid_argument, "state '" + std::string(name) + "' is not declared by " + self_.type);
  }
  it->second.value = TypedValue{it->second.spec->type_name, std::move(value), true};
  it->second.dirty = true;
  return {};
}

Result<void> Invocation::clear_state(std::string_view name) {
  auto it = cells_->find(name);
  if (it == cells_->end()) {
    return Error(Code::invalid_argument, "state '" + std::string(name) + "' is not declared by " + self_.type);
  }
  it->second.value.reset();
  it->second.dirty = true;
  return {};
}

void Invocation::send(Address to, TypedValue message) { sent_.emplace_back(std::move(to), std::move(message)); }

void Invocation::send_after(std::chrono::milliseconds delay, Address to, TypedValue message,
                            std::string cancellation_token) {
  delayed_.push_back(Delayed{delay, std::move(to), std::move(message), std::move(cancellation_token), false});
}

void Invocation::cancel_delayed(std::string cancellation_token) {
  Delayed d;
  d.token = std::move(cancellation_token);
  d.cancel = true;
  delayed_.push_back(std::move(d));
}

Result<void> Invocation::reply(TypedValue message) {
  if (!caller_) {
    return Error(Code::failed_precondition,
                 "the message to " + self_.type + "/" + self_.id + " has no caller to reply to (it came from an ingress)");
  }
  send(*caller_, std::move(message));
  return {};
}

void Invocation::egress(std::string egress, TypedValue record) {
  egress_.emplace_back(std::move(egress), std::move(record));
}

// ---- StatefulFunctions ----

struct StatefulFunctions::Impl {
  std::map<std::string, StatefulFunction, std::less<>> functions;
  // One per add_to(): the path string and the method point into it.
  struct RouteStorage {
    std::string path;
    Method method{};
    Route route;
  };
  std::vector<std::unique_ptr<RouteStorage>> routes;
};

StatefulFunctions::StatefulFunctions() : impl_(std::make_unique<Impl>()) {}
StatefulFunctions::~StatefulFunctions() = default;

Result<void> StatefulFunctions::add(StatefulFunction function) {
  if (!split(function.type)) {
    return Error(Code::invalid_argument, "function type '" + function.type + "' is not 'namespace/name'");
  }
  if (impl_->functions.count(function.type) != 0) {
    return Error(Code::invalid_argument, "function type " + function.type + " is registered twice");
  }
  std::set<std::string> names;
  for (const ValueSpec& s : function.specs) {
    if (s.name.empty() || s.type_name.empty()) {
      return Error(Code::invalid_argument, function.type + ": every state value needs a name and a typename");
    }
    if (!names.insert(s.name).second) {
      return Error(Code::invalid_argument, function.type + ": state '" + s.name + "' is declared twice");
    }
    if (s.expire != Expire::never && s.ttl.count() <= 0) {
      return Error(Code::invalid_argument, function.type + ": state '" + s.name + "' expires, so its time must be positive");
    }
  }
  if (!function.fn) return Error(Code::invalid_argument, function.type + " has no function to run");
  const std::string type = function.type;
  impl_->functions.emplace(type, std::move(function));
  return {};
}

Result<void> StatefulFunctions::add_to(DispatchTable& table, std::string path) {
  if (path.empty() || path[0] != '/') return Error(Code::invalid_argument, "the route's path must start with '/'");
  static const std::string descriptor = [] {
    google::protobuf::FileDescriptorProto file;
    pb::ToFunction::descriptor()->file()->CopyTo(&file);
    return file.SerializeAsString();
  }();
  auto storage = std::make_unique<Impl::RouteStorage>();
  storage->path = std::move(path);
  storage->method = Method{"statefun", storage->path.c_str(), "io.statefun.sdk.reqreply.ToFunction",
                           "io.statefun.sdk.reqreply.FromFunction",
                           [](const MethodCall& call) -> Result<std::string> {
                             return static_cast<const Route&>(call.service).owner->handle(call.request);
                           }};
  storage->route.package = "io.statefun.sdk.reqreply";
  storage->route.name = "RequestReply";
  storage->route.methods = &storage->method;
  storage->route.method_count = 1;
  storage->route.file_descriptor = descriptor;
  storage->route.owner = this;
  auto added = table.add(storage->route);
  if (!added.ok()) return added;
  impl_->routes.push_back(std::move(storage));
  return {};
}

Result<std::string> StatefulFunctions::handle(std::string_view body) const {
  return handle_batch(body, [this](std::string_view type) -> Result<const StatefulFunction*> {
    auto fn = impl_->functions.find(type);
    return fn == impl_->functions.end() ? nullptr : &fn->second;
  });
}

Result<std::string> handle_batch(std::string_view body, const FunctionLookup& lookup) {
  pb::ToFunction req;
  if (!req.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Error(Code::invalid_argument, "the request is not an io.statefun.sdk.reqreply.ToFunction");
  }
  if (!req.has_invocation()) return Error(Code::invalid_argument, "the ToFunction carries no invocation batch");
  const pb::ToFunction::InvocationBatchRequest& batch = req.invocation();
  std::optional<Address> self = from_pb(batch.target());
  if (!self || !split(self->type)) return Error(Code::invalid_argument, "the invocation batch has no target address");
  auto fn = lookup(self->type);
  if (!fn.ok()) return std::move(fn).error();
  if (*fn == nullptr) {
    return Error(Code::not_found, "no stateful function of type " + self->type + " is served here");
  }
  const StatefulFunction& f = **fn;

  // The handshake: every declared value must have come, present or not.
  std::map<std::string, Invocation::Cell, std::less<>> cells;
  pb::FromFunction res;
  for (const ValueSpec& spec : f.specs) {
    const pb::TypedValue* got = nullptr;
    bool found = false;
    for (const auto& s : batch.state()) {
      if (s.state_name() == spec.name) {
        got = &s.state_value();
        found = true;
      }
    }
    if (!found) {
      auto* missing = res.mutable_incomplete_invocation_context()->add_missing_values();
      missing->set_state_name(spec.name);
      missing->set_type_typename(spec.type_name);
      if (spec.expire != Expire::never) {
        missing->mutable_expiration_spec()->set_mode(
            static_cast<pb::FromFunction::ExpirationSpec::ExpireMode>(spec.expire));
        missing->mutable_expiration_spec()->set_expire_after_millis(spec.ttl.count());
      }
      continue;
    }
    Invocation::Cell cell;
    cell.spec = &spec;
    if (got->has_value()) {
      if (got->typename_() != spec.type_name) {
        return Error(Code::failed_precondition, "state '" + spec.name + "' of " + self->type + " arrives as type '" +
                                                    got->typename_() + "'; it is declared as '" + spec.type_name + "'");
      }
      cell.value = TypedValue{got->typename_(), got->value(), true};
    }
    cells.emplace(spec.name, std::move(cell));
  }
  if (res.has_incomplete_invocation_context()) return res.SerializeAsString();

  // The batch, in order, state carried.
  pb::FromFunction::InvocationResponse* out = res.mutable_invocation_result();
  for (const auto& inv : batch.invocations()) {
    Invocation ctx;
    ctx.self_ = *self;
    ctx.caller_ = from_pb(inv.caller());
    ctx.argument_ = TypedValue{inv.argument().typename_(), inv.argument().value(), inv.argument().has_value()};
    ctx.cells_ = &cells;
    f.fn(ctx);
    for (auto& [to, message] : ctx.sent_) {
      auto* m = out->add_outgoing_messages();
      to_pb(to, m->mutable_target());
      to_pb(message, m->mutable_argument());
    }
    for (auto& d : ctx.delayed_) {
      auto* m = out->add_delayed_invocations();
      if (d.cancel) {
        m->set_is_cancellation_request(true);
        m->set_cancellation_token(d.token);
        continue;
      }
      m->set_delay_in_ms(d.delay.count());
      to_pb(d.to, m->mutable_target());
      to_pb(d.message, m->mutable_argument());
      m->set_cancellation_token(d.token);
    }
    for (auto& [egress, record] : ctx.egress_) {
      auto* m = out->add_outgoing_egresses();
      if (auto parts = split(egress)) {
        m->set_egress_namespace(parts->first);
        m->set_egress_type(parts->second);
      }
      to_pb(record, m->mutable_argument());
    }
  }
  for (const auto& [name, cell] : cells) {
    if (!cell.dirty) continue;
    auto* m = out->add_state_mutations();
    m->set_state_name(name);
    if (cell.value) {
      m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
      to_pb(*cell.value, m->mutable_state_value());
    } else {
      m->set_mutation_type(pb::FromFunction::PersistedValueMutation::DELETE);
    }
  }
  return res.SerializeAsString();
}

}  // namespace dispatch::stateful
