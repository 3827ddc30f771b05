// The JetStream store's records (dispatch/jetstream/v1/records.proto) to and
// from the Store interface's structs, and the bucket's key names.
//
// Not for: how records change (jetstream_store.cc).
#pragma once

#include <string>
#include <string_view>

#include "dispatch/jetstream/v1/records.pb.h"
#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler::jetstream {

namespace pb = ::dispatch::jetstream::v1;

// Keys: "c.<id>" a call, "b.<id>" a batch being enqueued, "k.<hex>" an
// idempotency key (hex, because keys allow few characters).
inline constexpr std::string_view kCallPrefix = "c.";
inline constexpr std::string_view kBatchPrefix = "b.";
inline constexpr std::string_view kKeyPrefix = "k.";
std::string call_key(std::string_view id);
std::string idempotency_key(std::string_view key);

// A call as the interface shows it (no results: claim() adds them).
CallRecord to_record(const pb::Call& c);
ChildResult to_child_result(const pb::ChildResult& r);
pb::NewCall to_new_call(NewCall c, std::string id, int64_t now_ms);
// The record a new call starts as: pending at max(now, not_before).
pb::Call to_call(const pb::NewCall& c);
// The fairness key: the tenant, else the function.
inline const std::string& fair_key(const pb::Call& c) { return c.tenant().empty() ? c.function() : c.tenant(); }
inline CallState state_of(const pb::Call& c) { return static_cast<CallState>(c.state()); }

}  // namespace dispatch::scheduler::jetstream
