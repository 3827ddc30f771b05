// The warehouse's functions, including their headers as the library's users do.
#include "wh/admin/audit.h"
#include "wh/warehouse.h"

namespace wh {
int32_t stock(const std::string& code) { return static_cast<int32_t>(code.size()); }
std::vector<Sku> restock(const std::vector<Sku>& items, int32_t extra) {
  std::vector<Sku> out = items;
  for (Sku& s : out) s.qty += extra;
  return out;
}
}  // namespace wh

namespace wh::admin {
Entry record(const std::string& who, const Sku& sku) { return Entry{who, sku}; }
}  // namespace wh::admin
