// ledger-server: serves ledger.total, which calls shop-server (SHOP_URL).
// Same environment contract as shop-server; default address 127.0.0.1:8001
// so both run side by side with their defaults.
#include <cstdio>
#include <cstdlib>

#include "dispatch/transport/server.h"
#include "ledger/api.dispatch.h"

int main() {
  if (std::getenv("DISPATCH_ENDPOINT_ADDR") == nullptr && std::getenv("PORT") == nullptr) {
    ::setenv("DISPATCH_ENDPOINT_ADDR", "127.0.0.1:8001", 0);
  }
  auto options = dispatch::ServerOptions::from_env();
  if (!options.ok()) {
    std::fprintf(stderr, "ledger-server: %s\n", options.error().what());
    return 2;
  }
  dispatch::DispatchTable table{&ledger::remote::api_service()};
  dispatch::Server server(table, std::move(*options));
  server.handle_signals();
  auto ran = server.run();
  if (!ran.ok()) {
    std::fprintf(stderr, "ledger-server: %s\n", ran.error().what());
    return 1;
  }
  return 0;
}
