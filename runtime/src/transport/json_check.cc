// The JSON request check (see the header): nlohmann's SAX parser for the
// syntax, a walk beside it over the message's descriptor for the shapes.
#include "transport/json_check.h"

#include <google/protobuf/descriptor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace dispatch::connect::detail {
namespace {

namespace pb = google::protobuf;
using Json = nlohmann::json;

// JSON's number grammar (RFC 8259 6), which the mapping asks of a number
// given as a string.
bool is_json_number(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

bool is_integer(pb::FieldDescriptor::CppType t) {
  using T = pb::FieldDescriptor;
  return t == T::CPPTYPE_INT32 || t == T::CPPTYPE_INT64 || t == T::CPPTYPE_UINT32 || t == T::CPPTYPE_UINT64;
}

// Well-known types have JSON forms of their own (a Timestamp is a string,
// a Value anything, null included): protobuf's parser judges those.
bool well_known(const pb::Descriptor& d) { return d.file()->name().rfind("google/protobuf/", 0) == 0; }

// Objects and arrays nested deeper are refused, as protobuf's binary
// parser refuses messages nested deeper than 100. protobuf's JSON parser
// has no such limit, and its time grows with the square of the depth of a
// Struct or Value: 3,000 levels took 0.3 s here, the 100,000 a 200 KB body
// holds would take minutes of a core. An Any in any request (the Dispatch
// protocol's inputs) can hold a Value.
constexpr std::size_t kMaxNesting = 100;

class Check final : public nlohmann::json_sax<Json> {
 public:
  explicit Check(const pb::Descriptor& root) : root_(root) {}
  std::optional<std::string> problem;

  bool null() override { return scalar(Scalar::null, {}); }
  bool boolean(bool) override { return scalar(Scalar::other, {}); }
  bool number_integer(number_integer_t) override { return scalar(Scalar::other, {}); }
  bool number_unsigned(number_unsigned_t) override { return scalar(Scalar::other, {}); }
  bool number_float(number_float_t, const string_t&) override { return scalar(Scalar::other, {}); }
  bool string(string_t& s) override { return scalar(Scalar::string, s); }
  bool binary(binary_t&) override { return true; }

  bool start_object(std::size_t) override { return open(true); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    Frame& top = stack_.back();
    if (top.kind != Frame::in_message) return true;
    // The mapping's name (lowerCamelCase or json_name) or the proto name,
    // as protobuf's parser takes both; an unknown one: its value is skipped.
    top.field = nullptr;
    for (int i = 0; i < top.message->field_count() && top.field == nullptr; ++i) {
      const pb::FieldDescriptor* f = top.message->field(i);
      if (f->json_name() == k || f->name() == k) top.field = f;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ..."
    if (const auto bracket = what.find("] "); what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) {
      what.erase(0, bracket + 2);
    }
    problem = std::move(what);
    return false;
  }

 private:
  struct Frame {
    enum Kind { in_message, in_list, in_map, skipped } kind;
    const pb::Descriptor* message = nullptr;  // in_message: its type
    const pb::FieldDescriptor* field = nullptr;  // in_message: the key's field; in_list, in_map: theirs
    std::size_t depth = 0;  // skipped: containers open inside it
  };
  // What the next value is: a whole repeated or map field, one value of a
  // field's type (a singular field, a list element, a map value), or
  // something nobody here judges (an unknown field, inside a well-known type).
  struct Slot {
    enum As { whole, one, opaque } as = opaque;
    const pb::FieldDescriptor* field = nullptr;  // whose type the value has
    const pb::FieldDescriptor* named = nullptr;  // the field errors name (a map's own, not its value's)
    enum Within { alone, list, map } within = alone;
  };
  enum class Scalar { null, string, other };

  Slot slot() const {
    if (stack_.empty()) return {};
    const Frame& top = stack_.back();
    switch (top.kind) {
      case Frame::in_message:
        if (top.field == nullptr) return {};
        return {top.field->is_repeated() ? Slot::whole : Slot::one, top.field, top.field};
      case Frame::in_list:
        return {Slot::one, top.field, top.field, Slot::list};
      case Frame::in_map:
        return {Slot::one, top.field->message_type()->map_value(), top.field, Slot::map};
      case Frame::skipped:
        return {};
    }
    return {};
  }

  bool fail(std::string what) {
    problem = std::move(what);
    return false;
  }

  std::string name(const pb::FieldDescriptor& f) const { return "field '" + f.json_name() + "'"; }

  bool scalar(Scalar kind, std::string_view text) {
    const Slot s = slot();
    if (s.as == Slot::opaque) return true;
    const pb::FieldDescriptor& f = *s.field;
    if (s.as == Slot::whole) {
      if (kind == Scalar::null) return true;  // null is the empty list or map
      return fail(name(f) + (f.is_map() ? " is a map: give an object" : " is a list (repeated): give an array") +
                  ", not a single value");
    }
    const bool wkt = f.message_type() != nullptr && well_known(*f.message_type());
    if (kind == Scalar::null && s.within == Slot::list && !wkt) {
      return fail(name(*s.named) + " holds null in its list; leave it out");
    }
    if (kind != Scalar::string) return true;
    if (is_integer(f.cpp_type()) && !is_json_number(text)) {
      return fail(name(*s.named) + " holds integers; \"" + std::string(text.substr(0, 40)) +
                  "\" is not a number (a string holding one may not have a sign '+', leading zeros or spaces)");
    }
    const bool floating =
        f.cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE || f.cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT;
    if (floating && text != "NaN" && text != "Infinity" && text != "-Infinity" && !is_json_number(text)) {
      return fail(name(*s.named) + " holds numbers; \"" + std::string(text.substr(0, 40)) +
                  "\" is neither a JSON number nor NaN, Infinity or -Infinity");
    }
    return true;
  }

  bool open(bool object) {
    if (++nesting_ > kMaxNesting) {
      return fail("the JSON nests objects and arrays more than " + std::to_string(kMaxNesting) + " deep");
    }
    if (!stack_.empty() && stack_.back().kind == Frame::skipped) {
      ++stack_.back().depth;
      return true;
    }
    if (stack_.empty()) {
      return object && !well_known(root_) ? push({Frame::in_message, &root_}) : push({Frame::skipped});
    }
    const Slot s = slot();
    if (s.as == Slot::opaque) return push({Frame::skipped});
    const pb::FieldDescriptor& f = *s.field;
    if (s.as == Slot::whole) {
      if (f.is_map() && !object) return fail(name(f) + " is a map: give an object, not an array");
      if (!f.is_map() && object) return fail(name(f) + " is a list (repeated): give an array, not an object");
      return push({object ? Frame::in_map : Frame::in_list, nullptr, &f});
    }
    // One value: a message's object is walked, a well-known type's form
    // left to protobuf; a container anywhere else is the wrong shape.
    if (f.message_type() != nullptr && well_known(*f.message_type())) return push({Frame::skipped});
    if (f.message_type() != nullptr) {
      if (object) return push({Frame::in_message, f.message_type()});
      return fail(name(*s.named) + (s.within == Slot::alone ? " holds a message: give an object"
                                                             : " holds messages: give an object for each") +
                  ", not an array");
    }
    return fail(name(*s.named) + " holds " + (s.within == Slot::alone ? "a single value" : "single values") +
                ", not " + (object ? "an object" : "an array") + (s.within == Slot::alone ? "" : " inside it"));
  }

  bool close() {
    --nesting_;
    Frame& top = stack_.back();
    if (top.kind == Frame::skipped && top.depth > 0) {
      --top.depth;
      return true;
    }
    stack_.pop_back();
    if (!stack_.empty() && stack_.back().kind == Frame::in_message) stack_.back().field = nullptr;
    return true;
  }

  bool push(Frame f) {
    stack_.push_back(f);
    return true;
  }

  const pb::Descriptor& root_;
  std::vector<Frame> stack_;
  std::size_t nesting_ = 0;
};

}  // namespace

std::optional<std::string> json_request_problem(std::string_view json, const pb::Descriptor& type) {
  Check check(type);
  Json::sax_parse(json.begin(), json.end(), &check);
  return check.problem;
}

}  // namespace dispatch::connect::detail
