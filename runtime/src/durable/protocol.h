// Private helpers shared by the endpoint's Run route, the DispatchClient and
// the scheduler: google.protobuf.Any packing with the type URLs the protocol
// uses, and the mapping of transport failures to dispatch.sdk.v1.Status.
//
// Not for: public use (generated protobuf types stay inside the runtime).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <google/protobuf/any.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "dispatch/core/error.h"
#include "dispatch/durable/function_service.h"

namespace dispatch::protocol {

inline constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";
inline constexpr std::string_view kDispatchPath = "/dispatch.sdk.v1.DispatchService/Dispatch";

// The protocol's pattern for Call.function: ^[a-zA-Z_][a-zA-Z0-9_<>.]*$
bool valid_function_name(std::string_view name) noexcept;

// "type.googleapis.com/<type>" around `value`.
void pack_any(std::string_view type, std::string value, google::protobuf::Any* any);
// The message name of an Any's type URL: everything after the last '/'
// ("shop.AddRequest"); empty when the URL has no '/'.
std::string_view any_type(const google::protobuf::Any& any) noexcept;

// The status a scheduler records when Run did not answer with a RunResponse
// (a transport error or an HTTP error status turned into a dispatch::Error by
// the client): connection failures TCP_ERROR, deadlines TIMEOUT, 429
// THROTTLED, 5xx TEMPORARY_ERROR, 4xx their own statuses (spec, "HTTP status
// of an endpoint's reply, mapped"). A reply that carried no Connect error
// body ("HTTP 429 with an empty body", as dispatch::HttpClient reports it) is
// mapped by its HTTP status.
RunStatus status_for_transport_error(const Error& error) noexcept;
// The spec's table for an endpoint's HTTP status.
RunStatus status_for_http(int http_status) noexcept;

// Unix milliseconds <-> google.protobuf.Timestamp.
void to_timestamp(int64_t unix_ms, google::protobuf::Timestamp* ts);
int64_t from_timestamp(const google::protobuf::Timestamp& ts) noexcept;

}  // namespace dispatch::protocol
