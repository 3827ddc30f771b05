// When each durable call first started running, by dispatch ID, and a way to
// wait for one. Shared by the no-op function (durable_api.cc) and
// bench-durable's driver. And SequenceSink: what bench-durable-procs'
// endpoint is told of each start instead (the call's argument).
//
// Not for: exactly-once accounting (a redelivered call keeps its first start).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace bench_durable {

class StartRecorder {
 public:
  using Clock = std::chrono::steady_clock;

  void started(const std::string& id) {
    auto now = Clock::now();
    {
      std::lock_guard lock(mu_);
      starts_.emplace(id, now);
      ++deliveries_;
    }
    cv_.notify_all();
  }

  // The first start of `id`, waiting up to `timeout`; false if none came.
  bool wait_for(const std::string& id, std::chrono::milliseconds timeout, Clock::time_point* at) {
    std::unique_lock lock(mu_);
    bool found = cv_.wait_for(lock, timeout, [&] { return starts_.count(id) != 0; });
    if (found) *at = starts_.at(id);
    return found;
  }

  // The first start of `id`, if it started.
  bool find(const std::string& id, Clock::time_point* at) {
    std::lock_guard lock(mu_);
    auto it = starts_.find(id);
    if (it == starts_.end()) return false;
    *at = it->second;
    return true;
  }

  std::uint64_t deliveries() {
    std::lock_guard lock(mu_);
    return deliveries_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Clock::time_point> starts_;
  std::uint64_t deliveries_ = 0;
};

// Set by bench-durable's main() before the endpoint serves.
extern StartRecorder* recorder;

// Told the no-op's argument each time it starts (bench-durable-procs
// carries the time the call was dispatched in it). Called on the server's
// worker threads.
class SequenceSink {
 public:
  virtual ~SequenceSink() = default;
  virtual void started(std::int64_t sequence) = 0;
};

// Set by bench-durable-procs' endpoint before it serves.
extern SequenceSink* sequence_sink;

}  // namespace bench_durable
