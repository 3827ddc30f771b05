// Smoke test of every system bench-transport compares: its server starts on
// 127.0.0.1, a connection makes checked calls of both payloads, and a
// connection to a port nobody serves fails instead of measuring nothing,
// the signed server refuses unsigned calls, and the gRPC request bytes
// h2load sends are the framed messages.
// Correctness of the answers is checked inside Connection::call() itself.
#include "transport_systems.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

namespace bench {
namespace {

TEST(TransportSystems, EverySystemServesBothPayloads) {
  for (const System& system : systems()) {
    SCOPED_TRACE(system.name);
    auto server = system.serve();
    ASSERT_GT(server->port(), 0);
    for (Payload payload : {Payload::add, Payload::echo}) {
      auto connection = system.connect(server->port(), payload)(0);
      for (int i = 0; i < 3; ++i) EXPECT_NO_THROW(connection->call());
    }
  }
}

TEST(TransportSystems, NamesAreUniqueAndTheAnchorsAreBuiltIn) {
  std::set<std::string> names;
  for (const System& system : systems()) EXPECT_TRUE(names.insert(system.name).second) << system.name;
  EXPECT_TRUE(names.count("tcp"));
  EXPECT_TRUE(names.count("grpc"));
}

TEST(TransportSystems, TcpToAClosedPortFails) {
  int port = 0;
  {
    auto server = serve_tcp();
    port = server->port();
  }  // stopped: nobody listens there now
  EXPECT_THROW(connect_tcp(port, Payload::add)(0), std::runtime_error);
}

#ifdef BENCH_HAVE_OURS_SIGNED
// The signed row measures verification only if the server really verifies:
// an unsigned client must be refused.
TEST(TransportSystems, TheSignedServerRefusesUnsignedCalls) {
  auto server = serve_ours_signed();
  EXPECT_THROW(connect_ours(server->port(), Payload::add)(0)->call(), std::runtime_error);
  EXPECT_NO_THROW(connect_ours_signed(server->port(), Payload::add)(0)->call());
}
#endif

TEST(TransportSystems, EchoPayloadIsFourKibOfVaryingBytes) {
  std::string p = echo_payload();
  EXPECT_EQ(p.size(), kEchoBytes);
  EXPECT_EQ(std::set<char>(p.begin(), p.end()).size(), 256u);
}

// h2load sends these bytes to both gRPC servers: the 5-byte gRPC prefix
// (uncompressed, big-endian length) and the message, which for add is
// AddRequest{a: 40, b: 2} in protobuf's wire format.
TEST(TransportSystems, GrpcRequestBodiesAreFramedMessages) {
  const std::string add = grpc_request_body(Payload::add);
  EXPECT_EQ(add, std::string("\x00\x00\x00\x00\x04\x08\x28\x10\x02", 9));
  const std::string echo = grpc_request_body(Payload::echo);
  ASSERT_EQ(echo.size(), 5 + 3 + kEchoBytes);  // tag, two-byte length, the bytes
  EXPECT_EQ(echo.substr(0, 8), std::string("\x00\x00\x00\x10\x03\x0a\x80\x20", 8));
  EXPECT_EQ(echo.substr(8), echo_payload());
  EXPECT_EQ(grpc_answer_body_bytes(Payload::add), 5u + 2u);  // AddResponse{result: 42}
  EXPECT_EQ(grpc_answer_body_bytes(Payload::echo), 5u + 3u + kEchoBytes);
}

}  // namespace
}  // namespace bench
