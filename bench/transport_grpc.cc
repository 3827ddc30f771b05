// The gRPC anchor of the transport benchmark: gRPC C++ from Debian
// (libgrpc++-dev 1.51) serving bench/protos/transport.proto on the callback
// API, called through the generated stub (grpc_connection.h, the client
// shared with the ours-grpc row).
//
// Not for: judging gRPC in general (no streaming here).
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "grpc_connection.h"
#include "transport.grpc.pb.h"
#include "transport_systems.h"

namespace bench {
namespace {

class BenchService final : public grpcbench::Bench::CallbackService {
  grpc::ServerUnaryReactor* add(grpc::CallbackServerContext* context, const grpcbench::AddRequest* request,
                                grpcbench::AddResponse* response) override {
    response->set_result(request->a() + request->b());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* echo(grpc::CallbackServerContext* context, const grpcbench::EchoRequest* request,
                                 grpcbench::EchoResponse* response) override {
    response->set_result(request->data());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class GrpcServer final : public BenchServer {
 public:
  GrpcServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) throw std::runtime_error("grpc: could not listen on 127.0.0.1");
  }
  ~GrpcServer() override { server_->Shutdown(); }
  int port() const override { return port_; }

 private:
  BenchService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

using BenchConnection = GrpcConnection<grpcbench::Bench, grpcbench::AddRequest, grpcbench::AddResponse,
                                       grpcbench::EchoRequest, grpcbench::EchoResponse>;

}  // namespace

std::unique_ptr<BenchServer> serve_grpc() { return std::make_unique<GrpcServer>(); }

std::size_t grpc_answer_body_bytes(Payload payload) {
  if (payload == Payload::add) {
    grpcbench::AddResponse response;
    response.set_result(42);
    return 5 + response.ByteSizeLong();
  }
  grpcbench::EchoResponse response;
  response.set_result(echo_payload());
  return 5 + response.ByteSizeLong();
}

std::string grpc_request_body(Payload payload) {
  std::string message;
  if (payload == Payload::add) {
    grpcbench::AddRequest request;
    request.set_a(40);
    request.set_b(2);
    message = request.SerializeAsString();
  } else {
    grpcbench::EchoRequest request;
    request.set_data(echo_payload());
    message = request.SerializeAsString();
  }
  const auto n = static_cast<uint32_t>(message.size());
  const char prefix[5] = {0, static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                          static_cast<char>(n)};
  return std::string(prefix, sizeof prefix) + message;
}

ConnectionFactory connect_grpc(int port, Payload payload) {
  return [port, payload](int index) -> std::unique_ptr<Connection> {
    return std::make_unique<BenchConnection>("grpc", port, index, payload);
  };
}

}  // namespace bench
