// The CloudEvents protobuf format (io.cloudevents.v1.CloudEvent, the
// CloudEvents spec's formats/protobuf-format.md) for dispatch::CloudEvent:
// how a whole event travels as a function's parameter or result, so a
// function taking or returning an event is an ordinary method on the wire
// (its field is `bytes` in the emitted .proto, holding this encoding).
//
// Encoding: id, source, spec_version and type in their fields; the optional
// attributes and extensions in the attributes map (time as ce_timestamp when
// it is RFC 3339, dataschema as ce_uri, integer and boolean extensions as
// ce_integer/ce_boolean, the rest as ce_string); data as binary_data.
// Decoding takes every form the format allows (text_data, proto_data whose
// type URL becomes dataschema when none is set, ce_bytes as base64,
// ce_timestamp as RFC 3339).
//
// Not for: checking the event against the spec (dispatch/events does) or
// any other format. Public header: compiles as C++17 and C++20.
#pragma once

#include <string>
#include <string_view>

#include "dispatch/core/cloud_event.h"
#include "dispatch/core/result.h"

namespace dispatch::wire {

std::string encode_cloud_event(const CloudEvent& event);

// Bytes that are not a CloudEvent message are invalid_argument, naming the
// field.
Result<CloudEvent> decode_cloud_event(std::string_view bytes);

}  // namespace dispatch::wire
