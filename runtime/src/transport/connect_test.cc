#include "transport/connect.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "transport/test_service.h"

namespace dispatch::connect {
namespace {

namespace pb = google::protobuf;

TEST(Connect, ContentTypes) {
  EXPECT_EQ(encoding_from_content_type("application/proto"), Encoding::proto);
  EXPECT_EQ(encoding_from_content_type("Application/JSON; charset=utf-8"), Encoding::json);
  EXPECT_EQ(encoding_from_content_type(" application/json "), Encoding::json);
  EXPECT_FALSE(encoding_from_content_type("application/grpc"));
  EXPECT_FALSE(encoding_from_content_type("text/plain"));
  // JSON is UTF-8: another charset is not read.
  EXPECT_EQ(encoding_from_content_type("application/json;charset=\"UTF-8\""), Encoding::json);
  EXPECT_EQ(encoding_from_content_type("application/json; q=1; charset=utf8"), Encoding::json);
  EXPECT_FALSE(encoding_from_content_type("application/json; charset=latin1"));
  EXPECT_FALSE(encoding_from_content_type("application/json; charset=utf-16"));
  EXPECT_FALSE(encoding_from_content_type(""));
}

TEST(Connect, Timeout) {
  EXPECT_EQ(*parse_timeout("250"), std::chrono::milliseconds(250));
  EXPECT_EQ(*parse_timeout("9999999999"), std::chrono::milliseconds(9999999999));
  for (const char* bad : {"", "-1", "12345678901", "1.5", "10ms", " 1"}) {
    auto r = parse_timeout(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find("Connect-Timeout-Ms"), std::string::npos);
  }
}

TEST(Connect, Attempt) {
  EXPECT_EQ(*parse_attempt("3"), 3u);
  EXPECT_EQ(*parse_attempt("4294967295"), 4294967295u);
  for (const char* bad : {"", "0", "-1", "4294967296", "x"}) {
    EXPECT_FALSE(parse_attempt(bad).ok()) << bad;
  }
}

TEST(Connect, ErrorJsonRoundTripsAndEscapes) {
  Error error(Code::not_found, "order \"42\"\n<not> found \xc3\xa9",
              {{"google.protobuf.StringValue", std::string("\x0a\x02id\xff", 5)}});
  const std::string json = error_to_json(error);
  EXPECT_EQ(json.rfind("{\"code\":\"not_found\",\"message\":", 0), 0u) << json;  // code first
  EXPECT_NE(json.find("\\\"42\\\""), std::string::npos) << json;
  Error back = error_from_json(json, 404);
  EXPECT_EQ(back.code(), Code::not_found);
  EXPECT_EQ(back.message(), error.message());
  EXPECT_EQ(back.details(), error.details());
}

TEST(Connect, ErrorJsonWithInvalidUtf8StaysReadable) {
  // A Content-Type with bytes that are not UTF-8, quoted in a 415 message
  // (found by fuzz_server_request).
  Error error(Code::invalid_argument, "unsupported content type 'a\xff\xc3'",
              {{std::string("x.\xfe"), "v"}});
  const std::string json = error_to_json(error);
  Error back = error_from_json(json, 415);
  EXPECT_EQ(back.code(), Code::invalid_argument) << json;
  EXPECT_EQ(back.message(), "unsupported content type 'a\\xFF\\xC3'");
  ASSERT_EQ(back.details().size(), 1u);
  EXPECT_EQ(back.details()[0].type, "x.\\xFE");
}

TEST(Connect, ErrorFromForeignBody) {
  Error e = error_from_json("<html>Bad gateway</html>", 502);
  EXPECT_EQ(e.code(), Code::unavailable);
  EXPECT_NE(e.message().find("HTTP 502"), std::string::npos);
  EXPECT_EQ(error_from_json("", 404).code(), Code::unimplemented);
  EXPECT_EQ(error_from_json(R"({"code":"no_such_code"})", 500).code(), Code::unknown);
  // A code the protocol does not have is the HTTP status's: "ok" too, which
  // must never read as a success.
  Error unnamed = error_from_json(R"({"code":"not_a_code","message":"busy"})", 503);
  EXPECT_EQ(unnamed.code(), Code::unavailable);
  EXPECT_EQ(unnamed.message(), "busy");
  EXPECT_EQ(error_from_json(R"({"code":"ok"})", 500).code(), Code::unknown);
  EXPECT_EQ(error_from_json(R"({"code":"ok"})", 429).code(), Code::unavailable);
  // Padded base64 is accepted too.
  Error padded = error_from_json(R"({"code":"internal","details":[{"type":"x.Y","value":"aGk="}]})", 500);
  ASSERT_EQ(padded.details().size(), 1u);
  EXPECT_EQ(padded.details()[0].value, "hi");
}

TEST(Connect, JsonCodecConvertsBothWays) {
  auto codec = JsonCodec::create(testing::descriptor());
  ASSERT_TRUE(codec.ok()) << codec.error().what();
  auto binary = (*codec)->to_binary("t.AddRequest", R"({"a": "5", "b": -7})");
  ASSERT_TRUE(binary.ok()) << binary.error().what();
  auto fields = testing::read_varints(*binary);
  EXPECT_EQ(static_cast<int64_t>(fields[1]), 5);
  EXPECT_EQ(static_cast<int64_t>(fields[2]), -7);
  auto json = (*codec)->to_json("t.AddResponse", testing::varint_field(1, 12));
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, R"({"result":"12"})");
}

TEST(Connect, JsonCodecRejectsBadInput) {
  auto codec = JsonCodec::create(testing::descriptor());
  ASSERT_TRUE(codec.ok());
  for (const char* bad : {"{", R"({"a": "x"})", R"({"nope": }"})", "[]"}) {
    auto r = (*codec)->to_binary("t.AddRequest", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find("t.AddRequest"), std::string::npos);
  }
  EXPECT_EQ((*codec)->to_binary("t.Missing", "{}").error().code(), Code::internal);
  // What is not JSON (RFC 8259) is refused where it breaks, though
  // protobuf 3.21's parser would take it; deep nesting costs no stack.
  for (const char* bad : {R"({"a":1,})", "{a:1}", "{'a':1}", R"({"a":1} x)", R"({"a":"\ud800"})"}) {
    auto r = (*codec)->to_binary("t.AddRequest", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::invalid_argument) << bad;
    EXPECT_NE(r.error().message().find("line 1, column"), std::string::npos) << r.error().message();
  }
  EXPECT_FALSE((*codec)->to_binary("t.AddRequest", std::string(200000, '[')).ok());
}

// A message with every shape the proto3 JSON mapping constrains: lists of
// scalars and of messages, a map, nested and well-known messages.
std::string shapes_descriptor() {
  pb::FileDescriptorProto file;
  const bool parsed = pb::TextFormat::ParseFromString(R"pb(
    name: "j/shapes.proto" package: "j" syntax: "proto3"
    dependency: "google/protobuf/struct.proto"
    message_type {
      name: "Item"
      field { name: "sku" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "sku" }
      field { name: "qty" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "qty" }
    }
    message_type {
      name: "Order"
      field { name: "counts" number: 1 type: TYPE_INT32 label: LABEL_REPEATED json_name: "counts" }
      field { name: "items" number: 2 type: TYPE_MESSAGE type_name: ".j.Item" label: LABEL_REPEATED json_name: "items" }
      field { name: "by_sku" number: 3 type: TYPE_MESSAGE type_name: ".j.Order.BySkuEntry" label: LABEL_REPEATED json_name: "bySku" }
      field { name: "first" number: 4 type: TYPE_MESSAGE type_name: ".j.Item" label: LABEL_OPTIONAL json_name: "first" }
      field { name: "price" number: 5 type: TYPE_DOUBLE label: LABEL_OPTIONAL json_name: "price" }
      field { name: "total" number: 6 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "total" }
      field { name: "small" number: 7 type: TYPE_UINT32 label: LABEL_OPTIONAL json_name: "small" }
      field { name: "values" number: 8 type: TYPE_MESSAGE type_name: ".google.protobuf.Value" label: LABEL_REPEATED json_name: "values" }
      field { name: "extra" number: 9 type: TYPE_MESSAGE type_name: ".google.protobuf.Struct" label: LABEL_OPTIONAL json_name: "extra" }
      field { name: "names" number: 10 type: TYPE_STRING label: LABEL_REPEATED json_name: "names" }
      field { name: "tally" number: 11 type: TYPE_MESSAGE type_name: ".j.Order.TallyEntry" label: LABEL_REPEATED json_name: "tally" }
      nested_type {
        name: "BySkuEntry"
        field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "key" }
        field { name: "value" number: 2 type: TYPE_MESSAGE type_name: ".j.Item" label: LABEL_OPTIONAL json_name: "value" }
        options { map_entry: true }
      }
      nested_type {
        name: "TallyEntry"
        field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "key" }
        field { name: "value" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "value" }
        options { map_entry: true }
      }
    }
  )pb", &file);
  EXPECT_TRUE(parsed);
  return file.SerializeAsString();
}

// What protobuf 3.21's parser takes but the proto3 JSON mapping does not
// (protojson and protobuf-es refuse each): refused with the field's name.
// Every shape the mapping allows still decodes.
TEST(Connect, JsonCodecHoldsValuesToTheirFieldsShapes) {
  auto codec = JsonCodec::create(shapes_descriptor());
  ASSERT_TRUE(codec.ok()) << codec.error().what();
  for (const char* good : {
           R"({"counts": [1, "2", 3, "-4", "0"], "items": [{"sku": "a", "qty": "5"}, {}],
               "bySku": {"a": {"qty": 1}, "b": {}}, "first": null, "price": "NaN", "total": "-12",
               "small": "7", "values": [null, 1, "x", [1, null], {"a": null}], "extra": {"k": [null, {}]},
               "names": [], "later": {"x": [null, "01", {"y": [[]]}]}})",
           R"({"counts": null, "items": null, "bySku": null, "price": "-Infinity", "total": "0"})",
           R"({"price": "1.5e3", "by_sku": {"c": {"sku": "c"}}, "first": {"sku": "f", "qty": -1}, "tally": {"a": "-3"}})",
       }) {
    auto r = (*codec)->to_binary("j.Order", good);
    EXPECT_TRUE(r.ok()) << good << " -> " << r.error().what();
  }
  struct Case {
    const char* json;
    const char* says;
  };
  for (const Case& c : {
           Case{R"({"counts": {"0": 1}})", "field 'counts' is a list (repeated): give an array"},
           Case{R"({"items": {"sku": "a"}})", "field 'items' is a list (repeated): give an array"},
           Case{R"({"counts": 5})", "field 'counts' is a list"},
           Case{R"({"bySku": [{"key": "a"}]})", "field 'bySku' is a map: give an object"},
           Case{R"({"bySku": "a"})", "field 'bySku' is a map"},
           Case{R"({"counts": [1, null]})", "field 'counts' holds null in its list"},
           Case{R"({"items": [{"sku": "a"}, null]})", "field 'items' holds null"},
           Case{R"({"names": [null]})", "field 'names' holds null"},
           Case{R"({"first": {"qty": "01"}})", "field 'qty' holds integers; \"01\" is not a number"},
           Case{R"({"total": "+1"})", "field 'total' holds integers; \"+1\""},
           Case{R"({"small": " 7"})", "field 'small' holds integers"},
           Case{R"({"counts": ["0x10"]})", "field 'counts' holds integers"},
           Case{R"({"bySku": {"a": {"qty": "1 "}}})", "field 'qty' holds integers"},
           Case{R"({"bySku": {"a": [{"qty": 1}]}})", "field 'bySku' holds messages: give an object for each"},
           Case{R"({"tally": {"a": "01"}})", "field 'tally' holds integers"},
           Case{R"({"tally": {"a": [1]}})", "field 'tally' holds single values, not an array inside it"},
           Case{R"({"price": "+1.5"})", "field 'price' holds numbers; \"+1.5\" is neither"},
           Case{R"({"price": ".5"})", "field 'price' holds numbers"},
           Case{R"({"price": "nan"})", "field 'price' holds numbers"},
           Case{R"({"counts": [[1]]})", "field 'counts' holds single values, not an array inside it"},
           Case{R"({"price": [1.5]})", "field 'price' holds a single value, not an array"},
           Case{R"({"total": {"v": 1}})", "field 'total' holds a single value, not an object"},
           Case{R"({"items": [[{"sku": "a"}]]})", "field 'items' holds messages: give an object for each"},
           Case{R"({"first": [{"sku": "a"}]})", "field 'first' holds a message: give an object"},
       }) {
    auto r = (*codec)->to_binary("j.Order", c.json);
    if (r.ok()) {
      ADD_FAILURE() << "taken: " << c.json;
      continue;
    }
    EXPECT_EQ(r.error().code(), Code::invalid_argument) << c.json;
    EXPECT_NE(r.error().message().find(c.says), std::string::npos) << c.json << " -> " << r.error().message();
    EXPECT_NE(r.error().message().find("j.Order"), std::string::npos) << r.error().message();
  }
  // Deep nesting inside an unknown field or a Struct costs neither stack
  // nor an unbounded walk.
  // 100 levels of objects and arrays, as protobuf's binary limit; deeper
  // is refused before protobuf's parser, whose time grows with the square
  // of a Value's depth (3,000 levels: 0.3 s; 100,000: minutes), runs.
  auto nested = [](const char* field, int levels) {
    return std::string(R"({")") + field + R"(": )" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  EXPECT_TRUE((*codec)->to_binary("j.Order", nested("later", 99)).ok());
  EXPECT_TRUE((*codec)->to_binary("j.Order", nested("values", 99)).ok());
  for (const char* field : {"later", "values"}) {
    for (int levels : {100, 3000}) {
      auto r = (*codec)->to_binary("j.Order", nested(field, levels));
      ASSERT_FALSE(r.ok()) << field << " " << levels;
      EXPECT_NE(r.error().message().find("more than 100 deep"), std::string::npos) << r.error().message();
    }
  }
}

// Fields the descriptor does not have (a newer client's) are skipped, any
// JSON value they hold, as connect-go and connect-es read JSON; the known
// ones still count, and JSON that is not valid is still refused.
TEST(Connect, JsonCodecSkipsUnknownFields) {
  auto codec = JsonCodec::create(testing::descriptor());
  ASSERT_TRUE(codec.ok());
  auto r = (*codec)->to_binary("t.AddRequest",
                               R"({"a": 5, "added_later": {"x": [1, "two", null]}, "b": "-7", "flag": true})");
  ASSERT_TRUE(r.ok()) << r.error().what();
  auto fields = testing::read_varints(*r);
  EXPECT_EQ(static_cast<int64_t>(fields[1]), 5);
  EXPECT_EQ(static_cast<int64_t>(fields[2]), -7);
  EXPECT_EQ(fields.size(), 2u);
  auto only_unknown = (*codec)->to_binary("t.AddRequest", R"({"nope": 1})");
  ASSERT_TRUE(only_unknown.ok()) << only_unknown.error().what();
  EXPECT_EQ(*only_unknown, "");
  EXPECT_FALSE((*codec)->to_binary("t.AddRequest", R"({"nope": 1, "a": "x"})").ok());
  EXPECT_FALSE((*codec)->to_binary("t.AddRequest", R"({"nope": })").ok());
}

// The codec keeps the types it has resolved: many threads converting at once
// (the first calls racing to fill that cache) all get the answer one thread
// alone gets, and bad input is still refused after the types are cached.
TEST(Connect, JsonCodecGivesTheSameAnswersFromManyThreadsAtOnce) {
  auto codec = JsonCodec::create(testing::descriptor());
  ASSERT_TRUE(codec.ok()) << codec.error().what();
  const JsonCodec& c = **codec;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, &wrong, t] {
      for (int i = 0; i < 200; ++i) {
        const int a = t * 1000 + i;
        auto binary = c.to_binary("t.AddRequest", R"({"a": ")" + std::to_string(a) + R"(", "b": 1})");
        if (!binary.ok() || static_cast<int64_t>(testing::read_varints(*binary)[1]) != a) ++wrong;
        auto json = c.to_json("t.AddResponse", testing::varint_field(1, static_cast<uint64_t>(a)));
        if (!json.ok() || *json != R"({"result":")" + std::to_string(a) + R"("})") ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(c.to_binary("t.AddRequest", R"({"a": "x"})").error().code(), Code::invalid_argument);
  EXPECT_EQ(c.to_json("t.Missing", "").error().code(), Code::internal);
}

TEST(Connect, JsonCodecWithWellKnownTypes) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("w/api.proto");
  file.set_package("w");
  file.set_syntax("proto3");
  file.add_dependency("google/protobuf/duration.proto");
  auto* m = file.add_message_type();
  m->set_name("R");
  auto* f = m->add_field();
  f->set_name("d");
  f->set_number(1);
  f->set_type(google::protobuf::FieldDescriptorProto::TYPE_MESSAGE);
  f->set_type_name(".google.protobuf.Duration");
  f->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  auto codec = JsonCodec::create(file.SerializeAsString());
  ASSERT_TRUE(codec.ok()) << codec.error().what();
  auto binary = (*codec)->to_binary("w.R", R"({"d": "1.5s"})");
  ASSERT_TRUE(binary.ok()) << binary.error().what();
  EXPECT_EQ(*(*codec)->to_json("w.R", *binary), R"({"d":"1.500s"})");
}

// Bytes that are not the message are an error naming the type, never a
// print of made-up values or a loop: protobuf's printer alone, given a
// packed list whose length runs past the end, never returned, and given a
// nested message cut short, printed a value the bytes do not hold.
TEST(Connect, JsonCodecRefusesBytesThatAreNotTheMessage) {
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"pb(
    name: "l/api.proto" package: "l" syntax: "proto3"
    message_type {
      name: "L"
      field { name: "r" number: 1 type: TYPE_INT32 label: LABEL_REPEATED }
      field { name: "c" number: 2 type: TYPE_MESSAGE type_name: ".l.L" label: LABEL_OPTIONAL }
      field { name: "t" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL }
    })pb", &file));
  auto codec = JsonCodec::create(file.SerializeAsString());
  ASSERT_TRUE(codec.ok()) << codec.error().what();
  EXPECT_EQ(*(*codec)->to_json("l.L", std::string("\x0a\x02\x01\x02\x12\x02\x08\x07", 8)), R"({"r":[1,2],"c":{"r":[7]}})");
  // The last: a string that is not UTF-8, which protobuf's parser would
  // also report on stderr, once per message anyone sends.
  ::testing::internal::CaptureStderr();
  for (const std::string& bad : {std::string("\x0a\x08\x2c\x6d", 4), std::string("\x12\x02\x08", 3),
                                 std::string("\x1a\x01\xff", 3)}) {
    auto json = (*codec)->to_json("l.L", bad);
    ASSERT_FALSE(json.ok()) << *json;
    EXPECT_EQ(json.error().code(), Code::internal);
    EXPECT_NE(json.error().message().find("not a valid l.L"), std::string::npos) << json.error().message();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(Connect, JsonCodecRejectsBadDescriptors) {
  EXPECT_EQ(JsonCodec::create("").error().code(), Code::invalid_argument);
  EXPECT_EQ(JsonCodec::create("\xff\xff").error().code(), Code::invalid_argument);
  google::protobuf::FileDescriptorProto file;
  file.set_name("x.proto");
  file.add_dependency("my/other.proto");
  auto r = JsonCodec::create(file.SerializeAsString());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("my/other.proto"), std::string::npos);
}

}  // namespace
}  // namespace dispatch::connect
