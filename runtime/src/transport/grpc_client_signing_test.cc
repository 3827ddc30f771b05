// GrpcClient's RFC 9421 signatures: a verifying server accepts a signed
// gRPC call (plain and gzipped bodies) and refuses an unsigned one or one
// signed with another key, with the gRPC status a Connect call would get.
#include <gtest/gtest.h>

#include <memory>

#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/grpc_client.h"
#include "dispatch/transport/server.h"
#include "transport/test_service.h"

namespace dispatch::transport {
namespace {

class VerifyingServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.verifier = std::make_shared<security::Verifier>(key_.public_key());
    server_ = std::make_unique<Server>(table_, std::move(options));
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override { server_->stop(); }

  GrpcClientOptions signing_with(const security::SigningKey& key) {
    GrpcClientOptions o;
    o.signer = std::make_shared<security::Signer>(key);
    return o;
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  security::SigningKey key_ = security::SigningKey::generate();
  DispatchTable table_{&dispatch::testing::test_service()};
  std::unique_ptr<Server> server_;
};

TEST_F(VerifyingServer, AcceptsASignedGrpcCall) {
  GrpcClient client(target(), signing_with(key_));
  auto reply = client.call("/t.TService/echo", "hello", {});
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(*reply, "hello");
  // Every call is signed afresh, on a reused connection too.
  auto again = client.call("/t.TService/echo", "again", {});
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(VerifyingServer, SignsTheGzippedBodyAsSent) {
  GrpcClientOptions o = signing_with(key_);
  o.gzip_requests = true;
  GrpcClient client(target(), o);
  auto reply = client.call("/t.TService/echo", std::string(4096, 'z'), {});
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(*reply, std::string(4096, 'z'));
}

TEST_F(VerifyingServer, RefusesAnUnsignedCall) {
  GrpcClient client(target());
  auto reply = client.call("/t.TService/echo", "hello", {});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code(), Code::unauthenticated) << reply.error().message();
}

TEST_F(VerifyingServer, RefusesACallSignedWithAnotherKey) {
  GrpcClient client(target(), signing_with(security::SigningKey::generate()));
  auto reply = client.call("/t.TService/echo", "hello", {});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code(), Code::permission_denied) << reply.error().message();
}

}  // namespace
}  // namespace dispatch::transport
