// "ours-grpc" in the transport benchmark: gRPC C++'s own client (the
// synchronous stub protoc and grpc_cpp_plugin generate from the .proto
// dispatch-gen emitted for transport_api.h) against dispatch::Server, which
// serves the same functions over gRPC (HTTP/2) on its one port. The "grpc"
// row is the same client against gRPC C++'s server: same client, same load,
// the server is the difference. One channel per connection, as there.
//
// Not for: testing gRPC interop (tests/interop/grpc does that).
#include <grpcpp/grpcpp.h>

#include <stdexcept>

#include "transport_api.grpc.pb.h"
#include "transport_systems.h"

namespace bench {
namespace {

class OursGrpcConnection final : public Connection {
 public:
  OursGrpcConnection(int port, int index, Payload payload) : payload_(payload) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("bench.connection_index", index);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                             grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      throw std::runtime_error("ours-grpc: cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    stub_ = bench_transport::TransportApiService::NewStub(channel);
    add_request_.set_a(40);
    add_request_.set_b(2);
    echo_request_.set_data(echo_payload());
  }

  void call() override {
    grpc::ClientContext context;
    if (payload_ == Payload::add) {
      bench_transport::AddResponse response;
      check(stub_->add(&context, add_request_, &response));
      if (response.result() != 42) {
        throw std::runtime_error("ours-grpc: add(40, 2) answered " + std::to_string(response.result()));
      }
    } else {
      bench_transport::EchoResponse response;
      check(stub_->echo(&context, echo_request_, &response));
      if (response.result() != echo_request_.data()) throw std::runtime_error("ours-grpc: echo answered other bytes");
    }
  }

 private:
  static void check(const grpc::Status& status) {
    if (!status.ok()) throw std::runtime_error("ours-grpc: call failed: " + status.error_message());
  }

  Payload payload_;
  std::unique_ptr<bench_transport::TransportApiService::Stub> stub_;
  bench_transport::AddRequest add_request_;
  bench_transport::EchoRequest echo_request_;
};

}  // namespace

ConnectionFactory connect_ours_grpc(int port, Payload payload) {
  return [port, payload](int index) -> std::unique_ptr<Connection> {
    return std::make_unique<OursGrpcConnection>(port, index, payload);
  };
}

}  // namespace bench
