// dispatch::Logger: the runtime's one-line-per-event log to stderr (the
// server's "executing: shop.add -> ok in 0.21 ms"), with a level from
// DISPATCH_LOG_LEVEL. A value passed where it is needed (ServerOptions holds
// one), not a global: two servers in one process may log differently.
//
// Not for: user output. Nothing here ever writes to stdout.
// Public header: compiles as C++17 and C++20.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace dispatch {

enum class LogLevel { debug, info, warn, error, off };

// "debug", "info", "warn", "error", "off" (case-insensitive); nullopt otherwise.
std::optional<LogLevel> log_level_from_name(std::string_view name) noexcept;
std::string_view log_level_name(LogLevel level) noexcept;

class Logger {
 public:
  // Receives each enabled line without a trailing newline. The default sink
  // writes "<UTC time> <level> <line>\n" to stderr in one write(2).
  using Sink = std::function<void(LogLevel level, std::string_view line)>;

  explicit Logger(LogLevel level = LogLevel::info, Sink sink = {});

  // Level from DISPATCH_LOG_LEVEL (default info). An unknown value is
  // reported on stderr once and treated as info. Under Knative (K_SERVICE,
  // K_REVISION set, as its runtime contract says) every line ends with
  // " service=<K_SERVICE> revision=<K_REVISION>", so lines from several
  // revisions of a service can be told apart once collected.
  static Logger from_env();

  LogLevel level() const noexcept { return level_; }
  bool enabled(LogLevel level) const noexcept {
    return level_ != LogLevel::off && level != LogLevel::off && level >= level_;
  }
  void log(LogLevel level, std::string_view line) const;

 private:
  LogLevel level_;
  Sink sink_;
  std::string labels_;  // appended to every line; empty: none
};

}  // namespace dispatch
