// Plain types the warehouse's annotated headers share; not annotated itself,
// so nothing is generated for it: each header's messages carry what it uses.
#pragma once
#include <cstdint>
#include <string>
namespace wh {
struct Sku { std::string code; int32_t qty; };
}
