// Binary headers: a header whose name ends in "-bin" carries bytes, base64
// encoded, in gRPC's metadata and Connect's alike. A function reads and
// writes headers as they travel (dispatch/core/call_headers.h); these turn
// such a value into its bytes and back.
//
// Public header: compiles as C++17 and C++20.
#pragma once

#include <string>
#include <string_view>

#include "dispatch/core/result.h"

namespace dispatch {

// The value to send for `bytes`: padded standard base64.
std::string encode_binary_header(std::string_view bytes);

// The bytes a binary header's value carries. Padding is optional, as gRPC
// allows; invalid_argument for anything that is not standard base64.
Result<std::string> decode_binary_header(std::string_view value);

}  // namespace dispatch
