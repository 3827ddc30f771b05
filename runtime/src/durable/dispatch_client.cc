// DispatchClient: turns encoded calls into one DispatchRequest for the
// scheduler's dispatch.sdk.v1.DispatchService/Dispatch route and returns the
// IDs it persisted. Idempotency keys travel in Call.idempotency_key (field
// 100, this scheduler's extension; see docs/scheduler.md).
//
// Awaiting a result asks the scheduler's AdminService/Get, which holds the
// request up to a minute while the call runs.
//
// Not for: retries of the Dispatch request itself (callers may retry with the
// same idempotency key).
#include "dispatch/durable/dispatch_client.h"

#include <algorithm>
#include <cstdlib>

#include <google/protobuf/duration.pb.h>

#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/transport/http_client.h"
#include "durable/protocol.h"

namespace dispatch {

Code code_for_call_failure(int status, std::string_view error_type) noexcept {
  if (auto named = code_from_name(error_type)) return *named;
  // The scheduler's own error types (docs/scheduler.md).
  if (error_type == "expired") return Code::deadline_exceeded;
  if (error_type == "invalid_endpoint") return Code::invalid_argument;
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

namespace {

constexpr const char* kGetPath = "/dispatch.scheduler.v1.AdminService/Get";
// Where dispatchd listens unless told otherwise (docs/scheduler.md).
constexpr const char* kDefaultApiUrl = "http://127.0.0.1:4450";

// A Get's reply as what the awaiting caller sees: the output bytes, the
// call's error, or nullopt while it has not ended.
std::optional<Result<std::string>> ended(const scheduler::v1::CallInfo& info) {
  namespace admin = ::dispatch::scheduler::v1;
  switch (info.state()) {
    case admin::CALL_STATE_COMPLETED: return Result<std::string>(info.output_value());
    case admin::CALL_STATE_FAILED:
      return Result<std::string>(Error(code_for_call_failure(info.status(), info.error_type()), info.error_message()));
    case admin::CALL_STATE_CANCELLED:
      return Result<std::string>(Error(Code::canceled, "call " + info.id() + " was cancelled"));
    default: return std::nullopt;
  }
}

// Now + `timeout`, saturating: a wait "for ever" is milliseconds::max().
std::chrono::steady_clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  const auto now = std::chrono::steady_clock::now();
  if (timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::time_point::max() - now)) {
    return std::chrono::steady_clock::time_point::max();
  }
  return now + timeout;
}

std::string get_request(std::string_view id, std::chrono::milliseconds left) {
  scheduler::v1::GetRequest req;
  req.set_id(std::string(id));
  // The scheduler holds a Get at most a minute; longer waits loop.
  req.set_wait_ms(static_cast<uint32_t>(std::clamp<int64_t>(left.count(), 0, 60'000)));
  return req.SerializeAsString();
}

Error still_running(const scheduler::v1::CallInfo& info, std::chrono::milliseconds timeout) {
  const char* state = info.state() == scheduler::v1::CALL_STATE_RUNNING     ? "running"
                      : info.state() == scheduler::v1::CALL_STATE_SUSPENDED ? "suspended (waiting for its calls)"
                                                                             : "pending";
  return Error(Code::deadline_exceeded, "call " + info.id() + " is still " + state + " after " +
                                            std::to_string(timeout.count()) + " ms");
}

}  // namespace

DispatchClient::DispatchClient(Client& scheduler, std::string default_endpoint)
    : scheduler_(&scheduler), default_endpoint_(std::move(default_endpoint)) {
  if (default_endpoint_.empty()) {
    if (const char* env = std::getenv("DISPATCH_ENDPOINT_URL")) default_endpoint_ = env;
  }
}

Result<DispatchClient> DispatchClient::from_env() {
  std::string url = kDefaultApiUrl;
  if (const char* env = std::getenv("DISPATCH_API_URL"); env != nullptr && *env != '\0') url = env;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return Error(Code::invalid_argument,
                 "DISPATCH_API_URL is '" + url + "'; give the scheduler's API as an http:// or https:// URL");
  }
  // DISPATCH_API_KEY becomes the bearer token (and DISPATCH_SIGNING_KEY,
  // when set, signs the requests as any HttpClient does).
  auto options = HttpClientOptions::try_from_env();
  if (!options.ok()) return std::move(options).error();
  auto http = HttpClient::create(url, std::move(*options));
  if (!http.ok()) return std::move(http).error().with_context("DISPATCH_API_URL");
  std::shared_ptr<Client> owned(std::move(http).value());
  DispatchClient client(*owned, "");
  client.owned_ = std::move(owned);
  return client;
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
    if (pending.options.delay && pending.options.start_at) {
      return Error(Code::invalid_argument, "call to '" + pending.function +
                                               "' sets both a delay and a start time; give one");
    }
    if (pending.options.delay) {
      if (pending.options.delay->count() < 0) {
        return Error(Code::invalid_argument, "call to '" + pending.function + "' has a negative delay");
      }
      const auto ms = pending.options.delay->count();
      call->mutable_delay()->set_seconds(ms / 1000);
      call->mutable_delay()->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
    }
    if (pending.options.start_at) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          pending.options.start_at->time_since_epoch())
                          .count();
      protocol::to_timestamp(ms, call->mutable_start_time());
    }
  }
  auto reply = scheduler_->call(protocol::kDispatchPath, request.SerializeAsString(), CallOptions{});
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

Result<std::string> DispatchClient::await_result(std::string_view dispatch_id,
                                                 std::chrono::milliseconds timeout) {
  const auto until = deadline_after(timeout);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    auto reply = scheduler_->call(kGetPath, get_request(dispatch_id, left), {});
    if (!reply.ok()) return std::move(reply).error().with_context("awaiting " + std::string(dispatch_id));
    scheduler::v1::CallInfo info;
    if (!info.ParseFromString(*reply)) {
      return Error(Code::internal, "the scheduler's reply is not a dispatch.scheduler.v1.CallInfo");
    }
    if (auto result = ended(info)) return std::move(*result);
    if (std::chrono::steady_clock::now() >= until) return still_running(info, timeout);
  }
}

namespace {

// One Get after another until the call ends or the time is up.
struct AsyncAwait : std::enable_shared_from_this<AsyncAwait> {
  Client* scheduler;
  std::string id;
  std::chrono::milliseconds timeout;
  std::chrono::steady_clock::time_point until;
  std::function<void(Result<std::string>)> done;

  void next() {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    scheduler->call_async(kGetPath, get_request(id, left), {},
                          [self = shared_from_this()](Result<std::string> reply) { self->on_reply(std::move(reply)); });
  }

  void on_reply(Result<std::string> reply) {
    if (!reply.ok()) return done(std::move(reply).error().with_context("awaiting " + id));
    scheduler::v1::CallInfo info;
    if (!info.ParseFromString(*reply)) {
      return done(Error(Code::internal, "the scheduler's reply is not a dispatch.scheduler.v1.CallInfo"));
    }
    if (auto result = ended(info)) return done(std::move(*result));
    if (std::chrono::steady_clock::now() >= until) return done(still_running(info, timeout));
    next();
  }
};

}  // namespace

void DispatchClient::await_result_async(std::string dispatch_id, std::chrono::milliseconds timeout,
                                        std::function<void(Result<std::string>)> done) {
  auto waiter = std::make_shared<AsyncAwait>();
  waiter->scheduler = scheduler_;
  waiter->id = std::move(dispatch_id);
  waiter->timeout = timeout;
  waiter->until = deadline_after(timeout);
  waiter->done = std::move(done);
  waiter->next();
}

}  // namespace dispatch
