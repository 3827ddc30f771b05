// libFuzzer target: a binary-mode CloudEvents message, its header lines
// ("name: value", one per line) up to an empty line, then its body. Header
// values go through the binding's unquoting and percent-decoding. Bad input
// must be an invalid_argument error with a message, never a crash; an event
// that reads must pass the spec's checks and read back from the headers it
// writes as the same event.
//
// Not for: HTTP parsing itself (fuzz_server_request) or the JSON format
// (fuzz_cloudevents_json).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/events/http_binding.h"

namespace {

namespace ev = dispatch::events;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ev::HeaderViews headers;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.emplace_back(line.substr(0, colon), value);
  }
  auto event = ev::from_binary(headers, text);
  if (!event.ok()) {
    if (event.error().code() != dispatch::Code::invalid_argument || event.error().message().empty()) std::abort();
  } else {
    if (!ev::check_event(*event).ok()) std::abort();
    const ev::HeaderLines lines = ev::binary_headers(*event);
    ev::HeaderViews views;
    for (const auto& [n, v] : lines) views.emplace_back(n, v);
    auto again = ev::from_binary(views, event->data.value_or(""));
    if (!again.ok()) std::abort();
    // An empty body is no data, so an event whose data was empty reads back without.
    dispatch::CloudEvent expected = *event;
    if (expected.data && expected.data->empty()) expected.data.reset();
    if (!(*again == expected)) std::abort();
  }
  for (const auto& [name, value] : headers) {
    auto decoded = ev::decode_header_value(value);
    if (decoded.ok()) {
      auto round = ev::decode_header_value(ev::percent_encode(*decoded));
      if (!round.ok() || *round != *decoded) std::abort();
    }
  }
  return 0;
}
