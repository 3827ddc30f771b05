// The metrics layer's public header compiles as C++17 (this target is built
// with CXX_STANDARD 17): users on 17 pass a Registry to their servers.
#include <gtest/gtest.h>

#include "dispatch/metrics/registry.h"

namespace {

TEST(MetricsHeadersCxx17, ARegistryCountsAndExposes) {
  static_assert(__cplusplus < 202002L, "this test must be compiled as C++17");
  dispatch::metrics::Registry registry;
  registry.counter("things_total", "Things.").inc();
  EXPECT_NE(registry.expose().find("things_total 1\n"), std::string::npos);
}

}  // namespace
