#pragma once

// Console policies on the agent (docs/protocol.md, "Policy channel"; docs/policy.md,
// "Console policies"): the judge that decides what to do with each signed version the
// console sends, and the start-up choice between the persisted console policy and the
// local file.
//
// The judge checks, in this order, stopping at the first failure (reported, counted in
// edge_agent_policy_rejected_total{reason}, the running policy stays):
//   1. the Ed25519 signature (over name, version, fleet sequence and body) with
//      sync.policy_key; an unsigned document fails here       -> "signature"
//   2. name and version equal to the console policy running: a replay, answered "applied"
//      without applying anything
//   3. the fleet sequence against the running console policy's (persisted): not above it
//      is "stale", whatever the name
//   4. rules::ParsePolicy(body, "console:<name>@<version>") -> "invalid" (file:line:col)
//   5. persisting the document (ConsolePolicyState::Save)   -> "store"
// and then swaps the policy in through `apply` and answers "applied".
//
// Threading: a judge is used by one thread (the agent's network thread); Applied() too.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "edge/agent/store.h"
#include "edge/cloudsync/policy_message.h"
#include "edge/common/clock.h"
#include "edge/common/metrics.h"
#include "edge/common/status.h"
#include "edge/rules/policy.h"

namespace edge::agent {

// Where console policies are kept. The agent's implementation is its SQLite database
// (StoreConsolePolicyState); tests use a fake. Each call is all or nothing.
class ConsolePolicyState {
 public:
  virtual ~ConsolePolicyState() = default;
  // The console policy in force, if any.
  virtual Result<std::optional<StoredConsolePolicy>> Load() = 0;
  // Makes `policy` the one in force (durably).
  virtual Status Save(const StoredConsolePolicy& policy) = 0;
};

// Over the network thread's read connection; `reader` must outlive the result.
std::unique_ptr<ConsolePolicyState> StoreConsolePolicyState(StoreReader& reader);

// The agent's policy metrics, registered together so that they exist from start even
// with the channel off:
//   edge_agent_policy_version               gauge: console version in force, 0 = local file
//   edge_agent_policy_rejected_total{reason} signature, stale, invalid, store
//   edge_agent_policy_applied_total         console versions swapped in (not replays)
//   edge_agent_policy_channel_connected     gauge, set by the channel (0 here)
void RegisterConsolePolicyMetrics(Metrics& metrics);

// Which console policy runs: the judge's notion of "current" (step 2 and 3 above).
struct RunningConsolePolicy {
  std::string name;
  int64_t version = 0;
  int64_t seq = 0;
};

// A persisted console policy fit to run at start.
struct ConsolePolicyAtStart {
  StoredConsolePolicy stored;
  rules::Policy policy;
};

// The persisted console policy when there is one, its signature still verifies with `key`
// and its body still parses; otherwise nullopt, and the agent runs its local file (a
// stored policy that fails either check, or a database that cannot be read, is logged as
// an error).
std::optional<ConsolePolicyAtStart> LoadConsolePolicyAtStart(ConsolePolicyState& state,
                                                             const cloudsync::VerifyKey& key);

class ConsolePolicyJudge {
 public:
  // Swaps a judged policy in (the runtime hands it to Pipeline::SetPolicy, as a local
  // reload, and stops watching the local file). Called on the judge's thread after the
  // document was persisted; must not block.
  using Apply = std::function<void(rules::Policy, const StoredConsolePolicy&)>;

  // `key`, `state`, `metrics` and `clock` are borrowed and must outlive the judge.
  // `running` is the console policy the agent started with (LoadConsolePolicyAtStart), or
  // nullopt when it runs its local file (then any correctly signed version is applied).
  ConsolePolicyJudge(const cloudsync::VerifyKey& key, ConsolePolicyState& state, Metrics& metrics,
                     Clock& clock, Apply apply,
                     std::optional<RunningConsolePolicy> running = std::nullopt);

  cloudsync::PolicyReport Judge(const cloudsync::PolicyDocument& doc);

  // The console policy in force (name, version), for the channel's hello; nullopt while
  // the local file runs.
  std::optional<std::pair<std::string, int64_t>> Applied() const;

 private:
  cloudsync::PolicyReport Reject(const cloudsync::PolicyDocument& doc, const char* reason,
                                 std::string detail);

  const cloudsync::VerifyKey& key_;
  ConsolePolicyState& state_;
  Clock& clock_;
  Apply apply_;
  std::optional<RunningConsolePolicy> running_;
  GaugeHandle& version_;
  CounterHandle& applied_;
  Metrics& metrics_;
};

}  // namespace edge::agent
