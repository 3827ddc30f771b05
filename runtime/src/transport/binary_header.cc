// Binary header values: base64 by the security layer's codec (libsodium).
#include "dispatch/transport/binary_header.h"

#include "security/base64.h"

namespace dispatch {

std::string encode_binary_header(std::string_view bytes) { return security::detail::base64_encode(bytes); }

Result<std::string> decode_binary_header(std::string_view value) {
  auto bytes = security::detail::base64_decode(value);
  if (!bytes) {
    return Error(Code::invalid_argument,
                 "a binary header's value must be standard base64, got '" + std::string(value.substr(0, 100)) +
                     (value.size() > 100 ? "...'" : "'"));
  }
  return std::move(*bytes);
}

}  // namespace dispatch
