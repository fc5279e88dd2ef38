#include "edge/console/policy_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "edge/console/store.h"

namespace edge::console {
namespace {

PolicyVersion Version(const std::string& name, int64_t version) {
  PolicyVersion v;
  v.name = name;
  v.version = version;
  v.body = "rules: []\n# " + std::to_string(version);
  v.signature = "sig" + std::to_string(version);
  v.selector = "site=p1";
  v.canary = "line=a";
  v.canary_wait_s = 30;
  v.created_ms = 1000 + version;
  v.rollout = Rollout::kCanary;
  return v;
}

class SqlitePolicyStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("policy_store_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "console.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<PolicyStore> Open() {
    auto store = OpenSqlitePolicyStore(path_);
    EXPECT_TRUE(store.ok()) << store.error();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqlitePolicyStoreTest, VersionsRoundTripAndSurviveReopen) {
  {
    auto store = Open();
    ASSERT_TRUE(store->AddVersion(Version("boilers", 1)).ok());
    ASSERT_TRUE(store->AddVersion(Version("boilers", 2)).ok());
    ASSERT_TRUE(store->AddVersion(Version("alpha", 1)).ok());
    ASSERT_TRUE(store->SetRollout("boilers", 2, Rollout::kHalted).ok());
  }
  auto store = Open();
  auto versions = store->Versions();
  ASSERT_TRUE(versions.ok()) << versions.error();
  ASSERT_EQ(versions->size(), 3u);
  EXPECT_EQ((*versions)[0].name, "alpha");
  const PolicyVersion& v2 = (*versions)[2];
  EXPECT_EQ(v2.name, "boilers");
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.body, "rules: []\n# 2");
  EXPECT_EQ(v2.signature, "sig2");
  EXPECT_EQ(v2.selector, "site=p1");
  EXPECT_EQ(v2.canary, "line=a");
  EXPECT_EQ(v2.canary_wait_s, 30);
  EXPECT_EQ(v2.created_ms, 1002);
  EXPECT_EQ(v2.rollout, Rollout::kHalted);
  EXPECT_EQ((*versions)[1].rollout, Rollout::kCanary);
}

TEST_F(SqlitePolicyStoreTest, AVersionNumberIsNeverStoredTwice) {
  auto store = Open();
  ASSERT_TRUE(store->AddVersion(Version("boilers", 1)).ok());
  EXPECT_FALSE(store->AddVersion(Version("boilers", 1)).ok());
  EXPECT_EQ(store->Versions()->size(), 1u);
}

TEST_F(SqlitePolicyStoreTest, NodesAndStatusesAreReplacedByNewerOnes) {
  {
    auto store = Open();
    ASSERT_TRUE(store->PutNode({"n1", {{"site", "p1"}, {"odd,key=", "v\"1"}}, 5}).ok());
    ASSERT_TRUE(store->PutNode({"n1", {{"site", "p2"}, {"odd,key=", "v\"1"}}, 6}).ok());
    ASSERT_TRUE(store->PutStatus({"boilers", "n1", 1, 1, "applied", "", "", 7}).ok());
    ASSERT_TRUE(
        store->PutStatus({"boilers", "n1", 1, 2, "rejected", "invalid", "x:1:2: bad", 8}).ok());
  }
  auto store = Open();
  auto nodes = store->Nodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].labels, (Labels{{"site", "p2"}, {"odd,key=", "v\"1"}}));
  EXPECT_EQ((*nodes)[0].updated_ms, 6);
  auto statuses = store->Statuses();
  ASSERT_TRUE(statuses.ok());
  ASSERT_EQ(statuses->size(), 1u);
  EXPECT_EQ((*statuses)[0].applied_version, 1);
  EXPECT_EQ((*statuses)[0].report_version, 2);
  EXPECT_EQ((*statuses)[0].state, "rejected");
  EXPECT_EQ((*statuses)[0].detail, "x:1:2: bad");
}

TEST_F(SqlitePolicyStoreTest, SharesTheDatabaseWithTheBatchStore) {
  auto batches = OpenSqliteConsoleStore(path_);
  ASSERT_TRUE(batches.ok()) << batches.error();
  auto store = Open();
  ASSERT_TRUE(store->AddVersion(Version("boilers", 1)).ok());
  ASSERT_TRUE((*batches)->StoreStatus("n1", 1, "{}").ok());
  EXPECT_EQ(store->Versions()->size(), 1u);
  // Both kinds of rows are in the one file: reopened from it, each store finds its own.
  store.reset();
  batches->reset();
  auto batches_again = OpenSqliteConsoleStore(path_);
  ASSERT_TRUE(batches_again.ok()) << batches_again.error();
  auto activity = (*batches_again)->Activity();
  ASSERT_TRUE(activity.ok()) << activity.error();
  ASSERT_EQ(activity->size(), 1u);
  EXPECT_EQ(activity->front().node, "n1");
  EXPECT_EQ(Open()->Versions()->size(), 1u);
}

}  // namespace
}  // namespace edge::console
