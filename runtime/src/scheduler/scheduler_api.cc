// The scheduler's routes: dispatch.sdk.v1.DispatchService/Dispatch (what
// clients and generated .dispatch() stubs call) and
// dispatch.scheduler.v1.AdminService (status, list, cancel, retry). Handlers
// are plain functions, so they find their Scheduler through the table that
// runs them (DispatchTable::attachment).
//
// Not for: authentication (the server's authenticate hook checks bearer
// keys before a body reaches these handlers; see dispatchd).
#include <google/protobuf/descriptor.pb.h>

#include "dispatch/protocol.h"
#include "dispatch/scheduler/scheduler.h"
#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/sdk/v1/sdk.pb.h"

namespace dispatch::scheduler {
namespace {

namespace admin = ::dispatch::scheduler::v1;
constexpr const char* kAttachment = "dispatch.scheduler";

Scheduler& current() {
  const DispatchTable* table = this_call().table;
  void* s = table ? table->attachment(kAttachment) : nullptr;
  if (s == nullptr) {
    throw Error(Code::internal, "the scheduler's routes run outside the scheduler's table");
  }
  return *static_cast<Scheduler*>(s);
}

template <typename M>
M parse(std::string_view body, const char* what) {
  M m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    throw Error(Code::invalid_argument, std::string("the request body is not a valid ") + what);
  }
  return m;
}

void handle_dispatch(std::string_view body, std::string* out) {
  Scheduler& s = current();
  auto req = parse<sdk::v1::DispatchRequest>(body, "dispatch.sdk.v1.DispatchRequest");
  if (req.calls_size() == 0) throw Error(Code::invalid_argument, "DispatchRequest has no calls");
  std::vector<NewCall> calls;
  calls.reserve(static_cast<std::size_t>(req.calls_size()));
  for (int i = 0; i < req.calls_size(); ++i) {
    sdk::v1::Call& c = *req.mutable_calls(i);
    const std::string where = "call " + std::to_string(i) + " ('" + c.function() + "')";
    if (!protocol::valid_function_name(c.function())) {
      throw Error(Code::invalid_argument,
                  where + ": the function name must match ^[a-zA-Z_][a-zA-Z0-9_<>.]*$");
    }
    const std::string& ep = c.endpoint();
    if (ep.rfind("http://", 0) != 0 && ep.rfind("https://", 0) != 0) {
      throw Error(Code::invalid_argument,
                  where + ": endpoint '" + ep + "' is not an http:// or https:// URL");
    }
    if (!c.has_input() || protocol::any_type(c.input()).empty()) {
      throw Error(Code::invalid_argument,
                  where + ": input must be a google.protobuf.Any with a type URL "
                          "(type.googleapis.com/<package>.<Message>)");
    }
    int64_t expiration_at = 0;  // 0: the function's policy decides
    if (c.has_expiration()) {
      const int64_t ms = c.expiration().seconds() * 1000 + c.expiration().nanos() / 1000000;
      if (ms <= 0) throw Error(Code::invalid_argument, where + ": expiration must be positive");
      expiration_at = s.now_ms() + ms;
    }
    NewCall n;
    n.function = c.function();
    n.endpoint = ep;
    n.input_type_url = std::move(*c.mutable_input()->mutable_type_url());
    n.input = std::move(*c.mutable_input()->mutable_value());
    n.expiration_at_ms = expiration_at;
    n.idempotency_key = c.idempotency_key();
    n.tenant = c.tenant();
    calls.push_back(std::move(n));
  }
  auto ids = s.dispatch(std::move(calls));
  if (!ids.ok()) throw std::move(ids).error();
  sdk::v1::DispatchResponse res;
  for (auto& id : *ids) res.add_dispatch_ids(std::move(id));
  res.SerializeToString(out);
}

void to_info(const CallRecord& r, admin::CallInfo* info) {
  info->set_id(r.id);
  info->set_function(r.function);
  info->set_endpoint(r.endpoint);
  info->set_state(static_cast<admin::CallState>(r.state));
  info->set_attempts(r.attempts);
  info->set_status(r.status);
  info->set_status_name(std::string(run_status_name(static_cast<RunStatus>(r.status))));
  info->set_output_type_url(r.output_type_url);
  info->set_output_value(r.output);
  info->set_error_type(r.error_type);
  info->set_error_message(r.error_message);
  info->set_idempotency_key(r.idempotency_key);
  info->set_tenant(r.tenant);
  info->set_parent_id(r.parent_id);
  info->set_root_id(r.root_id);
  protocol::to_timestamp(r.created_at_ms, info->mutable_created_time());
  protocol::to_timestamp(r.updated_at_ms, info->mutable_updated_time());
  if (r.state == CallState::pending) {
    protocol::to_timestamp(r.next_attempt_at_ms, info->mutable_next_attempt_time());
  }
  if (r.expiration_at_ms != 0) protocol::to_timestamp(r.expiration_at_ms, info->mutable_expiration_time());
}

std::string answer(Result<CallRecord> r) {
  if (!r.ok()) throw std::move(r).error();
  admin::CallInfo info;
  to_info(*r, &info);
  return info.SerializeAsString();
}

void require_id(const std::string& id) {
  if (id.empty()) throw Error(Code::invalid_argument, "the request names no call ID");
}

void handle_get(std::string_view body, std::string* out) {
  auto req = parse<admin::GetRequest>(body, "dispatch.scheduler.v1.GetRequest");
  require_id(req.id());
  // At most a minute: longer waits belong in a loop on the caller's side.
  auto wait = std::chrono::milliseconds(std::min<uint32_t>(req.wait_ms(), 60'000));
  *out = answer(current().get(req.id(), wait));
}

void handle_list(std::string_view body, std::string* out) {
  auto req = parse<admin::ListRequest>(body, "dispatch.scheduler.v1.ListRequest");
  std::optional<CallState> state;
  if (req.state() != admin::CALL_STATE_UNSPECIFIED) {
    if (req.state() < admin::CALL_STATE_PENDING || req.state() > admin::CALL_STATE_CANCELLED) {
      throw Error(Code::invalid_argument, "unknown call state " + std::to_string(req.state()));
    }
    state = static_cast<CallState>(req.state());
  }
  const std::size_t limit = req.limit() == 0 ? 100 : std::min<uint32_t>(req.limit(), 10'000);
  auto calls = current().list(state, limit, req.after_id());
  if (!calls.ok()) throw std::move(calls).error();
  admin::ListResponse res;
  for (const CallRecord& r : *calls) to_info(r, res.add_calls());
  res.SerializeToString(out);
}

void handle_cancel(std::string_view body, std::string* out) {
  auto req = parse<admin::CancelRequest>(body, "dispatch.scheduler.v1.CancelRequest");
  require_id(req.id());
  *out = answer(current().cancel(req.id()));
}

void handle_retry(std::string_view body, std::string* out) {
  auto req = parse<admin::RetryRequest>(body, "dispatch.scheduler.v1.RetryRequest");
  require_id(req.id());
  *out = answer(current().retry(req.id()));
}

const Method kDispatchMethods[] = {
    {"Dispatch", "/dispatch.sdk.v1.DispatchService/Dispatch", "dispatch.sdk.v1.DispatchRequest",
     "dispatch.sdk.v1.DispatchResponse", &handle_dispatch},
};
const Method kAdminMethods[] = {
    {"Get", "/dispatch.scheduler.v1.AdminService/Get", "dispatch.scheduler.v1.GetRequest",
     "dispatch.scheduler.v1.CallInfo", &handle_get},
    {"List", "/dispatch.scheduler.v1.AdminService/List", "dispatch.scheduler.v1.ListRequest",
     "dispatch.scheduler.v1.ListResponse", &handle_list},
    {"Cancel", "/dispatch.scheduler.v1.AdminService/Cancel", "dispatch.scheduler.v1.CancelRequest",
     "dispatch.scheduler.v1.CallInfo", &handle_cancel},
    {"Retry", "/dispatch.scheduler.v1.AdminService/Retry", "dispatch.scheduler.v1.RetryRequest",
     "dispatch.scheduler.v1.CallInfo", &handle_retry},
};

std::string file_of(const google::protobuf::Descriptor* d) {
  google::protobuf::FileDescriptorProto file;
  d->file()->CopyTo(&file);
  return file.SerializeAsString();
}

const Service& dispatch_service() {
  static const std::string descriptor = file_of(sdk::v1::DispatchRequest::descriptor());
  static const Service service{"dispatch.sdk.v1", "DispatchService", kDispatchMethods, 1, descriptor};
  return service;
}

const Service& admin_service() {
  static const std::string descriptor = file_of(admin::CallInfo::descriptor());
  static const Service service{"dispatch.scheduler.v1", "AdminService", kAdminMethods, 4, descriptor};
  return service;
}

}  // namespace

Result<void> Scheduler::add_to(DispatchTable& table) {
  auto a = table.add(dispatch_service());
  if (!a.ok()) return a;
  auto b = table.add(admin_service());
  if (!b.ok()) return b;
  table.attach(kAttachment, this);
  return {};
}

}  // namespace dispatch::scheduler
