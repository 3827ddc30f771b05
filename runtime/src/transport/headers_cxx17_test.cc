// The transport's public headers compile as C++17 (this target is built with
// CXX_STANDARD 17) and stay Boost-free: users' services are on 17 and 20.
#include <gtest/gtest.h>

#include "dispatch/core/logger.h"
#include "dispatch/transport/binary_header.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"

#ifdef BOOST_VERSION
#error "a transport public header pulled in Boost"
#endif

namespace {

TEST(TransportHeadersCxx17, DefaultsAreTheDocumentedOnes) {
  static_assert(__cplusplus < 202002L, "this test must be compiled as C++17");
  dispatch::ServerOptions server;
  EXPECT_EQ(server.max_body_bytes, 16000000u);
  EXPECT_EQ(server.host, "127.0.0.1");
  EXPECT_EQ(server.port, 8000);
  dispatch::HttpClientOptions client;
  EXPECT_EQ(client.connect_timeout, std::chrono::milliseconds(5000));
  EXPECT_TRUE(client.verify_tls);
  EXPECT_EQ(dispatch::log_level_from_name("info"), dispatch::LogLevel::info);
  EXPECT_EQ(dispatch::decode_binary_header(dispatch::encode_binary_header("\x01\xff")).value(), "\x01\xff");
}

}  // namespace
