// route_protobuf_logs(): protobuf's log handler, a Logger kept for it, and
// the limit on repeated lines.
#include "transport/protobuf_logs.h"

#include <google/protobuf/stubs/logging.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace dispatch::transport {
namespace {

namespace pb = google::protobuf;

// Texts remembered for the repeat limit: at most this many distinct lines
// per kRepeatEvery, so a peer cannot grow the map (or the log) without
// bound.
constexpr std::size_t kRememberedTexts = 256;

struct Route {
  std::mutex mu;
  std::shared_ptr<const Logger> logger;  // null: not routed
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_written;  // text -> when
};

Route& route() {
  static Route* r = new Route();  // never destroyed: protobuf may log during static destruction
  return *r;
}

LogLevel level_of(pb::LogLevel level) {
  switch (level) {
    case pb::LOGLEVEL_INFO: return LogLevel::info;
    case pb::LOGLEVEL_WARNING:
    case pb::LOGLEVEL_ERROR: return LogLevel::warn;  // about one message's bytes, which its caller reports
    case pb::LOGLEVEL_FATAL: return LogLevel::error;
  }
  return LogLevel::warn;
}

void handle(pb::LogLevel level, const char* /*filename*/, int /*line*/, const std::string& message) {
  Route& r = route();
  std::shared_ptr<const Logger> logger;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    logger = r.logger;
    if (!logger || !logger->enabled(level_of(level))) return;
    const auto now = std::chrono::steady_clock::now();
    if (auto it = r.last_written.find(message); it != r.last_written.end()) {
      if (now - it->second < kRepeatEvery) return;
      it->second = now;
    } else {
      if (r.last_written.size() >= kRememberedTexts) {
        for (auto i = r.last_written.begin(); i != r.last_written.end();) {
          i = now - i->second >= kRepeatEvery ? r.last_written.erase(i) : std::next(i);
        }
      }
      // So many distinct texts within kRepeatEvery (a peer naming another
      // field each time): the rest are dropped until some age out.
      if (r.last_written.size() >= kRememberedTexts) return;
      r.last_written.emplace(message, now);
    }
  }
  logger->log(level_of(level), "protobuf: " + message);
}

}  // namespace

void route_protobuf_logs(Logger logger) {
  Route& r = route();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.logger = std::make_shared<const Logger>(std::move(logger));
    r.last_written.clear();
  }
  pb::SetLogHandler(&handle);
}

void route_protobuf_logs_once() {
  static std::once_flag once;
  std::call_once(once, [] { route_protobuf_logs(Logger::from_env()); });
}

}  // namespace dispatch::transport
