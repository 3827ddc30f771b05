// libFuzzer target: the RFC 8941 parsers must never crash, and whatever they
// accept must serialize and re-parse to the same serialization.
// Build: cmake -DDISPATCH_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 ...
// Seeds: tests/fuzz/corpus/fuzz_structured_fields/.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dispatch/security/structured_fields.h"

using namespace dispatch::security;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto dict = sf::parse_dictionary(input)) {
    auto text = sf::serialize_dictionary(*dict);
    if (!text) std::abort();  // parsed values are always serializable
    auto again = sf::parse_dictionary(*text);
    if (!again) std::abort();
    auto text2 = sf::serialize_dictionary(*again);
    if (!text2 || *text2 != *text) std::abort();
  }
  if (auto item = sf::parse_item(input)) {
    auto text = sf::serialize_item(*item);
    if (!text) std::abort();
  }
  return 0;
}
