#include "edge/agent/pipeline.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "edge/agent/prometheus_metrics.h"
#include "edge/rules/policy.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using testing::TempDir;

constexpr char kPolicy[] = R"(
rules:
  - id: hot
    match: "sensors/+/temp"
    kind: threshold
    above: 50
    clear: 45
    severity: critical
)";

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = StoreWriter::Open({dir_.File("agent.db")});
    ASSERT_TRUE(w.ok()) << w.error();
    writer_ = std::move(*w);
    auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
    ASSERT_TRUE(policy.ok()) << policy.error();
    PipelineOptions options;
    options.node_id = "node-1";
    pipeline_ = std::make_unique<Pipeline>(options, queue_, rules::Engine(std::move(*policy)),
                                           *writer_, metrics_, clock_, [this] { ++commits_; });
  }

  void Feed(std::vector<std::pair<std::string, std::string>> messages) {
    std::vector<RawMessage> batch;
    for (auto& [t, p] : messages) batch.push_back({t, p, clock_.WallMs()});
    pipeline_->ProcessBatch(batch);
  }

  std::vector<nlohmann::json> Outbox() {
    auto r = StoreReader::Open({dir_.File("agent.db")});
    EXPECT_TRUE(r.ok());
    std::vector<nlohmann::json> out;
    auto rows = (*r)->Fetch(1000, 1 << 24);  // keep the Result alive while iterating
    EXPECT_TRUE(rows.ok());
    for (auto& row : *rows) out.push_back(nlohmann::json::parse(row.payload));
    return out;
  }

  double Metric(const std::string& name, const Labels& labels = {}) {
    return metrics_.Counter(name, "", labels).Value();
  }

  TempDir dir_;
  FakeClock clock_;
  PrometheusMetrics metrics_;
  BoundedQueue<RawMessage> queue_{100};
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<Pipeline> pipeline_;
  int commits_ = 0;
};

TEST_F(PipelineTest, ThresholdCrossingCommitsFiringThenResolvedAlerts) {
  Feed({{"sensors/a/temp", R"({"value": 20, "ts": 1700000001000})"},
        {"sensors/a/temp", R"({"value": 55, "ts": 1700000002000})"},
        {"sensors/a/temp", R"({"value": 47, "ts": 1700000003000})"},
        {"sensors/a/temp", R"({"value": 44, "ts": 1700000004000})"}});
  auto rows = Outbox();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["state"], "firing");
  EXPECT_EQ(rows[0]["rule"], "hot");
  EXPECT_EQ(rows[0]["sensor"], "sensors/a/temp");
  EXPECT_EQ(rows[0]["node"], "node-1");
  EXPECT_EQ(rows[0]["severity"], "critical");
  EXPECT_EQ(rows[0]["value"], 55.0);
  EXPECT_EQ(rows[0]["ts_ms"], 1700000002000);
  EXPECT_EQ(rows[1]["state"], "resolved");
  EXPECT_EQ(rows[1]["started_ms"], 1700000002000);
  EXPECT_EQ(rows[1]["episode"], rows[0]["episode"]);
  EXPECT_FALSE(rows[0]["context"].empty());
  EXPECT_EQ(Metric("edge_agent_alerts_raised_total", {{"rule", "hot"}, {"severity", "critical"}}),
            1);
  EXPECT_EQ(Metric("edge_agent_readings_received_total"), 4);
  EXPECT_EQ(metrics_.Gauge("edge_agent_outbox_pending", "").Value(), 2);
  EXPECT_GE(commits_, 1);
}

TEST_F(PipelineTest, MalformedPayloadsAreCountedByReasonAndDoNotStopTheBatch) {
  Feed({{"sensors/a/temp", "not json at all"},
        {"sensors/a/temp", "{}"},
        {"sensors/a/temp", std::string(100 * 1024, '1')},
        {"sensors/a/temp", "nan"},
        {"sensors/a/temp", "99"}});
  EXPECT_EQ(Metric("edge_agent_readings_rejected_total", {{"reason", "not_json"}}), 1);
  EXPECT_EQ(Metric("edge_agent_readings_rejected_total", {{"reason", "no_numbers"}}), 1);
  EXPECT_EQ(Metric("edge_agent_readings_rejected_total", {{"reason", "too_large"}}), 1);
  EXPECT_EQ(Metric("edge_agent_readings_rejected_total", {{"reason", "non_finite"}}), 1);
  EXPECT_EQ(Metric("edge_agent_messages_received_total"), 5);
  ASSERT_EQ(Outbox().size(), 1u);  // the valid reading still fired
}

TEST_F(PipelineTest, ReadingsThatMatchNoRuleProduceNoRows) {
  Feed({{"other/x", "1000"}, {"sensors/a/humidity", "1000"}});
  EXPECT_TRUE(Outbox().empty());
  EXPECT_EQ(commits_, 0);
}

TEST_F(PipelineTest, RunDrainsTheQueueAfterClose) {
  for (int i = 0; i < 10; ++i) {
    (void)queue_.Push({"sensors/s" + std::to_string(i) + "/temp", "60", 1000});
  }
  queue_.Close();
  pipeline_->Run();  // returns once the closed queue is drained
  EXPECT_EQ(Outbox().size(), 10u);
  EXPECT_EQ(Metric("edge_agent_alerts_raised_total", {{"rule", "hot"}, {"severity", "critical"}}),
            10);
}

TEST(AlertPayloadJson, CarriesContextAsTimestampValuePairs) {
  rules::AlertEvent e;
  e.rule_id = "r";
  e.sensor = "s";
  e.context = {{1, 2.5}, {3, 4.5}};
  auto j = nlohmann::json::parse(AlertPayloadJson("n", e));
  EXPECT_EQ(j["context"], nlohmann::json::parse("[[1,2.5],[3,4.5]]"));
  EXPECT_EQ(j["state"], "firing");
}

TEST(AlertPayloadJson, InvalidUtf8InSensorIdDoesNotThrow) {
  rules::AlertEvent e;
  e.rule_id = "r";
  e.sensor = "bad\xff\xfe";
  EXPECT_NO_THROW((void)AlertPayloadJson("n", e));
}

}  // namespace
}  // namespace edge::agent
