// DispatchClient: turns encoded calls into one DispatchRequest for the
// scheduler's dispatch.sdk.v1.DispatchService/Dispatch route and returns the
// IDs it persisted. Idempotency keys travel in Call.idempotency_key (field
// 100, this scheduler's extension; see docs/scheduler.md).
//
// Not for: retries of the Dispatch request itself (callers may retry with the
// same idempotency key) or waiting for results (AdminService/Get does that).
#include "dispatch/durable/dispatch_client.h"

#include <algorithm>
#include <cstdlib>

#include <google/protobuf/duration.pb.h>

#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "durable/protocol.h"

namespace dispatch {
namespace {

// The code a failed call reports to an awaiting caller: the one the endpoint
// named in Error.type when it is a code name (our Run route does that),
// otherwise one that keeps the status's meaning.
Code code_for_failure(int status, const std::string& error_type) {
  if (auto named = code_from_name(error_type)) return *named;
  switch (static_cast<RunStatus>(status)) {
    case RunStatus::timeout: return Code::deadline_exceeded;
    case RunStatus::throttled: return Code::resource_exhausted;
    case RunStatus::invalid_argument: return Code::invalid_argument;
    case RunStatus::unauthenticated: return Code::unauthenticated;
    case RunStatus::permission_denied: return Code::permission_denied;
    case RunStatus::not_found: return Code::not_found;
    default: break;
  }
  return is_temporary(static_cast<RunStatus>(status)) ? Code::unavailable : Code::internal;
}

}  // namespace

DispatchClient::DispatchClient(Client& scheduler, std::string default_endpoint)
    : scheduler_(scheduler), default_endpoint_(std::move(default_endpoint)) {
  if (default_endpoint_.empty()) {
    if (const char* env = std::getenv("DISPATCH_ENDPOINT_URL")) default_endpoint_ = env;
  }
}

Result<std::string> DispatchClient::dispatch(std::string_view function,
                                             std::string_view request_type, std::string request,
                                             const DispatchOptions& options) {
  std::vector<PendingCall> calls;
  calls.push_back(PendingCall{std::string(function), std::string(request_type), std::move(request),
                              options});
  auto ids = dispatch_batch(std::move(calls));
  if (!ids.ok()) return std::move(ids).error();
  return std::move(ids.value().front());
}

Result<std::vector<std::string>> DispatchClient::dispatch_batch(std::vector<PendingCall> calls) {
  if (calls.empty()) {
    return Error(Code::invalid_argument, "dispatch_batch: the batch is empty");
  }
  sdk::v1::DispatchRequest request;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    PendingCall& pending = calls[i];
    const std::string& endpoint =
        pending.options.endpoint.empty() ? default_endpoint_ : pending.options.endpoint;
    if (endpoint.empty()) {
      return Error(Code::invalid_argument,
                   "call to '" + pending.function +
                       "' names no endpoint; set DISPATCH_ENDPOINT_URL or DispatchOptions::endpoint "
                       "to the URL at which the scheduler reaches the function");
    }
    if (!protocol::valid_function_name(pending.function)) {
      return Error(Code::invalid_argument, "'" + pending.function +
                                               "' is not a valid function name (pattern "
                                               "^[a-zA-Z_][a-zA-Z0-9_<>.]*$)");
    }
    if (pending.request_type.empty()) {
      return Error(Code::invalid_argument,
                   "call to '" + pending.function + "' names no request message type");
    }
    if (pending.options.expiration && pending.options.expiration->count() <= 0) {
      return Error(Code::invalid_argument,
                   "call to '" + pending.function + "' has a non-positive expiration");
    }
    sdk::v1::Call* call = request.add_calls();
    call->set_correlation_id(i);
    call->set_endpoint(endpoint);
    call->set_function(pending.function);
    protocol::pack_any(pending.request_type, std::move(pending.request), call->mutable_input());
    if (pending.options.expiration) {
      const auto ms = pending.options.expiration->count();
      call->mutable_expiration()->set_seconds(ms / 1000);
      call->mutable_expiration()->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
    }
    call->set_idempotency_key(pending.options.idempotency_key);
    call->set_tenant(pending.options.tenant);
  }
  auto reply = scheduler_.call(protocol::kDispatchPath, request.SerializeAsString(), CallOptions{});
  if (!reply.ok()) return std::move(reply).error().with_context("dispatching to the scheduler");
  sdk::v1::DispatchResponse response;
  if (!response.ParseFromString(reply.value())) {
    return Error(Code::internal, "the scheduler's reply is not a dispatch.sdk.v1.DispatchResponse");
  }
  if (static_cast<std::size_t>(response.dispatch_ids_size()) != calls.size()) {
    return Error(Code::internal, "the scheduler answered " +
                                     std::to_string(response.dispatch_ids_size()) + " IDs for " +
                                     std::to_string(calls.size()) + " calls");
  }
  return std::vector<std::string>(response.dispatch_ids().begin(), response.dispatch_ids().end());
}

}  // namespace dispatch

namespace dispatch {

Result<std::string> DispatchClient::await_result(std::string_view dispatch_id,
                                                 std::chrono::milliseconds timeout) {
  namespace admin = ::dispatch::scheduler::v1;
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    admin::GetRequest req;
    req.set_id(std::string(dispatch_id));
    // The scheduler holds a Get at most a minute; longer waits loop here.
    req.set_wait_ms(static_cast<uint32_t>(std::clamp<int64_t>(left.count(), 0, 60'000)));
    auto reply = scheduler_.call("/dispatch.scheduler.v1.AdminService/Get", req.SerializeAsString(), {});
    if (!reply.ok()) return std::move(reply).error().with_context("awaiting " + std::string(dispatch_id));
    admin::CallInfo info;
    if (!info.ParseFromString(*reply)) {
      return Error(Code::internal, "the scheduler's reply is not a dispatch.scheduler.v1.CallInfo");
    }
    switch (info.state()) {
      case admin::CALL_STATE_COMPLETED: return std::move(*info.mutable_output_value());
      case admin::CALL_STATE_FAILED:
        return Error(code_for_failure(info.status(), info.error_type()), info.error_message());
      case admin::CALL_STATE_CANCELLED:
        return Error(Code::canceled, "call " + info.id() + " was cancelled");
      default: break;
    }
    if (std::chrono::steady_clock::now() >= until) {
      return Error(Code::deadline_exceeded, "call " + info.id() + " is still " +
                                                (info.state() == admin::CALL_STATE_RUNNING ? "running" : "pending") +
                                                " after " + std::to_string(timeout.count()) + " ms");
    }
  }
}

}  // namespace dispatch
