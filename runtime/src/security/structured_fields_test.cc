// RFC 8941 parser and serializer: the forms Signature-Input, Signature and
// Content-Digest use, each malformed form rejected with its reason, and
// round trips.
#include "dispatch/security/structured_fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dispatch::security::sf {
namespace {

using ::testing::HasSubstr;

std::string message_of(std::string_view input) {
  auto result = parse_dictionary(input);
  EXPECT_FALSE(result.ok()) << "accepted: " << input;
  return result.ok() ? "" : result.error().message();
}

TEST(StructuredFields, ParsesSignatureInput) {
  auto dict = parse_dictionary(
      R"(sig-b26=("date" "@method" "@path");created=1618884473;keyid="test-key-ed25519";alg="ed25519")");
  ASSERT_TRUE(dict.ok()) << dict.error().message();
  ASSERT_EQ(dict->size(), 1u);
  EXPECT_EQ((*dict)[0].first, "sig-b26");
  const auto& list = std::get<InnerList>((*dict)[0].second);
  ASSERT_EQ(list.items.size(), 3u);
  EXPECT_EQ(std::get<std::string>(list.items[0].value), "date");
  EXPECT_EQ(std::get<std::string>(list.items[2].value), "@path");
  ASSERT_EQ(list.params.size(), 3u);
  EXPECT_EQ(std::get<int64_t>(*find(list.params, "created")), 1618884473);
  EXPECT_EQ(std::get<std::string>(*find(list.params, "keyid")), "test-key-ed25519");
}

TEST(StructuredFields, ParsesByteSequencesAndSeveralMembers) {
  auto dict = parse_dictionary("sha-256=:aGVsbG8=:,  sha-512=:d29ybGQ=:");
  ASSERT_TRUE(dict.ok()) << dict.error().message();
  ASSERT_EQ(dict->size(), 2u);
  EXPECT_EQ(std::get<ByteSequence>(std::get<Item>((*dict)[0].second).value).bytes, "hello");
  EXPECT_EQ(std::get<ByteSequence>(std::get<Item>((*dict)[1].second).value).bytes, "world");
}

TEST(StructuredFields, ParsesEveryBareItemType) {
  auto dict = parse_dictionary(
      R"(a=1, b=-42, c=4.5, d="x\"y\\z", e=tok/en:1, f=:AQID:, g=?0, h, i=("x" 2);p;q=?1)");
  ASSERT_TRUE(dict.ok()) << dict.error().message();
  EXPECT_EQ(std::get<int64_t>(std::get<Item>(*find(*dict, "a")).value), 1);
  EXPECT_EQ(std::get<int64_t>(std::get<Item>(*find(*dict, "b")).value), -42);
  EXPECT_DOUBLE_EQ(std::get<double>(std::get<Item>(*find(*dict, "c")).value), 4.5);
  EXPECT_EQ(std::get<std::string>(std::get<Item>(*find(*dict, "d")).value), "x\"y\\z");
  EXPECT_EQ(std::get<Token>(std::get<Item>(*find(*dict, "e")).value).value, "tok/en:1");
  EXPECT_EQ(std::get<ByteSequence>(std::get<Item>(*find(*dict, "f")).value).bytes,
            std::string("\x01\x02\x03"));
  EXPECT_EQ(std::get<bool>(std::get<Item>(*find(*dict, "g")).value), false);
  EXPECT_EQ(std::get<bool>(std::get<Item>(*find(*dict, "h")).value), true);
  const auto& i = std::get<InnerList>(*find(*dict, "i"));
  EXPECT_EQ(i.items.size(), 2u);
  EXPECT_EQ(std::get<bool>(*find(i.params, "p")), true);
}

TEST(StructuredFields, DuplicateKeyOverwritesInPlace) {
  auto dict = parse_dictionary("a=1, b=2, a=3");
  ASSERT_TRUE(dict.ok());
  ASSERT_EQ(dict->size(), 2u);
  EXPECT_EQ((*dict)[0].first, "a");
  EXPECT_EQ(std::get<int64_t>(std::get<Item>((*dict)[0].second).value), 3);
}

TEST(StructuredFields, AcceptsUnpaddedBase64AndSurroundingSpaces) {
  auto dict = parse_dictionary("  a=:aGk:  ");
  ASSERT_TRUE(dict.ok()) << dict.error().message();
  EXPECT_EQ(std::get<ByteSequence>(std::get<Item>((*dict)[0].second).value).bytes, "hi");
}

TEST(StructuredFields, EmptyFieldIsEmptyDictionary) {
  auto dict = parse_dictionary("");
  ASSERT_TRUE(dict.ok());
  EXPECT_TRUE(dict->empty());
}

TEST(StructuredFields, RejectsEachMalformedForm) {
  EXPECT_THAT(message_of("a=1,"), HasSubstr("trailing ','"));
  EXPECT_THAT(message_of("a=1;"), HasSubstr("expected a key"));
  EXPECT_THAT(message_of("a=1 b=2"), HasSubstr("expected ','"));
  EXPECT_THAT(message_of("A=1"), HasSubstr("expected a key"));
  EXPECT_THAT(message_of("1a=1"), HasSubstr("expected a key"));
  EXPECT_THAT(message_of("a=("), HasSubstr("inner list is not closed"));
  EXPECT_THAT(message_of("a=(\"x\" "), HasSubstr("expected an item, found end of input"));
  EXPECT_THAT(message_of("a=(\"x\""), HasSubstr("expected ' ' or ')'"));
  EXPECT_THAT(message_of("a=(\"x\"\"y\")"), HasSubstr("expected ' ' or ')'"));
  EXPECT_THAT(message_of("a=\"unterminated"), HasSubstr("not closed"));
  EXPECT_THAT(message_of("a=\"bad\\n\""), HasSubstr("escaped"));
  EXPECT_THAT(message_of("a=\"tab\there\""), HasSubstr("outside 0x20-0x7e"));
  EXPECT_THAT(message_of("a=:aGk="), HasSubstr("not closed"));
  EXPECT_THAT(message_of("a=:a$Gk=:"), HasSubstr("not a base64 character"));
  EXPECT_THAT(message_of("a=:aG=k:"), HasSubstr("not valid base64"));
  EXPECT_THAT(message_of("a=?2"), HasSubstr("'0' or '1'"));
  EXPECT_THAT(message_of("a=-"), HasSubstr("digit"));
  EXPECT_THAT(message_of("a=1234567890123456"), HasSubstr("more than 15 digits"));
  EXPECT_THAT(message_of("a=1.2345"), HasSubstr("3 fractional"));
  EXPECT_THAT(message_of("a=1."), HasSubstr("ends with '.'"));
  EXPECT_THAT(message_of("a=1234567890123.5"), HasSubstr("12 integer digits"));
  EXPECT_THAT(message_of("a=@x"), HasSubstr("expected an item"));
  EXPECT_THAT(message_of("a=(1 2) x"), HasSubstr("expected ','"));
  EXPECT_THAT(message_of("a=1 )"), HasSubstr("expected ','"));
  EXPECT_THAT(message_of("a=\"caf\xc3\xa9\""), HasSubstr("non-ASCII"));
  EXPECT_THAT(message_of("a="), HasSubstr("end of input"));
}

TEST(StructuredFields, ErrorsNameTheOffset) {
  EXPECT_THAT(message_of("abc=1 x"), HasSubstr("at offset 6"));
}

TEST(StructuredFields, ParsesItems) {
  auto item = parse_item("\"@method\";req");
  ASSERT_TRUE(item.ok());
  EXPECT_EQ(std::get<std::string>(item->value), "@method");
  EXPECT_EQ(item->params.size(), 1u);
  EXPECT_FALSE(parse_item("\"a\" \"b\"").ok());
}

TEST(StructuredFields, SerializesCanonically) {
  Dictionary dict;
  InnerList list;
  list.items.push_back(Item{std::string("@method"), {}});
  list.items.push_back(Item{std::string("content-digest"), {}});
  list.params = {{"created", int64_t{1618884473}}, {"keyid", std::string("k\"1")}};
  dict.emplace_back("sig", list);
  dict.emplace_back("d", Item{ByteSequence{"hi"}, {}});
  dict.emplace_back("flag", Item{true, {{"x", Token{"y"}}}});
  dict.emplace_back("n", Item{2.5, {}});
  auto text = serialize_dictionary(dict);
  ASSERT_TRUE(text.ok()) << text.error().message();
  EXPECT_EQ(*text,
            R"(sig=("@method" "content-digest");created=1618884473;keyid="k\"1", d=:aGk=:, flag;x=y, n=2.5)");
  auto again = parse_dictionary(*text);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(serialize_dictionary(*again).value(), *text);
}

TEST(StructuredFields, SerializerRejectsUnrepresentableValues) {
  EXPECT_FALSE(serialize_bare_item(int64_t{1'000'000'000'000'000}).ok());
  EXPECT_FALSE(serialize_bare_item(std::string("line\nbreak")).ok());
  EXPECT_FALSE(serialize_bare_item(Token{"1abc"}).ok());
  EXPECT_FALSE(serialize_dictionary({{"Upper", Item{int64_t{1}, {}}}}).ok());
  EXPECT_EQ(serialize_bare_item(1.0).value(), "1.0");
  EXPECT_EQ(serialize_bare_item(1.23456).value(), "1.235");
}

}  // namespace
}  // namespace dispatch::security::sf
