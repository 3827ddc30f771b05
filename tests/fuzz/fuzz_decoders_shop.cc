// libFuzzer target: the generated decoders of every message of the shop
// example (examples/shop/api.h). See fuzz_decoders.h for what is checked.
// Input: one byte choosing the message type (index below, modulo the count),
// then the bytes to decode.
#include "api.dispatch.h"
#include "fuzz_decoders.h"

namespace {

struct Codec {
  template <typename T>
  static dispatch::Result<void> decode(std::string_view bytes, T* value) {
    return shop::api_wire::decode(bytes, value);
  }
  template <typename T>
  static std::string encode(const T& value) {
    return shop::api_wire::encode(value);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace r = shop::remote;
  return dispatch::fuzz::run<Codec,
                             shop::Item, shop::Order,                              // 0 1
                             r::AddRequest, r::AddResponse,                        // 2 3
                             r::PlaceOrderRequest, r::PlaceOrderResponse,          // 4 5
                             r::ChargeV2Request, r::ChargeV2Response,              // 6 7
                             r::GetOrderRequest, r::GetOrderResponse,              // 8 9
                             r::SlowRequest, r::SlowResponse>(data, size);         // 10 11
}
