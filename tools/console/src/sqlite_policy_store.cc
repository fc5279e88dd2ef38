// SQLite adapter for PolicyStore: the policy channel's versions, node labels and rollout
// status, on a connection of its own (sqlite_db.h).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
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

Rollout ParseRollout(const std::string& text) {
  if (text == "canary") return Rollout::kCanary;
  if (text == "halted") return Rollout::kHalted;
  return Rollout::kReleased;
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
    StmtPtr stmt;
    if (Status s =
            Prepare("INSERT INTO policy_versions (name, version, body, signature, selector, canary,"
                    " canary_wait_s, created_ms, rollout, seq)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    &stmt);
        !s) {
      return s;
    }
    const std::string rollout = RolloutName(v.rollout);
    BindText(stmt.get(), 1, v.name);
    sqlite3_bind_int64(stmt.get(), 2, v.version);
    BindText(stmt.get(), 3, v.body);
    BindText(stmt.get(), 4, v.signature);
    BindText(stmt.get(), 5, v.selector);
    BindText(stmt.get(), 6, v.canary);
    sqlite3_bind_int64(stmt.get(), 7, v.canary_wait_s);
    sqlite3_bind_int64(stmt.get(), 8, v.created_ms);
    BindText(stmt.get(), 9, rollout);
    sqlite3_bind_int64(stmt.get(), 10, v.seq);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) {
      return DbError("storing " + v.name + " version " + std::to_string(v.version));
    }
    return Status::Ok();
  }

  Status SetSignature(const std::string& name, int64_t version, int64_t seq,
                      const std::string& signature) override {
    StmtPtr stmt;
    if (Status s = Prepare(
            "UPDATE policy_versions SET seq = ?3, signature = ?4 WHERE name = ?1 AND version = ?2",
            &stmt);
        !s) {
      return s;
    }
    BindText(stmt.get(), 1, name);
    sqlite3_bind_int64(stmt.get(), 2, version);
    sqlite3_bind_int64(stmt.get(), 3, seq);
    BindText(stmt.get(), 4, signature);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return DbError("signing again " + name);
    return Status::Ok();
  }

  Status SetRollout(const std::string& name, int64_t version, Rollout rollout) override {
    StmtPtr stmt;
    if (Status s = Prepare(
            "UPDATE policy_versions SET rollout = ?3 WHERE name = ?1 AND version = ?2", &stmt);
        !s) {
      return s;
    }
    const std::string text = RolloutName(rollout);
    BindText(stmt.get(), 1, name);
    sqlite3_bind_int64(stmt.get(), 2, version);
    BindText(stmt.get(), 3, text);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return DbError("updating rollout of " + name);
    return Status::Ok();
  }

  Result<std::vector<PolicyVersion>> Versions() override {
    StmtPtr stmt;
    if (Status s = Prepare(
            "SELECT name, version, body, signature, selector, canary, canary_wait_s, created_ms,"
            " rollout, seq FROM policy_versions ORDER BY name, version",
            &stmt);
        !s) {
      return s;
    }
    std::vector<PolicyVersion> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      PolicyVersion v;
      v.name = ColumnText(stmt.get(), 0);
      v.version = sqlite3_column_int64(stmt.get(), 1);
      v.body = ColumnText(stmt.get(), 2);
      v.signature = ColumnText(stmt.get(), 3);
      v.selector = ColumnText(stmt.get(), 4);
      v.canary = ColumnText(stmt.get(), 5);
      v.canary_wait_s = sqlite3_column_int64(stmt.get(), 6);
      v.created_ms = sqlite3_column_int64(stmt.get(), 7);
      v.rollout = ParseRollout(ColumnText(stmt.get(), 8));
      v.seq = sqlite3_column_int64(stmt.get(), 9);
      out.push_back(std::move(v));
    }
    if (rc != SQLITE_DONE) return DbError("reading policy versions");
    return out;
  }

  Status PutNode(const PolicyNode& node) override {
    StmtPtr stmt;
    if (Status s = Prepare("INSERT INTO policy_nodes (node, labels, updated_ms) VALUES (?1, ?2, ?3)"
                           " ON CONFLICT (node) DO UPDATE SET labels = excluded.labels,"
                           " updated_ms = excluded.updated_ms",
                           &stmt);
        !s) {
      return s;
    }
    const std::string labels =
        nlohmann::json(node.labels).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    BindText(stmt.get(), 1, node.node);
    BindText(stmt.get(), 2, labels);
    sqlite3_bind_int64(stmt.get(), 3, node.updated_ms);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return DbError("storing node " + node.node);
    return Status::Ok();
  }

  Result<std::vector<PolicyNode>> Nodes() override {
    StmtPtr stmt;
    if (Status s =
            Prepare("SELECT node, labels, updated_ms FROM policy_nodes ORDER BY node", &stmt);
        !s) {
      return s;
    }
    std::vector<PolicyNode> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      PolicyNode n;
      n.node = ColumnText(stmt.get(), 0);
      const auto labels = nlohmann::json::parse(ColumnText(stmt.get(), 1), nullptr, false);
      if (labels.is_object()) {
        for (const auto& [k, v] : labels.items()) {
          if (v.is_string()) n.labels[k] = v.get<std::string>();
        }
      }
      n.updated_ms = sqlite3_column_int64(stmt.get(), 2);
      out.push_back(std::move(n));
    }
    if (rc != SQLITE_DONE) return DbError("reading policy nodes");
    return out;
  }

  Status PutStatus(const PolicyNodeStatus& st) override {
    StmtPtr stmt;
    if (Status s = Prepare(
            "INSERT OR REPLACE INTO policy_status (name, node, applied_version, report_version,"
            " state, reason, detail, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &stmt);
        !s) {
      return s;
    }
    BindText(stmt.get(), 1, st.name);
    BindText(stmt.get(), 2, st.node);
    sqlite3_bind_int64(stmt.get(), 3, st.applied_version);
    sqlite3_bind_int64(stmt.get(), 4, st.report_version);
    BindText(stmt.get(), 5, st.state);
    BindText(stmt.get(), 6, st.reason);
    BindText(stmt.get(), 7, st.detail);
    sqlite3_bind_int64(stmt.get(), 8, st.updated_ms);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return DbError("storing status of " + st.node);
    return Status::Ok();
  }

  Result<std::vector<PolicyNodeStatus>> Statuses() override {
    StmtPtr stmt;
    if (Status s =
            Prepare("SELECT name, node, applied_version, report_version, state, reason, detail,"
                    " updated_ms FROM policy_status ORDER BY name, node",
                    &stmt);
        !s) {
      return s;
    }
    std::vector<PolicyNodeStatus> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      PolicyNodeStatus st;
      st.name = ColumnText(stmt.get(), 0);
      st.node = ColumnText(stmt.get(), 1);
      st.applied_version = sqlite3_column_int64(stmt.get(), 2);
      st.report_version = sqlite3_column_int64(stmt.get(), 3);
      st.state = ColumnText(stmt.get(), 4);
      st.reason = ColumnText(stmt.get(), 5);
      st.detail = ColumnText(stmt.get(), 6);
      st.updated_ms = sqlite3_column_int64(stmt.get(), 7);
      out.push_back(std::move(st));
    }
    if (rc != SQLITE_DONE) return DbError("reading policy status");
    return out;
  }
};

}  // namespace

const char* RolloutName(Rollout rollout) {
  switch (rollout) {
    case Rollout::kCanary:
      return "canary";
    case Rollout::kHalted:
      return "halted";
    case Rollout::kReleased:
      break;
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
