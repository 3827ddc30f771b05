// acme/x.h generated where its spelling says (acme/x.dispatch.h under the
// output directory), served and called in process.
#include <gtest/gtest.h>

#include "acme/x.dispatch.h"
#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"

namespace {

TEST(IncludeLayout, TheHeaderGeneratedUnderItsSpellingServesCalls) {
  dispatch::DispatchTable table{&acme::remote::x_service()};
  dispatch::InProcessClient client(table);
  acme::Label label = acme::remote::stamp(client, "fragile", 3);
  EXPECT_EQ(label.text, "[fragile]");
  EXPECT_EQ(label.copies, 6);
}

}  // namespace
