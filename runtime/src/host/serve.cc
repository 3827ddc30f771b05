// serve_from_env(): the main() of a server without one (see the header).
#include "dispatch/host/serve.h"

#include <cstdio>
#include <string>

#include "dispatch/core/logger.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/events/event_route.h"
#include "dispatch/transport/server.h"

namespace dispatch {
namespace {

// The routes every served table gets beside its own services: a function
// returning the built-in Service. Adding a kind of route is one line here.
using BuiltinRoute = const Service& (*)();
constexpr BuiltinRoute kBuiltinRoutes[] = {
    &function_service,  // the Dispatch protocol's Run (durable calls from a scheduler)
};

// A start that cannot go on, said as the server's log lines are (JSON
// with DISPATCH_LOG_FORMAT=json, where a platform collects them), at error;
// plainly when logs are off, since exiting without a word helps nobody.
int fail(std::string_view program, int status, const Error& error) {
  const std::string line = std::string(program) + ": " + error.what();
  const Logger logger = Logger::from_env();
  if (logger.enabled(LogLevel::error)) {
    logger.log(LogLevel::error, line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  return status;
}

}  // namespace

Result<void> add_builtin_routes(DispatchTable& table) {
  for (BuiltinRoute builtin : kBuiltinRoutes) {
    const Service& service = builtin();
    bool served = false;
    for (std::size_t i = 0; i < service.method_count; ++i) {
      served = served || table.find(service.methods[i].path) != nullptr;
    }
    if (served) continue;
    if (auto added = table.add(service); !added.ok()) return added;
  }
  return {};
}

int serve_from_env(std::string_view program, std::initializer_list<const Service*> services) {
  DispatchTable table;
  for (const Service* service : services) {
    if (auto added = table.add(*service); !added.ok()) return fail(program, 2, added.error());
  }
  if (auto added = add_builtin_routes(table); !added.ok()) return fail(program, 2, added.error());
  auto options = ServerOptions::from_env();
  if (!options.ok()) return fail(program, 2, options.error());
  if (events::event_function_count(table) != 0) {
    auto route = events::event_route(table, events::EventOptions::from_env());
    if (!route.ok()) return fail(program, 2, route.error());
    options->routes.push_back(std::move(*route));
  }
  Server server(table, std::move(*options));
  server.handle_signals();
  if (auto ran = server.run(); !ran.ok()) return fail(program, 1, ran.error());
  return 0;
}

}  // namespace dispatch
