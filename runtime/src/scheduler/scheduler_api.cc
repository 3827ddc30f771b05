// The scheduler's routes: dispatch.sdk.v1.DispatchService/Dispatch (what
// clients and generated .dispatch() stubs call) and
// dispatch.scheduler.v1.AdminService (status, list, cancel, retry). Their
// services carry the Scheduler they serve (scheduler/api.h), and each handler
// receives it with the call.
//
// Not for: authentication (the server's authenticate hook checks bearer
// keys before a body reaches these handlers; see dispatchd).
#include <algorithm>
#include <iterator>
#include <limits>

#include <google/protobuf/descriptor.pb.h>

#include "dispatch/scheduler/scheduler.h"
#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "durable/protocol.h"
#include "scheduler/api.h"
#include "scheduler/new_call.h"

namespace dispatch::scheduler {
namespace {

namespace admin = ::dispatch::scheduler::v1;

// The Scheduler a route's call is for: its service is an ApiService.
Scheduler& scheduler_of(const MethodCall& call) {
  return *static_cast<const ApiService&>(call.service).scheduler;
}

template <typename M>
Result<M> parse(std::string_view body, const char* what) {
  M m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Error(Code::invalid_argument, std::string("the request body is not a valid ") + what);
  }
  return m;
}

Result<std::string> handle_dispatch(const MethodCall& call) {
  Scheduler& s = scheduler_of(call);
  auto parsed = parse<sdk::v1::DispatchRequest>(call.request, "dispatch.sdk.v1.DispatchRequest");
  if (!parsed.ok()) return std::move(parsed).error();
  sdk::v1::DispatchRequest& req = *parsed;
  if (req.calls_size() == 0) return Error(Code::invalid_argument, "DispatchRequest has no calls");
  std::vector<NewCall> calls;
  calls.reserve(static_cast<std::size_t>(req.calls_size()));
  for (int i = 0; i < req.calls_size(); ++i) {
    sdk::v1::Call& c = *req.mutable_calls(i);
    const std::string where = "call " + std::to_string(i) + " ('" + c.function() + "')";
    auto n = new_call_from(c, s.now_ms(), where, "");
    if (!n.ok()) return std::move(n).error();
    n->correlation_id = 0;  // meaningful only for a Poll's children
    // The trace of the Dispatch request goes with the call to its endpoint.
    n->traceparent = call.context.trace.traceparent();
    n->tracestate = call.context.trace.tracestate;
    calls.push_back(std::move(*n));
  }
  auto ids = s.dispatch(std::move(calls));
  if (!ids.ok()) return std::move(ids).error();
  sdk::v1::DispatchResponse res;
  for (auto& id : *ids) res.add_dispatch_ids(std::move(id));
  return res.SerializeAsString();
}

void to_info(const CallRecord& r, admin::CallInfo* info) {
  info->set_id(r.id);
  info->set_function(r.function);
  info->set_endpoint(r.endpoint);
  info->set_state(static_cast<admin::CallState>(r.state));
  info->set_attempts(r.attempts);
  info->set_restarts(r.restarts);
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
  if (r.state == CallState::suspended && r.next_attempt_at_ms != std::numeric_limits<int64_t>::max()) {
    protocol::to_timestamp(r.next_attempt_at_ms, info->mutable_next_attempt_time());
  }
  info->set_input_type_url(r.input_type_url);
  info->set_input_value(r.input);
  info->set_correlation_id(r.correlation_id);
  info->set_outstanding_calls(r.outstanding);
  info->set_ready_results(r.ready);
}

Result<std::string> answer(Result<CallRecord> r) {
  if (!r.ok()) return std::move(r).error();
  admin::CallInfo info;
  to_info(*r, &info);
  return info.SerializeAsString();
}

// A request that names one call (Get, Cancel, Retry).
template <typename M>
Result<M> parse_with_id(std::string_view body, const char* what) {
  auto req = parse<M>(body, what);
  if (req.ok() && req->id().empty()) return Error(Code::invalid_argument, "the request names no call ID");
  return req;
}

Result<std::string> handle_get(const MethodCall& call) {
  auto req = parse_with_id<admin::GetRequest>(call.request, "dispatch.scheduler.v1.GetRequest");
  if (!req.ok()) return std::move(req).error();
  // At most a minute: longer waits belong in a loop on the caller's side.
  auto wait = std::chrono::milliseconds(std::min<uint32_t>(req->wait_ms(), 60'000));
  return answer(scheduler_of(call).get(req->id(), wait));
}

Result<std::string> handle_list(const MethodCall& call) {
  auto req = parse<admin::ListRequest>(call.request, "dispatch.scheduler.v1.ListRequest");
  if (!req.ok()) return std::move(req).error();
  std::optional<CallState> state;
  if (req->state() != admin::CALL_STATE_UNSPECIFIED) {
    if (req->state() < admin::CALL_STATE_PENDING || req->state() > admin::CALL_STATE_SUSPENDED) {
      return Error(Code::invalid_argument, "unknown call state " + std::to_string(req->state()));
    }
    state = static_cast<CallState>(req->state());
  }
  const std::size_t limit = req->limit() == 0 ? 100 : std::min<uint32_t>(req->limit(), 10'000);
  if (!req->parent_id().empty() && state) {
    return Error(Code::invalid_argument, "list the children of a call (parent_id) in every state: leave state unset");
  }
  auto calls = req->parent_id().empty() ? scheduler_of(call).list(state, limit, req->after_id())
                                        : scheduler_of(call).children(req->parent_id(), limit, req->after_id());
  if (!calls.ok()) return std::move(calls).error();
  admin::ListResponse res;
  for (const CallRecord& r : *calls) to_info(r, res.add_calls());
  return res.SerializeAsString();
}

Result<std::string> handle_cancel(const MethodCall& call) {
  auto req = parse_with_id<admin::CancelRequest>(call.request, "dispatch.scheduler.v1.CancelRequest");
  if (!req.ok()) return std::move(req).error();
  return answer(scheduler_of(call).cancel(req->id()));
}

Result<std::string> handle_retry(const MethodCall& call) {
  auto req = parse_with_id<admin::RetryRequest>(call.request, "dispatch.scheduler.v1.RetryRequest");
  if (!req.ok()) return std::move(req).error();
  return answer(scheduler_of(call).retry(req->id()));
}

const Method kDispatchMethods[] = {
    {"Dispatch", "/dispatch.sdk.v1.DispatchService/Dispatch", "dispatch.sdk.v1.DispatchRequest",
     "dispatch.sdk.v1.DispatchResponse", &handle_dispatch},
};
const Method kAdminMethods[] = {
    // A Get with wait_ms sleeps until the call ends: on the server's pool
    // for waiting calls, not on a worker a Dispatch needs.
    {"Get", "/dispatch.scheduler.v1.AdminService/Get", "dispatch.scheduler.v1.GetRequest",
     "dispatch.scheduler.v1.CallInfo", &handle_get, nullptr, nullptr, /*waits=*/true},
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

}  // namespace

ApiServices api_services(Scheduler& scheduler) {
  static const std::string dispatch_descriptor = file_of(sdk::v1::DispatchRequest::descriptor());
  static const std::string admin_descriptor = file_of(admin::CallInfo::descriptor());
  return ApiServices{
      ApiService{Service{"dispatch.sdk.v1", "DispatchService", kDispatchMethods,
                         std::size(kDispatchMethods), dispatch_descriptor},
                 &scheduler},
      ApiService{Service{"dispatch.scheduler.v1", "AdminService", kAdminMethods,
                         std::size(kAdminMethods), admin_descriptor},
                 &scheduler}};
}

}  // namespace dispatch::scheduler
