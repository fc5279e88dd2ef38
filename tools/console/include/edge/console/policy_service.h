#pragma once

// The policy channel's core (docs/protocol.md, "Policy channel"): creates and signs
// versions, runs the rollout state machine (released / canary / halted), decides which
// version each node gets and pushes it to connected channels, and records what nodes
// report. No sockets and no JSON: the HTTP and WebSocket glue is PolicyApi.
//
// Time comes from the injected Clock (wall time, because created_ms is persisted);
// promotion happens in Tick(), which the owner calls about once a second.
//
// Not thread-safe: one owner (the console's event-loop thread). Borrows the store, clock,
// log and signing key; they must outlive the service.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edge/cloudsync/policy_message.h"
#include "edge/common/clock.h"
#include "edge/common/status.h"
#include "edge/console/http.h"
#include "edge/console/log.h"
#include "edge/console/policy_store.h"
#include "edge/console/selector.h"

namespace edge::console {

struct PushRequest {
  std::string body;
  std::string selector = "all";
  std::string canary;  // empty: no canary
  int64_t canary_wait_s = 60;
  bool skip_validation = false;
};

// The answer to a push or rollback: status 201 with the new version, or an HTTP error
// status (400, 404, 503, ...) with `error`.
struct CreateOutcome {
  int status = 201;
  std::string error;
  std::string name;
  int64_t version = 0;
  int64_t seq = 0;  // fleet sequence (docs/protocol.md, "Signatures")
  std::string signature;
  Rollout rollout = Rollout::kReleased;
  std::vector<std::string> targets;  // known nodes this version is released to now
};

struct PolicySummary {
  std::string name;
  int64_t version = 0;  // the latest
  std::string selector;
  std::string canary;
  Rollout rollout = Rollout::kReleased;
  int64_t created_ms = 0;
};

struct NodePolicyView {
  std::string node;
  Labels labels;
  bool connected = false;
  int64_t released_version = 0;  // 0: this policy is not what the node gets
  int64_t applied_version = 0;   // 0: never applied
  std::string state;             // "pending", "applied" or "rejected"
  std::string reason;
  std::string detail;
  int64_t updated_ms = 0;
};

struct PolicyView {
  std::vector<PolicyVersion> versions;  // newest first
  std::vector<NodePolicyView> nodes;    // by node
};

class PolicyService {
 public:
  // `signing_key` may be null: pushes and rollbacks are then refused with 503.
  PolicyService(PolicyStore& store, const Clock& clock, Log& log,
                const cloudsync::SigningKey* signing_key);

  // Reads the store. Call once before anything else.
  Status Load();

  CreateOutcome Push(const std::string& name, const PushRequest& request);
  // A new version with the body of version `to` and the selector of the latest version,
  // released at once.
  CreateOutcome Rollback(const std::string& name, int64_t to);

  std::vector<PolicySummary> List() const;
  std::optional<PolicyView> Describe(const std::string& name) const;

  // A channel said hello (already checked against the token). Records the node's labels
  // and sends the version released to it unless hello.applied names it.
  void Connect(ChannelPeer& peer, const cloudsync::PolicyHello& hello);
  void Disconnect(ChannelPeer& peer);
  // The polling form of hello: the document to answer with, or nullopt (204).
  std::optional<cloudsync::PolicyDocument> Poll(const cloudsync::PolicyHello& hello);
  // A node judged a version.
  void Report(const std::string& node, const cloudsync::PolicyReport& report);
  // Promotes canary versions whose canaries all applied and whose wait has passed.
  void Tick();

  // The version released to a node with these labels: (name, version), or nullopt.
  std::optional<std::pair<std::string, int64_t>> ReleasedTo(const Labels& labels) const;

  // Prometheus text of the policy metrics.
  std::string MetricsText() const;
  int64_t channels() const { return static_cast<int64_t>(peers_.size()); }

 private:
  struct VersionEntry {
    PolicyVersion v;
    Selector selector;
    std::optional<Selector> canary;
  };
  struct PeerState {
    std::string node;
    // What the node runs or was last sent: (name, version).
    std::optional<std::pair<std::string, int64_t>> current;
  };

  CreateOutcome Create(PolicyVersion version, Selector selector, std::optional<Selector> canary);
  void RememberNode(const cloudsync::PolicyHello& hello);
  const VersionEntry* ReleasedVersion(const std::string& name, const Labels& labels) const;
  const VersionEntry* Chosen(const Labels& labels) const;
  // Gives versions stored before fleet sequences existed a sequence and a new signature.
  Status SignUnsequenced(std::vector<PolicyVersion>& versions);
  int64_t NextSeq(int64_t created_ms);
  const VersionEntry* Find(const std::string& name, int64_t version) const;
  // Sends every connected node the version now released to it, if it differs from what
  // it runs or was sent.
  void Redistribute();
  void SendIfNew(ChannelPeer& peer, PeerState& state);
  void SetRollout(VersionEntry& entry, Rollout rollout);
  bool NodeConnected(const std::string& node) const;

  PolicyStore& store_;
  const Clock& clock_;
  Log& log_;
  const cloudsync::SigningKey* signing_key_;
  std::map<std::string, std::vector<VersionEntry>> policies_;               // versions ascending
  std::map<std::string, PolicyNode> nodes_;                                 // nodes that said hello
  std::map<std::pair<std::string, std::string>, PolicyNodeStatus> status_;  // (name, node)
  std::map<ChannelPeer*, PeerState> peers_;
  std::map<std::string, int64_t> reports_;  // by state
  int64_t versions_created_ = 0;
  int64_t last_seq_ = 0;  // highest fleet sequence of any version held
};

}  // namespace edge::console
