// Logger: level and format parsing, the line formats and the default stderr
// sink. JSON lines are built with nlohmann::json (Debian's
// nlohmann-json3-dev, header-only, included here only): a message may hold
// anything a function or a peer put in it (quotes, control characters,
// invalid UTF-8), and escaping that correctly is the library's job, not a
// hand-written escaper's.
#include "dispatch/core/logger.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>

#include "dispatch/core/service.h"

namespace dispatch {
namespace {

constexpr std::array<std::string_view, 5> kNames{"debug", "info", "warn", "error", "off"};
constexpr std::array<std::string_view, 2> kFormats{"text", "json"};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// "2026-11-23T09:11:02.123Z": RFC 3339, UTC, milliseconds.
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return stamp;
}

void write_stderr(LogFormat format, LogLevel level, std::string_view line) {
  std::string out;
  if (format == LogFormat::text) {
    out = utc_now();
    out.append(" ").append(log_level_name(level)).append(" ");
  }
  out.append(line).append("\n");
  // One write(2) per line so lines from concurrent threads do not interleave.
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(STDERR_FILENO, out.data() + done, out.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::optional<LogLevel> log_level_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (iequals(name, kNames[i])) return static_cast<LogLevel>(i);
  }
  if (iequals(name, "warning")) return LogLevel::warn;
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) noexcept {
  const auto i = static_cast<std::size_t>(level);
  return i < kNames.size() ? kNames[i] : std::string_view("?");
}

std::optional<LogFormat> log_format_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kFormats.size(); ++i) {
    if (iequals(name, kFormats[i])) return static_cast<LogFormat>(i);
  }
  return std::nullopt;
}

Logger::Logger(LogLevel level, Sink sink, LogFormat format)
    : level_(level), format_(format), sink_(std::move(sink)) {}

Logger Logger::from_env() {
  std::string problems;
  LogFormat format = LogFormat::text;
  if (const char* value = std::getenv("DISPATCH_LOG_FORMAT"); value != nullptr && *value != '\0') {
    if (auto parsed = log_format_from_name(value)) {
      format = *parsed;
    } else {
      problems = std::string("DISPATCH_LOG_FORMAT='") + value + "' is not one of text, json; using text";
    }
  }
  LogLevel level = LogLevel::info;
  if (const char* value = std::getenv("DISPATCH_LOG_LEVEL"); value != nullptr && *value != '\0') {
    if (auto parsed = log_level_from_name(value)) {
      level = *parsed;
    } else {
      if (!problems.empty()) problems += "; ";
      problems += std::string("DISPATCH_LOG_LEVEL='") + value +
                  "' is not one of debug, info, warn, error, off; using info";
    }
  }
  Logger logger(level, {}, format);
  // Knative's runtime contract sets these; they label every line.
  for (const auto& [variable, name] : {std::pair{"K_SERVICE", "service"}, std::pair{"K_REVISION", "revision"}}) {
    const char* v = std::getenv(variable);
    if (v != nullptr && *v != '\0') logger.labels_.emplace_back(name, v);
  }
  if (!problems.empty()) {
    Logger(LogLevel::warn, {}, format).log(LogLevel::warn, problems);
  }
  return logger;
}

void Logger::log(LogLevel level, std::string_view line) const {
  if (!enabled(level)) return;
  const CallContext& call = this_call();
  const std::string trace_id = call.trace.trace_id_hex();
  emit(level, line, LogFields{call.function, call.dispatch_id, trace_id});
}

void Logger::log(LogLevel level, std::string_view line, const LogFields& fields) const {
  if (!enabled(level)) return;
  emit(level, line, fields);
}

void Logger::emit(LogLevel level, std::string_view line, const LogFields& fields) const {
  std::string formatted;
  std::string_view out = line;
  if (format_ == LogFormat::json) {
    nlohmann::ordered_json object;
    object["time"] = utc_now();
    object["level"] = log_level_name(level);
    object["message"] = line;
    if (!fields.function.empty()) object["function"] = fields.function;
    if (!fields.dispatch_id.empty()) object["dispatch_id"] = fields.dispatch_id;
    if (!fields.trace_id.empty()) object["trace_id"] = fields.trace_id;
    for (const auto& [name, value] : labels_) object[name] = value;
    // Invalid UTF-8 (a peer's bytes quoted in a message) becomes U+FFFD
    // rather than an exception or a line no JSON parser accepts.
    formatted = object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    out = formatted;
  } else if (!fields.dispatch_id.empty() || !fields.trace_id.empty() || !labels_.empty()) {
    formatted.reserve(line.size() + 80);
    formatted.append(line);
    if (!fields.dispatch_id.empty()) formatted.append(" dispatch_id=").append(fields.dispatch_id);
    if (!fields.trace_id.empty()) formatted.append(" trace_id=").append(fields.trace_id);
    for (const auto& [name, value] : labels_) formatted.append(" ").append(name).append("=").append(value);
    out = formatted;
  }
  if (sink_) {
    sink_(level, out);
  } else {
    write_stderr(format_, level, out);
  }
}

}  // namespace dispatch
