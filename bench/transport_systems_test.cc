// Smoke test of every system bench-transport compares: its server starts on
// 127.0.0.1, a connection makes checked calls of both payloads, and a
// connection to a port nobody serves fails instead of measuring nothing, and
// the signed server refuses unsigned calls.
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

}  // namespace
}  // namespace bench
