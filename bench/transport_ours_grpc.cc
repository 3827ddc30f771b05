// "ours-grpc" in the transport benchmark: gRPC C++'s own client
// (grpc_connection.h, with the stub protoc and grpc_cpp_plugin generate from
// the .proto dispatch-gen emitted for transport_api.h) against
// dispatch::Server, which serves the same functions over gRPC (HTTP/2) on
// its one port. The "grpc" row is the same client against gRPC C++'s
// server: same client, same load, the server is the difference.
//
// Not for: testing gRPC interop (tests/interop/grpc does that).
#include <memory>

#include "grpc_connection.h"
#include "transport_api.grpc.pb.h"
#include "transport_systems.h"

namespace bench {

using OursGrpcConnection =
    GrpcConnection<bench_transport::TransportApiService, bench_transport::AddRequest, bench_transport::AddResponse,
                   bench_transport::EchoRequest, bench_transport::EchoResponse>;

ConnectionFactory connect_ours_grpc(int port, Payload payload) {
  return [port, payload](int index) -> std::unique_ptr<Connection> {
    return std::make_unique<OursGrpcConnection>("ours-grpc", port, index, payload);
  };
}

}  // namespace bench
