// RFC 8941 Structured Field Values: the strict parsers and serializers that
// Signature-Input (a dictionary of inner lists with parameters), Signature and
// Content-Digest (dictionaries of byte sequences) need. Pure functions over
// strings, following RFC 8941 section 4.2's algorithms step by step, so that
// a header either parses exactly as the RFC says or is rejected with a
// message naming the offending character.
//
// Not for: Lists and the RFC 9651 additions (dates, display strings); HTTP
// header handling (the caller combines repeated header lines with ", ").
// Public header: compiles as C++17 and C++20.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "dispatch/core/result.h"

namespace dispatch::security::sf {

// A Token bare item (e.g. `sha-512` without quotes), kept apart from String.
struct Token {
  std::string value;
  friend bool operator==(const Token& a, const Token& b) { return a.value == b.value; }
};
// A Byte Sequence bare item, holding the decoded bytes (`:aGk=:` -> "hi").
struct ByteSequence {
  std::string bytes;
  friend bool operator==(const ByteSequence& a, const ByteSequence& b) {
    return a.bytes == b.bytes;
  }
};

// Integer, Decimal, String, Token, Byte Sequence or Boolean.
using BareItem = std::variant<int64_t, double, std::string, Token, ByteSequence, bool>;
// Ordered; a repeated key overwrites the earlier value in place (RFC 8941 4.2.3.2).
using Parameters = std::vector<std::pair<std::string, BareItem>>;

struct Item {
  BareItem value;
  Parameters params;
};
struct InnerList {
  std::vector<Item> items;
  Parameters params;
};
using Member = std::variant<Item, InnerList>;
// Ordered; a repeated key overwrites the earlier member in place (4.2.2).
using Dictionary = std::vector<std::pair<std::string, Member>>;

// Parse a whole field value. Errors are invalid_argument and say what was
// expected at which offset, e.g. "structured field: at offset 7: expected ','".
Result<Dictionary> parse_dictionary(std::string_view field_value);
Result<Item> parse_item(std::string_view field_value);

// Serializers (RFC 8941 4.1). They fail (invalid_argument) only for values
// that cannot be serialized: an integer out of range, a string with a
// control character, a malformed key or token.
Result<std::string> serialize_dictionary(const Dictionary& dictionary);
Result<std::string> serialize_item(const Item& item);
Result<std::string> serialize_inner_list(const InnerList& list);
Result<std::string> serialize_bare_item(const BareItem& item);

// Lookup helpers: the last value for `key`, or nullptr.
const Member* find(const Dictionary& dictionary, std::string_view key);
const BareItem* find(const Parameters& params, std::string_view key);

}  // namespace dispatch::security::sf
