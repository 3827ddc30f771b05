#include "dispatch/metrics/registry.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace dispatch::metrics {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(Registry, ExposesCountersAndGaugesInTheTextFormat) {
  Registry r;
  r.counter("dispatch_calls_total", "Calls.", {{"function", "shop.add"}, {"code", "ok"}}).inc(3);
  r.counter("dispatch_calls_total", "Calls.", {{"function", "shop.add"}, {"code", "internal"}}).inc();
  Gauge& in_flight = r.gauge("dispatch_in_flight", "In flight.");
  in_flight.inc();
  in_flight.inc();
  in_flight.dec();
  const std::string text = r.expose();
  EXPECT_TRUE(has_line(text, "# HELP dispatch_calls_total Calls.")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE dispatch_calls_total counter")) << text;
  EXPECT_TRUE(has_line(text, "dispatch_calls_total{function=\"shop.add\",code=\"ok\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "dispatch_calls_total{function=\"shop.add\",code=\"internal\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE dispatch_in_flight gauge")) << text;
  EXPECT_TRUE(has_line(text, "dispatch_in_flight 1")) << text;
  // One HELP and TYPE per family, however many series.
  EXPECT_EQ(text.find("# TYPE dispatch_calls_total"), text.rfind("# TYPE dispatch_calls_total"));
}

TEST(Registry, TheSameNameAndLabelsAreTheSameSeries) {
  Registry r;
  Counter& a = r.counter("x_total", "X.", {{"k", "v"}});
  Counter& b = r.counter("x_total", "X.", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &r.counter("x_total", "X.", {{"k", "w"}}));
}

TEST(Registry, HistogramsAreCumulativeWithSumAndCount) {
  Registry r;
  Histogram& h = r.histogram("d_seconds", "D.", {0.1, 1}, {{"function", "f"}});
  h.observe(0.05);
  h.observe(0.1);  // on a bound: counted in it (le is <=)
  h.observe(0.5);
  h.observe(7);
  const std::string text = r.expose();
  EXPECT_TRUE(has_line(text, "# TYPE d_seconds histogram")) << text;
  EXPECT_TRUE(has_line(text, "d_seconds_bucket{function=\"f\",le=\"0.1\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "d_seconds_bucket{function=\"f\",le=\"1\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "d_seconds_bucket{function=\"f\",le=\"+Inf\"} 4")) << text;
  EXPECT_TRUE(has_line(text, "d_seconds_sum{function=\"f\"} 7.65")) << text;
  EXPECT_TRUE(has_line(text, "d_seconds_count{function=\"f\"} 4")) << text;
}

TEST(Registry, EscapesLabelValuesAndHelp) {
  Registry r;
  r.counter("e_total", "Line one\nback\\slash", {{"v", "a\"b\\c\nd"}}).inc();
  const std::string text = r.expose();
  EXPECT_TRUE(has_line(text, "# HELP e_total Line one\\nback\\\\slash")) << text;
  EXPECT_TRUE(has_line(text, "e_total{v=\"a\\\"b\\\\c\\nd\"} 1")) << text;
}

TEST(Registry, AMisuseCountsButIsNotExposedAndIsNamed) {
  Registry r;
  r.counter("m_total", "M.").inc();
  r.gauge("m_total", "M as a gauge.").add(5);  // another type under the same name
  r.counter("bad name", "B.").inc();
  r.counter("l_total", "L.", {{"__reserved", "x"}}).inc();
  const std::string text = r.expose();
  EXPECT_TRUE(has_line(text, "m_total 1")) << text;
  EXPECT_EQ(text.find("m_total 5"), std::string::npos) << text;
  EXPECT_NE(text.find("# problem: metric m_total is a counter, asked for as a gauge"), std::string::npos) << text;
  EXPECT_NE(text.find("# problem: invalid metric name 'bad name'"), std::string::npos) << text;
  EXPECT_NE(text.find("invalid label name '__reserved'"), std::string::npos) << text;
}

TEST(Registry, CollectorsWriteValuesAtScrapeTime) {
  Registry r;
  int scrapes = 0;
  const uint64_t id = r.add_collector([&](SampleWriter& w) {
    ++scrapes;
    w.gauge("calls", "Calls by state.", {{"state", "pending"}}, 4);
    w.gauge("calls", "Calls by state.", {{"state", "running"}}, 1);
    w.counter("c_total", "C.", {}, 2.5);
  });
  std::string text = r.expose();
  EXPECT_EQ(scrapes, 1);
  EXPECT_TRUE(has_line(text, "# TYPE calls gauge")) << text;
  EXPECT_TRUE(has_line(text, "calls{state=\"pending\"} 4")) << text;
  EXPECT_TRUE(has_line(text, "calls{state=\"running\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "c_total 2.5")) << text;
  r.remove_collector(id);
  text = r.expose();
  EXPECT_EQ(text.find("calls{"), std::string::npos) << text;
}

TEST(Registry, CountsFromManyThreadsAddUp) {
  Registry r;
  Counter& c = r.counter("t_total", "T.");
  Gauge& g = r.gauge("g", "G.");
  Histogram& h = r.histogram("h", "H.", latency_buckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.inc();
        g.inc();
        h.observe(0.001);
        g.dec();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 800000u);
  EXPECT_EQ(g.value(), 0);
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.count, 800000u);
  EXPECT_NEAR(snap.sum, 800.0, 1e-6);
}

TEST(Names, FollowPrometheus) {
  EXPECT_TRUE(valid_metric_name("dispatch_server_calls_total"));
  EXPECT_TRUE(valid_metric_name("a:b"));
  EXPECT_FALSE(valid_metric_name("1abc"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_TRUE(valid_label_name("function"));
  EXPECT_FALSE(valid_label_name("a:b"));
  EXPECT_FALSE(valid_label_name("__name__"));
}

}  // namespace
}  // namespace dispatch::metrics
