// The gRPC services every server answers beside its functions:
// grpc.health.v1.Health (Check; Watch, which stays open) and server
// reflection, grpc.reflection.v1 and v1alpha (ServerReflectionInfo, a
// bidirectional stream answering each request message with one response),
// so a reflection client lists and describes the services with no .proto at
// hand. The descriptors come from what generated code embeds
// (Service::file_descriptor), protobuf's well-known types from the linked
// library, and the health and reflection protos themselves from Debian's
// grpc-proto package, compiled into a descriptor set at build time and kept
// in a private pool (never registered with protobuf's global one, so a
// program that also links gRPC's own reflection does not clash with it).
//
// Not for: transport (grpc_calls.cc and grpc_web.cc carry the messages).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/logger.h"
#include "dispatch/core/result.h"
#include "dispatch/core/service.h"

namespace dispatch::transport {

class GrpcServices {
 public:
  enum class Kind {
    unary,        // one message in, one out (Health/Check)
    watch,        // one message in, one out, then held open (Health/Watch)
    each_message  // every message in answered by one out (reflection)
  };
  struct Method {
    std::string_view path;
    Kind kind;
    int index;  // which handler
  };

  GrpcServices(const DispatchTable& table, const Logger& logger);
  ~GrpcServices();

  // The built-in method at `path`, or nullptr.
  const Method* find(std::string_view path) const noexcept;
  // The answer to one request message; errors are the call's status.
  Result<std::string> answer(const Method& method, std::string_view message) const;
  // Health: SERVING until the server drains, NOT_SERVING after.
  // (Const: the status is the server's, not part of what the services are.)
  void set_serving(bool serving) const noexcept { serving_.store(serving); }
  // The HealthCheckResponse a Watch sends when the status changes.
  std::string health_message() const;

 private:
  struct Reflection;
  Result<std::string> check(std::string_view message, bool watch) const;

  std::vector<std::string> service_names_;
  std::unique_ptr<Reflection> reflection_;
  mutable std::atomic<bool> serving_{true};
};

}  // namespace dispatch::transport
