// Smoke test of every system bench-transport compares: its server starts on
// 127.0.0.1, a connection makes checked calls of both payloads, and a
// connection to a port nobody serves fails instead of measuring nothing,
// the signed server refuses unsigned calls, and the gRPC request bytes
// h2load sends are the framed messages.
// Correctness of the answers is checked inside Connection::call() itself.
#include "transport_systems.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <vector>

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

// A client that multiplexes (gRPC's) keeps several calls in flight on one
// connection: each returns checked, and a server that goes away fails the
// run, after the calls in flight have ended, instead of hanging it. The
// other systems' clients make one call at a time and refuse more.
TEST(TransportSystems, MultiplexingClientsKeepCallsInFlightAndFailWhenTheServerGoes) {
  for (const System& system : systems()) {
    SCOPED_TRACE(system.name);
    auto server = system.serve();
    for (Payload payload : {Payload::add, Payload::echo}) {
      auto connection = system.connect(server->port(), payload)(0);
      int started = 0, returned = 0;
      std::vector<Clock::time_point> begins;
      Clock::time_point first_end = Clock::time_point::max();
      auto may_start = [&](Clock::time_point) { return started++ < 40; };
      auto count = [&](Clock::time_point begin, Clock::time_point end) {
        EXPECT_LE(begin, end);
        begins.push_back(begin);
        first_end = std::min(first_end, end);
        ++returned;
      };
      if (!system.multiplexes) {
        EXPECT_THROW(connection->call_in_flight(8, may_start, count), std::invalid_argument);
        continue;
      }
      ASSERT_NO_THROW(connection->call_in_flight(8, may_start, count));
      EXPECT_EQ(returned, 40);
      // All 8 were under way before the first came back.
      EXPECT_EQ(std::count_if(begins.begin(), begins.end(), [&](auto b) { return b < first_end; }), 8);
    }
    if (!system.multiplexes) continue;
    auto connection = system.connect(server->port(), Payload::add)(0);
    server.reset();  // stopped: the calls below fail
    int returned = 0;
    EXPECT_THROW(connection->call_in_flight(
                     8, [](Clock::time_point) { return true; },
                     [&](Clock::time_point, Clock::time_point) { ++returned; }),
                 std::runtime_error);
    EXPECT_EQ(returned, 0);
  }
}

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
