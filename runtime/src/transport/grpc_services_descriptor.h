// The serialized FileDescriptorSet of grpc.health.v1 and grpc.reflection.v1 /
// v1alpha, made at build time by protoc from Debian's grpc-proto files
// (runtime/src/transport/CMakeLists.txt, embed_bytes.cmake).
//
// Not for: anything but grpc_services.cc.
#pragma once

#include <cstddef>

namespace dispatch::transport::detail {

extern const char kGrpcServicesDescriptorSet[];
extern const std::size_t kGrpcServicesDescriptorSetSize;

}  // namespace dispatch::transport::detail
