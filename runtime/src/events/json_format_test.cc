// The JSON event format: the format's own examples read, data as a JSON
// value, a string or base64, batches, and what is refused.
#include "dispatch/events/json_format.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace dispatch::events {
namespace {

using Json = nlohmann::json;

TEST(JsonFormat, ReadsTheFormatsExampleWithJsonData) {
  auto e = from_json(R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "C234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/json",
    "data" : {"appinfoA" : "abc", "appinfoB" : 123, "appinfoC" : true}
  })");
  ASSERT_TRUE(e.ok()) << e.error().what();
  EXPECT_EQ(e->id, "C234-1234-1234");
  EXPECT_FALSE(e->subject.has_value());
  EXPECT_EQ(e->extensions.at("comexampleothervalue"), (ExtensionValue{"5", AttributeKind::integer}));
  EXPECT_EQ(Json::parse(*e->data), Json::parse(R"({"appinfoA":"abc","appinfoB":123,"appinfoC":true})"));
}

TEST(JsonFormat, ReadsStringDataBase64DataAndImpliedJson) {
  auto xml = from_json(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
                           "datacontenttype":"application/xml","data":"<much wow=\"xml\"/>"})");
  ASSERT_TRUE(xml.ok()) << xml.error().what();
  EXPECT_EQ(xml->data, R"(<much wow="xml"/>)");

  auto b64 = from_json(R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data_base64":"eyAieHl6IjogMTIzIH0="})");
  ASSERT_TRUE(b64.ok()) << b64.error().what();
  EXPECT_EQ(b64->data, R"({ "xyz": 123 })");
  EXPECT_FALSE(b64->datacontenttype.has_value());

  // No datacontenttype: the data is a JSON value, here a JSON string.
  auto implied = from_json(R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data":"I'm just a string"})");
  ASSERT_TRUE(implied.ok());
  EXPECT_EQ(implied->data, R"("I'm just a string")");
  EXPECT_EQ(implied->datacontenttype, "application/json");
}

TEST(JsonFormat, ANullDataBase64IsUnsetBesideData) {
  // The format: a null member is unset; a producer writing every member
  // (null where it has none) sends data and a null data_base64.
  auto e = from_json(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
                         "data_base64":null,"data":{"a":1}})");
  ASSERT_TRUE(e.ok()) << e.error().what();
  EXPECT_EQ(Json::parse(*e->data), Json::parse(R"({"a":1})"));
  auto bytes = from_json(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
                             "data_base64":"AQI=","data":null})");
  EXPECT_FALSE(bytes.ok()) << "data null is a null payload, not unset: with data_base64 it is two data";
}

TEST(JsonFormat, WritesDataAsTheFormatSays) {
  CloudEvent e;
  e.id = "1";
  e.source = "/s";
  e.type = "t";
  e.extensions["n"] = {"5", AttributeKind::integer};
  e.extensions["flag"] = {"false", AttributeKind::boolean};
  e.datacontenttype = "application/json";
  e.data = R"({"a":[1,2]})";
  Json written = Json::parse(to_json(e));
  EXPECT_EQ(written["data"], Json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(written["n"], 5);
  EXPECT_EQ(written["flag"], false);
  EXPECT_FALSE(written.contains("data_base64"));

  e.datacontenttype = "text/plain";
  e.data = "hi";
  written = Json::parse(to_json(e));
  EXPECT_EQ(written["data"], "hi");

  e.datacontenttype = "application/protobuf";
  e.data = std::string("\x0a\x01\xff", 3);
  written = Json::parse(to_json(e));
  EXPECT_EQ(written["data_base64"], "CgH/");
  EXPECT_FALSE(written.contains("data"));

  // Each form reads back as the event it came from.
  for (const char* type : {"application/json", "text/plain", "application/protobuf"}) {
    e.datacontenttype = type;
    e.data = std::string(type) == "application/json" ? R"({"a":1})" : "x";
    auto back = from_json(to_json(e));
    ASSERT_TRUE(back.ok()) << back.error().what();
    EXPECT_EQ(*back, e) << type;
  }
}

TEST(JsonFormat, ReadsAndWritesBatches) {
  auto batch = from_json_batch(R"([
    {"specversion":"1.0","type":"a","source":"/4","id":"B","data_base64":"AQI="},
    {"specversion":"1.0","type":"b","source":"/9","id":"C","datacontenttype":"application/json","data":{"x":1}}
  ])");
  ASSERT_TRUE(batch.ok()) << batch.error().what();
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[0].data, std::string("\x01\x02"));
  EXPECT_EQ((*batch)[1].type, "b");
  auto again = from_json_batch(to_json_batch(*batch));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *batch);
  EXPECT_TRUE(from_json_batch("[]").ok());
  EXPECT_EQ(to_json_batch({}), "[]");
}

TEST(JsonFormat, RefusesMalformedEvents) {
  auto refused = [](const std::string& text, const char* needle) {
    auto r = from_json(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  };
  refused("not json", "not valid JSON");
  // A number no double holds is nlohmann's out_of_range, not a parse_error.
  refused(R"({"specversion":"1.0","n":777700e66012847})", "not valid JSON");
  refused("[1]", "JSON object");
  refused(R"({"specversion":"1.0","source":"/s","id":"1"})", "'type'");
  refused(R"({"specversion":"1.1","type":"t","source":"/s","id":"1"})", "unknown specversion");
  refused(R"({"specversion":"1.0","type":"t","source":"/s","id":1})", "JSON string");
  refused(R"({"specversion":"1.0","type":"t","source":"/s","id":"1","ext":{"a":1}})", "strings, integers or booleans");
  refused(R"({"specversion":"1.0","type":"t","source":"/s","id":"1","ext":1.5})", "strings, integers or booleans");
  refused(R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data":1,"data_base64":"AA=="})", "not both");
  refused(R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data_base64":"!!"})", "base64");
  refused(R"({"specversion":"1.0","type":"t","source":"/s","id":"1","datacontenttype":"text/plain","data":{}})",
          "JSON string");
  refused("{\"specversion\":\"1.0\",\"type\":\"t\xC3\x28\",\"source\":\"/s\",\"id\":\"1\"}", "not valid JSON");
  refused(std::string(200, '[') + std::string(200, ']'), "deeper");
  auto batch = from_json_batch(R"([{"specversion":"1.0","type":"t","source":"/s","id":"1"}, {"id":"2"}])");
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.error().message().find("batch event 1"), std::string::npos) << batch.error().message();
  EXPECT_FALSE(from_json_batch("{}").ok());
}

}  // namespace
}  // namespace dispatch::events
