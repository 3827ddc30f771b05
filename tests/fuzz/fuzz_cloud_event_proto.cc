// libFuzzer target: the CloudEvents protobuf format (what a function's
// `dispatch::CloudEvent` parameter or result carries on the wire). Bad bytes
// must be an invalid_argument error with a message, never a crash; an event
// that decodes must encode and decode to a fixed point (the first encoding
// may normalize, e.g. a time with an offset becomes UTC).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dispatch/wire/cloud_event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto event = dispatch::wire::decode_cloud_event(bytes);
  if (!event.ok()) {
    if (event.error().code() != dispatch::Code::invalid_argument || event.error().message().empty()) std::abort();
    return 0;
  }
  auto once = dispatch::wire::decode_cloud_event(dispatch::wire::encode_cloud_event(*event));
  if (!once.ok()) std::abort();
  auto twice = dispatch::wire::decode_cloud_event(dispatch::wire::encode_cloud_event(*once));
  if (!twice.ok() || !(*twice == *once)) std::abort();
  return 0;
}
