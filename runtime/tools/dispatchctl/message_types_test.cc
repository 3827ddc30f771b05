// MessageTypes: .proto files and descriptor sets in, JSON out and in; each
// kind of bad input (a file that does not parse, an unreadable or garbled
// descriptor set, an unknown type, bad JSON, an unknown function) a clear
// error naming what was wrong.
#include "message_types.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <google/protobuf/descriptor.pb.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace {

using dispatchctl::MessageTypes;

class MessageTypesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "message_types_" + std::to_string(::getpid()) + "/";
    ASSERT_EQ(std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_ + "inc/shop").c_str()), 0);
    write("inc/shop/money.proto", R"(syntax = "proto3";
package shop;
message Money { int64 cents = 1; string currency = 2; }
)");
    write("api.proto", R"(syntax = "proto3";
package shop;
import "shop/money.proto";
import "google/protobuf/timestamp.proto";
message PayRequest { string order = 1; shop.Money amount = 2; google.protobuf.Timestamp at = 3; }
message PayResponse { bool ok = 1; }
service ApiService { rpc pay(PayRequest) returns (PayResponse); }
)");
  }
  void TearDown() override {
    if (!HasFailure()) std::system(("rm -rf " + dir_).c_str());
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ + name) << text; }

  std::string dir_;
};

TEST_F(MessageTypesTest, AProtoFileWithImportsGivesJsonBothWays) {
  MessageTypes types;
  EXPECT_FALSE(types.any());
  types.add_proto_path(dir_ + "inc");
  auto added = types.add_proto_file(dir_ + "api.proto");
  ASSERT_TRUE(added.ok()) << added.error().message();
  EXPECT_TRUE(types.any());

  auto bytes = types.from_json("shop.PayRequest",
                               R"({"order":"o1","amount":{"cents":"250","currency":"EUR"},"at":"2026-01-02T03:04:05Z"})");
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  auto json = types.to_json("type.googleapis.com/shop.PayRequest", *bytes);
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ(*json, R"({"order":"o1","amount":{"cents":"250","currency":"EUR"},"at":"2026-01-02T03:04:05Z"})");

  // Every field printed, defaults too.
  EXPECT_EQ(types.to_json("shop.PayResponse", ""), std::optional<std::string>(R"({"ok":false})"));
  // Unknown types and bytes that are not the message are not shown.
  EXPECT_EQ(types.to_json("type.googleapis.com/shop.Nope", ""), std::nullopt);
  EXPECT_EQ(types.to_json("shop.PayRequest", "\xff\xff\xff"), std::nullopt);
  // A string field holding invalid UTF-8 (order = "\xff"): not shown, and
  // nothing said on stderr, where protobuf would log it.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(types.to_json("shop.PayRequest", std::string("\x0a\x01\xff", 3)), std::nullopt);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");

  // The well-known types are known without a file declaring them (a
  // timer's output is a google.protobuf.Empty).
  EXPECT_EQ(types.to_json("type.googleapis.com/google.protobuf.Empty", ""), std::optional<std::string>("{}"));
  auto wrapped = types.from_json("google.protobuf.StringValue", R"("x")");
  ASSERT_TRUE(wrapped.ok()) << wrapped.error().message();
  EXPECT_EQ(types.to_json("google.protobuf.StringValue", *wrapped), std::optional<std::string>(R"("x")"));

  auto request = types.request_type_of("shop.pay");
  ASSERT_TRUE(request.ok()) << request.error().message();
  EXPECT_EQ(*request, "shop.PayRequest");
}

TEST_F(MessageTypesTest, ADescriptorSetGivesTheSameTypes) {
  // A set as protoc --include_imports writes it, built from compiled-in
  // descriptors here: Money, then a file that uses it.
  google::protobuf::FileDescriptorSet set;
  auto* money = set.add_file();
  money->set_name("shop/money.proto");
  money->set_package("shop");
  money->set_syntax("proto3");
  auto* m = money->add_message_type();
  m->set_name("Money");
  auto* f = m->add_field();
  f->set_name("cents");
  f->set_number(1);
  f->set_type(google::protobuf::FieldDescriptorProto::TYPE_INT64);
  f->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  f->set_json_name("cents");
  std::ofstream(dir_ + "set.desc", std::ios::binary) << set.SerializeAsString();

  MessageTypes types;
  auto added = types.add_descriptor_set(dir_ + "set.desc");
  ASSERT_TRUE(added.ok()) << added.error().message();
  auto bytes = types.from_json("shop.Money", R"({"cents":7})");
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  EXPECT_EQ(types.to_json("shop.Money", *bytes), std::optional<std::string>(R"({"cents":"7"})"));
  // The same set twice is harmless.
  EXPECT_TRUE(types.add_descriptor_set(dir_ + "set.desc").ok());
}

TEST_F(MessageTypesTest, BadInputGetsAnErrorNamingWhatWasWrong) {
  MessageTypes types;
  write("broken.proto", "syntax = \"proto3\";\nmessage Broken { int32 x = ; }\n");
  auto broken = types.add_proto_file(dir_ + "broken.proto");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message().find("broken.proto:2:"), std::string::npos) << broken.error().message();
  EXPECT_NE(broken.error().message().find("does not parse"), std::string::npos) << broken.error().message();

  // An import that is nowhere (no -I for it).
  auto missing = types.add_proto_file(dir_ + "api.proto");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("shop/money.proto"), std::string::npos) << missing.error().message();

  auto absent = types.add_proto_file(dir_ + "absent.proto");
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().message().find("cannot read the .proto file '" + dir_ + "absent.proto'"), std::string::npos)
      << absent.error().message();

  auto unreadable = types.add_descriptor_set(dir_ + "absent.desc");
  ASSERT_FALSE(unreadable.ok());
  EXPECT_NE(unreadable.error().message().find("cannot read the descriptor set"), std::string::npos);
  write("garbage.desc", "this is not a descriptor set");
  auto garbage = types.add_descriptor_set(dir_ + "garbage.desc");
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message().find("is not a descriptor set"), std::string::npos) << garbage.error().message();

  // A pool remembers a file that failed, so the good case starts afresh.
  MessageTypes good;
  good.add_proto_path(dir_ + "inc");
  ASSERT_TRUE(good.add_proto_file(dir_ + "api.proto").ok());
  auto unknown = good.from_json("shop.Nope", "{}");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("unknown message type 'shop.Nope'"), std::string::npos);
  auto bad_field = good.from_json("shop.PayRequest", R"({"ordr":"o1"})");
  ASSERT_FALSE(bad_field.ok());
  EXPECT_NE(bad_field.error().message().find("shop.PayRequest"), std::string::npos) << bad_field.error().message();
  EXPECT_NE(bad_field.error().message().find("ordr"), std::string::npos) << bad_field.error().message();
  auto bad_json = good.from_json("shop.PayRequest", R"({"order":)");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_NE(bad_json.error().message().find("is not a shop.PayRequest"), std::string::npos);
  auto bad_value = good.from_json("shop.PayRequest", R"({"amount":{"cents":"many"}})");
  ASSERT_FALSE(bad_value.ok());

  auto no_method = good.request_type_of("shop.refund");
  ASSERT_FALSE(no_method.ok());
  EXPECT_NE(no_method.error().message().find("method 'refund' for function 'shop.refund'"), std::string::npos)
      << no_method.error().message();
  EXPECT_FALSE(good.request_type_of("other.pay").ok());
}

}  // namespace
