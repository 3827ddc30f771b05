// Bench-only: what the benchmarks that run a scheduler and its endpoint in
// one process share: a Result unwrapped or thrown as the run's failure, and
// a dispatch::Server on a free loopback port with warnings-only logging.
// Not for: anything timed (all of it runs before the measured windows).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "dispatch/core/result.h"
#include "dispatch/transport/server.h"

namespace bench {

template <typename T>
T value_or_throw(dispatch::Result<T> r, const std::string& what) {
  if (!r.ok()) throw std::runtime_error(what + ": " + r.error().message());
  return std::move(r).value();
}

inline void check(dispatch::Result<void> r, const std::string& what) {
  if (!r.ok()) throw std::runtime_error(what + ": " + r.error().message());
}

// `workers`: ServerOptions::workers (0, its default: one per core).
inline std::unique_ptr<dispatch::Server> serve(const dispatch::DispatchTable& table, std::size_t workers = 0) {
  dispatch::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.workers = workers;
  options.logger = dispatch::Logger(dispatch::LogLevel::warn);
  auto server = std::make_unique<dispatch::Server>(table, std::move(options));
  check(server->start(), "starting a server");
  return server;
}

inline std::string url(const dispatch::Server& server) {
  return "http://127.0.0.1:" + std::to_string(server.port());
}

}  // namespace bench
