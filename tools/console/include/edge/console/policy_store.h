#pragma once

// Durable state of the policy channel (docs/protocol.md, "Policy channel"): every policy
// version ever created, the labels of the nodes that said hello, and what each node last
// reported per policy. Versions are never deleted, so a version number is never reused.
//
// Not thread-safe: one owner (the console's event-loop thread) calls it.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge/common/status.h"
#include "edge/console/selector.h"

namespace edge::console {

enum class Rollout { kReleased, kCanary, kHalted };

// "released", "canary", "halted".
const char* RolloutName(Rollout rollout);

struct PolicyVersion {
  std::string name;
  int64_t version = 0;
  std::string body;
  std::string signature;  // base64 Ed25519 signature (docs/protocol.md, "Signatures")
  std::string selector;   // selector text as given (parsed again when loaded)
  std::string canary;     // empty: no canary
  int64_t canary_wait_s = 60;
  int64_t created_ms = 0;  // console wall clock
  Rollout rollout = Rollout::kReleased;
  // Fleet sequence (docs/protocol.md, "Signatures"): above every earlier version's of any
  // policy; 0 for a version stored before sequences existed (signed again at load).
  int64_t seq = 0;
};

struct PolicyNode {
  std::string node;
  Labels labels;
  int64_t updated_ms = 0;  // when the labels were last received
};

// The latest report of one node for one policy.
struct PolicyNodeStatus {
  std::string name;
  std::string node;
  int64_t applied_version = 0;  // highest version reported applied; 0 if none
  int64_t report_version = 0;   // version of the latest report
  std::string state;            // state of the latest report: "applied" or "rejected"
  std::string reason;
  std::string detail;
  int64_t updated_ms = 0;
};

class PolicyStore {
 public:
  virtual ~PolicyStore() = default;

  // Inserts a new version; fails (and stores nothing) if (name, version) already exists.
  virtual Status AddVersion(const PolicyVersion& version) = 0;
  virtual Status SetRollout(const std::string& name, int64_t version, Rollout rollout) = 0;
  // Replaces the sequence and signature of a stored version (signing old versions again).
  virtual Status SetSignature(const std::string& name, int64_t version, int64_t seq,
                              const std::string& signature) = 0;
  // Every version of every policy, by name then version.
  virtual Result<std::vector<PolicyVersion>> Versions() = 0;

  virtual Status PutNode(const PolicyNode& node) = 0;
  virtual Result<std::vector<PolicyNode>> Nodes() = 0;

  virtual Status PutStatus(const PolicyNodeStatus& status) = 0;
  virtual Result<std::vector<PolicyNodeStatus>> Statuses() = 0;
};

// Opens (creating if needed) the policy tables in the SQLite database at `path` (the
// console's database; its own connection, WAL, synchronous=FULL).
Result<std::unique_ptr<PolicyStore>> OpenSqlitePolicyStore(const std::string& path);

}  // namespace edge::console
