// Logger: level parsing and the default stderr sink.
#include "dispatch/core/logger.h"

#include <unistd.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>

namespace dispatch {
namespace {

constexpr std::array<std::string_view, 5> kNames{"debug", "info", "warn", "error", "off"};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

void write_stderr(LogLevel level, std::string_view line) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  std::string out(stamp);
  out.append(log_level_name(level)).append(" ").append(line).append("\n");
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

Logger::Logger(LogLevel level, Sink sink) : level_(level), sink_(std::move(sink)) {}

Logger Logger::from_env() {
  const char* value = std::getenv("DISPATCH_LOG_LEVEL");
  std::optional<LogLevel> level = LogLevel::info;
  if (value != nullptr && *value != '\0') level = log_level_from_name(value);
  Logger logger(level.value_or(LogLevel::info));
  for (const auto& [variable, label] : {std::pair{"K_SERVICE", " service="}, std::pair{"K_REVISION", " revision="}}) {
    const char* v = std::getenv(variable);
    if (v != nullptr && *v != '\0') logger.labels_.append(label).append(v);
  }
  if (!level) {
    logger.log(LogLevel::warn, std::string("DISPATCH_LOG_LEVEL='") + value +
                                   "' is not one of debug, info, warn, error, off; using info");
  }
  return logger;
}

void Logger::log(LogLevel level, std::string_view line) const {
  if (!enabled(level)) return;
  std::string labelled;
  if (!labels_.empty()) line = labelled.append(line).append(labels_);
  if (sink_) {
    sink_(level, line);
  } else {
    write_stderr(level, line);
  }
}

}  // namespace dispatch
