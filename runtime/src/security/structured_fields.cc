// RFC 8941 parsing (section 4.2) and serialization (section 4.1). The parser
// mirrors the RFC's algorithms one function each, in the RFC's order, so a
// reviewer can check it line by line against the text.
#include "dispatch/security/structured_fields.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "security/base64.h"

namespace dispatch::security::sf {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lcalpha(char c) { return c >= 'a' && c <= 'z'; }
bool is_alpha(char c) { return is_lcalpha(c) || (c >= 'A' && c <= 'Z'); }
// RFC 9110 tchar.
bool is_tchar(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}
bool is_key_char(char c) {
  return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '*';
}

std::string describe(char c) {
  if (c >= 0x21 && c <= 0x7e) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(c));
  return buf;
}

template <typename Map, typename Value>
void put(Map& map, std::string key, Value value) {
  for (auto& entry : map) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  map.emplace_back(std::move(key), std::move(value));
}

// A cursor over the field value; every failure records the offset.
class Parser {
 public:
  explicit Parser(std::string_view input) : input_(input) {}

  bool empty() const { return pos_ >= input_.size(); }
  char peek() const { return input_[pos_]; }
  char consume() { return input_[pos_++]; }
  void discard_sp() {
    while (!empty() && peek() == ' ') ++pos_;
  }
  void discard_ows() {
    while (!empty() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }

  Error fail(std::string_view what) const {
    return Error(Code::invalid_argument,
                 "structured field: at offset " + std::to_string(pos_) + ": " + std::string(what));
  }
  Error fail_at_char(std::string_view expected) const {
    if (empty()) return fail(std::string(expected) + ", found end of input");
    return fail(std::string(expected) + ", found " + describe(peek()));
  }

  // Top level (4.2): ASCII only, leading and trailing SP discarded.
  Result<void> check_ascii() const {
    for (size_t i = 0; i < input_.size(); ++i) {
      if (static_cast<unsigned char>(input_[i]) > 0x7f) {
        return Error(Code::invalid_argument, "structured field: at offset " + std::to_string(i) +
                                                 ": non-ASCII byte " + describe(input_[i]));
      }
    }
    return {};
  }

  // 4.2.2 Parsing a Dictionary.
  Result<Dictionary> dictionary() {
    Dictionary dict;
    while (!empty()) {
      auto key = this->key();
      if (!key) return std::move(key).error();
      Member member;
      if (!empty() && peek() == '=') {
        consume();
        auto value = item_or_inner_list();
        if (!value) return std::move(value).error();
        member = std::move(*value);
      } else {
        auto params = parameters();
        if (!params) return std::move(params).error();
        member = Item{true, std::move(*params)};
      }
      put(dict, std::move(*key), std::move(member));
      discard_ows();
      if (empty()) return dict;
      if (peek() != ',') return fail_at_char("expected ',' between dictionary members");
      consume();
      discard_ows();
      if (empty()) return fail("trailing ',' after the last dictionary member");
    }
    return dict;
  }

  // 4.2.1.1 Parsing an Item or Inner List.
  Result<Member> item_or_inner_list() {
    if (!empty() && peek() == '(') {
      auto list = inner_list();
      if (!list) return std::move(list).error();
      return Member(std::move(*list));
    }
    auto item = this->item();
    if (!item) return std::move(item).error();
    return Member(std::move(*item));
  }

  // 4.2.1.2 Parsing an Inner List.
  Result<InnerList> inner_list() {
    consume();  // '('
    InnerList list;
    while (!empty()) {
      discard_sp();
      if (!empty() && peek() == ')') {
        consume();
        auto params = parameters();
        if (!params) return std::move(params).error();
        list.params = std::move(*params);
        return list;
      }
      auto item = this->item();
      if (!item) return std::move(item).error();
      list.items.push_back(std::move(*item));
      if (empty() || (peek() != ' ' && peek() != ')')) {
        return fail_at_char("expected ' ' or ')' after an inner list member");
      }
    }
    return fail("inner list is not closed with ')'");
  }

  // 4.2.3 Parsing an Item.
  Result<Item> item() {
    auto value = bare_item();
    if (!value) return std::move(value).error();
    auto params = parameters();
    if (!params) return std::move(params).error();
    return Item{std::move(*value), std::move(*params)};
  }

  // 4.2.3.1 Parsing a Bare Item.
  Result<BareItem> bare_item() {
    if (empty()) return fail("expected an item, found end of input");
    const char c = peek();
    if (c == '-' || is_digit(c)) return integer_or_decimal();
    if (c == '"') return string();
    if (c == '*' || is_alpha(c)) return token();
    if (c == ':') return byte_sequence();
    if (c == '?') return boolean();
    return fail_at_char("expected an item");
  }

  // 4.2.3.2 Parsing Parameters.
  Result<Parameters> parameters() {
    Parameters params;
    while (!empty()) {
      if (peek() != ';') break;
      consume();
      discard_sp();
      auto key = this->key();
      if (!key) return std::move(key).error();
      BareItem value = true;
      if (!empty() && peek() == '=') {
        consume();
        auto bare = bare_item();
        if (!bare) return std::move(bare).error();
        value = std::move(*bare);
      }
      put(params, std::move(*key), std::move(value));
    }
    return params;
  }

  // 4.2.3.3 Parsing a Key.
  Result<std::string> key() {
    if (empty() || !(is_lcalpha(peek()) || peek() == '*')) {
      return fail_at_char("expected a key (lowercase letter or '*')");
    }
    std::string out;
    while (!empty() && is_key_char(peek())) out += consume();
    return out;
  }

  // 4.2.4 Parsing an Integer or Decimal.
  Result<BareItem> integer_or_decimal() {
    bool decimal = false;
    int64_t sign = 1;
    std::string number;
    if (peek() == '-') {
      consume();
      sign = -1;
    }
    if (empty()) return fail("expected a digit after '-', found end of input");
    if (!is_digit(peek())) return fail_at_char("expected a digit");
    while (!empty()) {
      const char c = peek();
      if (is_digit(c)) {
        number += consume();
      } else if (!decimal && c == '.') {
        if (number.size() > 12) return fail("decimal has more than 12 integer digits");
        number += consume();
        decimal = true;
      } else {
        break;
      }
      if (!decimal && number.size() > 15) return fail("integer has more than 15 digits");
      if (decimal && number.size() > 16) return fail("decimal has more than 16 characters");
    }
    // from_chars: locale-independent (strtod would read "4,5" under some locales).
    if (!decimal) {
      int64_t value = 0;
      std::from_chars(number.data(), number.data() + number.size(), value);
      return BareItem(sign * value);
    }
    if (number.back() == '.') return fail("decimal ends with '.'");
    if (number.size() - number.find('.') - 1 > 3) {
      return fail("decimal has more than 3 fractional digits");
    }
    double value = 0;
    std::from_chars(number.data(), number.data() + number.size(), value);
    return BareItem(static_cast<double>(sign) * value);
  }

  // 4.2.5 Parsing a String.
  Result<BareItem> string() {
    consume();  // '"'
    std::string out;
    while (!empty()) {
      const char c = consume();
      if (c == '\\') {
        if (empty()) return fail("string ends inside an escape");
        const char next = consume();
        if (next != '"' && next != '\\') {
          --pos_;
          return fail_at_char("only '\"' and '\\' may be escaped in a string; escaped");
        }
        out += next;
      } else if (c == '"') {
        return BareItem(std::move(out));
      } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        --pos_;
        return fail_at_char("string holds a character outside 0x20-0x7e:");
      } else {
        out += c;
      }
    }
    return fail("string is not closed with '\"'");
  }

  // 4.2.6 Parsing a Token.
  Result<BareItem> token() {
    std::string out(1, consume());
    while (!empty() && (is_tchar(peek()) || peek() == ':' || peek() == '/')) out += consume();
    return BareItem(Token{std::move(out)});
  }

  // 4.2.7 Parsing a Byte Sequence.
  Result<BareItem> byte_sequence() {
    consume();  // ':'
    const size_t close = input_.find(':', pos_);
    if (close == std::string_view::npos) return fail("byte sequence is not closed with ':'");
    const std::string_view b64 = input_.substr(pos_, close - pos_);
    for (char c : b64) {
      if (!detail::is_base64_char(c)) {
        return fail("byte sequence holds " + describe(c) + ", not a base64 character");
      }
    }
    auto bytes = detail::base64_decode(b64);
    if (!bytes) return fail("byte sequence is not valid base64");
    pos_ = close + 1;
    return BareItem(ByteSequence{std::move(*bytes)});
  }

  // 4.2.8 Parsing a Boolean.
  Result<BareItem> boolean() {
    consume();  // '?'
    if (!empty() && peek() == '1') {
      consume();
      return BareItem(true);
    }
    if (!empty() && peek() == '0') {
      consume();
      return BareItem(false);
    }
    return fail_at_char("expected '0' or '1' after '?'");
  }

 private:
  std::string_view input_;
  size_t pos_ = 0;
};

Error serialize_error(std::string what) {
  return Error(Code::invalid_argument, "structured field: cannot serialize " + what);
}

Result<void> append_key(std::string& out, std::string_view key) {
  if (key.empty() || !(is_lcalpha(key[0]) || key[0] == '*')) {
    return serialize_error("key '" + std::string(key) + "': must start with a-z or '*'");
  }
  for (char c : key) {
    if (!is_key_char(c)) return serialize_error("key '" + std::string(key) + "': bad character");
  }
  out += key;
  return {};
}

Result<void> append_bare_item(std::string& out, const BareItem& item);

Result<void> append_params(std::string& out, const Parameters& params) {
  for (const auto& [key, value] : params) {
    out += ';';
    if (auto ok = append_key(out, key); !ok) return ok;
    const bool* flag = std::get_if<bool>(&value);
    if (flag && *flag) continue;
    out += '=';
    if (auto ok = append_bare_item(out, value); !ok) return ok;
  }
  return {};
}

Result<void> append_item(std::string& out, const Item& item) {
  if (auto ok = append_bare_item(out, item.value); !ok) return ok;
  return append_params(out, item.params);
}

Result<void> append_inner_list(std::string& out, const InnerList& list) {
  out += '(';
  for (size_t i = 0; i < list.items.size(); ++i) {
    if (i) out += ' ';
    if (auto ok = append_item(out, list.items[i]); !ok) return ok;
  }
  out += ')';
  return append_params(out, list.params);
}

Result<void> append_bare_item(std::string& out, const BareItem& item) {
  if (const auto* i = std::get_if<int64_t>(&item)) {
    if (*i < -999'999'999'999'999 || *i > 999'999'999'999'999) {
      return serialize_error("integer " + std::to_string(*i) + ": out of range");
    }
    out += std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&item)) {
    // 4.1.5: round to three fractional digits (half to even), at most 12
    // integer digits, at least one fractional digit.
    const double rounded = std::nearbyint(*d * 1000.0) / 1000.0;
    if (!std::isfinite(rounded) || std::fabs(rounded) >= 1e12) {
      return serialize_error("decimal: out of range");
    }
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof buf, rounded, std::chars_format::fixed, 3).ptr;
    std::string text(buf, end);
    while (text.back() == '0' && text[text.size() - 2] != '.') text.pop_back();
    if (text == "-0.0") text = "0.0";
    out += text;
  } else if (const auto* s = std::get_if<std::string>(&item)) {
    out += '"';
    for (char c : *s) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        return serialize_error("string: character " + describe(c) + " is outside 0x20-0x7e");
      }
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  } else if (const auto* t = std::get_if<Token>(&item)) {
    const std::string& v = t->value;
    if (v.empty() || !(is_alpha(v[0]) || v[0] == '*')) {
      return serialize_error("token '" + v + "': must start with a letter or '*'");
    }
    for (char c : v) {
      if (!(is_tchar(c) || c == ':' || c == '/')) {
        return serialize_error("token '" + v + "': bad character " + describe(c));
      }
    }
    out += v;
  } else if (const auto* b = std::get_if<ByteSequence>(&item)) {
    out += ':';
    out += detail::base64_encode(b->bytes);
    out += ':';
  } else {
    out += std::get<bool>(item) ? "?1" : "?0";
  }
  return {};
}

}  // namespace

Result<Dictionary> parse_dictionary(std::string_view field_value) {
  Parser parser(field_value);
  if (auto ok = parser.check_ascii(); !ok) return std::move(ok).error();
  parser.discard_sp();
  auto dict = parser.dictionary();
  if (!dict) return dict;
  parser.discard_sp();
  if (!parser.empty()) return parser.fail_at_char("expected end of input");
  return dict;
}

Result<Item> parse_item(std::string_view field_value) {
  Parser parser(field_value);
  if (auto ok = parser.check_ascii(); !ok) return std::move(ok).error();
  parser.discard_sp();
  auto item = parser.item();
  if (!item) return item;
  parser.discard_sp();
  if (!parser.empty()) return parser.fail_at_char("expected end of input");
  return item;
}

Result<std::string> serialize_dictionary(const Dictionary& dictionary) {
  std::string out;
  for (size_t i = 0; i < dictionary.size(); ++i) {
    if (i) out += ", ";
    const auto& [key, member] = dictionary[i];
    if (auto ok = append_key(out, key); !ok) return std::move(ok).error();
    if (const auto* item = std::get_if<Item>(&member)) {
      const bool* flag = std::get_if<bool>(&item->value);
      if (flag && *flag) {
        if (auto ok = append_params(out, item->params); !ok) return std::move(ok).error();
        continue;
      }
      out += '=';
      if (auto ok = append_item(out, *item); !ok) return std::move(ok).error();
    } else {
      out += '=';
      if (auto ok = append_inner_list(out, std::get<InnerList>(member)); !ok) {
        return std::move(ok).error();
      }
    }
  }
  return out;
}

Result<std::string> serialize_item(const Item& item) {
  std::string out;
  if (auto ok = append_item(out, item); !ok) return std::move(ok).error();
  return out;
}

Result<std::string> serialize_inner_list(const InnerList& list) {
  std::string out;
  if (auto ok = append_inner_list(out, list); !ok) return std::move(ok).error();
  return out;
}

Result<std::string> serialize_bare_item(const BareItem& item) {
  std::string out;
  if (auto ok = append_bare_item(out, item); !ok) return std::move(ok).error();
  return out;
}

const Member* find(const Dictionary& dictionary, std::string_view key) {
  for (const auto& entry : dictionary) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

const BareItem* find(const Parameters& params, std::string_view key) {
  for (const auto& entry : params) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

}  // namespace dispatch::security::sf
