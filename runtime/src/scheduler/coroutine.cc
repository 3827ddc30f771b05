// The coroutine half of the protocol as the scheduler reads it (coroutine.h).
#include "scheduler/coroutine.h"

#include <algorithm>
#include <string>
#include <utility>

#include "durable/protocol.h"
#include "scheduler/new_call.h"
#include "scheduler/policy.h"
#include "scheduler/trace.h"

namespace dispatch::scheduler::coroutine {
namespace {

// A child or a tail call of `c`: its function's policy expiration unless
// it has one; a child never past c's (the tree expires with its root),
// a tail call is a new life for c (continue-as-new), unless c is a child.
void adopt(const CallRecord& c, NewCall& n, int64_t now, bool child, const SchedulerOptions& opts) {
  n.idempotency_key.clear();
  // A child or a tail call is part of its parent's trace: one trace id
  // ties the whole durable execution together.
  carry_trace(c, n);
  if (n.expiration_at_ms == 0) {
    n.expiration_at_ms = std::max(now, n.not_before_ms) + policy::policy_for(opts, n.function).expiration.count();
  }
  if ((child || !c.parent_id.empty()) && c.expiration_at_ms != 0) {
    n.expiration_at_ms = std::min(n.expiration_at_ms, c.expiration_at_ms);
  }
}

}  // namespace

void to_poll_result(const CallRecord& c, sdk::v1::PollResult* out) {
  if (c.poll_state_type_url.empty()) {
    out->set_coroutine_state(c.poll_state);
  } else {
    out->mutable_typed_coroutine_state()->set_type_url(c.poll_state_type_url);
    out->mutable_typed_coroutine_state()->set_value(c.poll_state);
  }
  for (const ChildResult& r : c.results) {
    sdk::v1::CallResult* res = out->add_results();
    res->set_correlation_id(r.correlation_id);
    res->set_dispatch_id(r.dispatch_id);
    if (r.status == static_cast<int>(RunStatus::ok)) {
      res->mutable_output()->set_type_url(r.output_type_url);
      res->mutable_output()->set_value(r.output);
    } else {
      res->mutable_error()->set_type(r.error_type.empty() ? std::string(run_status_name(static_cast<RunStatus>(r.status)))
                                                          : r.error_type);
      res->mutable_error()->set_message(r.error_message);
    }
  }
  if (!c.poll_error_type.empty()) {
    out->mutable_error()->set_type(c.poll_error_type);
    out->mutable_error()->set_message(c.poll_error_message);
  }
}

RunStatus poll_outcome(const CallRecord& c, sdk::v1::Poll& poll, int64_t now, const SchedulerOptions& opts,
                       Outcome& o) {
  constexpr int kMaxResults = 1000;
  auto invalid = [&](const std::string& why) {
    o.error_type = "invalid_response";
    o.error_message = "the function's Poll " + why;
    return RunStatus::invalid_response;
  };
  if (poll.max_results() < 0 || poll.max_results() > kMaxResults) {
    return invalid("asks for max_results " + std::to_string(poll.max_results()) + "; it must be 1..1000");
  }
  if (poll.min_results() < 0 || poll.min_results() > kMaxResults) {
    return invalid("asks for min_results " + std::to_string(poll.min_results()) + "; it must be 1..1000");
  }
  PollOutcome p;
  p.max_results = poll.max_results() == 0 ? kMaxResults : poll.max_results();
  p.min_results = std::max(1, poll.min_results());
  if (p.min_results > p.max_results) {
    return invalid("asks for min_results " + std::to_string(p.min_results) + " above max_results " +
                   std::to_string(p.max_results));
  }
  if (poll.has_max_wait()) {
    const auto& w = poll.max_wait();
    if (w.seconds() < 0 || w.nanos() < 0) return invalid("has a negative max_wait");
    // google.protobuf.Duration's own range; beyond it the sum below would
    // overflow.
    if (w.seconds() > kMaxWaitSeconds || w.nanos() > 999'999'999) {
      return invalid("has a max_wait of " + std::to_string(w.seconds()) + " s " + std::to_string(w.nanos()) +
                     " ns, beyond google.protobuf.Duration's range (at most " + std::to_string(kMaxWaitSeconds) +
                     " s, nanos 0..999999999)");
    }
    p.wake_at_ms = now + w.seconds() * 1000 + w.nanos() / 1'000'000;
  }
  const uint32_t waiting = c.ready > c.results.size() ? c.ready - static_cast<uint32_t>(c.results.size()) : 0;
  if (poll.calls_size() == 0 && !poll.has_max_wait() && c.outstanding == 0 && waiting == 0) {
    return invalid("makes no calls, has none outstanding and no max_wait: it would never resume");
  }
  const std::size_t state_bytes = poll.state_case() == sdk::v1::Poll::kTypedCoroutineState
                                      ? poll.typed_coroutine_state().value().size()
                                      : poll.coroutine_state().size();
  if (state_bytes > kMaxStateBytes) {
    return invalid("carries a coroutine state of " + std::to_string(state_bytes) + " bytes; a scheduler keeps at most " +
                   std::to_string(kMaxStateBytes) + " (4 MiB), so that its resume fits an endpoint's request limit");
  }
  if (poll.state_case() == sdk::v1::Poll::kTypedCoroutineState) {
    if (protocol::any_type(poll.typed_coroutine_state()).empty()) {
      return invalid("has a typed_coroutine_state without a type URL");
    }
    p.state_type_url = std::move(*poll.mutable_typed_coroutine_state()->mutable_type_url());
    p.state = std::move(*poll.mutable_typed_coroutine_state()->mutable_value());
  } else {
    p.state = std::move(*poll.mutable_coroutine_state());
  }
  const std::string root = c.root_id.empty() ? c.id : c.root_id;
  if (poll.calls_size() > kMaxResults) {
    p.error_type = "invalid_argument";
    p.error_message = "a Poll may make at most 1000 calls; this one made " + std::to_string(poll.calls_size());
  }
  for (int i = 0; i < poll.calls_size() && p.error_type.empty(); ++i) {
    sdk::v1::Call& call = *poll.mutable_calls(i);
    auto n = new_call_from(call, now, "call " + std::to_string(i) + " ('" + call.function() + "') of the Poll",
                           c.endpoint);
    if (!n.ok()) {
      p.error_type = std::string(code_name(n.error().code()));
      p.error_message = n.error().message();
      break;
    }
    adopt(c, *n, now, true, opts);
    n->parent_id = c.id;
    n->root_id = root;
    p.calls.push_back(std::move(*n));
  }
  if (!p.error_type.empty()) p.calls.clear();
  o.poll = std::move(p);
  return RunStatus::ok;
}

RunStatus tail_call_outcome(const CallRecord& c, sdk::v1::Call& call, int64_t now, const SchedulerOptions& opts,
                            Outcome& o) {
  auto n = new_call_from(call, now, "the tail call ('" + call.function() + "')", c.endpoint);
  if (!n.ok()) {
    o.error_type = "invalid_response";
    o.error_message = "the function's " + n.error().message();
    return RunStatus::invalid_response;
  }
  adopt(c, *n, now, false, opts);
  o.tail_call = std::move(*n);
  return RunStatus::ok;
}

}  // namespace dispatch::scheduler::coroutine
