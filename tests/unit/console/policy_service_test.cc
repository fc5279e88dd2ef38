// The policy channel's core with a fake clock, an in-memory store and recording peers.

#include "edge/console/policy_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "edge/cloudsync/policy_message.h"

namespace edge::console {
namespace {

constexpr const char* kValidPolicy = R"(rules:
  - id: hot
    match: "sensors/+/temperature"
    kind: threshold
    above: 80
)";

class FakePolicyStore final : public PolicyStore {
 public:
  Status AddVersion(const PolicyVersion& v) override {
    if (fail) return Status::Error("disk full");
    for (const PolicyVersion& held : versions) {
      if (held.name == v.name && held.version == v.version) return Status::Error("duplicate");
    }
    versions.push_back(v);
    return Status::Ok();
  }
  Status SetRollout(const std::string& name, int64_t version, Rollout rollout) override {
    if (fail) return Status::Error("disk full");
    for (PolicyVersion& v : versions) {
      if (v.name == name && v.version == version) v.rollout = rollout;
    }
    return Status::Ok();
  }
  Status SetSignature(const std::string& name, int64_t version, int64_t seq,
                      const std::string& signature) override {
    if (fail) return Status::Error("disk full");
    for (PolicyVersion& v : versions) {
      if (v.name == name && v.version == version) {
        v.seq = seq;
        v.signature = signature;
      }
    }
    return Status::Ok();
  }
  Result<std::vector<PolicyVersion>> Versions() override { return versions; }
  Status PutNode(const PolicyNode& node) override {
    nodes.push_back(node);
    return Status::Ok();
  }
  Result<std::vector<PolicyNode>> Nodes() override { return nodes; }
  Status PutStatus(const PolicyNodeStatus& status) override {
    statuses.push_back(status);
    return Status::Ok();
  }
  Result<std::vector<PolicyNodeStatus>> Statuses() override { return statuses; }

  bool fail = false;
  std::vector<PolicyVersion> versions;
  std::vector<PolicyNode> nodes;
  std::vector<PolicyNodeStatus> statuses;
};

class FakePeer final : public ChannelPeer {
 public:
  void Send(std::string message) override { sent.push_back(std::move(message)); }
  void Close(uint16_t code, std::string) override { closed = code; }

  // (name, version) of the policy messages sent so far.
  std::vector<std::pair<std::string, int64_t>> Versions() const {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const std::string& m : sent) {
      auto doc = cloudsync::DecodePolicyDocument(m);
      EXPECT_TRUE(doc.ok()) << doc.error();
      if (doc.ok()) out.emplace_back(doc->name, doc->version);
    }
    return out;
  }

  std::vector<std::string> sent;
  uint16_t closed = 0;
};

cloudsync::PolicyHello Hello(const std::string& node, Labels labels,
                             std::optional<std::pair<std::string, int64_t>> applied = {}) {
  cloudsync::PolicyHello h;
  h.node = node;
  h.labels = std::move(labels);
  h.applied = std::move(applied);
  return h;
}

cloudsync::PolicyReport Applied(const std::string& name, int64_t version) {
  return cloudsync::PolicyReport{name, version, "applied", "", ""};
}

cloudsync::PolicyReport Rejected(const std::string& name, int64_t version) {
  return cloudsync::PolicyReport{name, version, "rejected", "invalid", "console:x@2:1:1: bad"};
}

PushRequest Push(const std::string& selector = "all", const std::string& canary = "",
                 int64_t wait_s = 60) {
  PushRequest r;
  r.body = kValidPolicy;
  r.selector = selector;
  r.canary = canary;
  r.canary_wait_s = wait_s;
  return r;
}

class PolicyServiceTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("policy_service_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string priv = (dir_ / "key.pem").string();
    const std::string pub = (dir_ / "key.pub").string();
    ASSERT_TRUE(cloudsync::GenerateKeyPair(priv, pub).ok());
    auto key = cloudsync::LoadSigningKey(priv);
    ASSERT_TRUE(key.ok()) << key.error();
    key_ = std::move(*key);
    auto verify = cloudsync::LoadVerifyKey(pub);
    ASSERT_TRUE(verify.ok()) << verify.error();
    verify_ = std::move(*verify);
    service_ = std::make_unique<PolicyService>(store_, clock_, log_, key_.get());
    ASSERT_TRUE(service_->Load().ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Three nodes connected: two on line a (the canaries of "line=a"), one on line b.
  void ConnectFleet() {
    service_->Connect(a1_, Hello("a1", {{"site", "p1"}, {"line", "a"}}));
    service_->Connect(a2_, Hello("a2", {{"site", "p1"}, {"line", "a"}}));
    service_->Connect(b1_, Hello("b1", {{"site", "p1"}, {"line", "b"}}));
  }

  std::string StateOf(const std::string& name, const std::string& node) {
    auto view = service_->Describe(name);
    if (!view) return "no policy";
    for (const NodePolicyView& n : view->nodes) {
      if (n.node == node) return n.state;
    }
    return "not listed";
  }

  Rollout RolloutOf(const std::string& name) {
    return service_->Describe(name)->versions.front().rollout;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  NullLog log_;
  FakePolicyStore store_;
  std::unique_ptr<cloudsync::SigningKey> key_;
  std::unique_ptr<cloudsync::VerifyKey> verify_;
  std::unique_ptr<PolicyService> service_;
  FakePeer a1_, a2_, b1_;
};

TEST_F(PolicyServiceTest, VersionsIncreaseByOnePerNameAndAreSigned) {
  EXPECT_EQ(service_->Push("boilers", Push()).version, 1);
  EXPECT_EQ(service_->Push("boilers", Push()).version, 2);
  EXPECT_EQ(service_->Push("chillers", Push()).version, 1);
  const CreateOutcome third = service_->Push("boilers", Push());
  EXPECT_EQ(third.status, 201);
  EXPECT_EQ(third.version, 3);
  cloudsync::PolicyDocument doc{"boilers", 3, third.seq, kValidPolicy, third.signature, 0};
  EXPECT_TRUE(cloudsync::VerifyDocument(*verify_, doc).ok());
  doc.version = 2;
  EXPECT_FALSE(cloudsync::VerifyDocument(*verify_, doc).ok());
  EXPECT_NE(service_->MetricsText().find("edge_console_policy_versions_total 4"),
            std::string::npos);
}

TEST_F(PolicyServiceTest, SequencesRiseAcrossPoliciesAndStayAtLeastTheClock) {
  const CreateOutcome a = service_->Push("boilers", Push());
  const CreateOutcome b = service_->Push("chillers", Push());  // same millisecond
  EXPECT_EQ(a.seq, clock_.WallMs());
  EXPECT_EQ(b.seq, a.seq + 1);
  clock_.SetWallMs(clock_.WallMs() - 60'000);  // the clock went back: still rising
  EXPECT_EQ(service_->Push("boilers", Push()).seq, b.seq + 1);
  clock_.SetWallMs(clock_.WallMs() + 3'600'000);
  const CreateOutcome later = service_->Push("chillers", Push());
  EXPECT_EQ(later.seq, clock_.WallMs());
  PolicyService again(store_, clock_, log_, key_.get());  // a restart keeps the floor
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.Push("boilers", Push()).seq, later.seq + 1);
}

TEST_F(PolicyServiceTest, VersionsStoredWithoutASequenceAreSignedAgainInCreationOrder) {
  for (const auto& [name, created] : {std::pair<const char*, int64_t>{"b", 200}, {"a", 100}}) {
    PolicyVersion v;
    v.name = name;
    v.version = 1;
    v.body = kValidPolicy;
    v.selector = "all";
    v.signature = "old";
    v.created_ms = created;
    store_.versions.push_back(v);
  }
  PolicyService again(store_, clock_, log_, key_.get());
  ASSERT_TRUE(again.Load().ok());
  std::map<std::string, int64_t> seq;
  for (const PolicyVersion& v : store_.versions) {
    seq[v.name] = v.seq;
    EXPECT_TRUE(cloudsync::VerifyDocument(
                    *verify_, cloudsync::PolicyDocument{v.name, 1, v.seq, kValidPolicy, v.signature,
                                                        v.created_ms})
                    .ok())
        << v.name;
  }
  EXPECT_GT(seq["a"], 0);
  EXPECT_GT(seq["b"], seq["a"]);  // b was created later
  // What a node is sent carries the new sequence and verifies.
  FakePeer peer;
  again.Connect(peer, Hello("n1", {}));
  ASSERT_EQ(peer.sent.size(), 1u);
  auto doc = cloudsync::DecodePolicyDocument(peer.sent[0]);
  ASSERT_TRUE(doc.ok()) << doc.error();
  EXPECT_EQ(doc->seq, seq[doc->name]);
  EXPECT_TRUE(cloudsync::VerifyDocument(*verify_, *doc).ok());
}

TEST_F(PolicyServiceTest, VersionNumbersSurviveARestart) {
  ASSERT_EQ(service_->Push("boilers", Push()).version, 1);
  ASSERT_EQ(service_->Push("boilers", Push()).version, 2);
  PolicyService again(store_, clock_, log_, key_.get());
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.Push("boilers", Push()).version, 3);
}

TEST_F(PolicyServiceTest, InvalidBodyIsRejectedWithSourcePosition) {
  PushRequest bad = Push();
  bad.body = "rules:\n  - id: x\n    kind: threshold\n    thresold: 1\n";
  const CreateOutcome out = service_->Push("boilers", bad);
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(out.error.rfind("console:boilers@1:", 0), 0u) << out.error;
  EXPECT_TRUE(store_.versions.empty());
  bad.skip_validation = true;
  EXPECT_EQ(service_->Push("boilers", bad).status, 201);
}

TEST_F(PolicyServiceTest, BadRequestsAreRefused) {
  EXPECT_EQ(service_->Push("bad name", Push()).status, 400);
  EXPECT_EQ(service_->Push("boilers", Push("a in (")).status, 400);
  EXPECT_EQ(service_->Push("boilers", Push("all", "x=")).status, 400)
      << "no known node matches the canary";
  EXPECT_EQ(service_->Push("boilers", Push("all", "line=a", -1)).status, 400);
  EXPECT_EQ(service_->Rollback("nothing", 1).status, 404);
  ASSERT_EQ(service_->Push("boilers", Push()).status, 201);
  EXPECT_EQ(service_->Rollback("boilers", 5).status, 400);
}

TEST_F(PolicyServiceTest, WithoutSigningKeyPushAndRollbackAre503) {
  PolicyService unsigned_service(store_, clock_, log_, nullptr);
  ASSERT_TRUE(unsigned_service.Load().ok());
  EXPECT_EQ(unsigned_service.Push("boilers", Push()).status, 503);
  ASSERT_EQ(service_->Push("boilers", Push()).status, 201);
  PolicyService reloaded(store_, clock_, log_, nullptr);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(reloaded.Rollback("boilers", 1).status, 503);
  EXPECT_EQ(reloaded.List().size(), 1u);
}

TEST_F(PolicyServiceTest, StoreFailureCreatesNothing) {
  store_.fail = true;
  EXPECT_EQ(service_->Push("boilers", Push()).status, 503);
  EXPECT_TRUE(service_->List().empty());
  store_.fail = false;
  EXPECT_EQ(service_->Push("boilers", Push()).version, 1);
}

TEST_F(PolicyServiceTest, ConnectSendsReleasedVersionUnlessAlreadyApplied) {
  ASSERT_EQ(service_->Push("boilers", Push("site=p1")).status, 201);
  FakePeer fresh, current, other;
  service_->Connect(fresh, Hello("n1", {{"site", "p1"}}));
  service_->Connect(current, Hello("n2", {{"site", "p1"}}, std::make_pair("boilers", 1)));
  service_->Connect(other, Hello("n3", {{"site", "p2"}}));
  EXPECT_EQ(fresh.Versions(), (std::vector<std::pair<std::string, int64_t>>{{"boilers", 1}}));
  EXPECT_TRUE(current.sent.empty());
  EXPECT_TRUE(other.sent.empty()) << "a node no policy selects keeps what it runs";
  EXPECT_EQ(service_->channels(), 3);
  EXPECT_EQ(StateOf("boilers", "n2"), "applied") << "hello.applied counts as applied";
  service_->Disconnect(fresh);
  EXPECT_EQ(service_->channels(), 2);
}

TEST_F(PolicyServiceTest, NewVersionIsPushedToConnectedMatchingNodes) {
  ConnectFleet();
  const CreateOutcome out = service_->Push("boilers", Push("line=b"));
  EXPECT_EQ(out.targets, std::vector<std::string>{"b1"});
  EXPECT_TRUE(a1_.sent.empty());
  EXPECT_EQ(b1_.Versions(), (std::vector<std::pair<std::string, int64_t>>{{"boilers", 1}}));
}

TEST_F(PolicyServiceTest, NewestCreatedPolicyWinsAcrossPolicies) {
  ConnectFleet();
  ASSERT_EQ(service_->Push("zeta", Push()).status, 201);
  clock_.Advance(1);
  ASSERT_EQ(service_->Push("alpha", Push("line=a")).status, 201);
  EXPECT_EQ(service_->ReleasedTo({{"line", "a"}}), std::make_pair(std::string("alpha"), 1L));
  EXPECT_EQ(service_->ReleasedTo({{"line", "b"}}), std::make_pair(std::string("zeta"), 1L));
  clock_.Advance(1);
  ASSERT_EQ(service_->Push("zeta", Push()).status, 201);
  EXPECT_EQ(service_->ReleasedTo({{"line", "a"}}), std::make_pair(std::string("zeta"), 2L));
  EXPECT_EQ(a1_.Versions().back(), std::make_pair(std::string("zeta"), 2L));
}

TEST_F(PolicyServiceTest, EqualCreationTimesPickTheSmallerName) {
  ASSERT_EQ(service_->Push("beta", Push()).status, 201);
  ASSERT_EQ(service_->Push("alpha", Push()).status, 201);
  EXPECT_EQ(service_->ReleasedTo({}), std::make_pair(std::string("alpha"), 1L));
}

TEST_F(PolicyServiceTest, CanaryGoesToCanariesFirstAndIsPromotedAfterWait) {
  ConnectFleet();
  ASSERT_EQ(service_->Push("boilers", Push("site=p1")).version, 1);
  const CreateOutcome v2 = service_->Push("boilers", Push("site=p1", "line=a", 60));
  ASSERT_EQ(v2.status, 201);
  EXPECT_EQ(v2.rollout, Rollout::kCanary);
  EXPECT_EQ(v2.targets, (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(a1_.Versions().back().second, 2);
  EXPECT_EQ(b1_.Versions().back().second, 1) << "non-canaries keep the previous version";

  service_->Report("a1", Applied("boilers", 2));
  service_->Report("a2", Applied("boilers", 2));
  clock_.Advance(59'000);
  service_->Tick();
  EXPECT_EQ(RolloutOf("boilers"), Rollout::kCanary) << "the wait has not passed";
  EXPECT_EQ(b1_.Versions().back().second, 1);
  clock_.Advance(1'000);
  service_->Tick();
  EXPECT_EQ(RolloutOf("boilers"), Rollout::kReleased);
  EXPECT_EQ(b1_.Versions().back().second, 2);
  EXPECT_EQ(store_.versions.back().rollout, Rollout::kReleased) << "promotion is persisted";
}

TEST_F(PolicyServiceTest, CanaryIsNotPromotedUntilEveryCanaryApplied) {
  ConnectFleet();
  ASSERT_EQ(service_->Push("boilers", Push("all", "line=a", 0)).status, 201);
  service_->Report("a1", Applied("boilers", 1));
  clock_.Advance(120'000);
  service_->Tick();
  EXPECT_EQ(RolloutOf("boilers"), Rollout::kCanary);
  EXPECT_TRUE(b1_.sent.empty());
  service_->Report("a2", Applied("boilers", 1));
  EXPECT_EQ(RolloutOf("boilers"), Rollout::kReleased) << "a report re-checks at once";
  EXPECT_EQ(b1_.Versions().back().second, 1);
}

TEST_F(PolicyServiceTest, CanaryRejectionHaltsTheRollout) {
  ConnectFleet();
  ASSERT_EQ(service_->Push("boilers", Push()).version, 1);
  ASSERT_EQ(service_->Push("boilers", Push("all", "line=a", 0)).version, 2);
  service_->Report("a1", Applied("boilers", 2));
  service_->Report("a2", Rejected("boilers", 2));
  EXPECT_EQ(RolloutOf("boilers"), Rollout::kHalted);
  clock_.Advance(3'600'000);
  service_->Tick();
  EXPECT_EQ(RolloutOf("boilers"), Rollout::kHalted) << "a halted version is never promoted";
  EXPECT_EQ(b1_.Versions().back().second, 1);
  EXPECT_EQ(StateOf("boilers", "a2"), "rejected");
  EXPECT_EQ(StateOf("boilers", "a1"), "applied");
  EXPECT_EQ(StateOf("boilers", "b1"), "pending");
  const auto view = service_->Describe("boilers");
  for (const NodePolicyView& n : view->nodes) {
    if (n.node != "a2") continue;
    EXPECT_EQ(n.reason, "invalid");
    EXPECT_EQ(n.released_version, 2);
    EXPECT_TRUE(n.connected);
  }
  EXPECT_NE(service_->MetricsText().find("edge_console_policy_reports_total{state=\"rejected\"} 1"),
            std::string::npos);
}

TEST_F(PolicyServiceTest, RollbackReleasesOldBodyToEveryNodeAtOnce) {
  ConnectFleet();
  ASSERT_EQ(service_->Push("boilers", Push("site=p1")).version, 1);
  PushRequest v2 = Push("site=p1", "line=a", 0);
  v2.body = std::string(kValidPolicy) + "# v2\n";
  ASSERT_EQ(service_->Push("boilers", v2).version, 2);
  service_->Report("a1", Rejected("boilers", 2));
  ASSERT_EQ(RolloutOf("boilers"), Rollout::kHalted);
  const CreateOutcome back = service_->Rollback("boilers", 1);
  ASSERT_EQ(back.status, 201);
  EXPECT_EQ(back.version, 3);
  EXPECT_EQ(back.rollout, Rollout::kReleased);
  EXPECT_EQ(back.targets, (std::vector<std::string>{"a1", "a2", "b1"}));
  EXPECT_EQ(store_.versions.back().body, kValidPolicy);
  EXPECT_EQ(store_.versions.back().selector, "site=p1");
  EXPECT_EQ(b1_.Versions().back().second, 3);
  EXPECT_EQ(a1_.Versions().back().second, 3);
}

TEST_F(PolicyServiceTest, PollAnswersOnlyWhenTheReleasedVersionDiffers) {
  EXPECT_FALSE(service_->Poll(Hello("n1", {})).has_value());
  ASSERT_EQ(service_->Push("boilers", Push()).status, 201);
  const auto doc = service_->Poll(Hello("n1", {}));
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 1);
  EXPECT_TRUE(cloudsync::VerifyDocument(*verify_, *doc).ok());
  EXPECT_FALSE(service_->Poll(Hello("n1", {}, std::make_pair("boilers", 1))).has_value());
  EXPECT_TRUE(service_->Poll(Hello("n1", {}, std::make_pair("other", 1))).has_value());
}

TEST_F(PolicyServiceTest, ReportsForUnknownVersionsAreCountedButNotStored) {
  ConnectFleet();
  service_->Report("a1", Applied("nothing", 1));
  ASSERT_EQ(service_->Push("boilers", Push()).status, 201);
  service_->Report("a1", Applied("boilers", 9));
  EXPECT_TRUE(store_.statuses.empty());
  EXPECT_NE(service_->MetricsText().find("edge_console_policy_reports_total{state=\"applied\"} 2"),
            std::string::npos);
}

}  // namespace
}  // namespace edge::console
