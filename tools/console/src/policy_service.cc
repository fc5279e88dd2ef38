#include "edge/console/policy_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "edge/rules/policy.h"

namespace edge::console {
namespace {

constexpr int64_t kMaxCanaryWaitS = 7 * 24 * 3600;

cloudsync::PolicyDocument DocumentOf(const PolicyVersion& v) {
  return cloudsync::PolicyDocument{v.name, v.version, v.seq, v.body, v.signature, v.created_ms};
}

CreateOutcome Fail(int status, std::string error) {
  CreateOutcome out;
  out.status = status;
  out.error = std::move(error);
  return out;
}

}  // namespace

PolicyService::PolicyService(PolicyStore& store, const Clock& clock, Log& log,
                             const cloudsync::SigningKey* signing_key)
    : store_(store), clock_(clock), log_(log), signing_key_(signing_key) {}

Status PolicyService::Load() {
  Result<std::vector<PolicyVersion>> versions = store_.Versions();
  if (!versions) return versions.status();
  if (Status s = SignUnsequenced(*versions); !s) return s;
  for (PolicyVersion& v : *versions) {
    Result<Selector> selector = Selector::Parse(v.selector);
    if (!selector) {
      return Status::Error("stored policy " + v.name + " version " + std::to_string(v.version) +
                           ": " + selector.error());
    }
    std::optional<Selector> canary;
    if (!v.canary.empty()) {
      Result<Selector> parsed = Selector::Parse(v.canary);
      if (!parsed) return Status::Error("stored policy " + v.name + ": " + parsed.error());
      canary = std::move(*parsed);
    }
    const std::string name = v.name;
    policies_[name].push_back(VersionEntry{std::move(v), std::move(*selector), std::move(canary)});
  }
  Result<std::vector<PolicyNode>> nodes = store_.Nodes();
  if (!nodes) return nodes.status();
  for (PolicyNode& n : *nodes) nodes_[n.node] = std::move(n);
  Result<std::vector<PolicyNodeStatus>> statuses = store_.Statuses();
  if (!statuses) return statuses.status();
  for (PolicyNodeStatus& st : *statuses) status_[{st.name, st.node}] = std::move(st);
  return Status::Ok();
}

Status PolicyService::SignUnsequenced(std::vector<PolicyVersion>& versions) {
  std::vector<PolicyVersion*> unsequenced;
  for (PolicyVersion& v : versions) {
    last_seq_ = std::max(last_seq_, v.seq);
    if (v.seq == 0) unsequenced.push_back(&v);
  }
  if (unsequenced.empty()) return Status::Ok();
  if (signing_key_ == nullptr) {
    log_.Write(LogLevel::kWarn,
               "policy versions stored without a fleet sequence cannot be signed again without "
               "a signing key; agents refuse them until they are",
               {{"versions", static_cast<int64_t>(unsequenced.size())}});
    return Status::Ok();
  }
  // In creation order, so that the sequence orders them as their creation did.
  std::stable_sort(
      unsequenced.begin(), unsequenced.end(),
      [](const PolicyVersion* a, const PolicyVersion* b) { return a->created_ms < b->created_ms; });
  for (PolicyVersion* v : unsequenced) {
    cloudsync::PolicyDocument doc{v->name, v->version, NextSeq(v->created_ms),
                                  v->body, "",         v->created_ms};
    if (Status s = cloudsync::SignDocument(*signing_key_, doc); !s) return s;
    if (Status s = store_.SetSignature(v->name, v->version, doc.seq, doc.signature); !s) {
      return s;
    }
    v->seq = doc.seq;
    v->signature = doc.signature;
  }
  log_.Write(LogLevel::kInfo, "policy versions signed again with a fleet sequence",
             {{"versions", static_cast<int64_t>(unsequenced.size())}});
  return Status::Ok();
}

int64_t PolicyService::NextSeq(int64_t created_ms) {
  // Above every earlier sequence, and at least the creation time: a console whose database
  // was lost or restored from an old backup still issues sequences above what its agents run
  // (unless its clock went back).
  last_seq_ = std::max(last_seq_ + 1, created_ms);
  return last_seq_;
}

CreateOutcome PolicyService::Push(const std::string& name, const PushRequest& request) {
  if (!cloudsync::IsValidPolicyName(name)) {
    return Fail(400, "policy name must be 1 to 64 of [A-Za-z0-9_.-]");
  }
  if (signing_key_ == nullptr) {
    return Fail(503, "no signing key configured (start the console with --signing-key)");
  }
  if (request.body.empty()) return Fail(400, "\"body\" is empty");
  if (request.body.size() > cloudsync::kMaxPolicyBodyBytes) {
    return Fail(400, "\"body\" is larger than 1 MiB");
  }
  Result<Selector> selector = Selector::Parse(request.selector);
  if (!selector) return Fail(400, "selector: " + selector.error());
  std::optional<Selector> canary;
  if (!request.canary.empty()) {
    Result<Selector> parsed = Selector::Parse(request.canary);
    if (!parsed) return Fail(400, "canary: " + parsed.error());
    canary = std::move(*parsed);
  }
  if (request.canary_wait_s < 0 || request.canary_wait_s > kMaxCanaryWaitS) {
    return Fail(400, "\"canary_wait_s\" must be between 0 and 604800");
  }
  const auto it = policies_.find(name);
  const int64_t version = it == policies_.end() ? 1 : it->second.back().v.version + 1;
  if (!request.skip_validation) {
    const std::string source = "console:" + name + "@" + std::to_string(version);
    Result<rules::Policy> parsed = rules::ParsePolicy(request.body, source);
    if (!parsed) return Fail(400, parsed.error());
  }
  if (canary) {
    const bool any = std::any_of(nodes_.begin(), nodes_.end(), [&](const auto& entry) {
      return selector->Matches(entry.second.labels) && canary->Matches(entry.second.labels);
    });
    if (!any) return Fail(400, "no known node matches both the selector and the canary");
  }
  PolicyVersion v;
  v.name = name;
  v.version = version;
  v.body = request.body;
  v.selector = selector->ToString();
  v.canary = canary ? canary->ToString() : std::string();
  v.canary_wait_s = request.canary_wait_s;
  v.rollout = canary ? Rollout::kCanary : Rollout::kReleased;
  return Create(std::move(v), std::move(*selector), std::move(canary));
}

CreateOutcome PolicyService::Rollback(const std::string& name, int64_t to) {
  const auto it = policies_.find(name);
  if (it == policies_.end()) return Fail(404, "no policy named \"" + name + "\"");
  const VersionEntry* target = Find(name, to);
  if (target == nullptr) {
    return Fail(400, "policy \"" + name + "\" has no version " + std::to_string(to) +
                         " (latest is " + std::to_string(it->second.back().v.version) + ")");
  }
  if (signing_key_ == nullptr) {
    return Fail(503, "no signing key configured (start the console with --signing-key)");
  }
  const VersionEntry& latest = it->second.back();
  PolicyVersion v;
  v.name = name;
  v.version = latest.v.version + 1;
  v.body = target->v.body;
  v.selector = latest.v.selector;
  v.rollout = Rollout::kReleased;
  Selector selector = latest.selector;
  return Create(std::move(v), std::move(selector), std::nullopt);
}

CreateOutcome PolicyService::Create(PolicyVersion version, Selector selector,
                                    std::optional<Selector> canary) {
  version.created_ms = clock_.WallMs();
  const int64_t previous_seq = last_seq_;
  cloudsync::PolicyDocument doc;
  doc.name = version.name;
  doc.version = version.version;
  doc.seq = NextSeq(version.created_ms);
  doc.body = version.body;
  doc.created_ms = version.created_ms;
  version.seq = doc.seq;
  if (Status s = cloudsync::SignDocument(*signing_key_, doc); !s) {
    last_seq_ = previous_seq;
    log_.Write(LogLevel::kError, "signing policy failed",
               {{"policy", version.name}, {"error", s.message()}});
    return Fail(500, "signing failed: " + s.message());
  }
  version.signature = doc.signature;
  if (Status s = store_.AddVersion(version); !s) {
    last_seq_ = previous_seq;
    log_.Write(LogLevel::kError, "storing policy failed",
               {{"policy", version.name}, {"error", s.message()}});
    return Fail(503, "store unavailable, retry later");
  }
  ++versions_created_;
  CreateOutcome out;
  out.name = version.name;
  out.version = version.version;
  out.seq = version.seq;
  out.signature = version.signature;
  out.rollout = version.rollout;
  log_.Write(LogLevel::kInfo, "policy version created",
             {{"policy", version.name},
              {"version", version.version},
              {"selector", version.selector},
              {"canary", version.canary},
              {"rollout", std::string(RolloutName(version.rollout))}});
  const std::string name = version.name;
  policies_[name].push_back(
      VersionEntry{std::move(version), std::move(selector), std::move(canary)});
  for (const auto& [node, info] : nodes_) {
    const VersionEntry* released = ReleasedVersion(name, info.labels);
    if (released != nullptr && released->v.version == out.version) out.targets.push_back(node);
  }
  Redistribute();
  return out;
}

std::vector<PolicySummary> PolicyService::List() const {
  std::vector<PolicySummary> out;
  for (const auto& [name, versions] : policies_) {
    const PolicyVersion& v = versions.back().v;
    out.push_back(PolicySummary{name, v.version, v.selector, v.canary, v.rollout, v.created_ms});
  }
  return out;
}

std::optional<PolicyView> PolicyService::Describe(const std::string& name) const {
  const auto it = policies_.find(name);
  if (it == policies_.end()) return std::nullopt;
  PolicyView view;
  for (auto v = it->second.rbegin(); v != it->second.rend(); ++v) view.versions.push_back(v->v);
  for (const auto& [node, info] : nodes_) {
    const VersionEntry* chosen = Chosen(info.labels);
    const bool gets_this = chosen != nullptr && chosen->v.name == name;
    const auto st = status_.find({name, node});
    if (!gets_this && st == status_.end()) continue;
    NodePolicyView n;
    n.node = node;
    n.labels = info.labels;
    n.connected = NodeConnected(node);
    n.released_version = gets_this ? chosen->v.version : 0;
    n.updated_ms = info.updated_ms;
    if (st != status_.end()) {
      n.applied_version = st->second.applied_version;
      n.updated_ms = std::max(n.updated_ms, st->second.updated_ms);
      if (st->second.state == "rejected" &&
          (!gets_this || st->second.report_version == n.released_version)) {
        n.reason = st->second.reason;
        n.detail = st->second.detail;
      }
    }
    if (gets_this && n.applied_version == n.released_version) {
      n.state = "applied";
    } else if (!n.reason.empty() ||
               (st != status_.end() && st->second.state == "rejected" &&
                (!gets_this || st->second.report_version == n.released_version))) {
      n.state = "rejected";
    } else if (!gets_this && st != status_.end()) {
      n.state = st->second.state;
    } else {
      n.state = "pending";
    }
    view.nodes.push_back(std::move(n));
  }
  return view;
}

void PolicyService::RememberNode(const cloudsync::PolicyHello& hello) {
  PolicyNode& node = nodes_[hello.node];
  const bool changed = node.node.empty() || node.labels != hello.labels;
  node.node = hello.node;
  node.labels = hello.labels;
  node.updated_ms = clock_.WallMs();
  if (changed) {
    if (Status s = store_.PutNode(node); !s) {
      log_.Write(LogLevel::kError, "storing node labels failed",
                 {{"node", hello.node}, {"error", s.message()}});
    }
  }
  // A node that says it runs a version we hold has applied it, even if its report was lost
  // (or this console lost its state).
  if (hello.applied && Find(hello.applied->first, hello.applied->second) != nullptr) {
    PolicyNodeStatus& st = status_[{hello.applied->first, hello.node}];
    if (st.applied_version < hello.applied->second) {
      st.name = hello.applied->first;
      st.node = hello.node;
      st.applied_version = hello.applied->second;
      st.report_version = hello.applied->second;
      st.state = "applied";
      st.reason.clear();
      st.detail.clear();
      st.updated_ms = clock_.WallMs();
      if (Status s = store_.PutStatus(st); !s) {
        log_.Write(LogLevel::kError, "storing policy status failed",
                   {{"node", hello.node}, {"error", s.message()}});
      }
    }
  }
}

void PolicyService::Connect(ChannelPeer& peer, const cloudsync::PolicyHello& hello) {
  RememberNode(hello);
  PeerState& state = peers_[&peer];
  state.node = hello.node;
  state.current = hello.applied;
  log_.Write(LogLevel::kInfo, "policy channel open", {{"node", hello.node}});
  SendIfNew(peer, state);
}

void PolicyService::Disconnect(ChannelPeer& peer) {
  const auto it = peers_.find(&peer);
  if (it == peers_.end()) return;
  log_.Write(LogLevel::kInfo, "policy channel closed", {{"node", it->second.node}});
  peers_.erase(it);
}

std::optional<cloudsync::PolicyDocument> PolicyService::Poll(const cloudsync::PolicyHello& hello) {
  RememberNode(hello);
  const VersionEntry* chosen = Chosen(hello.labels);
  if (chosen == nullptr) return std::nullopt;
  if (hello.applied && hello.applied->first == chosen->v.name &&
      hello.applied->second == chosen->v.version) {
    return std::nullopt;
  }
  return DocumentOf(chosen->v);
}

void PolicyService::Report(const std::string& node, const cloudsync::PolicyReport& report) {
  const bool applied = report.state == "applied";
  ++reports_[applied ? "applied" : "rejected"];
  log_.Write(applied ? LogLevel::kInfo : LogLevel::kWarn, "policy report",
             {{"node", node},
              {"policy", report.name},
              {"version", report.version},
              {"state", report.state},
              {"reason", report.reason},
              {"detail", report.detail}});
  const auto policy = policies_.find(report.name);
  if (policy == policies_.end() || Find(report.name, report.version) == nullptr) return;
  PolicyNodeStatus& st = status_[{report.name, node}];
  st.name = report.name;
  st.node = node;
  if (applied) st.applied_version = std::max(st.applied_version, report.version);
  st.report_version = report.version;
  st.state = applied ? "applied" : "rejected";
  st.reason = report.reason;
  st.detail = report.detail.substr(0, 1024);
  st.updated_ms = clock_.WallMs();
  if (Status s = store_.PutStatus(st); !s) {
    log_.Write(LogLevel::kError, "storing policy status failed",
               {{"node", node}, {"error", s.message()}});
  }
  for (auto& [peer, state] : peers_) {
    if (state.node == node && applied) state.current = {report.name, report.version};
  }

  VersionEntry& latest = policy->second.back();
  if (!applied && latest.v.rollout == Rollout::kCanary && latest.v.version == report.version) {
    const auto known = nodes_.find(node);
    if (known != nodes_.end() && latest.selector.Matches(known->second.labels) && latest.canary &&
        latest.canary->Matches(known->second.labels)) {
      log_.Write(LogLevel::kWarn, "canary rejected the version, rollout halted",
                 {{"policy", report.name}, {"version", report.version}, {"node", node}});
      SetRollout(latest, Rollout::kHalted);
    }
  }
  if (applied) Tick();
}

void PolicyService::Tick() {
  const int64_t now = clock_.WallMs();
  bool promoted = false;
  for (auto& [name, versions] : policies_) {
    VersionEntry& latest = versions.back();
    if (latest.v.rollout != Rollout::kCanary || !latest.canary) continue;
    if (now - latest.v.created_ms < latest.v.canary_wait_s * 1000) continue;
    size_t canaries = 0;
    bool all_applied = true;
    for (const auto& [node, info] : nodes_) {
      if (!latest.selector.Matches(info.labels) || !latest.canary->Matches(info.labels)) continue;
      ++canaries;
      const auto st = status_.find({name, node});
      if (st == status_.end() || st->second.applied_version < latest.v.version) {
        all_applied = false;
        break;
      }
    }
    if (canaries == 0 || !all_applied) continue;
    log_.Write(LogLevel::kInfo, "canaries applied, version released",
               {{"policy", name}, {"version", latest.v.version}});
    SetRollout(latest, Rollout::kReleased);
    promoted = promoted || latest.v.rollout == Rollout::kReleased;
  }
  if (promoted) Redistribute();
}

void PolicyService::SetRollout(VersionEntry& entry, Rollout rollout) {
  if (Status s = store_.SetRollout(entry.v.name, entry.v.version, rollout); !s) {
    // Memory follows the store, so the next tick retries.
    log_.Write(LogLevel::kError, "storing rollout state failed",
               {{"policy", entry.v.name}, {"error", s.message()}});
    return;
  }
  entry.v.rollout = rollout;
}

std::optional<std::pair<std::string, int64_t>> PolicyService::ReleasedTo(
    const Labels& labels) const {
  const VersionEntry* chosen = Chosen(labels);
  if (chosen == nullptr) return std::nullopt;
  return std::make_pair(chosen->v.name, chosen->v.version);
}

const PolicyService::VersionEntry* PolicyService::ReleasedVersion(const std::string& name,
                                                                  const Labels& labels) const {
  const auto it = policies_.find(name);
  if (it == policies_.end()) return nullptr;
  for (auto v = it->second.rbegin(); v != it->second.rend(); ++v) {
    if (!v->selector.Matches(labels)) continue;
    // A canary or halted version has reached the nodes of its canary selector only.
    if (v->v.rollout == Rollout::kReleased || (v->canary && v->canary->Matches(labels))) {
      return &*v;
    }
  }
  return nullptr;
}

const PolicyService::VersionEntry* PolicyService::Chosen(const Labels& labels) const {
  const VersionEntry* best = nullptr;
  for (const auto& [name, versions] : policies_) {
    const VersionEntry* released = ReleasedVersion(name, labels);
    if (released == nullptr) continue;
    // policies_ is ordered by name, so on equal created_ms the first (smaller) name stays.
    if (best == nullptr || released->v.created_ms > best->v.created_ms) best = released;
  }
  return best;
}

const PolicyService::VersionEntry* PolicyService::Find(const std::string& name,
                                                       int64_t version) const {
  const auto it = policies_.find(name);
  if (it == policies_.end()) return nullptr;
  for (const VersionEntry& v : it->second) {
    if (v.v.version == version) return &v;
  }
  return nullptr;
}

void PolicyService::Redistribute() {
  // SendIfNew may close a peer whose queue overflows; that only marks it, and OnClose
  // comes later from the event loop, so iterating here is safe.
  for (auto& [peer, state] : peers_) SendIfNew(*peer, state);
}

void PolicyService::SendIfNew(ChannelPeer& peer, PeerState& state) {
  const auto node = nodes_.find(state.node);
  if (node == nodes_.end()) return;
  const VersionEntry* chosen = Chosen(node->second.labels);
  if (chosen == nullptr) return;
  const std::pair<std::string, int64_t> id{chosen->v.name, chosen->v.version};
  if (state.current == id) return;
  state.current = id;
  peer.Send(cloudsync::EncodePolicyDocument(DocumentOf(chosen->v)));
  log_.Write(LogLevel::kInfo, "policy sent",
             {{"node", state.node}, {"policy", id.first}, {"version", id.second}});
}

bool PolicyService::NodeConnected(const std::string& node) const {
  return std::any_of(peers_.begin(), peers_.end(),
                     [&](const auto& entry) { return entry.second.node == node; });
}

std::string PolicyService::MetricsText() const {
  const auto count = [this](const char* state) {
    const auto it = reports_.find(state);
    return it == reports_.end() ? int64_t{0} : it->second;
  };
  std::string text;
  text += "# HELP edge_console_policy_channels Open policy channels (WebSocket, after hello)\n";
  text += "# TYPE edge_console_policy_channels gauge\n";
  text += "edge_console_policy_channels " + std::to_string(channels()) + "\n";
  text += "# HELP edge_console_policy_reports_total Policy reports received, by state\n";
  text += "# TYPE edge_console_policy_reports_total counter\n";
  for (const char* state : {"applied", "rejected"}) {
    text += "edge_console_policy_reports_total{state=\"" + std::string(state) + "\"} " +
            std::to_string(count(state)) + "\n";
  }
  text += "# HELP edge_console_policy_versions_total Policy versions created (push, rollback)\n";
  text += "# TYPE edge_console_policy_versions_total counter\n";
  text += "edge_console_policy_versions_total " + std::to_string(versions_created_) + "\n";
  return text;
}

}  // namespace edge::console
