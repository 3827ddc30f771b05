// libFuzzer target: the generated decoders of every message of the
// generator's every-mapped-type header (tests/generated/types/api.h: all
// scalars, strings, bytes, optionals, vectors, maps, enums, chrono types,
// variants, nested and recursive structs). See fuzz_decoders.h for what is checked.
// Input: one byte choosing the message type (index below, modulo the count),
// then the bytes to decode.
#include "api.dispatch.h"
#include "fuzz_decoders.h"

namespace {

struct Codec {
  template <typename T>
  static dispatch::Result<void> decode(std::string_view bytes, T* value) {
    return types::api_wire::decode(bytes, value);
  }
  template <typename T>
  static std::string encode(const T& value) {
    return types::api_wire::encode(value);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace r = types::remote;
  return dispatch::fuzz::run<Codec,
                             types::Scalars, types::Inner, types::Containers, types::Times,  // 0-3
                             r::EchoScalarsRequest, r::EchoScalarsResponse,                   // 4 5
                             r::EchoContainersRequest, r::EchoContainersResponse,             // 6 7
                             r::EchoTimesRequest, r::EchoTimesResponse,                       // 8 9
                             r::EchoBytesRequest, r::EchoBytesResponse,                       // 10 11
                             r::MaybeRequest, r::MaybeResponse,                               // 12 13
                             r::GroupRequest, r::GroupResponse,                               // 14 15
                             r::PingRequest, r::PingResponse,                                 // 16 17
                             types::Tree, types::Section, types::Doc,                         // 18-20
                             r::EchoTreeRequest, r::EchoTreeResponse,                         // 21 22
                             r::EchoDocRequest, r::EchoDocResponse,                           // 23 24
                             types::Defaults, types::HoldsDefaults,                           // 25 26
                             r::EchoDefaultsRequest, r::EchoDefaultsResponse,                 // 27 28
                             types::Seen, r::SeeViewsRequest, r::SeeViewsResponse,            // 29-31
                             types::Sets, r::EchoSetsRequest, r::EchoSetsResponse,            // 32-34
                             types::Shapes, r::EchoShapesRequest, r::EchoShapesResponse,      // 35-37
                             r::FlipRequest, r::FlipResponse>(data, size);                    // 38 39
}
