// libFuzzer target: JsonCodec's fast path against protobuf's JSON utilities
// on arbitrary bytes, both ways. The first byte picks the direction, the
// message type and print_defaults; the rest is JSON text or wire bytes.
// Whatever the fast path answers must be what protobuf answers: the same
// message (to_binary) or the same text byte for byte (to_json). A decline
// is always allowed, and then the codec's long way (protobuf's printer
// behind a parse) must answer without hanging or crashing. What the fast
// path takes, the long way's JSON check (json_check.h) must take too.
//
// Not for: protobuf's own errors (declined input goes there unchanged).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "transport/json_check.h"
#include "transport/json_fast_test_support.h"

namespace {

const dispatch::connect::testing::JsonFastRig& rig() {
  static const auto* const instance = new dispatch::connect::testing::JsonFastRig();
  return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* const kTypes[] = {"jf.All", "jf.Child", "jf.Tick", "jf.All.MI32Entry"};
  const std::uint8_t mode = data[0];
  const std::string type = kTypes[(mode >> 2) & 3];
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((mode & 1) == 0) {
    const auto fast = rig().fast().to_binary(type, input);
    if (!fast) {
      (void)rig().codec().to_binary(type, input);  // the long way: protobuf's parser
      return 0;
    }
    const auto expected = rig().protobuf_to_binary(type, input);
    if (!expected || !rig().same_message(type, *fast, *expected)) std::abort();
    // The slow path's check must take whatever the fast path takes.
    if (dispatch::connect::detail::json_request_problem(input, *rig().type(type))) std::abort();
  } else {
    const bool defaults = (mode & 2) != 0;
    const auto fast = rig().fast().to_json(type, input, defaults);
    // protobuf's printer alone is only asked about bytes the fast path
    // took: on some damaged bytes it never returns. Bytes it declines go
    // the codec's long way, which must answer (parsed first, or refused).
    if (!fast) {
      (void)rig().codec().to_json(type, input, defaults);
      return 0;
    }
    const auto expected = rig().protobuf_to_json(type, input, defaults);
    if (!expected || *expected != *fast) std::abort();
  }
  return 0;
}
