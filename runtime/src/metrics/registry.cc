// The metrics registry: per-CPU sharded cells and the Prometheus text
// exposition format (https://prometheus.io/docs/instrumenting/exposition_formats/).
#include "dispatch/metrics/registry.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>

namespace dispatch::metrics {
namespace detail {
namespace {

// The CPU this thread runs on, asked of the kernel once every 64 updates
// and cached per thread in between: sched_getcpu() costs 20-40 ns on a VM
// (more than the add it picks a line for), and a thread seldom moves. An
// update made after a move lands on another CPU's line, which is still
// correct (the add is atomic), only no longer private for a moment.
// Thread-local by necessity: the cache belongs to the thread, not to any
// registry.
std::size_t current_cpu() noexcept {
  struct Cache {
    std::size_t cpu = 0;
    unsigned uses = 0;
  };
  thread_local Cache cache;
  if ((cache.uses++ & 63u) == 0) {
    const int cpu = sched_getcpu();
    cache.cpu = cpu < 0 ? 0 : static_cast<std::size_t>(cpu);
  }
  return cache.cpu;
}

}  // namespace

// `shards` blocks of `width` atomic 64-bit cells, each block starting on its
// own cache line (and padded to whole lines), so two CPUs updating the same
// series touch different lines. A thread picks the block of the CPU it runs
// on (current_cpu()).
class Cells {
 public:
  Cells(std::size_t shards, std::size_t width)
      : shards_(shards), stride_((width + kPerLine - 1) / kPerLine * kPerLine),
        cells_(new (std::align_val_t(kLine)) std::atomic<uint64_t>[shards * stride_]) {
    for (std::size_t i = 0; i < shards_ * stride_; ++i) cells_[i].store(0, std::memory_order_relaxed);
  }
  ~Cells() { ::operator delete[](cells_, std::align_val_t(kLine)); }
  Cells(const Cells&) = delete;
  Cells& operator=(const Cells&) = delete;

  std::atomic<uint64_t>* mine() noexcept { return cells_ + (current_cpu() & (shards_ - 1)) * stride_; }
  uint64_t sum(std::size_t cell) const noexcept {
    uint64_t total = 0;
    for (std::size_t s = 0; s < shards_; ++s) total += cells_[s * stride_ + cell].load(std::memory_order_relaxed);
    return total;
  }
  std::size_t shards() const noexcept { return shards_; }
  const std::atomic<uint64_t>* shard(std::size_t s) const noexcept { return cells_ + s * stride_; }

 private:
  static constexpr std::size_t kLine = 64;
  static constexpr std::size_t kPerLine = kLine / sizeof(uint64_t);
  std::size_t shards_;
  std::size_t stride_;
  std::atomic<uint64_t>* cells_;
};

}  // namespace detail

namespace {

enum Type { kCounter, kGauge, kHistogram };
constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};

uint64_t bits_of(double d) noexcept {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}
double double_of(uint64_t u) noexcept {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

// Go's ParseFloat reads what std::to_chars writes (shortest round trip);
// the specials are spelled as the format requires.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_labels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    append_escaped(out, value, true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

std::size_t shard_count() {
  const std::size_t cpus = std::max(1u, std::thread::hardware_concurrency());
  return std::min<std::size_t>(std::bit_ceil(cpus), 256);
}

}  // namespace

Counter::Counter(std::size_t shards) : cells_(std::make_unique<detail::Cells>(shards, 1)) {}
Counter::~Counter() = default;
void Counter::inc(uint64_t n) noexcept { cells_->mine()[0].fetch_add(n, std::memory_order_relaxed); }
uint64_t Counter::value() const noexcept { return cells_->sum(0); }

Gauge::Gauge(std::size_t shards) : cells_(std::make_unique<detail::Cells>(shards, 1)) {}
Gauge::~Gauge() = default;
void Gauge::add(int64_t n) noexcept {
  cells_->mine()[0].fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}
int64_t Gauge::value() const noexcept { return static_cast<int64_t>(cells_->sum(0)); }

// Cells: one count per bucket (the last is +Inf), then the sum as a double.
Histogram::Histogram(std::vector<double> bounds, std::size_t shards)
    : bounds_(std::move(bounds)), cells_(std::make_unique<detail::Cells>(shards, bounds_.size() + 2)) {}
Histogram::~Histogram() = default;

void Histogram::observe(double value) noexcept {
  const std::size_t bucket =
      static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::atomic<uint64_t>* cells = cells_->mine();
  cells[bucket].fetch_add(1, std::memory_order_relaxed);
  std::atomic<uint64_t>& sum = cells[bounds_.size() + 1];
  // The shard's line is this CPU's: the exchange rarely has to retry.
  uint64_t seen = sum.load(std::memory_order_relaxed);
  while (!sum.compare_exchange_weak(seen, bits_of(double_of(seen) + value), std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (std::size_t b = 0; b <= bounds_.size(); ++b) {
    running += cells_->sum(b);
    s.cumulative[b] = running;
  }
  s.count = running;
  for (std::size_t shard = 0; shard < cells_->shards(); ++shard) {
    s.sum += double_of(cells_->shard(shard)[bounds_.size() + 1].load(std::memory_order_relaxed));
  }
  return s;
}

std::vector<double> latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> size_buckets() {
  std::vector<double> out;
  for (double b = 1; b <= 4096; b *= 2) out.push_back(b);
  return out;
}

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) noexcept {
  // Names beginning with __ are reserved for Prometheus itself.
  return valid_metric_name(name) && name.find(':') == std::string_view::npos && name.substr(0, 2) != "__";
}

struct Registry::Series {
  Labels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct Registry::Family {
  std::string name;
  std::string help;
  int type = kCounter;
  std::vector<double> bounds;
  std::map<Labels, std::unique_ptr<Series>> series;  // sorted: stable output
};

Registry::Registry() : shards_(shard_count()) {}
Registry::~Registry() = default;

Registry::Series& Registry::series(int type, std::string_view name, std::string_view help, const Labels& labels,
                                   const std::vector<double>* bounds) {
  std::lock_guard lock(mu_);
  auto make = [&] {
    auto s = std::make_unique<Series>();
    s->labels = labels;
    if (type == kCounter) s->counter = std::make_unique<Counter>(shards_);
    if (type == kGauge) s->gauge = std::make_unique<Gauge>(shards_);
    if (type == kHistogram) s->histogram = std::make_unique<Histogram>(*bounds, shards_);
    return s;
  };
  auto detach = [&](std::string problem) -> Series& {
    problems_.push_back(std::move(problem));
    return *detached_.emplace_back(make());
  };
  if (!valid_metric_name(name)) return detach("invalid metric name '" + std::string(name) + "'");
  for (const auto& [label, value] : labels) {
    if (!valid_label_name(label) || (type == kHistogram && label == "le")) {
      return detach("metric " + std::string(name) + ": invalid label name '" + label + "'");
    }
  }
  Family* family = nullptr;
  for (auto& f : families_) {
    if (f->name == name) family = f.get();
  }
  if (family == nullptr) {
    family = families_.emplace_back(std::make_unique<Family>()).get();
    family->name = std::string(name);
    family->help = std::string(help);
    family->type = type;
    if (bounds) family->bounds = *bounds;
  } else if (family->type != type) {
    return detach("metric " + std::string(name) + " is a " + kTypeNames[family->type] + ", asked for as a " +
                  kTypeNames[type]);
  } else if (bounds && *bounds != family->bounds) {
    return detach("metric " + std::string(name) + " asked for with other bucket bounds");
  }
  auto& slot = family->series[labels];
  if (!slot) slot = make();
  return *slot;
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  return *series(kCounter, name, help, labels, nullptr).counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  return *series(kGauge, name, help, labels, nullptr).gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                               const Labels& labels) {
  return *series(kHistogram, name, help, labels, &bounds).histogram;
}

uint64_t Registry::add_collector(Collect collect) {
  std::lock_guard lock(mu_);
  collectors_.emplace_back(next_collector_, std::move(collect));
  return next_collector_++;
}

void Registry::remove_collector(uint64_t id) {
  std::lock_guard lock(mu_);
  collectors_.erase(std::remove_if(collectors_.begin(), collectors_.end(),
                                   [id](const auto& c) { return c.first == id; }),
                    collectors_.end());
}

namespace {

// Collected samples, grouped by family in the order families first appear.
class Collected final : public SampleWriter {
 public:
  struct Family {
    std::string name, help;
    const char* type;
    std::string samples;
  };
  std::vector<Family> families;
  std::vector<std::string> problems;

  void gauge(std::string_view name, std::string_view help, const Labels& labels, double value) override {
    add("gauge", name, help, labels, value);
  }
  void counter(std::string_view name, std::string_view help, const Labels& labels, double value) override {
    add("counter", name, help, labels, value);
  }

 private:
  void add(const char* type, std::string_view name, std::string_view help, const Labels& labels, double value) {
    if (!valid_metric_name(name)) {
      problems.push_back("invalid metric name '" + std::string(name) + "' from a collector");
      return;
    }
    Family* family = nullptr;
    for (auto& f : families) {
      if (f.name == name) family = &f;
    }
    if (family == nullptr) {
      family = &families.emplace_back(Family{std::string(name), std::string(help), type, {}});
    } else if (std::string_view(family->type) != type) {
      problems.push_back("collector metric " + std::string(name) + " written as two types");
      return;
    }
    family->samples += name;
    append_labels(family->samples, labels);
    family->samples += ' ';
    append_number(family->samples, value);
    family->samples += '\n';
  }
};

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

std::string Registry::expose() const {
  std::lock_guard lock(mu_);
  std::string out;
  std::vector<std::string> names;
  for (const auto& f : families_) {
    names.push_back(f->name);
    append_header(out, f->name, f->help, kTypeNames[f->type]);
    for (const auto& [labels, s] : f->series) {
      if (f->type == kHistogram) {
        const Histogram::Snapshot snap = s->histogram->snapshot();
        std::string bound;
        for (std::size_t b = 0; b <= snap.bounds.size(); ++b) {
          bound.clear();
          if (b < snap.bounds.size()) {
            append_number(bound, snap.bounds[b]);
          } else {
            bound = "+Inf";
          }
          out += f->name;
          out += "_bucket";
          append_labels(out, labels, "le", bound);
          out += ' ';
          out += std::to_string(snap.cumulative[b]);
          out += '\n';
        }
        out += f->name;
        out += "_sum";
        append_labels(out, labels);
        out += ' ';
        append_number(out, snap.sum);
        out += '\n';
        out += f->name;
        out += "_count";
        append_labels(out, labels);
        out += ' ';
        out += std::to_string(snap.count);
        out += '\n';
        continue;
      }
      out += f->name;
      append_labels(out, labels);
      out += ' ';
      out += f->type == kCounter ? std::to_string(s->counter->value()) : std::to_string(s->gauge->value());
      out += '\n';
    }
  }
  Collected collected;
  for (const auto& [id, collect] : collectors_) collect(collected);
  for (const auto& f : collected.families) {
    if (std::find(names.begin(), names.end(), f.name) != names.end()) {
      collected.problems.push_back("collector metric " + f.name + " is also a registered series");
      continue;
    }
    append_header(out, f.name, f.help, f.type);
    out += f.samples;
  }
  // Comments, which scrapers skip: a broken registration shows without
  // breaking the scrape.
  const std::vector<std::string>* lists[] = {&problems_, &collected.problems};
  for (const std::vector<std::string>* list : lists) {
    for (const auto& p : *list) {
      out += "# problem: ";
      append_escaped(out, p, false);
      out += '\n';
    }
  }
  return out;
}

}  // namespace dispatch::metrics
