#pragma once

// Metrics as an interface so that modules count things without depending on a metrics
// library. The agent's implementation is the prometheus-cpp adapter
// (agent/src/prometheus_metrics.cc); tests use a FakeMetrics or the real adapter.
//
// Handles returned by Counter()/Gauge() stay valid for the registry's lifetime and are
// safe to use from any thread. Looking a handle up takes a lock: look it up once, keep it.

#include <map>
#include <string>
#include <vector>

namespace edge {

using Labels = std::map<std::string, std::string>;

class CounterHandle {
 public:
  virtual ~CounterHandle() = default;
  virtual void Inc(double by = 1.0) = 0;
  virtual double Value() const = 0;
};

class GaugeHandle {
 public:
  virtual ~GaugeHandle() = default;
  virtual void Set(double v) = 0;
  virtual void Add(double by) = 0;
  virtual double Value() const = 0;
};

class HistogramHandle {
 public:
  virtual ~HistogramHandle() = default;
  virtual void Observe(double v) = 0;
};

class Metrics {
 public:
  virtual ~Metrics() = default;
  // `name` follows Prometheus conventions (counters end in _total). The same name must
  // always be used with the same help text and label keys.
  virtual CounterHandle& Counter(const std::string& name, const std::string& help,
                                 const Labels& labels = {}) = 0;
  virtual GaugeHandle& Gauge(const std::string& name, const std::string& help,
                             const Labels& labels = {}) = 0;
  // `buckets`: upper bounds, increasing (the +Inf bucket is implied); the same for every
  // use of `name`. This default drops the observations, for implementations (test fakes)
  // that do not keep histograms.
  virtual HistogramHandle& Histogram(const std::string& name, const std::string& help,
                                     const std::vector<double>& buckets,
                                     const Labels& labels = {}) {
    (void)name, (void)help, (void)buckets, (void)labels;
    class Dropped final : public HistogramHandle {
     public:
      void Observe(double) override {}
    };
    static Dropped dropped;
    return dropped;
  }
};

}  // namespace edge
