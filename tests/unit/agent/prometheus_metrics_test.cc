#include "edge/agent/prometheus_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace edge::agent {
namespace {

TEST(PrometheusMetrics, HistogramRendersCumulativeBucketsCountAndSum) {
  PrometheusMetrics m;
  HistogramHandle& h = m.Histogram("x_seconds", "help text", {0.1, 1.0}, {{"kind", "a"}});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  // The same name and labels give the same series.
  EXPECT_EQ(&m.Histogram("x_seconds", "help text", {0.1, 1.0}, {{"kind", "a"}}), &h);
  const std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE x_seconds histogram"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{kind=\"a\",le=\"0.1\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{kind=\"a\",le=\"1\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{kind=\"a\",le=\"+Inf\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_count{kind=\"a\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_sum{kind=\"a\"} 5.55"), std::string::npos) << text;
}

}  // namespace
}  // namespace edge::agent
