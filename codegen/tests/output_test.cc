// File output: rewrite only on change, and Make escaping in depfiles.
#include "output.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace dispatch::gen::testing {
namespace {

TEST(Output, WritesOnlyWhenContentChanges) {
  TempDir dir;
  std::filesystem::path p = dir.path() / "sub" / "x.proto";
  EXPECT_TRUE(write_if_changed(p, "one"));
  EXPECT_EQ(read_file(p), "one");
  EXPECT_FALSE(write_if_changed(p, "one"));
  EXPECT_TRUE(write_if_changed(p, "two"));
  EXPECT_EQ(read_file(p), "two");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "sub" / "x.proto.tmp"));
}

TEST(Output, UnwritablePathIsAnErrorNamingIt) {
  TempDir dir;
  dir.write("file", "x");
  try {
    write_if_changed(dir.path() / "file" / "below", "y");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("file"), std::string::npos) << e.what();
  }
}

TEST(Output, MakeEscaping) {
  EXPECT_EQ(escape_for_make("a b#c$d"), "a\\ b\\#c$$d");
  EXPECT_EQ(make_depfile("out/api.h", {"my dir/api.h", "/usr/include/c++/12/vector"}),
            "out/api.h: \\\n  my\\ dir/api.h \\\n  /usr/include/c++/12/vector\n");
}

}  // namespace
}  // namespace dispatch::gen::testing
