// The gRPC anchor of the transport benchmark: gRPC C++ from Debian
// (libgrpc++-dev 1.51) serving bench/protos/transport.proto on the callback
// API, called through the generated synchronous stub. One channel per
// benchmark connection, each with its own subchannel pool, so N connections
// are N HTTP/2 connections and not N streams multiplexed on one.
//
// Not for: judging gRPC in general (no streaming, no async client here).
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <stdexcept>
#include <string>

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

class GrpcConnection final : public Connection {
 public:
  GrpcConnection(int port, int index, Payload payload) : payload_(payload) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // A distinct argument per connection keeps channels from sharing a
    // subchannel even through the global pool.
    args.SetInt("bench.connection_index", index);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                             grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      throw std::runtime_error("grpc: cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    stub_ = grpcbench::Bench::NewStub(channel);
    add_request_.set_a(40);
    add_request_.set_b(2);
    echo_request_.set_data(echo_payload());
  }

  void call() override {
    grpc::ClientContext context;
    if (payload_ == Payload::add) {
      grpcbench::AddResponse response;
      check(stub_->add(&context, add_request_, &response));
      if (response.result() != 42) throw std::runtime_error("grpc: add(40, 2) answered " + std::to_string(response.result()));
    } else {
      grpcbench::EchoResponse response;
      check(stub_->echo(&context, echo_request_, &response));
      if (response.result() != echo_request_.data()) throw std::runtime_error("grpc: echo answered other bytes");
    }
  }

 private:
  static void check(const grpc::Status& status) {
    if (!status.ok()) throw std::runtime_error("grpc: call failed: " + status.error_message());
  }

  Payload payload_;
  std::unique_ptr<grpcbench::Bench::Stub> stub_;
  grpcbench::AddRequest add_request_;
  grpcbench::EchoRequest echo_request_;
};

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
    return std::make_unique<GrpcConnection>(port, index, payload);
  };
}

}  // namespace bench
