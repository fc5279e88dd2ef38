#pragma once

// The edge::Metrics implementation backed by prometheus-cpp. Render() produces the
// Prometheus text exposition format served on /metrics. Thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "edge/common/metrics.h"

namespace edge::agent {

class PrometheusMetrics final : public Metrics {
 public:
  PrometheusMetrics();
  ~PrometheusMetrics() override;

  CounterHandle& Counter(const std::string& name, const std::string& help,
                         const Labels& labels = {}) override;
  GaugeHandle& Gauge(const std::string& name, const std::string& help,
                     const Labels& labels = {}) override;
  HistogramHandle& Histogram(const std::string& name, const std::string& help,
                             const std::vector<double>& buckets,
                             const Labels& labels = {}) override;

  // Prometheus text format (version 0.0.4) of every registered metric.
  std::string Render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::agent
