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

// A header stem near the file system's name limit: the longest generated
// name fails. Nothing is written then, not even the names that would fit,
// and no ".tmp" is left behind.
TEST(Output, AFileThatCannotBeWrittenLeavesEveryFileAsItWas) {
  TempDir dir;
  dir.write("kept.h", "old");
  const std::filesystem::path too_long = dir.path() / (std::string(300, 'n') + ".h");
  const std::vector<FileToWrite> files = {{dir.path() / "kept.h", "new"},
                                          {dir.path() / "sub" / "fresh.proto", "fresh"},
                                          {too_long, "never"}};
  try {
    write_all_if_changed(files);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::string(300, 'n')), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(dir.path() / "kept.h"), "old");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "sub" / "fresh.proto"));
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  }
  // Without the bad one, both are written, and a second run writes none.
  EXPECT_EQ(write_all_if_changed({files[0], files[1]}), 2u);
  EXPECT_EQ(read_file(dir.path() / "kept.h"), "new");
  EXPECT_EQ(read_file(dir.path() / "sub" / "fresh.proto"), "fresh");
  EXPECT_EQ(write_all_if_changed({files[0], files[1]}), 0u);
}

TEST(Output, MakeEscaping) {
  EXPECT_EQ(escape_for_make("a b#c$d"), "a\\ b\\#c$$d");
  EXPECT_EQ(make_depfile("out/api.h", {"my dir/api.h", "/usr/include/c++/12/vector"}),
            "out/api.h: \\\n  my\\ dir/api.h \\\n  /usr/include/c++/12/vector\n");
}

}  // namespace
}  // namespace dispatch::gen::testing
