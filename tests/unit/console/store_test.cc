#include "edge/console/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace edge::console {
namespace {

BatchItem Alert(const std::string& id, int64_t ts_ms, const std::string& state = "firing") {
  BatchItem item;
  item.id = id;
  item.kind = "alert";
  item.created_ms = ts_ms + 1;
  item.alert = AlertFields{"boiler-overheat", "plant/boiler1/temp", "critical", state, ts_ms};
  item.payload_json = nlohmann::json{
      {"rule", "boiler-overheat"},
      {"sensor", "plant/boiler1/temp"},
      {"severity", "critical"},
      {"state", state},
      {"ts_ms", ts_ms}}.dump();
  return item;
}

Batch MakeBatch(const std::string& node, std::vector<BatchItem> items) {
  Batch b;
  b.node = node;
  b.sent_ms = 1;
  b.items = std::move(items);
  return b;
}

class SqliteConsoleStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("console_store_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto opened = OpenSqliteConsoleStore((dir_ / "console.db").string());
    ASSERT_TRUE(opened.ok()) << opened.error();
    store_ = std::move(opened.value());
  }
  std::vector<std::string> AlertIds(const AlertQuery& q) {
    auto alerts = store_->Alerts(q);
    EXPECT_TRUE(alerts.ok()) << alerts.error();
    std::vector<std::string> ids;
    if (alerts.ok()) {
      for (const auto& a : *alerts) ids.push_back(a.id);
    }
    return ids;
  }

  std::filesystem::path dir_;
  std::unique_ptr<ConsoleStore> store_;
};

TEST_F(SqliteConsoleStoreTest, SameIdTwiceIsStoredOnceAndAckedBothTimes) {
  const Batch batch = MakeBatch("node-1", {Alert("node-1:e:1", 100)});
  auto first = store_->StoreBatch(batch, 1000);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(first->accepted, 1);
  EXPECT_EQ(first->duplicates, 0);
  EXPECT_EQ(first->acked, (std::vector<std::string>{"node-1:e:1"}));
  EXPECT_EQ(first->new_alert_items, (std::vector<size_t>{0}));

  auto second = store_->StoreBatch(batch, 2000);
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ(second->accepted, 0);
  EXPECT_EQ(second->duplicates, 1);
  EXPECT_EQ(second->acked, (std::vector<std::string>{"node-1:e:1"}));
  EXPECT_TRUE(second->new_alert_items.empty());

  EXPECT_EQ(AlertIds({}), (std::vector<std::string>{"node-1:e:1"}));
}

TEST_F(SqliteConsoleStoreTest, RepeatWithinOneBatchCountsAsDuplicateAndIsAckedOnce) {
  auto outcome = store_->StoreBatch(
      MakeBatch("node-1", {Alert("node-1:e:1", 100), Alert("node-1:e:1", 100)}), 1000);
  ASSERT_TRUE(outcome.ok()) << outcome.error();
  EXPECT_EQ(outcome->accepted, 1);
  EXPECT_EQ(outcome->duplicates, 1);
  EXPECT_EQ(outcome->acked, (std::vector<std::string>{"node-1:e:1"}));
}

TEST_F(SqliteConsoleStoreTest, MixedBatchAcksNewAndDuplicateIdsInOrder) {
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:2", 200)}), 1000).ok());
  auto outcome = store_->StoreBatch(
      MakeBatch("node-1",
                {Alert("node-1:e:1", 100), Alert("node-1:e:2", 200), Alert("node-1:e:3", 300)}),
      2000);
  ASSERT_TRUE(outcome.ok()) << outcome.error();
  EXPECT_EQ(outcome->accepted, 2);
  EXPECT_EQ(outcome->duplicates, 1);
  EXPECT_EQ(outcome->acked, (std::vector<std::string>{"node-1:e:1", "node-1:e:2", "node-1:e:3"}));
  EXPECT_EQ(outcome->new_alert_items, (std::vector<size_t>{0, 2}));
}

TEST_F(SqliteConsoleStoreTest, StoredItemsSurviveReopen) {
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100)}), 1000).ok());
  Reopen();
  auto again = store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100)}), 2000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 1);
  auto alerts = store_->Alerts({});
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ((*alerts)[0].received_ms, 1000);
}

TEST_F(SqliteConsoleStoreTest, NonAlertItemsAreStoredButNotListedAsAlerts) {
  BatchItem status;
  status.id = "node-1:e:9";
  status.kind = "status";
  status.created_ms = 5;
  status.payload_json = R"({"uptime_s":10})";
  auto outcome = store_->StoreBatch(MakeBatch("node-1", {status}), 1000);
  ASSERT_TRUE(outcome.ok()) << outcome.error();
  EXPECT_EQ(outcome->accepted, 1);
  EXPECT_TRUE(outcome->new_alert_items.empty());
  EXPECT_TRUE(AlertIds({}).empty());
  auto repeat = store_->StoreBatch(MakeBatch("node-1", {status}), 1001);
  ASSERT_TRUE(repeat.ok());
  EXPECT_EQ(repeat->duplicates, 1);
}

TEST_F(SqliteConsoleStoreTest, AlertsAreOrderedByTsThenId) {
  ASSERT_TRUE(
      store_
          ->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:3", 300), Alert("node-1:e:b", 100),
                                            Alert("node-1:e:a", 100)}),
                       1000)
          .ok());
  EXPECT_EQ(AlertIds({}), (std::vector<std::string>{"node-1:e:a", "node-1:e:b", "node-1:e:3"}));
}

TEST_F(SqliteConsoleStoreTest, AlertsFilterByNodeSinceAndLimit) {
  ASSERT_TRUE(
      store_
          ->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100), Alert("node-1:e:2", 200),
                                            Alert("node-1:e:3", 300)}),
                       1000)
          .ok());
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-2", {Alert("node-2:e:1", 150)}), 1000).ok());

  AlertQuery by_node;
  by_node.node = "node-2";
  EXPECT_EQ(AlertIds(by_node), (std::vector<std::string>{"node-2:e:1"}));

  AlertQuery since;
  since.since_ms = 150;
  EXPECT_EQ(AlertIds(since), (std::vector<std::string>{"node-2:e:1", "node-1:e:2", "node-1:e:3"}));

  AlertQuery limited;
  limited.limit = 2;
  EXPECT_EQ(AlertIds(limited), (std::vector<std::string>{"node-1:e:1", "node-2:e:1"}));

  AlertQuery combined;
  combined.node = "node-1";
  combined.since_ms = 200;
  combined.limit = 1;
  EXPECT_EQ(AlertIds(combined), (std::vector<std::string>{"node-1:e:2"}));

  AlertQuery unknown;
  unknown.node = "node-9";
  EXPECT_TRUE(AlertIds(unknown).empty());
}

TEST_F(SqliteConsoleStoreTest, AlertColumnsAndPayloadRoundTrip) {
  ASSERT_TRUE(
      store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100, "resolved")}), 1234).ok());
  auto alerts = store_->Alerts({});
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 1u);
  const StoredAlert& a = (*alerts)[0];
  EXPECT_EQ(a.node, "node-1");
  EXPECT_EQ(a.received_ms, 1234);
  EXPECT_EQ(a.fields.rule, "boiler-overheat");
  EXPECT_EQ(a.fields.sensor, "plant/boiler1/temp");
  EXPECT_EQ(a.fields.severity, "critical");
  EXPECT_EQ(a.fields.state, "resolved");
  EXPECT_EQ(a.fields.ts_ms, 100);
  EXPECT_EQ(nlohmann::json::parse(a.payload_json)["state"], "resolved");
}

TEST_F(SqliteConsoleStoreTest, LatestAlertsAreNewestFirst) {
  ASSERT_TRUE(
      store_
          ->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100), Alert("node-1:e:2", 300),
                                            Alert("node-1:e:3", 200)}),
                       1000)
          .ok());
  auto latest = store_->LatestAlerts(2);
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].id, "node-1:e:2");
  EXPECT_EQ((*latest)[1].id, "node-1:e:3");
}

TEST_F(SqliteConsoleStoreTest, ActivityReportsLastSeenAndAlertCounts) {
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100)}), 1000).ok());
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:2", 200)}), 2000).ok());
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-2", {}), 3000).ok());
  auto activity = store_->Activity();
  ASSERT_TRUE(activity.ok()) << activity.error();
  ASSERT_EQ(activity->size(), 2u);
  EXPECT_EQ((*activity)[0].node, "node-1");
  EXPECT_EQ((*activity)[0].last_seen_ms, 2000);
  EXPECT_EQ((*activity)[0].alerts, 2);
  EXPECT_EQ((*activity)[1].node, "node-2");
  EXPECT_EQ((*activity)[1].last_seen_ms, 3000);
  EXPECT_EQ((*activity)[1].alerts, 0);
}

TEST_F(SqliteConsoleStoreTest, UsesWriteAheadLog) {
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100)}), 1000).ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "console.db-wal"));
}

BatchItem Rollup(const std::string& id, const std::string& sensor, int64_t start_ms,
                 double mean = 21.5) {
  BatchItem item;
  item.id = id;
  item.kind = "rollup";
  item.created_ms = start_ms + 60'001;
  item.rollup = RollupFields{sensor, start_ms, start_ms + 60'000, 12, 20.0, 23.0, mean, 22.0};
  item.payload_json = R"({"sensor":")" + sensor + R"("})";
  return item;
}

TEST_F(SqliteConsoleStoreTest, RollupsAreStoredOnceAndAckedEveryTime) {
  auto first = store_->StoreBatch(
      MakeBatch("node-1", {Rollup("node-1:e:1", "a/temp", 0), Alert("node-1:e:2", 5)}), 1000);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(first->accepted, 2);
  EXPECT_EQ(first->new_rollups, 1);
  EXPECT_EQ(first->new_alert_items, (std::vector<size_t>{1}));
  auto again = store_->StoreBatch(MakeBatch("node-1", {Rollup("node-1:e:1", "a/temp", 0),
                                                       Rollup("node-1:e:3", "a/temp", 60'000)}),
                                  2000);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->accepted, 1);
  EXPECT_EQ(again->duplicates, 1);
  EXPECT_EQ(again->acked, (std::vector<std::string>{"node-1:e:1", "node-1:e:3"}));

  auto rollups = store_->Rollups({});
  ASSERT_TRUE(rollups.ok()) << rollups.error();
  ASSERT_EQ(rollups->size(), 2u);
  const StoredRollup& r = (*rollups)[0];
  EXPECT_EQ(r.id, "node-1:e:1");
  EXPECT_EQ(r.node, "node-1");
  EXPECT_EQ(r.received_ms, 1000);
  EXPECT_EQ(r.fields.sensor, "a/temp");
  EXPECT_EQ(r.fields.start_ms, 0);
  EXPECT_EQ(r.fields.end_ms, 60'000);
  EXPECT_EQ(r.fields.count, 12);
  EXPECT_EQ(r.fields.min, 20.0);
  EXPECT_EQ(r.fields.max, 23.0);
  EXPECT_EQ(r.fields.mean, 21.5);
  EXPECT_EQ(r.fields.last, 22.0);
  EXPECT_TRUE(AlertIds({}).size() == 1);  // rollups are not alerts
}

TEST_F(SqliteConsoleStoreTest, RollupsFilterByNodeSensorSinceAndLimit) {
  ASSERT_TRUE(store_
                  ->StoreBatch(MakeBatch("node-1", {Rollup("node-1:e:3", "a/temp", 120'000),
                                                    Rollup("node-1:e:1", "a/temp", 0),
                                                    Rollup("node-1:e:2", "b/temp", 60'000)}),
                               1000)
                  .ok());
  ASSERT_TRUE(
      store_->StoreBatch(MakeBatch("node-2", {Rollup("node-2:e:1", "a/temp", 60'000)}), 1000).ok());
  const auto ids = [this](const RollupQuery& q) {
    std::vector<std::string> out;
    auto rollups = store_->Rollups(q);
    EXPECT_TRUE(rollups.ok()) << rollups.error();
    if (rollups.ok()) {
      for (const auto& r : *rollups) out.push_back(r.id);
    }
    return out;
  };
  EXPECT_EQ(ids({}),
            (std::vector<std::string>{"node-1:e:1", "node-1:e:2", "node-2:e:1", "node-1:e:3"}));
  RollupQuery q;
  q.node = "node-1";
  q.sensor = "a/temp";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"node-1:e:1", "node-1:e:3"}));
  q.since_ms = 60'000;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"node-1:e:3"}));
  RollupQuery limited;
  limited.limit = 2;
  EXPECT_EQ(ids(limited), (std::vector<std::string>{"node-1:e:1", "node-1:e:2"}));
}

TEST_F(SqliteConsoleStoreTest, LatestStatusPerNodeSurvivesReopen) {
  ASSERT_TRUE(store_->StoreStatus("node-1", 1000, R"({"uptime_s":1})").ok());
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100)}), 1500).ok());
  ASSERT_TRUE(store_->StoreStatus("node-1", 2000, R"({"uptime_s":2})").ok());
  ASSERT_TRUE(store_->StoreStatus("node-2", 3000, R"({"uptime_s":3})").ok());
  Reopen();
  auto activity = store_->Activity();
  ASSERT_TRUE(activity.ok()) << activity.error();
  ASSERT_EQ(activity->size(), 2u);
  EXPECT_EQ((*activity)[0].node, "node-1");
  EXPECT_EQ((*activity)[0].last_seen_ms, 2000);
  EXPECT_EQ((*activity)[0].status_ms, 2000);
  EXPECT_EQ((*activity)[0].status_json, R"({"uptime_s":2})");
  EXPECT_EQ((*activity)[0].alerts, 1);
  EXPECT_EQ((*activity)[1].node, "node-2");
  EXPECT_EQ((*activity)[1].status_json, R"({"uptime_s":3})");
}

TEST_F(SqliteConsoleStoreTest, BatchAfterStatusKeepsTheStatus) {
  ASSERT_TRUE(store_->StoreStatus("node-1", 1000, R"({"uptime_s":1})").ok());
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 100)}), 2000).ok());
  auto activity = store_->Activity();
  ASSERT_TRUE(activity.ok());
  ASSERT_EQ(activity->size(), 1u);
  EXPECT_EQ((*activity)[0].last_seen_ms, 2000);
  EXPECT_EQ((*activity)[0].status_ms, 1000);
  EXPECT_EQ((*activity)[0].status_json, R"({"uptime_s":1})");
}

TEST_F(SqliteConsoleStoreTest, NodeWithoutStatusHasNone) {
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {}), 2000).ok());
  auto activity = store_->Activity();
  ASSERT_TRUE(activity.ok());
  ASSERT_EQ(activity->size(), 1u);
  EXPECT_FALSE((*activity)[0].status_ms.has_value());
  EXPECT_TRUE((*activity)[0].status_json.empty());
}

// A database written by the first schema (before rollups and status) is upgraded in place.
TEST_F(SqliteConsoleStoreTest, UpgradesAVersionOneDatabase) {
  store_.reset();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "console.db").string().c_str(), &db), SQLITE_OK);
  const char* v1 = R"sql(
    CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, node TEXT NOT NULL, kind TEXT NOT NULL,
      created_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, payload TEXT NOT NULL,
      rule TEXT, sensor TEXT, severity TEXT, state TEXT, ts_ms INTEGER);
    CREATE TABLE nodes (node TEXT PRIMARY KEY NOT NULL, last_seen_ms INTEGER NOT NULL);
    INSERT INTO items VALUES ('node-1:e:1', 'node-1', 'alert', 1, 2, '{}', 'r', 's', 'critical',
      'firing', 100);
    INSERT INTO nodes VALUES ('node-1', 2);
    PRAGMA user_version = 1;
  )sql";
  ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);

  Reopen();
  EXPECT_EQ(AlertIds({}), (std::vector<std::string>{"node-1:e:1"}));
  ASSERT_TRUE(store_->StoreStatus("node-1", 3, "{}").ok());
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Rollup("node-1:e:2", "a/temp", 0)}), 4).ok());
  auto rollups = store_->Rollups({});
  ASSERT_TRUE(rollups.ok()) << rollups.error();
  EXPECT_EQ(rollups->size(), 1u);
  Reopen();  // the upgrade runs once
  auto activity = store_->Activity();
  ASSERT_TRUE(activity.ok()) << activity.error();
  EXPECT_EQ((*activity)[0].status_ms, 3);
}

TEST(OpenSqliteConsoleStore, FailsForUnwritableLocation) {
  auto store = OpenSqliteConsoleStore("/nonexistent/dir/console.db");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().find("/nonexistent/dir/console.db"), std::string::npos);
}

}  // namespace
}  // namespace edge::console

namespace edge::console {
namespace {

class QuotaStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("console_quota_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto opened = OpenSqliteConsoleStore((dir_ / "console.db").string(), StoreOptions{kQuota});
    ASSERT_TRUE(opened.ok()) << opened.error();
    store_ = std::move(opened.value());
  }
  // Bytes of one Alert() item with a 10-character id and a 3-digit ts_ms.
  static int64_t ItemBytes() { return QuotaBytes(Alert("node-1:e:0", 100)); }

  static constexpr int64_t kQuota = 1000;
  std::filesystem::path dir_;
  std::unique_ptr<ConsoleStore> store_;
};

TEST_F(QuotaStoreTest, BatchBeyondTheQuotaIsNotStoredAtAll) {
  const int64_t fit = kQuota / ItemBytes();
  ASSERT_GE(fit, 2);
  std::vector<BatchItem> items;
  for (int64_t i = 0; i < fit; ++i)
    items.push_back(Alert("node-1:e:" + std::to_string(i), 100 + i));
  auto stored = store_->StoreBatch(MakeBatch("node-1", items), 1000);
  ASSERT_TRUE(stored.ok()) << stored.error();
  EXPECT_FALSE(stored->over_quota);
  EXPECT_EQ(stored->node_bytes, fit * ItemBytes());

  auto refused = store_->StoreBatch(
      MakeBatch("node-1", {Alert("node-1:e:a", 150), Alert("node-1:e:b", 160)}), 2000);
  ASSERT_TRUE(refused.ok()) << refused.error();
  EXPECT_TRUE(refused->over_quota);
  EXPECT_EQ(refused->accepted, 0);
  EXPECT_TRUE(refused->acked.empty());
  auto alerts = store_->Alerts(AlertQuery{});
  ASSERT_TRUE(alerts.ok());
  EXPECT_EQ(static_cast<int64_t>(alerts->size()), fit);

  // Only duplicates: nothing new to hold, so it is acknowledged.
  auto again = store_->StoreBatch(MakeBatch("node-1", items), 3000);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->over_quota);
  EXPECT_EQ(again->duplicates, fit);

  // Other nodes have their own quota.
  auto other = store_->StoreBatch(MakeBatch("node-2", {Alert("node-2:e:1", 1)}), 3000);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->over_quota);
}

TEST_F(QuotaStoreTest, HeldBytesSurviveReopening) {
  ASSERT_TRUE(store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:1", 101)}), 1000).ok());
  Reopen();
  auto next = store_->StoreBatch(MakeBatch("node-1", {Alert("node-1:e:2", 102)}), 2000);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->node_bytes, 2 * ItemBytes());
}

}  // namespace
}  // namespace edge::console
