#include "edge/agent/pipeline.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <thread>

#include "../wait_for.h"
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

  // Replaces the pipeline with one of these options (same store, queue and metrics).
  void Recreate(PipelineOptions options) {
    pipeline_.reset();
    auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
    ASSERT_TRUE(policy.ok()) << policy.error();
    options.node_id = "node-1";
    pipeline_ = std::make_unique<Pipeline>(options, queue_, rules::Engine(std::move(*policy)),
                                           *writer_, metrics_, clock_, [this] { ++commits_; });
  }

  void Feed(std::vector<std::pair<std::string, std::string>> messages) {
    std::vector<RawMessage> batch;
    for (auto& [t, p] : messages) batch.push_back({t, p, clock_.WallMs()});
    pipeline_->ProcessBatch(batch);
  }

  // Payloads in fetch order; only those of `kind` when it is not empty.
  std::vector<nlohmann::json> Outbox(std::string_view kind = {}) {
    auto r = StoreReader::Open({dir_.File("agent.db")});
    EXPECT_TRUE(r.ok());
    std::vector<nlohmann::json> out;
    auto rows = (*r)->Fetch(1000, 1 << 24);  // keep the Result alive while iterating
    EXPECT_TRUE(rows.ok());
    for (auto& row : *rows) {
      if (kind.empty() || row.kind == kind) out.push_back(nlohmann::json::parse(row.payload));
    }
    return out;
  }

  double Metric(const std::string& name, const Labels& labels = {}) {
    return metrics_.Counter(name, "", labels).Value();
  }

  TempDir dir_;
  FakeClock clock_;
  PrometheusMetrics metrics_;
  IngestQueue queue_{100};
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
  EXPECT_FALSE(rows[0].contains("node"));  // the batch names the node
  EXPECT_EQ(rows[0]["severity"], "critical");
  EXPECT_EQ(rows[0]["value"], 55.0);
  EXPECT_EQ(rows[0]["ts_ms"], 1700000002000);
  EXPECT_EQ(rows[1]["state"], "resolved");
  EXPECT_EQ(rows[1]["started_ms"], 1700000002000);
  EXPECT_FALSE(rows[0]["context"].empty());
  EXPECT_FALSE(rows[1].contains("context"));  // only a firing event carries context
  EXPECT_FALSE(rows[0].contains("episode"));  // the console derives it
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

TEST_F(PipelineTest, NewSensorBeyondTheLimitIsRefusedAndCountedWhileNoneIsIdle) {
  PipelineOptions options;
  options.max_sensors = 2;
  options.sensor_idle_ms = 60'000;
  Recreate(options);
  Feed({{"sensors/a/temp", "20"}, {"sensors/b/temp", "20"}, {"sensors/c/temp", "99"}});
  clock_.Advance(2'000);
  Feed({{"sensors/c/temp", "99"}});  // a sweep finds nothing idle
  EXPECT_EQ(Metric("edge_agent_readings_rejected_total", {{"reason", "too_many_sensors"}}), 2);
  EXPECT_TRUE(Outbox("alert").empty());
  Feed({{"sensors/a/temp", "99"}});  // a tracked sensor still fires
  EXPECT_EQ(Outbox("alert").size(), 1u);
}

TEST_F(PipelineTest, IdleSensorIsForgottenToMakeRoomForANewOne) {
  PipelineOptions options;
  options.max_sensors = 2;
  options.sensor_idle_ms = 10'000;
  Recreate(options);
  Feed({{"sensors/a/temp", "20"}, {"sensors/b/temp", "20"}});
  clock_.Advance(5'000);
  Feed({{"sensors/b/temp", "21"}});
  clock_.Advance(6'000);  // a: idle 11 s, b: 6 s
  Feed({{"sensors/c/temp", "99"}});
  EXPECT_EQ(Metric("edge_agent_readings_rejected_total", {{"reason", "too_many_sensors"}}), 0);
  EXPECT_EQ(Metric("edge_agent_sensors_forgotten_total"), 1);
  EXPECT_EQ(metrics_.Gauge("edge_agent_sensors_tracked", "").Value(), 2);
  ASSERT_EQ(Outbox("alert").size(), 1u);
  EXPECT_EQ(Outbox("alert")[0]["sensor"], "sensors/c/temp");
  // The rollup window keeps the forgotten sensor's figures.
  clock_.Advance(PipelineOptions{}.rollup_interval_ms);
  Feed({});
  std::set<std::string> rolled;
  for (const auto& r : Outbox("rollup")) rolled.insert(r["sensor"]);
  EXPECT_EQ(rolled, (std::set<std::string>{"sensors/a/temp", "sensors/b/temp", "sensors/c/temp"}));
}

TEST_F(PipelineTest, IdleSensorsAreForgottenBySweepsWithoutNewSensors) {
  PipelineOptions options;
  options.sensor_idle_ms = 4'000;
  Recreate(options);
  Feed({{"sensors/a/temp", "20"}, {"sensors/b/temp", "99"}});
  clock_.Advance(5'000);
  Feed({});
  // b has a firing alert: kept so that its resolve is not lost.
  EXPECT_EQ(Metric("edge_agent_sensors_forgotten_total"), 1);
  EXPECT_EQ(metrics_.Gauge("edge_agent_sensors_tracked", "").Value(), 1);
  Feed({{"sensors/b/temp", "20"}});
  ASSERT_EQ(Outbox("alert").size(), 2u);
  EXPECT_EQ(Outbox("alert")[1]["state"], "resolved");
}

TEST_F(PipelineTest, TopicOverTheSensorIdLimitIsRejectedAndCounted) {
  Feed({{"sensors/" + std::string(1100, 'x') + "/temp", "99"}});
  EXPECT_EQ(Metric("edge_agent_readings_rejected_total", {{"reason", "topic_too_long"}}), 1);
  EXPECT_TRUE(Outbox("alert").empty());
}

TEST_F(PipelineTest, CommitsAreTimedByKind) {
  const auto count = [this](const std::string& kind) {
    const std::string text = metrics_.Render();
    const std::string key = "edge_agent_store_commit_seconds_count{kind=\"" + kind + "\"} ";
    const size_t at = text.find(key);
    return at == std::string::npos ? -1 : std::stoi(text.substr(at + key.size()));
  };
  EXPECT_EQ(count("outbox"), 0);  // exported from the start
  EXPECT_EQ(count("readings"), 0);
  Feed({{"sensors/a/temp", R"({"value": 55, "ts": 1700000002000})"}});
  EXPECT_EQ(count("outbox"), 1);
  clock_.Advance(PipelineOptions{}.commit_interval_ms);
  Feed({});
  EXPECT_EQ(count("readings"), 1);
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
  EXPECT_EQ(Outbox("alert").size(), 10u);
  EXPECT_EQ(Metric("edge_agent_alerts_raised_total", {{"rule", "hot"}, {"severity", "critical"}}),
            10);
}

TEST_F(PipelineTest, TryProcessNowRunsASmallBatchAtOnceAndLeavesItsBuffers) {
  std::vector<RawMessage> messages{
      {"sensors/a/temp", R"({"value": 55, "ts": 1700000002000})", clock_.WallMs()},
      {"sensors/a/temp", R"({"value": 44, "ts": 1700000003000})", clock_.WallMs()}};
  ASSERT_TRUE(pipeline_->TryProcessNow(messages));
  EXPECT_EQ(Outbox("alert").size(), 2u);
  EXPECT_EQ(messages[0].topic, "sensors/a/temp");  // the caller's buffers, untouched
  EXPECT_EQ(messages[1].payload, R"({"value": 44, "ts": 1700000003000})");
}

TEST_F(PipelineTest, TryProcessNowLeavesQueuedMessagesFirstAndFloodsToTheQueue) {
  std::vector<RawMessage> one{{"sensors/a/temp", "55", clock_.WallMs()}};
  EXPECT_FALSE(pipeline_->TryProcessNow(std::span<RawMessage>()));
  ASSERT_EQ(queue_.Push({"sensors/b/temp", "55", clock_.WallMs()}), IngestQueue::PushResult::kOk);
  EXPECT_FALSE(pipeline_->TryProcessNow(one));  // an older message waits in the queue
  std::vector<RawMessage> taken;
  ASSERT_TRUE(queue_.PopBatch(taken, 10, std::chrono::milliseconds(0)));
  std::vector<RawMessage> flood(PipelineOptions{}.max_inline_batch + 1, one[0]);
  EXPECT_FALSE(pipeline_->TryProcessNow(flood));
  EXPECT_TRUE(Outbox().empty());
  EXPECT_EQ(Metric("edge_agent_messages_received_total"), 0);
}

// The MQTT thread's sink against a running pipeline thread that wakes every millisecond:
// whichever thread runs a cycle, readings reach the rules in publish order.
TEST_F(PipelineTest, CyclesOnEitherThreadKeepThePublishOrder) {
  auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
  ASSERT_TRUE(policy.ok()) << policy.error();
  PipelineOptions options;
  options.commit_interval_ms = 1;
  SystemClock clock;
  IngestQueue queue(10'000);  // nothing is dropped
  pipeline_ = std::make_unique<Pipeline>(options, queue, rules::Engine(std::move(*policy)),
                                         *writer_, metrics_, clock);
  constexpr int kReadings = 800;  // Outbox() reads at most 1,000 rows
  // Every reading crosses the threshold one way or the other: one event each.
  const auto two_readings = [](int from) {
    std::vector<RawMessage> batch;
    for (int k = from; k < from + 2; ++k) {
      batch.push_back({"sensors/a/temp",
                       "{\"value\": " + std::string(k % 2 == 0 ? "60" : "40") +
                           ", \"ts\": " + std::to_string(1700000000000 + k) + "}",
                       0});
    }
    return batch;
  };
  auto first = two_readings(0);
  ASSERT_TRUE(pipeline_->TryProcessNow(first));  // no other cycle yet
  std::thread run([this] { pipeline_->Run(); });
  int inline_cycles = 1;
  int queued = 0;
  size_t dropped = 0;
  for (int i = 2; i < kReadings; i += 2) {
    auto batch = two_readings(i);
    if (pipeline_->TryProcessNow(batch)) {
      ++inline_cycles;
    } else {
      ++queued;
      dropped += queue.PushBatch(batch).dropped_oldest;
    }
    if (i % 100 == 0) {  // the pipeline thread catches up: later reads run inline again
      edge::testutil::WaitFor([&] { return queue.size() == 0; }, std::chrono::seconds(10),
                              "the pipeline thread to take the queued reads");
    }
  }
  queue.Close();
  run.join();
  EXPECT_EQ(dropped, 0u);
  auto late = two_readings(kReadings);
  EXPECT_FALSE(pipeline_->TryProcessNow(late));  // Run has made its last commits
  EXPECT_EQ(Metric("edge_agent_readings_out_of_order_total"), 0);
  const auto alerts = Outbox("alert");
  ASSERT_EQ(alerts.size(), static_cast<size_t>(kReadings));
  for (size_t n = 0; n < alerts.size(); ++n) {
    EXPECT_EQ(alerts[n]["state"], n % 2 == 0 ? "firing" : "resolved") << n;
    EXPECT_EQ(alerts[n]["ts_ms"], 1700000000000 + static_cast<int64_t>(n)) << n;
  }
  RecordProperty("inline_cycles", inline_cycles);
  RecordProperty("queued_batches", queued);
}

TEST_F(PipelineTest, RollupsCloseWithTheIntervalAndGoToTheOutboxAtLowPriority) {
  const int64_t start = clock_.WallMs();  // the window opened with the pipeline
  Feed({{"other/x", "1"}, {"other/x", "5"}, {"other/x", "3"}, {"other/y", "-2"}});
  EXPECT_TRUE(Outbox("rollup").empty());
  clock_.Advance(60'000);
  Feed({{"other/x", "7"}});  // processed after the boundary: next window
  auto rollups = Outbox("rollup");
  ASSERT_EQ(rollups.size(), 2u);
  nlohmann::json x = rollups[0]["sensor"] == "other/x" ? rollups[0] : rollups[1];
  EXPECT_FALSE(x.contains("node"));
  EXPECT_EQ(x["count"], 3);
  EXPECT_EQ(x["min"], 1.0);
  EXPECT_EQ(x["max"], 5.0);
  EXPECT_EQ(x["mean"], 3.0);
  EXPECT_EQ(x["last"], 3.0);
  EXPECT_EQ(x["start_ms"], start);
  EXPECT_EQ(x["end_ms"], start + 60'000);
  EXPECT_EQ(Metric("edge_agent_rollups_total"), 2);
}

TEST_F(PipelineTest, AStopClosesTheOpenRollupWindowEarly) {
  const int64_t start = clock_.WallMs();
  Feed({{"other/x", "1"}, {"other/x", "5"}});
  clock_.Advance(10'000);  // a sixth of the interval
  EXPECT_TRUE(Outbox("rollup").empty());
  queue_.Close();
  pipeline_->Run();  // returns once the closed queue is drained
  auto rollups = Outbox("rollup");
  ASSERT_EQ(rollups.size(), 1u);
  EXPECT_EQ(rollups[0]["count"], 2);
  EXPECT_EQ(rollups[0]["start_ms"], start);
  EXPECT_EQ(rollups[0]["end_ms"], start + 10'000);
}

TEST_F(PipelineTest, RollupsKeepEachSensorApartUpToMaxRollupSensorsPerWindow) {
  auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
  ASSERT_TRUE(policy.ok()) << policy.error();
  PipelineOptions options;
  options.node_id = "node-1";
  options.max_rollup_sensors = 150;
  pipeline_ = std::make_unique<Pipeline>(options, queue_, rules::Engine(std::move(*policy)),
                                         *writer_, metrics_, clock_);
  // Two windows of 200 sensors, two readings each: sensor i reads i and i + 1000.
  for (int window = 0; window < 2; ++window) {
    std::vector<std::pair<std::string, std::string>> messages;
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < 200; ++i) {
        messages.push_back({"other/s" + std::to_string(i), std::to_string(i + 1000 * round)});
      }
    }
    Feed(std::move(messages));
    clock_.Advance(60'000);
  }
  Feed({});  // closes the second window
  const auto rollups = Outbox("rollup");
  ASSERT_EQ(rollups.size(), 300u);
  for (size_t n = 0; n < rollups.size(); ++n) {
    const int i = static_cast<int>(n % 150);  // the first 150 sensors of each window
    EXPECT_EQ(rollups[n]["sensor"], "other/s" + std::to_string(i));
    EXPECT_EQ(rollups[n]["count"], 2);
    EXPECT_EQ(rollups[n]["min"], i);
    EXPECT_EQ(rollups[n]["max"], i + 1000);
    EXPECT_EQ(rollups[n]["last"], i + 1000);
  }
  EXPECT_EQ(Metric("edge_agent_rollup_sensors_overflow_total"), 2 * 50 * 2);
}

TEST_F(PipelineTest, AWindowOfManySensorsIsCommittedInSlicesAfterTheCycleAlerts) {
  std::vector<std::pair<std::string, std::string>> messages;
  for (int i = 0; i < 600; ++i) messages.push_back({"other/s" + std::to_string(i), "1"});
  Feed(std::move(messages));
  clock_.Advance(60'000);
  // The window closes before this cycle's alert; the alert and the first slice commit
  // together, the other rollups in the next cycles.
  Feed({{"sensors/a/temp", R"({"value": 55, "ts": 1700000002000})"}});
  EXPECT_EQ(Outbox("alert").size(), 1u);
  EXPECT_EQ(Metric("edge_agent_rollups_total"), 250);
  // Outbox commits are at least alert_commit_window_ms apart.
  clock_.Advance(PipelineOptions{}.alert_commit_window_ms);
  Feed({});
  EXPECT_EQ(Metric("edge_agent_rollups_total"), 500);
  clock_.Advance(PipelineOptions{}.alert_commit_window_ms);
  Feed({});
  EXPECT_EQ(Metric("edge_agent_rollups_total"), 600);
  const auto rollups = Outbox("rollup");
  ASSERT_EQ(rollups.size(), 600u);
  std::set<std::string> sensors;
  for (const auto& r : rollups) sensors.insert(r["sensor"].get<std::string>());
  EXPECT_EQ(sensors.size(), 600u);
}

TEST_F(PipelineTest, CountsMessagesPayloadBytesAndReadings) {
  Feed({{"other/a", "1"}, {"other/b", R"({"x": 1, "y": 2})"}, {"other/c", "not json"}});
  Feed({{"other/a", "22"}});
  EXPECT_EQ(Metric("edge_agent_messages_received_total"), 4);
  EXPECT_EQ(Metric("edge_agent_ingest_bytes_total"), 1 + 16 + 8 + 2);
  EXPECT_EQ(Metric("edge_agent_readings_received_total"), 4);
}

TEST_F(PipelineTest, AlertsAreCommittedAtOnceReadingsWithTheCommitInterval) {
  Feed({{"sensors/a/temp", R"({"value": 55, "ts": 1700000002000})"}});
  EXPECT_EQ(Outbox("alert").size(), 1u);
  EXPECT_EQ(*writer_->ReadingsCount(), 0);  // still inside the group-commit window
  clock_.Advance(100);
  Feed({{"sensors/a/temp", R"({"value": 56, "ts": 1700000003000})"}});
  EXPECT_EQ(*writer_->ReadingsCount(), 2);
  EXPECT_EQ(Metric("edge_agent_readings_stored_total"), 2);
}

TEST_F(PipelineTest, ARefusedReadingsCommitDropsThemAndMarksTheStoreUnwritable) {
  StoreOptions o{dir_.File("small.db")};
  o.max_bytes = 0;
  o.max_pages = 24;  // 96 KiB: far less than the batch below
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  PipelineOptions options;
  options.node_id = "node-1";
  Pipeline p(options, queue_, rules::Engine(rules::Policy{}), **w, metrics_, clock_);
  std::vector<RawMessage> batch;
  for (int i = 0; i < 5000; ++i) batch.push_back({"other/s" + std::to_string(i), "1", 1000});
  clock_.Advance(100);
  p.ProcessBatch(batch);
  EXPECT_FALSE(p.store_writable());
  EXPECT_EQ(Metric("edge_agent_readings_dropped_total", {{"reason", "store_error"}}), 5000);
  std::vector<RawMessage> one{{"other/s2", "3", 1000}};
  EXPECT_FALSE(p.TryProcessNow(one));  // while the store refuses writes, reads are queued
  batch = {{"other/s1", "2", 1000}};
  clock_.Advance(100);
  p.ProcessBatch(batch);
  EXPECT_TRUE(p.store_writable());
  EXPECT_EQ(Metric("edge_agent_readings_stored_total"), 1);
  EXPECT_TRUE(p.TryProcessNow(one));
}

TEST_F(PipelineTest, AfterASlowCycleReadsAreQueuedUntilACycleIsQuickAgain) {
  auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
  ASSERT_TRUE(policy.ok()) << policy.error();
  PipelineOptions options;
  options.commit_interval_ms = 1;
  bool slow = true;  // each commit takes kMaxInlineCycleMs of the pipeline's clock
  pipeline_ = std::make_unique<Pipeline>(options, queue_, rules::Engine(std::move(*policy)),
                                         *writer_, metrics_, clock_, [this, &slow] {
                                           if (slow) clock_.Advance(Pipeline::kMaxInlineCycleMs);
                                         });
  std::vector<RawMessage> fire{{"sensors/a/temp", "60", clock_.WallMs()}};
  ASSERT_TRUE(pipeline_->TryProcessNow(fire));
  EXPECT_EQ(Outbox("alert").size(), 1u);
  std::vector<RawMessage> resolve{{"sensors/a/temp", "40", clock_.WallMs()}};
  EXPECT_FALSE(pipeline_->TryProcessNow(resolve));  // the last cycle was slow
  EXPECT_EQ(Outbox("alert").size(), 1u);

  // The pipeline thread's next cycle (an empty one, every commit_interval) is quick.
  slow = false;
  std::thread run([this] { pipeline_->Run(); });
  bool resumed = false;
  edge::testutil::WaitFor([&] { return resumed = pipeline_->TryProcessNow(resolve); },
                          std::chrono::seconds(10), "a quick cycle of the pipeline thread");
  queue_.Close();
  run.join();
  EXPECT_TRUE(resumed);
  EXPECT_EQ(Outbox("alert").size(), 2u);
}

TEST_F(PipelineTest, EvictedAlertsAreCountedByKind) {
  StoreOptions o{dir_.File("bounded.db")};
  o.max_bytes = 8 * 1024;
  o.readings_share = 0.5;  // 4 KiB of outbox: a handful of alerts
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
  ASSERT_TRUE(policy.ok());
  PipelineOptions options;
  options.node_id = "node-1";
  options.store_readings = false;
  Pipeline p(options, queue_, rules::Engine(std::move(*policy)), **w, metrics_, clock_);
  for (int i = 0; i < 50; ++i) {
    std::vector<RawMessage> batch{{"sensors/s" + std::to_string(i) + "/temp", "60", 1}};
    p.ProcessBatch(batch);
    clock_.Advance(options.alert_commit_window_ms);  // one alert per commit
  }
  EXPECT_TRUE(p.store_writable());
  EXPECT_EQ(Metric("edge_agent_alerts_raised_total", {{"rule", "hot"}, {"severity", "critical"}}),
            50);
  const double evicted = Metric("edge_agent_outbox_evicted_total", {{"kind", "alert"}});
  EXPECT_GT(evicted, 0);
  EXPECT_EQ(static_cast<double>(*(*w)->OutboxCount()) + evicted, 50);
}

TEST(RollupPayloadJson, HasTheDocumentedFields) {
  auto j = nlohmann::json::parse(RollupPayloadJson("s", 1, 2, 3, -1.5, 4, 1.25, 2));
  for (const char* key : {"sensor", "start_ms", "end_ms", "count", "min", "max", "mean", "last"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 8u);
  EXPECT_EQ(j["min"], -1.5);
}

TEST(RollupPayloadJson, MeanHasSevenSignificantDigitsAndStaysWithinMinMax) {
  auto j =
      nlohmann::json::parse(RollupPayloadJson("s", 1, 2, 3, 21.4, 21.6, 21.483333333333334, 21.5));
  EXPECT_EQ(j["mean"].get<double>(), 21.48333);
  EXPECT_EQ(j.dump().find("21.483333333"), std::string::npos);
  // Rounding never lands outside [min, max].
  j = nlohmann::json::parse(
      RollupPayloadJson("s", 1, 2, 3, 1.23456789, 1.23456789, 1.23456789, 1.23456789));
  EXPECT_EQ(j["mean"].get<double>(), 1.23456789);
  j = nlohmann::json::parse(RollupPayloadJson("s", 1, 2, 3, -5, 5, 1e-300, 0));
  EXPECT_EQ(j["mean"].get<double>(), 1e-300);
}

TEST(AlertPayloadJson, CarriesContextAsTimestampValuePairs) {
  rules::AlertEvent e;
  e.rule_id = "r";
  e.sensor = "s";
  e.context = {{1, 2.5}, {3, 4.5}};
  auto j = nlohmann::json::parse(AlertPayloadJson(e));
  EXPECT_EQ(j["context"], nlohmann::json::parse("[[1,2.5],[3,4.5]]"));
  EXPECT_EQ(j["state"], "firing");
}

TEST(AlertPayloadJson, InvalidUtf8InSensorIdDoesNotThrow) {
  rules::AlertEvent e;
  e.rule_id = "r";
  e.sensor = "bad\xff\xfe";
  EXPECT_NO_THROW((void)AlertPayloadJson(e));
}

}  // namespace
}  // namespace edge::agent
