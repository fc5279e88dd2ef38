// Acknowledge after commit: when the pipeline reports numbered messages durable
// (Pipeline's on_durable), on a fake clock.
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

class PipelineAckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = StoreWriter::Open({dir_.File("agent.db")});
    ASSERT_TRUE(w.ok()) << w.error();
    writer_ = std::move(*w);
    Start(/*alert_window_ms=*/10);
  }

  void Start(int64_t alert_window_ms, int64_t commit_interval_ms = 100) {
    auto policy = rules::ParsePolicy(kPolicy, "test.yaml");
    ASSERT_TRUE(policy.ok()) << policy.error();
    PipelineOptions options;
    options.node_id = "node-1";
    options.commit_interval_ms = commit_interval_ms;
    options.alert_commit_window_ms = alert_window_ms;
    options.rollup_interval_ms = 0;
    pipeline_ = std::make_unique<Pipeline>(
        options, queue_, rules::Engine(std::move(*policy)), *writer_, metrics_, clock_, [] {},
        [this](uint64_t seq) { durable_.push_back(seq); });
  }

  // A QoS 1 message numbered `seq` with packet id `seq`.
  RawMessage Message(uint64_t seq, const std::string& sensor, const std::string& value) {
    RawMessage m{"sensors/" + sensor + "/temp", value, clock_.WallMs()};
    m.seq = seq;
    m.packet_id = static_cast<uint16_t>(seq);
    m.digest = MessageDigest(m.topic, m.payload);
    return m;
  }

  void Cycle(std::vector<RawMessage> batch) { pipeline_->ProcessBatch(batch); }

  testing::TempDir dir_;
  FakeClock clock_;
  PrometheusMetrics metrics_;
  IngestQueue queue_{100};
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<Pipeline> pipeline_;
  std::vector<uint64_t> durable_;
};

TEST_F(PipelineAckTest, MessagesAreDurableOnlyWhenTheirReadingsCommitReturned) {
  clock_.Advance(100);
  Cycle({Message(1, "a", "20")});  // commit interval passed: committed at once
  EXPECT_EQ(durable_, (std::vector<uint64_t>{1}));
  Cycle({Message(2, "a", "21"), Message(3, "b", "22")});
  EXPECT_EQ(durable_.size(), 1u);  // readings wait for the commit interval
  EXPECT_EQ(*writer_->ReadingsCount(), 1);
  clock_.Advance(100);
  Cycle({});
  EXPECT_EQ(durable_, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(*writer_->ReadingsCount(), 3);
}

TEST_F(PipelineAckTest, TheReadingsCommitKeepsItsMessagesIdsAndDigests) {
  clock_.Advance(100);
  const RawMessage first = Message(1, "a", "20");
  const RawMessage second = Message(2, "b", "21");
  Cycle({first, second});
  auto delivered = writer_->LoadDelivered();
  ASSERT_TRUE(delivered.ok()) << delivered.error();
  EXPECT_EQ(*delivered, (std::vector<DeliveredMessage>{{1, first.digest}, {2, second.digest}}));
  // The next commit keeps the earlier ones too, the latest 256 at least.
  clock_.Advance(100);
  Cycle({Message(3, "c", "22")});
  delivered = writer_->LoadDelivered();
  ASSERT_TRUE(delivered.ok());
  ASSERT_EQ(delivered->size(), 3u);
  EXPECT_EQ(delivered->back().packet_id, 3);
  std::vector<RawMessage> many;
  for (uint64_t seq = 4; seq < 4 + 300; ++seq) many.push_back(Message(seq, "d", "1"));
  clock_.Advance(100);
  Cycle(std::move(many));
  delivered = writer_->LoadDelivered();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(delivered->size(), 300u);  // this commit's, all of them
  EXPECT_EQ(delivered->front().packet_id, 4);
}

TEST_F(PipelineAckTest, AMessageWithNothingToStoreIsStillRecordedBeforeItIsDurable) {
  clock_.Advance(100);
  const RawMessage bad = Message(1, "a", "not a number");
  Cycle({bad});
  EXPECT_EQ(durable_, (std::vector<uint64_t>{1}));
  auto delivered = writer_->LoadDelivered();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, (std::vector<DeliveredMessage>{{1, bad.digest}}));
}

TEST_F(PipelineAckTest, MessagesWaitForTheirAlertsGroupCommit) {
  Start(/*alert_window_ms=*/50, /*commit_interval_ms=*/10);
  clock_.Advance(100);
  Cycle({Message(1, "a", "60")});  // a lone alert commits at once
  EXPECT_EQ(durable_, (std::vector<uint64_t>{1}));
  clock_.Advance(100);
  Cycle({Message(2, "b", "60")});  // the window has passed: commits at once too
  EXPECT_EQ(durable_.back(), 2u);
  clock_.Advance(1);
  Cycle({Message(3, "c", "60")});  // within the window: the alert waits
  clock_.Advance(20);
  Cycle({Message(4, "d", "20")});  // so do the readings, past their interval
  EXPECT_EQ(*writer_->ReadingsCount(), 2);
  EXPECT_EQ(pipeline_->uncommitted_events(), 1u);
  EXPECT_EQ(durable_.back(), 2u);
  clock_.Advance(30);
  Cycle({});  // the window has passed: alert, readings and their record in one commit
  EXPECT_EQ(pipeline_->uncommitted_events(), 0u);
  EXPECT_EQ(*writer_->ReadingsCount(), 4);
  EXPECT_EQ(durable_.back(), 4u);
  auto delivered = writer_->LoadDelivered();
  ASSERT_TRUE(delivered.ok());
  ASSERT_FALSE(delivered->empty());
  EXPECT_EQ(delivered->back().packet_id, 4);
  // Asked for a commit, waiting alerts go at once with the readings.
  clock_.Advance(1);
  Cycle({Message(5, "e", "60")});
  EXPECT_EQ(pipeline_->uncommitted_events(), 1u);
  pipeline_->RequestCommit();
  Cycle({});
  EXPECT_EQ(pipeline_->uncommitted_events(), 0u);
  EXPECT_EQ(durable_.back(), 5u);
}

TEST_F(PipelineAckTest, ARequestedCommitDoesNotWaitForTheInterval) {
  Cycle({Message(1, "a", "20")});
  Cycle({Message(2, "a", "21")});
  EXPECT_TRUE(durable_.empty() || durable_.back() < 2);
  pipeline_->RequestCommit();
  Cycle({});
  EXPECT_EQ(durable_.back(), 2u);
}

TEST_F(PipelineAckTest, ARequestedCommitWakesThePipelineThread) {
  std::thread run([this] { pipeline_->Run(); });
  std::vector<RawMessage> batch{Message(1, "a", "20")};
  ASSERT_TRUE(pipeline_->TryProcessNow(batch));
  pipeline_->RequestCommit();  // the fake clock never reaches the commit interval
  edge::testutil::WaitFor(
      [&] { return metrics_.Counter("edge_agent_readings_stored_total", "").Value() == 1; },
      std::chrono::seconds(10), "the requested commit");
  queue_.Close();
  run.join();
  EXPECT_EQ(durable_.back(), 1u);
}

TEST_F(PipelineAckTest, AFailedReadingsCommitKeepsItsReadingsAndAcknowledgesNothing) {
  StoreOptions o{dir_.File("small.db")};
  o.max_bytes = 0;
  o.max_pages = 24;  // 96 KiB: far less than the batch below
  auto small = StoreWriter::Open(o);
  ASSERT_TRUE(small.ok()) << small.error();
  PipelineOptions options;
  options.node_id = "node-1";
  options.rollup_interval_ms = 0;
  Pipeline p(
      options, queue_, rules::Engine(rules::Policy{}), **small, metrics_, clock_, [] {},
      [this](uint64_t seq) { durable_.push_back(seq); });
  std::vector<RawMessage> batch;
  for (uint64_t i = 1; i <= 5000; ++i) {
    RawMessage m{"other/s" + std::to_string(i), "1", 1000};
    m.seq = i;
    batch.push_back(std::move(m));
  }
  clock_.Advance(100);
  p.ProcessBatch(batch);
  EXPECT_FALSE(p.store_writable());
  EXPECT_TRUE(durable_.empty());  // nothing acknowledged
  EXPECT_EQ(metrics_.Counter("edge_agent_readings_dropped_total", "", {{"reason", "store_error"}})
                .Value(),
            0);  // kept for the next attempt, not dropped
  std::vector<RawMessage> none;
  clock_.Advance(100);
  p.ProcessBatch(none);  // tried again, refused again
  EXPECT_TRUE(durable_.empty());
}

}  // namespace
}  // namespace edge::agent
