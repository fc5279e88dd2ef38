#include "edge/agent/console_policy.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace edge::agent {
namespace {

constexpr const char* kRejectReasons[] = {"signature", "stale", "invalid", "store"};
constexpr const char* kVersionHelp = "Console policy version in force; 0 while the local file runs";
constexpr const char* kRejectedHelp = "Console policy versions rejected, by reason";
constexpr const char* kAppliedHelp = "Console policy versions applied (replays not counted)";
constexpr const char* kConnectedHelp =
    "1 while the policy channel WebSocket to the console is open";

std::string SourceName(std::string_view name, int64_t version) {
  return "console:" + std::string(name) + "@" + std::to_string(version);
}

class StoreState final : public ConsolePolicyState {
 public:
  explicit StoreState(StoreReader& reader) : reader_(reader) {}
  Result<std::optional<StoredConsolePolicy>> Load() override { return reader_.LoadConsolePolicy(); }
  Status Save(const StoredConsolePolicy& policy) override {
    return reader_.SaveConsolePolicy(policy);
  }

 private:
  StoreReader& reader_;
};

}  // namespace

std::unique_ptr<ConsolePolicyState> StoreConsolePolicyState(StoreReader& reader) {
  return std::make_unique<StoreState>(reader);
}

void RegisterConsolePolicyMetrics(Metrics& metrics) {
  metrics.Gauge("edge_agent_policy_version", kVersionHelp);
  metrics.Counter("edge_agent_policy_applied_total", kAppliedHelp);
  for (const char* reason : kRejectReasons) {
    metrics.Counter("edge_agent_policy_rejected_total", kRejectedHelp, {{"reason", reason}});
  }
  metrics.Gauge("edge_agent_policy_channel_connected", kConnectedHelp);
}

std::optional<ConsolePolicyAtStart> LoadConsolePolicyAtStart(ConsolePolicyState& state,
                                                             const cloudsync::VerifyKey& key) {
  auto stored = state.Load();
  if (!stored.ok()) {
    spdlog::error(
        "console policy: cannot read the stored console policy ({}); running the local "
        "policy file",
        stored.error());
    return std::nullopt;
  }
  if (!stored->has_value()) return std::nullopt;
  StoredConsolePolicy& p = **stored;
  const std::string source = SourceName(p.name, p.version);
  cloudsync::PolicyDocument doc;
  doc.name = p.name;
  doc.version = p.version;
  doc.seq = p.seq;
  doc.body = p.body;
  doc.signature = p.signature;
  if (Status s = cloudsync::VerifyDocument(key, doc); !s.ok()) {
    spdlog::error(
        "console policy: the stored {} does not verify with sync.policy_key ({}); running the "
        "local policy file",
        source, s.message());
    return std::nullopt;
  }
  auto parsed = rules::ParsePolicy(p.body, source);
  if (!parsed.ok()) {
    spdlog::error(
        "console policy: the stored {} no longer parses ({}); running the local policy "
        "file",
        source, parsed.error());
    return std::nullopt;
  }
  return ConsolePolicyAtStart{std::move(p), std::move(*parsed)};
}

ConsolePolicyJudge::ConsolePolicyJudge(const cloudsync::VerifyKey& key, ConsolePolicyState& state,
                                       Metrics& metrics, Clock& clock, Apply apply,
                                       std::optional<RunningConsolePolicy> running)
    : key_(key),
      state_(state),
      clock_(clock),
      apply_(std::move(apply)),
      running_(std::move(running)),
      version_(metrics.Gauge("edge_agent_policy_version", kVersionHelp)),
      applied_(metrics.Counter("edge_agent_policy_applied_total", kAppliedHelp)),
      metrics_(metrics) {
  RegisterConsolePolicyMetrics(metrics);
  version_.Set(running_ ? static_cast<double>(running_->version) : 0.0);
}

std::optional<std::pair<std::string, int64_t>> ConsolePolicyJudge::Applied() const {
  if (!running_) return std::nullopt;
  return std::make_pair(running_->name, running_->version);
}

cloudsync::PolicyReport ConsolePolicyJudge::Reject(const cloudsync::PolicyDocument& doc,
                                                   const char* reason, std::string detail) {
  metrics_.Counter("edge_agent_policy_rejected_total", kRejectedHelp, {{"reason", reason}}).Inc();
  spdlog::warn("console policy {} rejected ({}): {}; the running policy stays",
               SourceName(doc.name, doc.version), reason, detail);
  cloudsync::PolicyReport report;
  report.name = doc.name;
  report.version = doc.version;
  report.state = "rejected";
  report.reason = reason;
  report.detail = std::move(detail);
  return report;
}

cloudsync::PolicyReport ConsolePolicyJudge::Judge(const cloudsync::PolicyDocument& doc) {
  const std::string source = SourceName(doc.name, doc.version);
  if (Status s = cloudsync::VerifyDocument(key_, doc); !s.ok()) {
    return Reject(doc, "signature", s.message());
  }
  cloudsync::PolicyReport report;
  report.name = doc.name;
  report.version = doc.version;
  report.state = "applied";
  if (running_ && doc.name == running_->name && doc.version == running_->version) {
    // A console that lost its state, or a reconnect racing a release: nothing to do.
    spdlog::info("console policy {} already applied; nothing to do", source);
    return report;
  }
  // The fleet sequence orders every version of every policy: a correctly signed but older
  // document (a replay of a version this node ran before, or of another policy) is refused.
  if (running_ && doc.seq <= running_->seq) {
    return Reject(doc, "stale",
                  "sequence " + std::to_string(doc.seq) + " is not newer than " +
                      std::to_string(running_->seq) + " of " +
                      SourceName(running_->name, running_->version) + ", which runs");
  }
  auto parsed = rules::ParsePolicy(doc.body, source);
  if (!parsed.ok()) return Reject(doc, "invalid", parsed.error());

  StoredConsolePolicy stored;
  stored.name = doc.name;
  stored.version = doc.version;
  stored.body = doc.body;
  stored.signature = doc.signature;
  stored.applied_ms = clock_.WallMs();
  stored.seq = doc.seq;
  if (Status s = state_.Save(stored); !s.ok()) return Reject(doc, "store", s.message());

  const size_t rules = parsed->rules.size();
  apply_(std::move(*parsed), stored);
  running_ = RunningConsolePolicy{doc.name, doc.version, doc.seq};
  version_.Set(static_cast<double>(doc.version));
  applied_.Inc();
  spdlog::info("console policy {} applied: {} rule(s); the local policy file is no longer watched",
               source, rules);
  return report;
}

}  // namespace edge::agent
