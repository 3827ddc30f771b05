// Field-by-field copies between the store's protobuf records and the Store
// interface's structs.
//
// Not for: anything that decides a transition.
#include "jetstream/records.h"

#include <algorithm>
#include <cstdio>

namespace dispatch::scheduler::jetstream {

std::string call_key(std::string_view id) { return std::string(kCallPrefix) + std::string(id); }

namespace {

std::string placed_id(std::string_view prefix20, uint64_t seq, std::size_t place) {
  char tail[13];
  const uint64_t where = (uint64_t{1} << 47) | ((seq & ((uint64_t{1} << 35) - 1)) << 12) | (place & 0xfff);
  std::snprintf(tail, sizeof tail, "%012llx", static_cast<unsigned long long>(where));
  return std::string(prefix20) + tail;
}

}  // namespace

std::string single_id(std::string_view prefix20, uint64_t seq) { return placed_id(prefix20, seq, 0xfff); }

std::string member_id(std::string_view prefix20, uint64_t seq, std::size_t place) {
  return placed_id(prefix20, seq, place);
}

std::string group_of(std::string_view id) {
  if (id.size() != 32 || id[20] < '8' || id[20] > 'f' || id.substr(29) == "fff") return {};
  std::string key(kGroupPrefix);
  key.append(id.substr(0, 29));
  key.append("000");
  return key;
}

std::string idempotency_key(std::string_view key) {
  static const char* const kHex = "0123456789abcdef";
  std::string out(kKeyPrefix);
  out.reserve(kKeyPrefix.size() + key.size() * 2);
  for (unsigned char ch : key) {
    out.push_back(kHex[ch >> 4]);
    out.push_back(kHex[ch & 0xf]);
  }
  return out;
}

ChildResult to_child_result(const pb::ChildResult& r) {
  ChildResult out;
  out.seq = r.seq();
  out.correlation_id = r.correlation_id();
  out.dispatch_id = r.dispatch_id();
  out.status = r.status();
  out.output_type_url = r.output_type_url();
  out.output = r.output();
  out.error_type = r.error_type();
  out.error_message = r.error_message();
  return out;
}

CallRecord to_record(const pb::Call& c) {
  CallRecord r;
  r.id = c.id();
  r.function = c.function();
  r.endpoint = c.endpoint();
  r.input_type_url = c.input_type_url();
  r.input = c.input();
  r.state = state_of(c);
  r.attempts = c.attempts();
  r.restarts = c.restarts();
  r.next_attempt_at_ms = c.next_attempt_at_ms();
  r.expiration_at_ms = c.expiration_at_ms();
  r.created_at_ms = c.created_at_ms();
  r.updated_at_ms = c.updated_at_ms();
  r.status = c.status();
  r.output_type_url = c.output_type_url();
  r.output = c.output();
  r.error_type = c.error_type();
  r.error_message = c.error_message();
  r.idempotency_key = c.idempotency_key();
  r.tenant = c.tenant();
  r.parent_id = c.parent_id();
  r.root_id = c.root_id();
  r.traceparent = c.traceparent();
  r.tracestate = c.tracestate();
  r.lease = c.lease();
  r.correlation_id = c.correlation_id();
  r.polled = c.polled();
  r.poll_state = c.poll_state();
  r.poll_state_type_url = c.poll_state_type_url();
  r.min_results = c.min_results();
  r.max_results = c.max_results();
  r.poll_error_type = c.poll_error_type();
  r.poll_error_message = c.poll_error_message();
  r.outstanding = static_cast<uint32_t>(c.outstanding_size());
  r.ready = static_cast<uint32_t>(c.results_size());
  return r;
}

pb::NewCall to_new_call(NewCall c, std::string id, int64_t now_ms) {
  pb::NewCall n;
  n.set_id(std::move(id));
  n.set_function(std::move(c.function));
  n.set_endpoint(std::move(c.endpoint));
  n.set_input_type_url(std::move(c.input_type_url));
  n.set_input(std::move(c.input));
  n.set_expiration_at_ms(c.expiration_at_ms);
  n.set_idempotency_key(std::move(c.idempotency_key));
  n.set_tenant(std::move(c.tenant));
  n.set_parent_id(std::move(c.parent_id));
  n.set_root_id(std::move(c.root_id));
  n.set_traceparent(std::move(c.traceparent));
  n.set_tracestate(std::move(c.tracestate));
  n.set_not_before_ms(c.not_before_ms);
  n.set_correlation_id(c.correlation_id);
  n.set_now_ms(now_ms);
  return n;
}

pb::Call to_call(const pb::NewCall& n) {
  pb::Call c;
  c.set_id(n.id());
  c.set_function(n.function());
  c.set_endpoint(n.endpoint());
  c.set_input_type_url(n.input_type_url());
  c.set_input(n.input());
  c.set_state(static_cast<int>(CallState::pending));
  c.set_next_attempt_at_ms(std::max(n.now_ms(), n.not_before_ms()));
  c.set_expiration_at_ms(n.expiration_at_ms());
  c.set_created_at_ms(n.now_ms());
  c.set_updated_at_ms(n.now_ms());
  c.set_idempotency_key(n.idempotency_key());
  c.set_tenant(n.tenant());
  c.set_parent_id(n.parent_id());
  c.set_root_id(n.root_id().empty() ? n.id() : n.root_id());
  c.set_traceparent(n.traceparent());
  c.set_tracestate(n.tracestate());
  c.set_correlation_id(n.correlation_id());
  return c;
}

}  // namespace dispatch::scheduler::jetstream
