// shop-server: serves the shop functions over HTTP (Connect, binary and
// JSON). Listens on DISPATCH_ENDPOINT_ADDR (default 127.0.0.1:8000), or on
// 0.0.0.0:$PORT when PORT is set; port 0 picks a free one (the log line says
// which). SIGTERM/SIGINT drain in-flight calls, then exit 0.
// With DISPATCH_VERIFICATION_KEY set, only calls signed with the matching
// private key are served (docs/security.md); without it, one warning says so.
#include <cstdio>

#include "dispatch/transport/server.h"
#include "shop/api.dispatch.h"

int main() {
  auto options = dispatch::ServerOptions::from_env();
  if (!options.ok()) {
    std::fprintf(stderr, "shop-server: %s\n", options.error().what());
    return 2;
  }
  dispatch::DispatchTable table{&shop::remote::api_service()};
  dispatch::Server server(table, std::move(*options));
  server.handle_signals();
  auto ran = server.run();
  if (!ran.ok()) {
    std::fprintf(stderr, "shop-server: %s\n", ran.error().what());
    return 1;
  }
  return 0;
}
