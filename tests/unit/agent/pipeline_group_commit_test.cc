// The pipeline's group commit of alerts (PipelineOptions::alert_commit_window_ms), on a
// fake clock.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../wait_for.h"
#include "edge/agent/pipeline.h"
#include "edge/agent/prometheus_metrics.h"
#include "edge/rules/policy.h"
#include "test_util.h"

namespace edge::agent {
namespace {

constexpr char kPolicy[] = R"(
rules:
  - {id: hot, match: "sensors/+/temp", kind: threshold, above: 50, clear: 45}
)";
constexpr int64_t kWindowMs = 10;

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = StoreWriter::Open({dir_.File("agent.db")});
    ASSERT_TRUE(w.ok()) << w.error();
    writer_ = std::move(*w);
    Start(kWindowMs);
  }

  void Start(int64_t window_ms, int64_t commit_interval_ms = 100,
             size_t max_uncommitted = 100'000) {
    auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
    ASSERT_TRUE(policy.ok()) << policy.error();
    PipelineOptions options;
    options.node_id = "node-1";
    options.alert_commit_window_ms = window_ms;
    options.commit_interval_ms = commit_interval_ms;
    options.rollup_interval_ms = 0;  // the outbox holds only alerts
    options.max_uncommitted_events = max_uncommitted;
    pipeline_ = std::make_unique<Pipeline>(options, queue_, rules::Engine(std::move(*policy)),
                                           *writer_, metrics_, clock_, [this] { ++commits_; });
  }

  // One cycle in which `sensor` crosses the threshold (a firing event).
  void Fire(const std::string& sensor) {
    std::vector<RawMessage> batch{{"sensors/" + sensor + "/temp", "60", clock_.WallMs()}};
    pipeline_->ProcessBatch(batch);
  }

  int64_t Alerts() { return *writer_->OutboxCount(); }
  double Raised() {
    return metrics_
        .Counter("edge_agent_alerts_raised_total", "", {{"rule", "hot"}, {"severity", "warning"}})
        .Value();
  }
  double Uncommitted() { return metrics_.Gauge("edge_agent_alerts_uncommitted", "").Value(); }

  testing::TempDir dir_;
  FakeClock clock_;
  PrometheusMetrics metrics_;
  IngestQueue queue_{100};
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<Pipeline> pipeline_;
  int commits_ = 0;
};

TEST_F(GroupCommitTest, ALoneAlertCommitsAtOnce) {
  Fire("a");
  EXPECT_EQ(Alerts(), 1);
  EXPECT_EQ(Raised(), 1);
  EXPECT_EQ(commits_, 1);
  clock_.Advance(kWindowMs);
  Fire("b");  // a window after the last commit: at once again
  EXPECT_EQ(Alerts(), 2);
  EXPECT_EQ(commits_, 2);
}

TEST_F(GroupCommitTest, AlertsWithinTheWindowWaitAndShareOneCommitWhenItEnds) {
  Fire("a");
  clock_.Advance(1);
  Fire("b");
  clock_.Advance(kWindowMs - 2);
  Fire("c");
  // Waiting: in memory, not counted as raised, and no wake-up of the uplink yet.
  EXPECT_EQ(Alerts(), 1);
  EXPECT_EQ(Raised(), 1);
  EXPECT_EQ(commits_, 1);
  EXPECT_EQ(pipeline_->uncommitted_events(), 2u);
  EXPECT_EQ(Uncommitted(), 2);
  clock_.Advance(1);  // the window since the first commit ends
  pipeline_->ProcessBatch({});
  EXPECT_EQ(Alerts(), 3);
  EXPECT_EQ(Raised(), 3);
  EXPECT_EQ(commits_, 2);
  EXPECT_EQ(Uncommitted(), 0);
}

TEST_F(GroupCommitTest, AStormCommitsAtMostOncePerWindow) {
  // 1,000 alerts over one second, one a millisecond.
  for (int i = 0; i < 1000; ++i) {
    Fire("s" + std::to_string(i));
    clock_.Advance(1);
  }
  pipeline_->ProcessBatch({});
  EXPECT_EQ(Alerts(), 1000);
  EXPECT_EQ(Raised(), 1000);
  EXPECT_LE(commits_, 1000 / kWindowMs + 1);
  EXPECT_GE(commits_, 1000 / kWindowMs);
}

TEST_F(GroupCommitTest, WaitingAlertsCommitEarlyRatherThanFillTheBacklogBound) {
  Start(kWindowMs, 100, /*max_uncommitted=*/4);
  Fire("a");
  Fire("b");  // waits
  EXPECT_EQ(Alerts(), 1);
  Fire("c");  // two waiting: half the bound, committed at once
  EXPECT_EQ(Alerts(), 3);
  for (const char* s : {"d", "e", "f", "g", "h"}) Fire(s);
  EXPECT_EQ(Raised() + static_cast<double>(pipeline_->uncommitted_events()), 8);
  EXPECT_EQ(metrics_.Counter("edge_agent_alerts_dropped_total", "").Value(), 0);
}

TEST_F(GroupCommitTest, AZeroWindowCommitsEveryCycle) {
  Start(0);
  Fire("a");
  Fire("b");
  EXPECT_EQ(Alerts(), 2);
  EXPECT_EQ(commits_, 2);
}

// The MQTT thread's cycle defers an alert while the pipeline thread sleeps for a long
// commit interval: the pipeline thread wakes at the window's end and commits it.
TEST_F(GroupCommitTest, ThePipelineThreadCommitsWaitingAlertsAtTheDeadline) {
  Start(kWindowMs, /*commit_interval_ms=*/60'000);
  std::thread run([this] { pipeline_->Run(); });
  std::vector<RawMessage> a{{"sensors/a/temp", "60", clock_.WallMs()}};
  std::vector<RawMessage> b{{"sensors/b/temp", "60", clock_.WallMs()}};
  bool inline_a = false;
  bool inline_b = false;
  // TryProcessNow declines while the pipeline thread holds the cycle lock: retried.
  edge::testutil::WaitFor([&] { return inline_a = pipeline_->TryProcessNow(a); },
                          std::chrono::seconds(10), "an inline cycle");
  edge::testutil::WaitFor([&] { return inline_b = pipeline_->TryProcessNow(b); },
                          std::chrono::seconds(10), "an inline cycle");
  EXPECT_EQ(Alerts(), 1);  // b waits for the window
  clock_.Advance(kWindowMs);
  const bool committed =
      edge::testutil::PollUntil([&] { return Alerts() == 2; }, std::chrono::seconds(10));
  queue_.Close();
  run.join();
  EXPECT_TRUE(inline_a && inline_b);
  EXPECT_TRUE(committed);
  EXPECT_EQ(Raised(), 2);
}

TEST_F(GroupCommitTest, RunCommitsWaitingAlertsWhenTheQueueCloses) {
  Fire("a");
  Fire("b");
  EXPECT_EQ(Alerts(), 1);
  queue_.Close();
  pipeline_->Run();
  EXPECT_EQ(Alerts(), 2);
  EXPECT_EQ(Raised(), 2);
}

}  // namespace
}  // namespace edge::agent
