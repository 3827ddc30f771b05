// The CloudEvents protobuf format, checked against libprotobuf reading and
// writing io.cloudevents.v1.CloudEvent from a descriptor written out from
// the spec's cloudevents.proto (field names and numbers), so the encoding is
// the format's and not only our own decoder's.
#include "dispatch/wire/cloud_event.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/timestamp.pb.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace dispatch::wire {
namespace {

namespace pb = google::protobuf;

constexpr const char* kCloudEventsProto = R"pb(
  name: "io/cloudevents/v1/cloudevents.proto"
  package: "io.cloudevents.v1"
  dependency: "google/protobuf/any.proto"
  dependency: "google/protobuf/timestamp.proto"
  syntax: "proto3"
  message_type {
    name: "CloudEvent"
    field { name: "id" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "source" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "spec_version" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "type" number: 4 label: LABEL_OPTIONAL type: TYPE_STRING }
    field {
      name: "attributes" number: 5 label: LABEL_REPEATED type: TYPE_MESSAGE
      type_name: ".io.cloudevents.v1.CloudEvent.AttributesEntry"
    }
    field { name: "binary_data" number: 6 label: LABEL_OPTIONAL type: TYPE_BYTES oneof_index: 0 }
    field { name: "text_data" number: 7 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 }
    field {
      name: "proto_data" number: 8 label: LABEL_OPTIONAL type: TYPE_MESSAGE
      type_name: ".google.protobuf.Any" oneof_index: 0
    }
    nested_type {
      name: "AttributesEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field {
        name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
        type_name: ".io.cloudevents.v1.CloudEvent.CloudEventAttributeValue"
      }
      options { map_entry: true }
    }
    nested_type {
      name: "CloudEventAttributeValue"
      field { name: "ce_boolean" number: 1 label: LABEL_OPTIONAL type: TYPE_BOOL oneof_index: 0 }
      field { name: "ce_integer" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 oneof_index: 0 }
      field { name: "ce_string" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 }
      field { name: "ce_bytes" number: 4 label: LABEL_OPTIONAL type: TYPE_BYTES oneof_index: 0 }
      field { name: "ce_uri" number: 5 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 }
      field { name: "ce_uri_ref" number: 6 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 }
      field {
        name: "ce_timestamp" number: 7 label: LABEL_OPTIONAL type: TYPE_MESSAGE
        type_name: ".google.protobuf.Timestamp" oneof_index: 0
      }
      oneof_decl { name: "attr" }
    }
    oneof_decl { name: "data" }
  }
)pb";

// A pool holding io.cloudevents.v1 over the linked well-known types.
class Format {
 public:
  Format() : pool_(pb::DescriptorPool::generated_pool()), factory_(&pool_) {
    pb::FileDescriptorProto file;
    EXPECT_TRUE(pb::TextFormat::ParseFromString(kCloudEventsProto, &file));
    EXPECT_NE(pool_.BuildFile(file), nullptr);
    type_ = pool_.FindMessageTypeByName("io.cloudevents.v1.CloudEvent");
  }
  std::unique_ptr<pb::Message> parse_text(const std::string& text) {
    std::unique_ptr<pb::Message> m(factory_.GetPrototype(type_)->New());
    EXPECT_TRUE(pb::TextFormat::ParseFromString(text, m.get())) << text;
    return m;
  }
  std::unique_ptr<pb::Message> parse_bytes(const std::string& bytes) {
    std::unique_ptr<pb::Message> m(factory_.GetPrototype(type_)->New());
    EXPECT_TRUE(m->ParseFromString(bytes));
    return m;
  }

 private:
  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_;
  const pb::Descriptor* type_ = nullptr;
};

CloudEvent sample() {
  CloudEvent e;
  e.id = "A234-1234-1234";
  e.source = "/mycontext";
  e.type = "com.example.someevent";
  e.datacontenttype = "application/json";
  e.subject = "larger-context";
  e.time = "2018-04-05T17:31:00Z";
  e.dataschema = "https://example.com/schema";
  e.extensions["comexampleextension1"] = {"value", AttributeKind::string};
  e.extensions["comexampleothervalue"] = {"5", AttributeKind::integer};
  e.extensions["flag"] = {"true", AttributeKind::boolean};
  e.data = R"({"appinfoA":"abc"})";
  return e;
}

TEST(CloudEventProtobuf, EncodesTheFormatsFieldsAsLibprotobufReadsThem) {
  Format format;
  auto m = format.parse_bytes(encode_cloud_event(sample()));
  std::string text;
  pb::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(*m, &text);
  EXPECT_NE(text.find(R"(id: "A234-1234-1234")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(spec_version: "1.0")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(key: "comexampleothervalue" value { ce_integer: 5 })"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(key: "flag" value { ce_boolean: true })"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(key: "time" value { ce_timestamp { seconds: 1522949460 } })"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(key: "dataschema" value { ce_uri: "https://example.com/schema" })"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(binary_data: "{\"appinfoA\":\"abc\"}")"), std::string::npos) << text;
}

TEST(CloudEventProtobuf, RoundTripsAnEvent) {
  const CloudEvent e = sample();
  auto back = decode_cloud_event(encode_cloud_event(e));
  ASSERT_TRUE(back.ok()) << back.error().what();
  EXPECT_EQ(*back, e);
}

TEST(CloudEventProtobuf, RoundTripsAnEventWithoutData) {
  CloudEvent e;
  e.id = "1";
  e.source = "s";
  e.type = "t";
  auto back = decode_cloud_event(encode_cloud_event(e));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->data.has_value());
  EXPECT_EQ(*back, e);
}

TEST(CloudEventProtobuf, ReadsEveryFormTheFormatAllows) {
  Format format;
  auto text = format.parse_text(R"pb(
    id: "1" source: "/s" spec_version: "1.0" type: "t"
    attributes { key: "ref" value { ce_uri_ref: "/a/b" } }
    attributes { key: "raw" value { ce_bytes: "\x01\x02\xff" } }
    attributes { key: "time" value { ce_timestamp { seconds: 1522949460 nanos: 500000000 } } }
    attributes { key: "neg" value { ce_integer: -7 } }
    text_data: "hello"
  )pb");
  auto e = decode_cloud_event(text->SerializeAsString());
  ASSERT_TRUE(e.ok()) << e.error().what();
  EXPECT_EQ(e->specversion, "1.0");
  EXPECT_EQ(e->attribute("ref"), "/a/b");
  EXPECT_EQ(e->attribute("raw"), "AQL/");
  EXPECT_EQ(e->time, "2018-04-05T17:31:00.500Z");
  EXPECT_EQ(e->extensions.at("neg"), (ExtensionValue{"-7", AttributeKind::integer}));
  EXPECT_EQ(e->data, "hello");

  auto any = format.parse_text(R"pb(
    id: "1" source: "/s" spec_version: "1.0" type: "t"
    proto_data { type_url: "type.googleapis.com/shop.Order" value: "\x0a\x01x" }
  )pb");
  auto p = decode_cloud_event(any->SerializeAsString());
  ASSERT_TRUE(p.ok()) << p.error().what();
  EXPECT_EQ(p->data, std::string("\x0a\x01x"));
  EXPECT_EQ(p->dataschema, "type.googleapis.com/shop.Order");
  EXPECT_EQ(p->datacontenttype, "application/protobuf");
}

TEST(CloudEventProtobuf, RefusesBytesThatAreNotAnEvent) {
  // A length that runs past the end.
  auto truncated = decode_cloud_event(std::string("\x0a\x05" "ab", 4));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code(), Code::invalid_argument);
  EXPECT_NE(truncated.error().message().find("id"), std::string::npos) << truncated.error().message();
  // A varint where the id's string should be.
  auto wrong_type = decode_cloud_event(std::string("\x08\x01", 2));
  ASSERT_FALSE(wrong_type.ok());
  // Invalid UTF-8 in a string field.
  auto bad_utf8 = decode_cloud_event(std::string("\x0a\x02\xc3\x28", 4));
  ASSERT_FALSE(bad_utf8.ok());
  EXPECT_NE(bad_utf8.error().message().find("UTF-8"), std::string::npos);
  // An attribute value with no oneof case set.
  auto empty_value = decode_cloud_event(std::string("\x2a\x07\x0a\x03" "abc" "\x12\x00", 9));
  ASSERT_FALSE(empty_value.ok());
  EXPECT_NE(empty_value.error().message().find("oneof"), std::string::npos) << empty_value.error().message();
}

}  // namespace
}  // namespace dispatch::wire
