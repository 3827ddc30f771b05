// The JetStream store's records (dispatch/jetstream/v1/records.proto) to and
// from the Store interface's structs, and the bucket's key names.
//
// Not for: how records change (jetstream_store.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dispatch/jetstream/v1/records.pb.h"
#include "dispatch/scheduler/store.h"

namespace dispatch::scheduler::jetstream {

namespace pb = ::dispatch::jetstream::v1;

// Keys: "c.<id>" a call, "g.<id>" a group of calls (several calls of one
// enqueue), "b.<id>" a batch being enqueued, "k.<hex>" an idempotency key
// (hex, because keys allow few characters).
inline constexpr std::string_view kCallPrefix = "c.";
inline constexpr std::string_view kGroupPrefix = "g.";
inline constexpr std::string_view kBatchPrefix = "b.";
inline constexpr std::string_view kKeyPrefix = "k.";
std::string call_key(std::string_view id);

// Call IDs are 32 hex digits: creation time in ms (12), the process's tag
// (8), then 12 that say where the call is kept. IDs whose first of those
// 12 is 8 or more are this layout's: a record sequence number, then 3
// digits that are fff for a call of its own ("c.<id>") and the call's
// place in its group otherwise (the group's key is the ID with those 3
// digits 000). Any other ID (a counter, as earlier versions wrote) is a
// call of its own.
inline constexpr std::size_t kMaxGroupCalls = 0xfff;  // places 000-ffe
std::string single_id(std::string_view prefix20, uint64_t seq);
std::string member_id(std::string_view prefix20, uint64_t seq, std::size_t place);
// The key of the group holding call `id`; empty when it is a call of its
// own.
std::string group_of(std::string_view id);
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
