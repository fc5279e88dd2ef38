// The pipeline's side of the rules: filter verdicts, stale rules driven by the clock, policy
// swaps handed over from another thread, firing episodes across a restart.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "edge/agent/pipeline.h"
#include "edge/agent/prometheus_metrics.h"
#include "edge/rules/policy.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using testing::TempDir;

constexpr char kPolicy[] = R"(
filters:
  - match: "s/+/temp"
    valid_range: {min: -40, max: 125}
    downsample: 10s
rules:
  - {id: hot, match: "s/+/temp", kind: threshold, above: 50, severity: critical}
  - {id: quiet, match: "s/#", kind: stale, after: 30s}
)";

rules::Policy Parse(const std::string& text) {
  auto p = rules::ParsePolicy(text, "test.yaml");
  EXPECT_TRUE(p.ok()) << p.error();
  return p.ok() ? std::move(*p) : rules::Policy{};
}

class PipelineRulesTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(kPolicy); }

  void Start(const std::string& policy) {
    pipeline_.reset();
    writer_.reset();
    auto w = StoreWriter::Open({dir_.File("agent.db")});
    ASSERT_TRUE(w.ok()) << w.error();
    writer_ = std::move(*w);
    PipelineOptions options;
    options.node_id = "n";
    options.rollup_interval_ms = 0;
    metrics_ = std::make_unique<PrometheusMetrics>();
    pipeline_ = std::make_unique<Pipeline>(options, queue_, rules::Engine(Parse(policy)), *writer_,
                                           *metrics_, clock_);
  }

  // Sends readings (sensor, value) timestamped with the fake wall clock.
  void Feed(std::vector<std::pair<std::string, double>> readings) {
    std::vector<RawMessage> batch;
    for (auto& [t, v] : readings) {
      batch.push_back({t,
                       R"({"value": )" + std::to_string(v) + R"(, "ts": )" +
                           std::to_string(clock_.WallMs()) + "}",
                       clock_.WallMs()});
    }
    pipeline_->ProcessBatch(batch);
  }

  void Cycle() {
    std::vector<RawMessage> none;
    pipeline_->ProcessBatch(none);
  }

  std::vector<nlohmann::json> Alerts() {
    auto r = StoreReader::Open({dir_.File("agent.db")});
    EXPECT_TRUE(r.ok());
    std::vector<nlohmann::json> out;
    auto rows = (*r)->Fetch(1000, 1 << 24);
    EXPECT_TRUE(rows.ok());
    for (auto& row : *rows) {
      if (row.kind == "alert") out.push_back(nlohmann::json::parse(row.payload));
    }
    return out;
  }

  int64_t StoredReadings() { return *writer_->ReadingsCount(); }

  double Counter(const std::string& name, const Labels& labels = {}) {
    return metrics_->Counter(name, "", labels).Value();
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<PrometheusMetrics> metrics_;
  IngestQueue queue_{100};
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<Pipeline> pipeline_;
};

TEST_F(PipelineRulesTest, DownsampledReadingsReachRulesButNotTheStore) {
  for (int i = 0; i < 10; ++i) {
    Feed({{"s/a/temp", i == 9 ? 60.0 : 20.0}});
    clock_.Advance(2000);
  }
  pipeline_.reset();               // flushes the readings commit
  EXPECT_EQ(StoredReadings(), 2);  // at 0 s and 10 s
  const auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);  // the reading at 18 s was not stored but fired
  EXPECT_EQ(alerts[0]["rule"], "hot");
}

TEST_F(PipelineRulesTest, OutOfRangeReadingsAreCountedAndDropped) {
  Feed({{"s/a/temp", 850}, {"s/a/temp", 20}});
  EXPECT_EQ(Counter("edge_agent_readings_filtered_total", {{"reason", "out_of_range"}}), 1);
  EXPECT_TRUE(Alerts().empty());
}

TEST_F(PipelineRulesTest, StaleFiresFromTheClockWithoutMessages) {
  Feed({{"s/a/temp", 20}});
  clock_.Advance(29'000);
  Cycle();
  EXPECT_TRUE(Alerts().empty());
  clock_.Advance(1'000);
  Cycle();
  const auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["rule"], "quiet");
  EXPECT_EQ(alerts[0]["state"], "firing");
}

TEST_F(PipelineRulesTest, SetPolicyAppliesBeforeTheNextBatchAndKeepsState) {
  Feed({{"s/a/temp", 60}});
  ASSERT_EQ(Alerts().size(), 1u);
  pipeline_->SetPolicy(Parse(std::string(kPolicy) +
                             "  - {id: cold, match: \"s/+/temp\", kind: threshold, below: 0}\n"));
  clock_.Advance(1000);
  Feed({{"s/a/temp", 61}});
  EXPECT_EQ(Alerts().size(), 1u);  // hot kept firing: no second firing
  EXPECT_EQ(Counter("edge_agent_policy_reloads_total", {{"result", "applied"}}), 1);
  EXPECT_EQ(metrics_->Gauge("edge_agent_policy_rules", "").Value(), 3);
  clock_.Advance(1000);
  Feed({{"s/a/temp", -5}});
  const auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 3u);
  EXPECT_EQ(alerts[1]["rule"], "hot");
  EXPECT_EQ(alerts[1]["state"], "resolved");
  EXPECT_EQ(alerts[2]["rule"], "cold");
}

TEST_F(PipelineRulesTest, FiringEpisodeSurvivesARestart) {
  Feed({{"s/a/temp", 60}});
  ASSERT_EQ(Alerts().size(), 1u);
  const int64_t started = Alerts()[0]["started_ms"];
  Start(kPolicy);  // a new pipeline on the same database, as after a restart
  clock_.Advance(1000);
  Feed({{"s/a/temp", 70}});
  ASSERT_EQ(Alerts().size(), 1u);  // no duplicate firing
  clock_.Advance(1000);
  Feed({{"s/a/temp", 20}});
  const auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 2u);  // no lost resolve
  EXPECT_EQ(alerts[1]["state"], "resolved");
  EXPECT_EQ(alerts[1]["started_ms"], started);
  // Resolved: nothing is left to restore.
  auto saved = writer_->LoadEpisodes();
  ASSERT_TRUE(saved.ok());
  EXPECT_TRUE(saved->empty());
}

}  // namespace
}  // namespace edge::agent
