// The systems the transport benchmark compares, behind one small interface:
// each can serve on 127.0.0.1 (in the server process) and open client
// connections to that server (in the load process). The same two calls for
// all: add(a, b) of two int64, and echo of a 4 KiB byte string.
//
// Not for: timing (load.h does that) or output (transport_bench.cc).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "load.h"

namespace bench {

enum class Payload { add, echo };

inline constexpr std::size_t kEchoBytes = 4096;

// The echo payload every system sends: deterministic, not all one value, so
// a server that answers the wrong bytes is caught.
std::string echo_payload();

// A running server; destroying it stops it.
class BenchServer {
 public:
  virtual ~BenchServer() = default;
  virtual int port() const = 0;
};

struct System {
  const char* name;
  // Starts a server on 127.0.0.1, port chosen by the kernel.
  std::unique_ptr<BenchServer> (*serve)();
  // Connections to the server at `port`, each calling `payload`.
  ConnectionFactory (*connect)(int port, Payload payload);
  // Its client keeps several calls in flight on one connection
  // (Connection::call_in_flight); the others make one at a time.
  bool multiplexes;
};

// Every system built into this binary, in table order.
const std::vector<System>& systems();

// Defined by each system's source file.
std::unique_ptr<BenchServer> serve_tcp();
ConnectionFactory connect_tcp(int port, Payload payload);
std::unique_ptr<BenchServer> serve_grpc();
ConnectionFactory connect_grpc(int port, Payload payload);
// The request of `payload` as a gRPC unary call's body (the 5-byte message
// prefix, then the message), for a load generator other than ours (h2load),
// and the size of the body of its right answer, framed the same way.
std::string grpc_request_body(Payload payload);
std::size_t grpc_answer_body_bytes(Payload payload);
#ifdef BENCH_HAVE_OURS
std::unique_ptr<BenchServer> serve_ours();
ConnectionFactory connect_ours(int port, Payload payload);
#endif
#ifdef BENCH_HAVE_OURS_GRPC
// gRPC C++'s client against serve_ours().
ConnectionFactory connect_ours_grpc(int port, Payload payload);
#endif
#ifdef BENCH_HAVE_OURS_SIGNED
std::unique_ptr<BenchServer> serve_ours_signed();
ConnectionFactory connect_ours_signed(int port, Payload payload);
#endif

}  // namespace bench
