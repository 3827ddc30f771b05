#include "transport/http_text.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace dispatch::transport {
namespace {

TEST(HttpText, TrimsSpacesAndTabsOnly) {
  EXPECT_EQ(trim_ows(" \t a b \t"), "a b");
  EXPECT_EQ(trim_ows("\r\na\n"), "\r\na\n");  // line breaks are not optional whitespace
  EXPECT_EQ(trim_ows("  "), "");
}

TEST(HttpText, ListItemsAreTrimmedAndEmptyOnesSkipped) {
  std::vector<std::string_view> seen;
  auto all = [&](std::string_view item) {
    seen.push_back(item);
    return false;
  };
  EXPECT_FALSE(find_list_item(" gzip ,\tbr;q=0.5,, ,identity", all));
  EXPECT_EQ(seen, (std::vector<std::string_view>{"gzip", "br;q=0.5", "identity"}));
  seen.clear();
  EXPECT_FALSE(find_list_item("", all));
  EXPECT_FALSE(find_list_item(" , ,", all));
  EXPECT_TRUE(seen.empty());
  // Stops at the first item `f` takes.
  EXPECT_TRUE(find_list_item("a,b,c", [&](std::string_view item) {
    seen.push_back(item);
    return item == "b";
  }));
  EXPECT_EQ(seen, (std::vector<std::string_view>{"a", "b"}));
  // Parameters: the same walk over ';'.
  seen.clear();
  EXPECT_FALSE(find_list_item(" charset=utf-8 ;; q=0,x ", all, ';'));
  EXPECT_EQ(seen, (std::vector<std::string_view>{"charset=utf-8", "q=0,x"}));
}

TEST(HttpText, HexDigitsHaveTheirValuesAndNothingElseHasOne) {
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const std::string digits = "0123456789abcdef", upper = "0123456789ABCDEF";
    const auto at = digits.find(c) != std::string::npos ? digits.find(c) : upper.find(c);
    EXPECT_EQ(hex_value(c), at == std::string::npos ? -1 : static_cast<int>(at)) << "byte " << b;
  }
}

TEST(HttpText, CaseIsFoldedForAsciiLettersOnly) {
  EXPECT_EQ(lowercase_ascii("Content-Digest"), "content-digest");
  EXPECT_EQ(lowercase_ascii("GRPC-Status-Details-Bin"), "grpc-status-details-bin");
  // Bytes past ASCII stay as they are, whatever the C locale would do.
  EXPECT_EQ(lowercase_ascii("X-\xC3\x89t\xC3\xA9"), "x-\xC3\x89t\xC3\xA9");
  EXPECT_EQ(lowercase_ascii("[@`{"), "[@`{");  // the neighbours of A-Z and a-z

  EXPECT_TRUE(iequals_ascii("Application/JSON", "application/json"));
  EXPECT_FALSE(iequals_ascii("application/json ", "application/json"));
  EXPECT_FALSE(iequals_ascii("\xC3\x89", "\xC3\xA9"));
  EXPECT_TRUE(istarts_with_ascii("Application/GRPC-Web+proto", "application/grpc"));
  EXPECT_FALSE(istarts_with_ascii("application/grp", "application/grpc"));
  EXPECT_FALSE(istarts_with_ascii("application/gRPC", "application/grpc-web"));
}

}  // namespace
}  // namespace dispatch::transport
