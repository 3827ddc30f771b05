// dispatch::metrics: counters, gauges and histograms, and the Registry that
// holds them and prints them in the Prometheus text exposition format
// (version 0.0.4) for GET /metrics. A registry is an object passed where it
// is needed (ServerOptions::metrics, SchedulerOptions::metrics), never a
// global: two servers in one process keep their own.
//
// Cheap enough to leave on: an update is one relaxed atomic add on a cache
// line of the CPU the thread runs on (per-CPU shards, summed at scrape
// time; the CPU is asked of the kernel once every 64 updates), so I/O
// threads on different CPUs do not write the same line and no lock is
// taken. Looking a series up by its labels takes the registry's
// lock: do it once, keep the reference (series live as long as the registry).
//
// Not for: pushing, exemplars, summaries, or OpenMetrics' extras.
// Public header: compiles as C++17 and C++20.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dispatch::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

namespace detail {
class Cells;  // per-CPU shards of atomic 64-bit cells
}

// A count that only goes up (Prometheus "counter"; names end in _total).
class Counter {
 public:
  explicit Counter(std::size_t shards);
  ~Counter();
  void inc(uint64_t n = 1) noexcept;
  uint64_t value() const noexcept;

 private:
  std::unique_ptr<detail::Cells> cells_;
};

// A value that goes up and down by steps (calls in flight, open
// connections). Sharded like a counter: each shard's sum may be negative,
// the total is right.
class Gauge {
 public:
  explicit Gauge(std::size_t shards);
  ~Gauge();
  void add(int64_t n) noexcept;
  void inc() noexcept { add(1); }
  void dec() noexcept { add(-1); }
  int64_t value() const noexcept;

 private:
  std::unique_ptr<detail::Cells> cells_;
};

// Observations counted into buckets with fixed upper bounds (Prometheus
// "histogram": _bucket{le=...} cumulative, _sum, _count).
class Histogram {
 public:
  // `bounds`: increasing upper bounds; +Inf is implied.
  Histogram(std::vector<double> bounds, std::size_t shards);
  ~Histogram();
  void observe(double value) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<detail::Cells> cells_;
};

// Latency buckets in seconds, 50 us to 10 s: RPC latencies on one machine
// start near 20 us; a scheduler's queue delay may reach seconds.
std::vector<double> latency_buckets();
// Powers of two from 1 to 4096 (batch sizes).
std::vector<double> size_buckets();

// Samples a collector writes at scrape time, for values that are read
// rather than counted (rows per state in a store, a limit per endpoint).
class SampleWriter {
 public:
  virtual void gauge(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;
  virtual void counter(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;

 protected:
  ~SampleWriter() = default;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The series of metric `name` with `labels`, made at its first request.
  // Names and label names follow Prometheus ([a-zA-Z_:][a-zA-Z0-9_:]*,
  // counters end in _total, units in the name: _seconds, _bytes). Asking
  // for a name already registered as another type, or a malformed name, is
  // a programmer error: the series returned then counts but is not exposed,
  // and expose() names the problem in a comment.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                       const Labels& labels = {});

  // Runs `collect` at every expose(), on the scraping thread; it must not
  // block for long. The returned id removes it (remove_collector) when its
  // owner goes away before the registry.
  using Collect = std::function<void(SampleWriter&)>;
  uint64_t add_collector(Collect collect);
  void remove_collector(uint64_t id);

  // Every metric in the text exposition format, version 0.0.4 (Content-Type
  // kContentType), families in registration order.
  std::string expose() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  // Per-CPU shards each series keeps (a power of two covering the CPUs).
  std::size_t shards() const noexcept { return shards_; }

 private:
  struct Family;
  struct Series;
  Series& series(int type, std::string_view name, std::string_view help, const Labels& labels,
                 const std::vector<double>* bounds);

  std::size_t shards_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // guarded by mu_
  std::vector<std::unique_ptr<Series>> detached_;  // guarded by mu_
  std::vector<std::string> problems_;              // guarded by mu_
  std::vector<std::pair<uint64_t, Collect>> collectors_;  // guarded by mu_
  uint64_t next_collector_ = 1;                           // guarded by mu_
};

// True for a valid metric name (label names: the same without ':').
bool valid_metric_name(std::string_view name) noexcept;
bool valid_label_name(std::string_view name) noexcept;

}  // namespace dispatch::metrics
