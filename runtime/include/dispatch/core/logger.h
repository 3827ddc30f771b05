// dispatch::Logger: the runtime's one-line-per-event log to stderr (the
// server's "executing: shop.add -> ok in 0.21 ms"), with a level from
// DISPATCH_LOG_LEVEL and a format from DISPATCH_LOG_FORMAT: text, or json
// (one object per line: time, level, message, and function, dispatch_id,
// trace_id for a line about a call). A value passed where it is needed
// (ServerOptions holds one), not a global: two servers in one process may
// log differently.
//
// Not for: user output. Nothing here ever writes to stdout.
// Public header: compiles as C++17 and C++20.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <string_view>

namespace dispatch {

enum class LogLevel { debug, info, warn, error, off };
enum class LogFormat { text, json };

// "debug", "info", "warn", "error", "off" (case-insensitive); nullopt otherwise.
std::optional<LogLevel> log_level_from_name(std::string_view name) noexcept;
std::string_view log_level_name(LogLevel level) noexcept;
// "text", "json" (case-insensitive); nullopt otherwise.
std::optional<LogFormat> log_format_from_name(std::string_view name) noexcept;

// What a line is about when it is about one call; empty fields are left out.
struct LogFields {
  std::string_view function;     // "shop.add"
  std::string_view dispatch_id;  // durable calls
  std::string_view trace_id;     // W3C trace id, 32 hex digits
};

class Logger {
 public:
  // Receives each enabled line without a trailing newline. Text format: the
  // message, then " dispatch_id=<id>" and " trace_id=<id>" when the line is
  // about a call that has them; the default sink writes
  // "<UTC time> <level> <line>\n" to stderr in one write(2). JSON format:
  // the whole object, {"time":...,"level":...,"message":...,"function":...,
  // "dispatch_id":...,"trace_id":...}; the default sink writes it as is.
  using Sink = std::function<void(LogLevel level, std::string_view line)>;

  explicit Logger(LogLevel level = LogLevel::info, Sink sink = {}, LogFormat format = LogFormat::text);

  // Level from DISPATCH_LOG_LEVEL (default info), format from
  // DISPATCH_LOG_FORMAT (text or json, default text). An unknown value is
  // reported on stderr once and the default used. Under Knative (K_SERVICE,
  // K_REVISION set, as its runtime contract says) every line carries the
  // service and revision (text: " service=<K_SERVICE> revision=<K_REVISION>"
  // at the end; JSON: "service" and "revision" members), so lines from
  // several revisions of a service can be told apart once collected.
  static Logger from_env();

  LogLevel level() const noexcept { return level_; }
  LogFormat format() const noexcept { return format_; }
  bool enabled(LogLevel level) const noexcept {
    return level_ != LogLevel::off && level != LogLevel::off && level >= level_;
  }
  // A line; inside a call (a function running, dispatch::this_call()), about
  // that call: its function, dispatch id and trace id go with it.
  void log(LogLevel level, std::string_view line) const;
  // A line about the call `fields` names (the server's "executing:" line,
  // written once the call has returned).
  void log(LogLevel level, std::string_view line, const LogFields& fields) const;

 private:
  void emit(LogLevel level, std::string_view line, const LogFields& fields) const;

  LogLevel level_;
  LogFormat format_;
  Sink sink_;
  // Labels on every line (Knative's service and revision), in order.
  std::vector<std::pair<std::string, std::string>> labels_;
};

}  // namespace dispatch
