// Generated code and the runtime's public headers as C++17 (users' services
// are on 17 and 20): this file, shop's generated sources and the shop
// implementation are compiled with CXX_STANDARD 17 and exercise the stubs
// that exist there (no co()).
#include <gtest/gtest.h>

#if __cplusplus >= 202002L
#error "this test must be compiled as C++17"
#endif

#include "dispatch/core/awaitable.h"
#include "dispatch/core/client.h"
#include "dispatch/core/error.h"
#include "dispatch/core/in_process.h"
#include "dispatch/core/result.h"
#include "dispatch/core/service.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/wire/wire.h"
#include "dispatch/wire/wire_io.h"
#include "shop/api.dispatch.h"

namespace {

TEST(Cxx17, StubsWork) {
  dispatch::DispatchTable table{&shop::remote::api_service()};
  dispatch::InProcessClient client(table);
  EXPECT_EQ(shop::remote::add(client, 1, 2), 3);
  EXPECT_EQ(shop::remote::add.async(client, 3, 4).get(), 7);
  auto r = shop::remote::place_order.try_call(client, {}, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument);
  shop::Order order = shop::remote::place_order(client, {{"a", 2, 0.5}}, "x");
  EXPECT_EQ(order.tags, std::vector<int64_t>{2});
}

TEST(Cxx17, CodecsWork) {
  shop::Order order;
  order.id = "o";
  order.items = {{"a", 1, 2.0}};
  order.note = "";
  shop::Order out;
  ASSERT_TRUE(shop::api_wire::decode(shop::api_wire::encode(order), &out).ok());
  EXPECT_EQ(out.id, "o");
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].price, 2.0);
  EXPECT_EQ(out.note, std::optional<std::string>(""));
}

}  // namespace
