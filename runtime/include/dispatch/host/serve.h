// dispatch::serve_from_env(): the whole main() of a server that serves
// generated services, configured by its environment, as the executable
// `dispatch_add_server()` makes runs it (docs/deploy.md). The same for a
// hand-written main that needs nothing more:
//
//   int main() { return dispatch::serve_from_env("shop-server", {&shop::remote::api_service()}); }
//
// What it serves: the services given, the built-in routes (the Dispatch
// protocol's Run, so a scheduler can deliver durable calls), and CloudEvents
// for their [[dispatch::event]] functions, on the server of
// dispatch/transport/server.h with ServerOptions::from_env() (PORT,
// DISPATCH_ENDPOINT_ADDR, DISPATCH_VERIFICATION_KEY, DISPATCH_LOG_LEVEL; the
// health probes; K_SERVICE/K_REVISION in log lines), until SIGTERM or SIGINT
// drains it.
//
// Not for: servers that add their own routes or options (build the table and
// the Server yourself). Public header: compiles as C++17 and C++20.
#pragma once

#include <initializer_list>
#include <string_view>

#include "dispatch/core/result.h"
#include "dispatch/core/service.h"

namespace dispatch {

// Adds the built-in routes to `table`, each unless a service of the table
// serves its path already. A new kind of built-in route is one line in
// serve.cc.
Result<void> add_builtin_routes(DispatchTable& table);

// Serves until drained. Returns the process's exit status: 0 after a drain,
// 1 when the server cannot start (the port is taken), 2 when the
// configuration is wrong (a malformed environment variable, two functions
// taking one event type), each with one line on stderr starting with
// `program`.
int serve_from_env(std::string_view program, std::initializer_list<const Service*> services);

}  // namespace dispatch
