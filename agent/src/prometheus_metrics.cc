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
  // One kind of metric: its families by name and its handles by name and labels.
  template <typename Prom, typename Handle>
  struct Kind {
    std::map<std::string, prometheus::Family<Prom>*> families;
    std::map<std::string, std::unique_ptr<Handle>> handles;
  };

  // The handle of (name, labels), made on first use: the family by `build` (a
  // prometheus::Build* call), the series by `add` (Family::Add with its extra arguments),
  // wrapped in `Wrapper`.
  template <typename Wrapper, typename Prom, typename Handle, typename Build, typename Add>
  Handle& Get(Kind<Prom, Handle>& kind, const std::string& name, const std::string& help,
              const Labels& labels, Build build, Add add) {
    std::lock_guard lock(mu);
    auto& handle = kind.handles[Key(name, labels)];
    if (!handle) {
      auto& family = kind.families[name];
      if (family == nullptr) family = &build().Name(name).Help(help).Register(*registry);
      handle = std::make_unique<Wrapper>(
          add(*family, std::map<std::string, std::string>(labels.begin(), labels.end())));
    }
    return *handle;
  }

  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::mutex mu;
  // All guarded by mu. Families and handles live as long as the registry.
  Kind<prometheus::Counter, CounterHandle> counters;
  Kind<prometheus::Gauge, GaugeHandle> gauges;
  Kind<prometheus::Histogram, HistogramHandle> histograms;
};

PrometheusMetrics::PrometheusMetrics() : impl_(std::make_unique<Impl>()) {}
PrometheusMetrics::~PrometheusMetrics() = default;

CounterHandle& PrometheusMetrics::Counter(const std::string& name, const std::string& help,
                                          const Labels& labels) {
  return impl_->Get<PromCounter>(
      impl_->counters, name, help, labels, [] { return prometheus::BuildCounter(); },
      [](auto& family, const auto& l) -> auto& { return family.Add(l); });
}

GaugeHandle& PrometheusMetrics::Gauge(const std::string& name, const std::string& help,
                                      const Labels& labels) {
  return impl_->Get<PromGauge>(
      impl_->gauges, name, help, labels, [] { return prometheus::BuildGauge(); },
      [](auto& family, const auto& l) -> auto& { return family.Add(l); });
}

HistogramHandle& PrometheusMetrics::Histogram(const std::string& name, const std::string& help,
                                              const std::vector<double>& buckets,
                                              const Labels& labels) {
  return impl_->Get<PromHistogram>(
      impl_->histograms, name, help, labels, [] { return prometheus::BuildHistogram(); },
      [&buckets](auto& family, const auto& l) -> auto& {
        return family.Add(l,
                          prometheus::Histogram::BucketBoundaries(buckets.begin(), buckets.end()));
      });
}

std::string PrometheusMetrics::Render() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace edge::agent
