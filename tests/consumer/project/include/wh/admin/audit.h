// A second annotated header of the same library, one directory deeper
// ("wh/admin/audit.h"), using a struct of the plain header wh/types.h.
#pragma once
#include <string>
#include "wh/types.h"
namespace wh::admin {
struct Entry { std::string who; Sku sku; };
[[dispatch::function]] Entry record(const std::string& who, const Sku& sku);
}
