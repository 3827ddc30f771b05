// libFuzzer target: the CloudEvents JSON event format, as the body of a
// structured-mode (one event) and a batched-mode (an array) request. Bad
// text must be an invalid_argument error with a message, never a crash; an
// event that reads must pass the spec's checks and read back from what it
// writes as the same event.
//
// Not for: binary mode's headers (fuzz_cloudevents_binary) or the protobuf
// format (fuzz_cloud_event_proto).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dispatch/events/http_binding.h"
#include "dispatch/events/json_format.h"

namespace {

namespace ev = dispatch::events;

template <typename R>
void check_refusal(const R& result) {
  if (result.error().code() != dispatch::Code::invalid_argument || result.error().message().empty()) std::abort();
}

void check_event(const dispatch::CloudEvent& event) {
  if (!ev::check_event(event).ok()) std::abort();
  auto again = ev::from_json(ev::to_json(event));
  if (!again.ok() || !(*again == event)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto event = ev::from_json(text); event.ok()) {
    check_event(*event);
  } else {
    check_refusal(event);
  }
  if (auto batch = ev::from_json_batch(text); batch.ok()) {
    for (const auto& event : *batch) check_event(event);
    auto again = ev::from_json_batch(ev::to_json_batch(*batch));
    if (!again.ok() || !(*again == *batch)) std::abort();
  } else {
    check_refusal(batch);
  }
  return 0;
}
