// Serves shop/api.h in process and calls it through the generated stubs.
#include <cstdio>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "shop/api.dispatch.h"

int main() {
  dispatch::DispatchTable table{&shop::remote::api_service()};
  dispatch::InProcessClient client(table);
  std::int64_t sum = shop::remote::add(client, 40, 2);
  shop::Order order = shop::remote::place_order(client, {{"sku", 1, 2.5}}, "ann");
  std::printf("add=%lld order=%s items=%zu\n", static_cast<long long>(sum), order.id.c_str(),
              order.items.size());
  return sum == 42 && order.id == "ann" && order.items.size() == 1 ? 0 : 1;
}
