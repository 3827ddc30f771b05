// Deprecated functions and fields still travel: the generated code encodes,
// decodes and serves them (and compiles without deprecation warnings under
// -Werror, which building this test checks).
#include <gtest/gtest.h>

// This test uses the deprecated names on purpose.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include "deprecated/api.dispatch.h"
#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"

namespace {

TEST(Deprecated, FunctionsAndFieldsStillTravel) {
  dispatch::DispatchTable table{&accounts::remote::api_service()};
  dispatch::InProcessClient client{table};
  accounts::Account a{"acc-1", 42, 7, "north"};
  EXPECT_EQ(accounts::remote::open(client, a), 42);
  EXPECT_EQ(accounts::remote::open_v2(client, a), 7);
  accounts::Account back = accounts::remote::rename(client, a, "acc-2");
  EXPECT_EQ(back.id, "acc-2");
  EXPECT_EQ(back.number, 42);
  EXPECT_EQ(back.balance, 7);
  EXPECT_EQ(back.branch, "north");
}

}  // namespace
#pragma GCC diagnostic pop
