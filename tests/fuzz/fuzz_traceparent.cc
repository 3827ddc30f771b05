// libFuzzer target: the W3C trace context parsers (dispatch/core/trace_context.h).
// The input is split at its first newline into a traceparent and a
// tracestate. Nothing may crash; a traceparent that parses must format back
// to one that parses to the same trace id; a tracestate kept must be at most
// 512 characters and parse again to itself; a call's trace is always valid.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dispatch/core/trace_context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto newline = in.find('\n');
  const std::string_view parent = in.substr(0, newline);
  const std::string_view state = newline == std::string_view::npos ? std::string_view() : in.substr(newline + 1);
  if (auto parsed = dispatch::parse_traceparent(parent)) {
    parsed->span_id = dispatch::random_span_id();
    auto again = dispatch::parse_traceparent(parsed->traceparent());
    if (!again || again->trace_id != parsed->trace_id || again->parent_id != parsed->span_id) std::abort();
  }
  if (auto kept = dispatch::parse_tracestate(state)) {
    if (kept->size() > 512) std::abort();
    auto again = dispatch::parse_tracestate(*kept);
    if (!again || *again != *kept) std::abort();
  }
  const dispatch::TraceContext trace = dispatch::start_call_trace(parent, state);
  if (!trace.valid() || trace.traceparent().size() != 55) std::abort();
  return 0;
}
