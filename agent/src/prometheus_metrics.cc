// The only file that includes prometheus-cpp headers.
#include "edge/agent/prometheus_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>

namespace edge::agent {
namespace {

class PromCounter final : public CounterHandle {
 public:
  explicit PromCounter(prometheus::Counter& c) : c_(c) {}
  void Inc(double by) override { c_.Increment(by); }
  double Value() const override { return c_.Value(); }

 private:
  prometheus::Counter& c_;
};

class PromGauge final : public GaugeHandle {
 public:
  explicit PromGauge(prometheus::Gauge& g) : g_(g) {}
  void Set(double v) override { g_.Set(v); }
  void Add(double by) override { g_.Increment(by); }
  double Value() const override { return g_.Value(); }

 private:
  prometheus::Gauge& g_;
};

class PromHistogram final : public HistogramHandle {
 public:
  explicit PromHistogram(prometheus::Histogram& h) : h_(h) {}
  void Observe(double v) override { h_.Observe(v); }

 private:
  prometheus::Histogram& h_;
};

std::string Key(const std::string& name, const Labels& labels) {
  std::string key = name;
  for (const auto& [k, v] : labels) key.append("\x1f").append(k).append("=").append(v);
  return key;
}

}  // namespace

struct PrometheusMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::mutex mu;
  // All guarded by mu. Families and handles live as long as the registry.
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counter_families;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauge_families;
  std::map<std::string, std::unique_ptr<CounterHandle>> counters;
  std::map<std::string, std::unique_ptr<GaugeHandle>> gauges;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> histogram_families;
  std::map<std::string, std::unique_ptr<HistogramHandle>> histograms;
};

PrometheusMetrics::PrometheusMetrics() : impl_(std::make_unique<Impl>()) {}
PrometheusMetrics::~PrometheusMetrics() = default;

CounterHandle& PrometheusMetrics::Counter(const std::string& name, const std::string& help,
                                          const Labels& labels) {
  std::lock_guard lock(impl_->mu);
  auto& handle = impl_->counters[Key(name, labels)];
  if (!handle) {
    auto& family = impl_->counter_families[name];
    if (family == nullptr) {
      family = &prometheus::BuildCounter().Name(name).Help(help).Register(*impl_->registry);
    }
    handle = std::make_unique<PromCounter>(
        family->Add(std::map<std::string, std::string>(labels.begin(), labels.end())));
  }
  return *handle;
}

GaugeHandle& PrometheusMetrics::Gauge(const std::string& name, const std::string& help,
                                      const Labels& labels) {
  std::lock_guard lock(impl_->mu);
  auto& handle = impl_->gauges[Key(name, labels)];
  if (!handle) {
    auto& family = impl_->gauge_families[name];
    if (family == nullptr) {
      family = &prometheus::BuildGauge().Name(name).Help(help).Register(*impl_->registry);
    }
    handle = std::make_unique<PromGauge>(
        family->Add(std::map<std::string, std::string>(labels.begin(), labels.end())));
  }
  return *handle;
}

HistogramHandle& PrometheusMetrics::Histogram(const std::string& name, const std::string& help,
                                              const std::vector<double>& buckets,
                                              const Labels& labels) {
  std::lock_guard lock(impl_->mu);
  auto& handle = impl_->histograms[Key(name, labels)];
  if (!handle) {
    auto& family = impl_->histogram_families[name];
    if (family == nullptr) {
      family = &prometheus::BuildHistogram().Name(name).Help(help).Register(*impl_->registry);
    }
    handle = std::make_unique<PromHistogram>(
        family->Add(std::map<std::string, std::string>(labels.begin(), labels.end()),
                    prometheus::Histogram::BucketBoundaries(buckets.begin(), buckets.end())));
  }
  return *handle;
}

std::string PrometheusMetrics::Render() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace edge::agent
