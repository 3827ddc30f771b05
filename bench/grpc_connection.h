// gRPC C++'s client in the transport benchmark, for either service with its
// two methods (add, echo): gRPC's own (bench/protos/transport.proto, the
// grpc row) and the one protoc generates from the .proto dispatch-gen
// emitted for transport_api.h (the ours-grpc row). Same client code for
// both, so the server is the only difference between the rows. One channel
// per benchmark connection, each with its own subchannel pool, so N
// connections are N HTTP/2 connections and not N streams multiplexed on one.
// One call at a time goes through the generated synchronous stub; several in
// flight (Connection::call_in_flight) through its asynchronous API on a
// CompletionQueue of the lane's own, as gRPC's own benchmark client drives a
// server (many outstanding calls per channel) and as a gRPC client shares
// one connection among its callers in production.
//
// Not for: streaming, or judging gRPC in general.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "load.h"
#include "transport_systems.h"

namespace bench {

namespace detail {

// Runs Connection::call_in_flight's loop (see load.h) for one method:
// prepare(context, cq) returns the stub's PrepareAsync<method> reader, and
// check(status, response) throws std::runtime_error saying what was wrong
// with a call. After a failure, the calls still in flight are cancelled and
// waited for before the error is rethrown (the queue outlives its calls).
template <class Response, class Prepare, class Check>
void grpc_calls_in_flight(int in_flight, const std::function<bool(Clock::time_point)>& may_start,
                          const std::function<void(Clock::time_point, Clock::time_point)>& returned,
                          Prepare prepare, Check check) {
  struct Slot {
    std::optional<grpc::ClientContext> context;  // one per call: a context serves one call only
    Response response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
    Clock::time_point begin;
    bool busy = false;
  };
  grpc::CompletionQueue cq;
  std::vector<Slot> slots(static_cast<std::size_t>(in_flight));
  int busy = 0;
  std::exception_ptr error;
  auto start = [&](Slot& slot) {
    slot.begin = Clock::now();
    if (error || !may_start(slot.begin)) return;
    // The reader lives in the call's arena, which its context owns.
    slot.reader.reset();
    slot.context.emplace();
    slot.response.Clear();
    slot.reader = prepare(&*slot.context, &cq);
    slot.reader->StartCall();
    slot.reader->Finish(&slot.response, &slot.status, &slot);
    slot.busy = true;
    ++busy;
  };
  for (Slot& slot : slots) start(slot);
  void* tag = nullptr;
  bool ok = false;
  while (busy > 0 && cq.Next(&tag, &ok)) {
    Slot& slot = *static_cast<Slot*>(tag);
    const auto end = Clock::now();
    slot.busy = false;
    --busy;
    if (!error) {
      try {
        check(slot.status, slot.response);
        returned(slot.begin, end);
      } catch (...) {
        error = std::current_exception();
        for (Slot& other : slots) {
          if (other.busy) other.context->TryCancel();
        }
      }
    }
    start(slot);
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

// `name` (the system's) starts every error message.
template <class Service, class AddRequest, class AddResponse, class EchoRequest, class EchoResponse>
class GrpcConnection final : public Connection {
 public:
  GrpcConnection(std::string name, int port, int index, Payload payload) : name_(std::move(name)), payload_(payload) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // A distinct argument per connection keeps channels from sharing a
    // subchannel even through the global pool.
    args.SetInt("bench.connection_index", index);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                             grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      throw std::runtime_error(name_ + ": cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    stub_ = Service::NewStub(channel);
    add_request_.set_a(40);
    add_request_.set_b(2);
    echo_request_.set_data(echo_payload());
  }

  void call() override {
    grpc::ClientContext context;
    if (payload_ == Payload::add) {
      AddResponse response;
      check(stub_->add(&context, add_request_, &response));
      check_answer(response);
    } else {
      EchoResponse response;
      check(stub_->echo(&context, echo_request_, &response));
      check_answer(response);
    }
  }

  void call_in_flight(int in_flight, const std::function<bool(Clock::time_point)>& may_start,
                      const std::function<void(Clock::time_point, Clock::time_point)>& returned) override {
    const auto checked = [this](const grpc::Status& status, const auto& response) {
      check(status);
      check_answer(response);
    };
    if (payload_ == Payload::add) {
      detail::grpc_calls_in_flight<AddResponse>(
          in_flight, may_start, returned,
          [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
            return stub_->PrepareAsyncadd(context, add_request_, cq);
          },
          checked);
    } else {
      detail::grpc_calls_in_flight<EchoResponse>(
          in_flight, may_start, returned,
          [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
            return stub_->PrepareAsyncecho(context, echo_request_, cq);
          },
          checked);
    }
  }

 private:
  void check(const grpc::Status& status) const {
    if (!status.ok()) throw std::runtime_error(name_ + ": call failed: " + status.error_message());
  }
  void check_answer(const AddResponse& response) const {
    if (response.result() != 42) {
      throw std::runtime_error(name_ + ": add(40, 2) answered " + std::to_string(response.result()));
    }
  }
  void check_answer(const EchoResponse& response) const {
    if (response.result() != echo_request_.data()) throw std::runtime_error(name_ + ": echo answered other bytes");
  }

  std::string name_;
  Payload payload_;
  std::unique_ptr<typename Service::Stub> stub_;
  AddRequest add_request_;
  EchoRequest echo_request_;
};

}  // namespace bench
