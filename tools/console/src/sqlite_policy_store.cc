// SQLite adapter for PolicyStore: the policy channel's versions, node labels and rollout
// status, on a connection of its own (sqlite_db.h).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "edge/console/policy_store.h"
#include "sqlite_db.h"

namespace edge::console {
namespace {

// The policy channel's tables (docs/protocol.md, "Policy channel"). They are created with
// IF NOT EXISTS on a connection of their own and do not take part in the user_version
// migrations of the batch tables above.
constexpr const char* kPolicySchema = R"sql(
CREATE TABLE IF NOT EXISTS policy_versions (
  name          TEXT NOT NULL,
  version       INTEGER NOT NULL,
  body          TEXT NOT NULL,
  signature     TEXT NOT NULL,
  selector      TEXT NOT NULL,
  canary        TEXT NOT NULL,
  canary_wait_s INTEGER NOT NULL,
  created_ms    INTEGER NOT NULL,
  rollout       TEXT NOT NULL,
  seq           INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS policy_nodes (
  node       TEXT PRIMARY KEY NOT NULL,
  labels     TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_status (
  name            TEXT NOT NULL,
  node            TEXT NOT NULL,
  applied_version INTEGER NOT NULL,
  report_version  INTEGER NOT NULL,
  state           TEXT NOT NULL,
  reason          TEXT NOT NULL,
  detail          TEXT NOT NULL,
  updated_ms      INTEGER NOT NULL,
  PRIMARY KEY (name, node)
);
)sql";

// The stored names of the rollout states; the first is what an unknown name reads as.
constexpr std::pair<Rollout, const char*> kRolloutNames[] = {
    {Rollout::kReleased, "released"}, {Rollout::kCanary, "canary"}, {Rollout::kHalted, "halted"}};

Rollout ParseRollout(const std::string& text) {
  for (const auto& [rollout, name] : kRolloutNames) {
    if (text == name) return rollout;
  }
  return Rollout::kReleased;
}

// The labels of a stored node (a JSON object of strings); entries that are not strings are
// left out, and text that is not an object gives no labels.
Labels ParseLabels(const std::string& text) {
  Labels labels;
  const auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (!parsed.is_object()) return labels;
  for (const auto& [k, v] : parsed.items()) {
    if (v.is_string()) labels[k] = v.get<std::string>();
  }
  return labels;
}

// The row readers, one per row type: each reads the columns its query selects, in order.
PolicyVersion ReadVersion(sqlite3_stmt* stmt) {
  PolicyVersion v;
  std::string rollout;
  ReadColumns(stmt, v.name, v.version, v.body, v.signature, v.selector, v.canary, v.canary_wait_s,
              v.created_ms, rollout, v.seq);
  v.rollout = ParseRollout(rollout);
  return v;
}

PolicyNode ReadNode(sqlite3_stmt* stmt) {
  PolicyNode n;
  std::string labels;
  ReadColumns(stmt, n.node, labels, n.updated_ms);
  n.labels = ParseLabels(labels);
  return n;
}

PolicyNodeStatus ReadStatus(sqlite3_stmt* stmt) {
  PolicyNodeStatus st;
  ReadColumns(stmt, st.name, st.node, st.applied_version, st.report_version, st.state, st.reason,
              st.detail, st.updated_ms);
  return st;
}

class SqlitePolicyStore final : public PolicyStore, private SqliteConnection {
 public:
  explicit SqlitePolicyStore(DbPtr db) : SqliteConnection(std::move(db)) {}

  Status Init() {
    if (Result<std::string> mode = UseWalDurable(); !mode) return mode.status();
    if (Status s = Exec(kPolicySchema); !s) return s;
    // Tables created before versions carried a fleet sequence get the column (0: unsigned
    // under the current layout; PolicyService::Load signs them again).
    Result<std::string> has_seq =
        QueryText("SELECT count(*) FROM pragma_table_info('policy_versions') WHERE name = 'seq'");
    if (!has_seq) return has_seq.status();
    if (*has_seq == "0") {
      return Exec("ALTER TABLE policy_versions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0");
    }
    return Status::Ok();
  }

  Status AddVersion(const PolicyVersion& v) override {
    return Run(
        "INSERT INTO policy_versions (name, version, body, signature, selector, canary,"
        " canary_wait_s, created_ms, rollout, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
        "?10)",
        "storing " + v.name + " version " + std::to_string(v.version), v.name, v.version, v.body,
        v.signature, v.selector, v.canary, v.canary_wait_s, v.created_ms, RolloutName(v.rollout),
        v.seq);
  }

  Status SetSignature(const std::string& name, int64_t version, int64_t seq,
                      const std::string& signature) override {
    return Run(
        "UPDATE policy_versions SET seq = ?3, signature = ?4 WHERE name = ?1 AND version = ?2",
        "signing again " + name, name, version, seq, signature);
  }

  Status SetRollout(const std::string& name, int64_t version, Rollout rollout) override {
    return Run("UPDATE policy_versions SET rollout = ?3 WHERE name = ?1 AND version = ?2",
               "updating rollout of " + name, name, version, RolloutName(rollout));
  }

  Result<std::vector<PolicyVersion>> Versions() override {
    return QueryRows(
        "SELECT name, version, body, signature, selector, canary, canary_wait_s, created_ms,"
        " rollout, seq FROM policy_versions ORDER BY name, version",
        "reading policy versions", ReadVersion);
  }

  Status PutNode(const PolicyNode& node) override {
    const std::string labels =
        nlohmann::json(node.labels).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return Run(
        "INSERT INTO policy_nodes (node, labels, updated_ms) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (node) DO UPDATE SET labels = excluded.labels,"
        " updated_ms = excluded.updated_ms",
        "storing node " + node.node, node.node, labels, node.updated_ms);
  }

  Result<std::vector<PolicyNode>> Nodes() override {
    return QueryRows("SELECT node, labels, updated_ms FROM policy_nodes ORDER BY node",
                     "reading policy nodes", ReadNode);
  }

  Status PutStatus(const PolicyNodeStatus& st) override {
    return Run(
        "INSERT OR REPLACE INTO policy_status (name, node, applied_version, report_version,"
        " state, reason, detail, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        "storing status of " + st.node, st.name, st.node, st.applied_version, st.report_version,
        st.state, st.reason, st.detail, st.updated_ms);
  }

  Result<std::vector<PolicyNodeStatus>> Statuses() override {
    return QueryRows(
        "SELECT name, node, applied_version, report_version, state, reason, detail,"
        " updated_ms FROM policy_status ORDER BY name, node",
        "reading policy status", ReadStatus);
  }
};

}  // namespace

const char* RolloutName(Rollout rollout) {
  for (const auto& [listed, name] : kRolloutNames) {
    if (listed == rollout) return name;
  }
  return "released";
}

Result<std::unique_ptr<PolicyStore>> OpenSqlitePolicyStore(const std::string& path) {
  Result<DbPtr> db = OpenDb(path);
  if (!db) return db.status();
  auto store = std::make_unique<SqlitePolicyStore>(std::move(*db));
  if (Status s = store->Init(); !s) return Status::Error(path + ": " + s.message());
  return std::unique_ptr<PolicyStore>(std::move(store));
}

}  // namespace edge::console
