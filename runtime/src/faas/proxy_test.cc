// MessageJson: a generated .proto's messages printed as JSON the way a
// proxy sends them, and a function's output read back, lenient about what
// a function we did not build may add, clear about what is not JSON.
#include "dispatch/faas/proxy.h"

#include <gtest/gtest.h>

#include <google/protobuf/descriptor.pb.h>

#include <string>

namespace dispatch::faas {
namespace {

namespace pb = google::protobuf;

// package t; message Reply { int64 value = 1; string long_name = 2; }
std::string descriptor() {
  pb::FileDescriptorProto file;
  file.set_name("t.proto");
  file.set_package("t");
  file.set_syntax("proto3");
  pb::DescriptorProto* reply = file.add_message_type();
  reply->set_name("Reply");
  auto field = [&](const char* name, int number, pb::FieldDescriptorProto::Type type) {
    pb::FieldDescriptorProto* f = reply->add_field();
    f->set_name(name);
    f->set_number(number);
    f->set_type(type);
    f->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
    f->set_json_name(name == std::string("long_name") ? "longName" : name);
  };
  field("value", 1, pb::FieldDescriptorProto::TYPE_INT64);
  field("long_name", 2, pb::FieldDescriptorProto::TYPE_STRING);
  return file.SerializeAsString();
}

MessageJson json() { return MessageJson::create(descriptor()).value(); }

TEST(MessageJson, PrintsFieldsAsSpelledZerosTooAnd64BitIntegersAsStrings) {
  // value = 5 (field 1, varint), long_name = "x" (field 2, length 1).
  auto printed = json().to_json("t.Reply", std::string("\x08\x05\x12\x01x", 5));
  ASSERT_TRUE(printed.ok()) << printed.error().what();
  EXPECT_EQ(*printed, R"({"value":"5","long_name":"x"})");
  auto zeros = json().to_json("t.Reply", "");
  ASSERT_TRUE(zeros.ok()) << zeros.error().what();
  EXPECT_EQ(*zeros, R"({"value":"0","long_name":""})");
}

TEST(MessageJson, ReadsAnOutputIgnoringFieldsItDoesNotKnow) {
  MessageJson j = json();
  auto binary = j.output_to_binary("fn", "t.Reply", Output{200, "application/json",
                                                           R"({"value": 7, "longName": "y", "took_ms": 3})"});
  ASSERT_TRUE(binary.ok()) << binary.error().what();
  EXPECT_EQ(j.to_json("t.Reply", *binary).value(), R"({"value":"7","long_name":"y"})");
}

TEST(MessageJson, AnOutputThatIsNotJsonOfTheMessageIsInternalNamingTheFunction) {
  auto html = json().output_to_binary("figlet", "t.Reply",
                                      Output{200, "text/html", "<html><body>Welcome to nginx!</body></html>"});
  ASSERT_FALSE(html.ok());
  EXPECT_EQ(html.error().code(), Code::internal);
  const std::string& m = html.error().message();
  EXPECT_NE(m.find("function 'figlet' answered 200 (text/html) with an output that is not a t.Reply in JSON"),
            std::string::npos) << m;
  EXPECT_NE(m.find("Welcome to nginx!"), std::string::npos) << m;
  auto wrong_type = json().output_to_binary("f", "t.Reply", Output{200, "application/json", R"({"value": "x"})"});
  EXPECT_FALSE(wrong_type.ok());
}

TEST(MessageJson, BadDescriptorsAndUnknownTypesAreErrors) {
  auto bad = MessageJson::create("not a descriptor");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::invalid_argument);
  EXPECT_EQ(json().to_json("t.Nope", "").error().code(), Code::internal);
  EXPECT_EQ(json().to_json("t.Reply", "\xff").error().code(), Code::internal);  // not a Reply
}

}  // namespace
}  // namespace dispatch::faas
