// Serves include/wh/warehouse.h and include/wh/admin/audit.h, generated into
// one target, in process and calls both through the generated stubs, which
// it includes by the headers' own spelling plus ".dispatch".
#include <cstdio>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "wh/admin/audit.dispatch.h"
#include "wh/warehouse.dispatch.h"

int main() {
  dispatch::DispatchTable table{&wh::remote::warehouse_service(), &wh::admin::remote::audit_service()};
  dispatch::InProcessClient client(table);
  std::int32_t stock = wh::remote::stock(client, "bolt");
  std::vector<wh::Sku> restocked = wh::remote::restock(client, {{"bolt", 1}, {"nut", 5}}, 10);
  wh::admin::Entry entry = wh::admin::remote::record(client, "ann", wh::Sku{"nut", 7});
  std::printf("stock=%d restocked=%zu entry=%s/%s/%d\n", stock, restocked.size(), entry.who.c_str(),
              entry.sku.code.c_str(), entry.sku.qty);
  bool ok = stock == 4 && restocked.size() == 2 && restocked[0].qty == 11 && restocked[1].code == "nut" &&
            restocked[1].qty == 15 && entry.who == "ann" && entry.sku.code == "nut" && entry.sku.qty == 7;
  return ok ? 0 : 1;
}
