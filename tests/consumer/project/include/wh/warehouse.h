// A library's public header laid out the usual way: under include/, with
// include/ as the include directory, so code includes it as "wh/warehouse.h".
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "wh/types.h"
namespace wh {
[[dispatch::function]] int32_t stock(const std::string& code);
[[dispatch::function]] std::vector<Sku> restock(const std::vector<Sku>& items, int32_t extra);
}
