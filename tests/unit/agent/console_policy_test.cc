// The console policy judge: each rejection reason, replays, persistence in the agent's
// SQLite database, and the start-up choice between the stored console policy and the
// local file.
#include "edge/agent/console_policy.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edge/agent/prometheus_metrics.h"
#include "edge/agent/store.h"
#include "edge/cloudsync/policy_message.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using cloudsync::PolicyDocument;
using cloudsync::PolicyReport;
using testing::TempDir;

constexpr char kBody[] = "rules:\n  - {id: hot, match: \"plant/#\", kind: threshold, above: 90}\n";
constexpr char kOtherBody[] =
    "rules:\n  - {id: cold, match: \"plant/#\", kind: threshold, below: 1}\n";

// Fails on demand; otherwise an in-memory ConsolePolicyState.
class FakeState final : public ConsolePolicyState {
 public:
  Result<std::optional<StoredConsolePolicy>> Load() override { return current; }
  Status Save(const StoredConsolePolicy& p) override {
    if (fail_save) return Status::Error("disk I/O error");
    current = p;
    return Status::Ok();
  }
  std::optional<StoredConsolePolicy> current;
  bool fail_save = false;
};

class ConsolePolicyTest : public ::testing::Test {
 protected:
  ConsolePolicyTest() {
    EXPECT_TRUE(cloudsync::GenerateKeyPair(dir_.File("k.key"), dir_.File("k.pub")).ok());
    EXPECT_TRUE(cloudsync::GenerateKeyPair(dir_.File("o.key"), dir_.File("o.pub")).ok());
    auto signing = cloudsync::LoadSigningKey(dir_.File("k.key"));
    auto other = cloudsync::LoadSigningKey(dir_.File("o.key"));
    auto verify = cloudsync::LoadVerifyKey(dir_.File("k.pub"));
    signing_ = std::move(signing.value());
    other_signing_ = std::move(other.value());
    verify_ = std::move(verify.value());
  }

  // Signs a new version as the console creates one: each gets the next fleet sequence.
  PolicyDocument Signed(const std::string& name, int64_t version, const std::string& body,
                        const cloudsync::SigningKey* key = nullptr) {
    PolicyDocument doc;
    doc.name = name;
    doc.version = version;
    doc.seq = ++next_seq_;
    doc.body = body;
    EXPECT_TRUE(cloudsync::SignDocument(key != nullptr ? *key : *signing_, doc).ok());
    return doc;
  }

  ConsolePolicyJudge& Judge(ConsolePolicyState& state,
                            std::optional<RunningConsolePolicy> running = {}) {
    judge_ = std::make_unique<ConsolePolicyJudge>(
        *verify_, state, metrics_, clock_,
        [this](rules::Policy p, const StoredConsolePolicy& s) {
          applied_.push_back(s.name + "@" + std::to_string(s.version));
          last_rules_ = p.rules.size();
        },
        std::move(running));
    return *judge_;
  }

  double Rejected(const std::string& reason) {
    return metrics_.Counter("edge_agent_policy_rejected_total", "", {{"reason", reason}}).Value();
  }
  double AppliedTotal() { return metrics_.Counter("edge_agent_policy_applied_total", "").Value(); }
  double VersionGauge() { return metrics_.Gauge("edge_agent_policy_version", "").Value(); }

  StoreOptions Options() {
    StoreOptions o{dir_.File("agent.db")};
    o.max_bytes = 0;
    return o;
  }

  TempDir dir_;
  std::unique_ptr<cloudsync::SigningKey> signing_;
  std::unique_ptr<cloudsync::SigningKey> other_signing_;
  std::unique_ptr<cloudsync::VerifyKey> verify_;
  PrometheusMetrics metrics_;
  FakeClock clock_;
  std::unique_ptr<ConsolePolicyJudge> judge_;
  std::vector<std::string> applied_;
  size_t last_rules_ = 0;
  int64_t next_seq_ = 1000;
};

TEST_F(ConsolePolicyTest, AppliesAndPersistsAValidSignedVersion) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  const PolicyReport r = judge.Judge(Signed("boilers", 3, kBody));
  EXPECT_EQ(r.state, "applied");
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(r.name, "boilers");
  EXPECT_EQ(r.version, 3);
  EXPECT_EQ(applied_, std::vector<std::string>{"boilers@3"});
  EXPECT_EQ(last_rules_, 1u);
  ASSERT_TRUE(state.current.has_value());
  EXPECT_EQ(state.current->body, kBody);
  EXPECT_EQ(state.current->applied_ms, clock_.WallMs());
  EXPECT_EQ(judge.Applied(),
            std::make_optional(std::make_pair(std::string("boilers"), int64_t{3})));
  EXPECT_EQ(VersionGauge(), 3);
  EXPECT_EQ(AppliedTotal(), 1);
}

TEST_F(ConsolePolicyTest, RejectsAnotherKeysSignatureAndAnyChangedByte) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  EXPECT_EQ(judge.Judge(Signed("boilers", 3, kBody, other_signing_.get())).reason, "signature");
  PolicyDocument tampered = Signed("boilers", 3, kBody);
  tampered.version = 4;
  const PolicyReport r = judge.Judge(tampered);
  EXPECT_EQ(r.state, "rejected");
  EXPECT_EQ(r.reason, "signature");
  EXPECT_TRUE(applied_.empty());
  EXPECT_FALSE(state.current.has_value());
  EXPECT_EQ(Rejected("signature"), 2);
  EXPECT_EQ(VersionGauge(), 0);
}

TEST_F(ConsolePolicyTest, RejectsALowerVersionAsStale) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  const PolicyDocument older = Signed("boilers", 4, kOtherBody);
  ASSERT_EQ(judge.Judge(Signed("boilers", 5, kBody)).state, "applied");
  const PolicyReport r = judge.Judge(older);
  EXPECT_EQ(r.state, "rejected");
  EXPECT_EQ(r.reason, "stale");
  EXPECT_EQ(applied_.size(), 1u);
  EXPECT_EQ(state.current->version, 5);
  EXPECT_EQ(Rejected("stale"), 1);
}

TEST_F(ConsolePolicyTest, TheSameVersionAgainIsAReplayAnsweredApplied) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  ASSERT_EQ(judge.Judge(Signed("boilers", 5, kBody)).state, "applied");
  const PolicyReport r = judge.Judge(Signed("boilers", 5, kBody));
  EXPECT_EQ(r.state, "applied");
  EXPECT_EQ(applied_.size(), 1u);  // nothing swapped in again
  EXPECT_EQ(AppliedTotal(), 1);
}

TEST_F(ConsolePolicyTest, RejectsAnInvalidBodyWithItsPosition) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  const PolicyReport r =
      judge.Judge(Signed("boilers", 2, "rules:\n  - {id: a, match: \"#\", kind: thresold}\n"));
  EXPECT_EQ(r.state, "rejected");
  EXPECT_EQ(r.reason, "invalid");
  EXPECT_EQ(r.detail.rfind("console:boilers@2:2:", 0), 0u) << r.detail;
  EXPECT_TRUE(applied_.empty());
  EXPECT_FALSE(state.current.has_value());
  EXPECT_EQ(Rejected("invalid"), 1);
}

TEST_F(ConsolePolicyTest, AFailedSaveIsAStoreRejectionAndChangesNothing) {
  FakeState state;
  state.fail_save = true;
  ConsolePolicyJudge& judge = Judge(state, RunningConsolePolicy{"old", 1, 1});
  const PolicyReport r = judge.Judge(Signed("boilers", 2, kBody));
  EXPECT_EQ(r.state, "rejected");
  EXPECT_EQ(r.reason, "store");
  EXPECT_NE(r.detail.find("disk I/O error"), std::string::npos);
  EXPECT_TRUE(applied_.empty());
  EXPECT_EQ(judge.Applied()->first, "old");
  EXPECT_EQ(VersionGauge(), 1);
  EXPECT_EQ(Rejected("store"), 1);
}

TEST_F(ConsolePolicyTest, AnOlderVersionOfAnotherPolicyIsStale) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  const PolicyDocument q1 = Signed("q", 1, kOtherBody);
  const PolicyDocument p1 = Signed("p", 1, kBody);
  const PolicyDocument p2 = Signed("p", 2, kBody);
  ASSERT_EQ(judge.Judge(p2).state, "applied");
  const PolicyReport r = judge.Judge(q1);  // replayed by someone on the path
  EXPECT_EQ(r.state, "rejected");
  EXPECT_EQ(r.reason, "stale");
  EXPECT_NE(r.detail.find("console:p@2"), std::string::npos) << r.detail;
  EXPECT_EQ(judge.Judge(p1).reason, "stale");
  EXPECT_EQ(judge.Judge(p2).state, "applied");  // the running one again: a replay
  EXPECT_EQ(applied_, (std::vector<std::string>{"p@2"}));
  EXPECT_EQ(state.current->name, "p");
  EXPECT_EQ(VersionGauge(), 2);
  EXPECT_EQ(Rejected("stale"), 2);
}

TEST_F(ConsolePolicyTest, AVersionAppliedBeforeButNotRunningIsNoReplay) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  const PolicyDocument p1 = Signed("p", 1, kBody);
  ASSERT_EQ(judge.Judge(p1).state, "applied");
  ASSERT_EQ(judge.Judge(Signed("q", 1, kOtherBody)).state, "applied");
  // p@1 is not what runs: answering "applied" would tell the console a lie.
  const PolicyReport r = judge.Judge(p1);
  EXPECT_EQ(r.state, "rejected");
  EXPECT_EQ(r.reason, "stale");
  EXPECT_EQ(judge.Applied()->first, "q");
  EXPECT_EQ(applied_, (std::vector<std::string>{"p@1", "q@1"}));
}

TEST_F(ConsolePolicyTest, AnUnsignedVersionIsASignatureRejection) {
  FakeState state;
  ConsolePolicyJudge& judge = Judge(state);
  PolicyDocument doc = Signed("boilers", 3, kBody);
  doc.signature.clear();
  const PolicyReport r = judge.Judge(doc);
  EXPECT_EQ(r.state, "rejected");
  EXPECT_EQ(r.reason, "signature");
  EXPECT_EQ(Rejected("signature"), 1);
  EXPECT_TRUE(applied_.empty());
}

TEST_F(ConsolePolicyTest, SqliteKeepsThePolicyAndSequenceAcrossReopening) {
  PolicyDocument boilers7;
  PolicyDocument chillers2;
  {
    auto writer = StoreWriter::Open(Options());
    ASSERT_TRUE(writer.ok()) << writer.error();
    auto reader = StoreReader::Open(Options());
    ASSERT_TRUE(reader.ok()) << reader.error();
    auto state = StoreConsolePolicyState(**reader);
    ConsolePolicyJudge& judge = Judge(*state);
    boilers7 = Signed("boilers", 7, kBody);
    ASSERT_EQ(judge.Judge(boilers7).state, "applied");
    chillers2 = Signed("chillers", 2, kOtherBody);
    ASSERT_EQ(judge.Judge(chillers2).state, "applied");
    judge_.reset();
    applied_.clear();
  }
  auto writer = StoreWriter::Open(Options());
  ASSERT_TRUE(writer.ok()) << writer.error();
  auto reader = StoreReader::Open(Options());
  ASSERT_TRUE(reader.ok()) << reader.error();
  auto state = StoreConsolePolicyState(**reader);
  auto start = LoadConsolePolicyAtStart(*state, *verify_);
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(start->stored.name, "chillers");
  EXPECT_EQ(start->stored.version, 2);
  EXPECT_EQ(start->stored.seq, chillers2.seq);
  EXPECT_EQ(start->policy.rules.size(), 1u);
  ConsolePolicyJudge& judge = Judge(
      *state, RunningConsolePolicy{start->stored.name, start->stored.version, start->stored.seq});
  EXPECT_EQ(VersionGauge(), 2);
  EXPECT_EQ(judge.Judge(boilers7).reason, "stale");
  EXPECT_EQ(judge.Judge(chillers2).state, "applied");
  EXPECT_TRUE(applied_.empty());  // a replay after the restart applies nothing
}

TEST_F(ConsolePolicyTest, StartRunsTheStoredPolicyOnlyWhenItStillVerifies) {
  FakeState state;
  EXPECT_FALSE(LoadConsolePolicyAtStart(state, *verify_).has_value());  // nothing stored

  const PolicyDocument doc = Signed("boilers", 3, kBody);
  state.current = StoredConsolePolicy{doc.name, doc.version, doc.body, doc.signature, 1, doc.seq};
  EXPECT_TRUE(LoadConsolePolicyAtStart(state, *verify_).has_value());

  state.current->body = kOtherBody;  // changed in the database
  EXPECT_FALSE(LoadConsolePolicyAtStart(state, *verify_).has_value());

  const PolicyDocument foreign = Signed("boilers", 3, kBody, other_signing_.get());
  state.current =
      StoredConsolePolicy{foreign.name, foreign.version, foreign.body, foreign.signature, 1,
                          foreign.seq};  // the key was rotated
  EXPECT_FALSE(LoadConsolePolicyAtStart(state, *verify_).has_value());

  state.current = StoredConsolePolicy{doc.name, doc.version, doc.body, doc.signature, 1, 0};
  EXPECT_FALSE(LoadConsolePolicyAtStart(state, *verify_).has_value());  // from an older agent
}

}  // namespace
}  // namespace edge::agent
