// Hot reload: what a poll of the local policy file does with each kind of change.
#include "edge/agent/policy_watcher.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "edge/agent/prometheus_metrics.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using Outcome = PolicyWatcher::Outcome;
using testing::TempDir;

constexpr char kA[] = "rules:\n  - {id: a, match: \"#\", kind: threshold, above: 1}\n";
constexpr char kB[] = "rules:\n  - {id: b, match: \"#\", kind: stale, after: 1m}\n";
constexpr char kBad[] = "rules:\n  - {id: b, match: \"#\", kind: stale, after: 5 minutes}\n";

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

class PolicyWatcherTest : public ::testing::Test {
 protected:
  PolicyWatcherTest() { Write(path_, kA); }

  PolicyWatcher& Watcher() {
    if (!watcher_) {
      watcher_.emplace(io_, path_, metrics_, [this](rules::Policy p) {
        ++applied_;
        last_ = std::move(p);
      });
    }
    return *watcher_;
  }

  double Rejected() {
    return metrics_.Counter("edge_agent_policy_reloads_total", "", {{"result", "rejected"}})
        .Value();
  }

  TempDir dir_;
  std::string path_ = dir_.File("policy.yaml");
  boost::asio::io_context io_;
  PrometheusMetrics metrics_;
  std::optional<PolicyWatcher> watcher_;
  int applied_ = 0;
  rules::Policy last_;
};

TEST_F(PolicyWatcherTest, UnchangedFileDoesNothing) {
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kUnchanged);
  EXPECT_EQ(applied_, 0);
}

TEST_F(PolicyWatcherTest, ValidChangeIsApplied) {
  Watcher();
  Write(path_, kB);
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kApplied);
  ASSERT_EQ(applied_, 1);
  EXPECT_EQ(last_.rules[0].id, "b");
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kUnchanged);
}

TEST_F(PolicyWatcherTest, InvalidChangeIsRejectedOnceAndCounted) {
  Watcher();
  Write(path_, kBad);
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kRejected);
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kUnchanged);
  EXPECT_EQ(applied_, 0);
  EXPECT_EQ(Rejected(), 1);
  Write(path_, kB);  // fixed
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kApplied);
}

TEST_F(PolicyWatcherTest, RevertingToTheRunningContentAfterARejectApplies) {
  Watcher();
  Write(path_, kBad);
  Watcher().PollOnce();
  Write(path_, kA);
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kApplied);  // same as the running one: harmless
}

TEST_F(PolicyWatcherTest, MissingFileKeepsThePolicy) {
  Watcher();
  std::filesystem::remove(path_);
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kUnreadable);
  EXPECT_EQ(Rejected(), 0);
  Write(path_, kA);
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kUnchanged);
}

TEST_F(PolicyWatcherTest, ConfigMapSymlinkSwapIsSeen) {
  // Kubernetes: policy.yaml -> ..data/policy.yaml, ..data -> ..v1; an update points ..data
  // at a new directory in one rename.
  const auto root = dir_.path();
  std::filesystem::create_directory(root / "..v1");
  std::filesystem::create_directory(root / "..v2");
  Write((root / "..v1" / "policy.yaml").string(), kA);
  Write((root / "..v2" / "policy.yaml").string(), kB);
  std::filesystem::create_directory_symlink("..v1", root / "..data");
  const auto link = root / "cm-policy.yaml";
  std::filesystem::create_symlink("..data/policy.yaml", link);
  path_ = link.string();
  Watcher();
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kUnchanged);
  std::filesystem::create_directory_symlink("..v2", root / "..data_tmp");
  std::filesystem::rename(root / "..data_tmp", root / "..data");
  EXPECT_EQ(Watcher().PollOnce(), Outcome::kApplied);
  EXPECT_EQ(last_.rules[0].id, "b");
}

}  // namespace
}  // namespace edge::agent
