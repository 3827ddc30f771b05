// Health and reflection over a table's services, without a server
// (grpc_services.h).
#include "transport/grpc_services.h"

#include <gtest/gtest.h>
#include <google/protobuf/descriptor.pb.h>

#include <string>

#include "dispatch/core/logger.h"
#include "dispatch/core/service.h"

namespace dispatch::transport {
namespace {

Result<std::string> unused(const MethodCall&) { return std::string(); }

// One .proto with two services, as StateFun's API has (three services, one
// file): reflection must take the file once.
std::string shared_file() {
  google::protobuf::FileDescriptorProto file;
  file.set_name("t/shared.proto");
  file.set_package("t");
  file.set_syntax("proto3");
  file.add_dependency("google/protobuf/empty.proto");
  for (const char* name : {"A", "B"}) {
    auto* service = file.add_service();
    service->set_name(name);
    auto* method = service->add_method();
    method->set_name("call");
    method->set_input_type(".google.protobuf.Empty");
    method->set_output_type(".google.protobuf.Empty");
  }
  return file.SerializeAsString();
}

// A ServerReflectionRequest with one string field set (field numbers of
// grpc/reflection/v1/reflection.proto), encoded by hand: this layer does
// not link the reflection protos' generated C++.
std::string reflection_request(int field, const std::string& value) {
  std::string out(1, static_cast<char>(field << 3 | 2));
  out += static_cast<char>(value.size());
  return out + value;
}

TEST(GrpcServices, ServicesSharingOneFileAreReflectedOnce) {
  static const std::string file = shared_file();
  static const Method kA[] = {{"call", "/t.A/call", "google.protobuf.Empty", "google.protobuf.Empty", &unused}};
  static const Method kB[] = {{"call", "/t.B/call", "google.protobuf.Empty", "google.protobuf.Empty", &unused}};
  static const Service a{"t", "A", kA, 1, file};
  static const Service b{"t", "B", kB, 1, file};
  DispatchTable table{&a, &b};
  GrpcServices services(table, Logger());
  const GrpcServices::Method* info = services.find("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
  ASSERT_NE(info, nullptr);

  auto listed = services.answer(*info, reflection_request(7, ""));  // list_services
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  EXPECT_NE(listed->find("t.A"), std::string::npos);
  EXPECT_NE(listed->find("t.B"), std::string::npos);

  auto found = services.answer(*info, reflection_request(4, "t.B"));  // file_containing_symbol
  ASSERT_TRUE(found.ok()) << found.error().message();
  EXPECT_NE(found->find("t/shared.proto"), std::string::npos);
}

}  // namespace
}  // namespace dispatch::transport
