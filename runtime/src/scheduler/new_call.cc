// The checks and the conversion of a dispatch.sdk.v1.Call (new_call.h).
#include "scheduler/new_call.h"

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <algorithm>

#include "dispatch/durable/function_service.h"
#include "durable/protocol.h"

namespace dispatch::scheduler {
namespace {

// A call can wait at most this long to start (a start time this far out is
// a mistake: a timestamp in ms where seconds were meant, say).
constexpr int64_t kLongestDelaySeconds = 10LL * 366 * 24 * 3600;

bool is_url(const std::string& ep) {
  return ep.rfind("http://", 0) == 0 || ep.rfind("https://", 0) == 0;
}

// When a timer is due: its input is a Duration (from now) or a Timestamp.
Result<int64_t> timer_due(const google::protobuf::Any& input, int64_t now_ms, const std::string& where) {
  const std::string_view type = protocol::any_type(input);
  if (type == "google.protobuf.Duration") {
    google::protobuf::Duration d;
    if (!d.ParseFromString(input.value()) || d.seconds() < 0 || d.nanos() < 0 ||
        d.seconds() > kLongestDelaySeconds) {
      return Error(Code::invalid_argument, where + ": a sleep's duration must be between 0 and 10 years");
    }
    return now_ms + d.seconds() * 1000 + d.nanos() / 1'000'000;
  }
  if (type == "google.protobuf.Timestamp") {
    google::protobuf::Timestamp t;
    if (!t.ParseFromString(input.value()) || t.seconds() < 0 ||
        t.seconds() > now_ms / 1000 + kLongestDelaySeconds) {
      return Error(Code::invalid_argument, where + ": a sleep's end must be a time within 10 years from now");
    }
    return std::max(now_ms, protocol::from_timestamp(t));
  }
  return Error(Code::invalid_argument, where + ": a sleep's input must be a google.protobuf.Duration or a "
                                               "google.protobuf.Timestamp, not '" + std::string(type) + "'");
}

}  // namespace

Result<NewCall> new_call_from(sdk::v1::Call& c, int64_t now, const std::string& where,
                              const std::string& default_endpoint) {
  if (!protocol::valid_function_name(c.function())) {
    return Error(Code::invalid_argument, where + ": the function name must match ^[a-zA-Z_][a-zA-Z0-9_<>.]*$");
  }
  const bool timer = c.function() == kSleepFunction;
  // A timer is delivered nowhere: it has no endpoint, so it never waits
  // behind its workflow's endpoint's concurrency (a race(call, sleep) must
  // time out also, and above all, when that endpoint is slow).
  std::string ep = timer ? std::string() : c.endpoint().empty() ? default_endpoint : c.endpoint();
  if (!timer && !is_url(ep)) {
    return Error(Code::invalid_argument, where + ": endpoint '" + ep + "' is not an http:// or https:// URL");
  }
  if (!c.has_input() || protocol::any_type(c.input()).empty()) {
    return Error(Code::invalid_argument, where +
                                             ": input must be a google.protobuf.Any with a type URL "
                                             "(type.googleapis.com/<package>.<Message>)");
  }
  // Delayed: first delivered after `delay` or at `start_time` (a timer: when
  // its input says); the expiration counts from then.
  int64_t not_before = 0;
  if (c.has_delay() && c.has_start_time()) {
    return Error(Code::invalid_argument, where + ": give a delay or a start time, not both");
  }
  if (timer) {
    auto due = timer_due(c.input(), now, where);
    if (!due.ok()) return std::move(due).error();
    not_before = *due;
  } else if (c.has_delay()) {
    const int64_t ms = c.delay().seconds() * 1000 + c.delay().nanos() / 1000000;
    if (c.delay().seconds() < 0 || c.delay().nanos() < 0 || c.delay().seconds() > kLongestDelaySeconds) {
      return Error(Code::invalid_argument, where + ": the delay must be between 0 and 10 years");
    }
    not_before = now + ms;
  } else if (c.has_start_time()) {
    if (c.start_time().seconds() < 0 || c.start_time().seconds() > now / 1000 + kLongestDelaySeconds) {
      return Error(Code::invalid_argument, where + ": the start time must be within 10 years from now");
    }
    not_before = std::max(now, protocol::from_timestamp(c.start_time()));
  }
  int64_t expiration_at = 0;  // 0: the function's policy decides
  if (c.has_expiration()) {
    const int64_t ms = c.expiration().seconds() * 1000 + c.expiration().nanos() / 1000000;
    if (ms <= 0) return Error(Code::invalid_argument, where + ": expiration must be positive");
    expiration_at = std::max(now, not_before) + ms;
  }
  NewCall n;
  n.function = c.function();
  n.endpoint = std::move(ep);
  n.input_type_url = std::move(*c.mutable_input()->mutable_type_url());
  n.input = std::move(*c.mutable_input()->mutable_value());
  n.expiration_at_ms = expiration_at;
  n.idempotency_key = c.idempotency_key();
  n.tenant = c.tenant();
  n.not_before_ms = not_before;
  n.correlation_id = c.correlation_id();
  return n;
}

}  // namespace dispatch::scheduler
