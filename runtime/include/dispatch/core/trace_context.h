// dispatch::TraceContext: the W3C Trace Context (traceparent, tracestate) of
// one call, so that one trace id ties together a request, the functions it
// calls, the durable calls it hands to a scheduler and their deliveries.
// Parsing follows the Recommendation: a malformed traceparent is ignored (the
// callee starts a new trace) and takes its tracestate with it; a malformed
// tracestate alone is dropped. Neither is ever an error of the call.
//
// Not for: spans, sampling decisions or exporting (no tracer here): the
// runtime only carries the context and puts the trace id in its log lines.
// Public header: compiles as C++17 and C++20.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dispatch {

struct TraceContext {
  std::array<uint8_t, 16> trace_id{};  // all zero: no trace
  // The span of the call this context belongs to: the parent-id of every
  // traceparent sent on from inside it.
  std::array<uint8_t, 8> span_id{};
  // The parent-id the caller sent (all zero when the trace began here).
  std::array<uint8_t, 8> parent_id{};
  uint8_t flags = 0;  // bit 0: sampled (the only flag version 00 defines)
  // The caller's tracestate, validated and trimmed to at most 512
  // characters; empty when absent or dropped.
  std::string tracestate;

  bool valid() const noexcept;
  bool sampled() const noexcept { return (flags & 1u) != 0; }

  // 32 lowercase hex digits; empty when !valid().
  std::string trace_id_hex() const;
  // "00-<trace-id>-<span-id>-<flags>": what a call made from inside this
  // one sends (its parent is this call's span); empty when !valid().
  std::string traceparent() const;
};

// A traceparent header's value (version 00, or a later version read as 00
// allows), nullopt when it is malformed: wrong length or separators,
// uppercase or non-hex digits, version ff, an all-zero trace-id or
// parent-id. The result's parent_id is the header's parent-id; its span_id
// is zero (see start_call_trace()).
std::optional<TraceContext> parse_traceparent(std::string_view value) noexcept;

// A tracestate header's value (several header lines joined with ","):
// list-members "key=value" with the Recommendation's key and value grammar,
// at most 32, no duplicate keys; empty members (",,") are skipped. The
// members are kept in order, joined with ","; nullopt when the header is
// malformed (the whole tracestate is then dropped). Longer than 512
// characters: members longer than 128 characters are dropped first, from the
// right, then others from the right, until it fits.
std::optional<std::string> parse_tracestate(std::string_view value);

// The context of a call that received `traceparent` / `tracestate` (either
// may be absent): the caller's trace continued with a new span id, or a new
// trace (new random trace id, flags 0) when the traceparent is absent or
// malformed. Never fails.
TraceContext start_call_trace(std::optional<std::string_view> traceparent,
                              std::optional<std::string_view> tracestate);

// A fresh random non-zero span id / trace id.
std::array<uint8_t, 8> random_span_id() noexcept;
std::array<uint8_t, 16> random_trace_id() noexcept;

}  // namespace dispatch
