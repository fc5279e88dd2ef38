// SQLite adapter for ConsoleStore (the batch items, rollups and node activity); the SQLite
// helpers it shares with the policy store are in sqlite_db.h.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "edge/console/store.h"
#include "sqlite_db.h"

namespace edge::console {
namespace {

constexpr int kSchemaVersion = 3;

// Version 1: one table for every item kind (the alert columns are NULL for other kinds);
// the partial indexes serve GET /v1/alerts (ordered by ts_ms, id), optionally per node.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS items (
  id          TEXT PRIMARY KEY NOT NULL,
  node        TEXT NOT NULL,
  kind        TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  payload     TEXT NOT NULL,
  rule        TEXT,
  sensor      TEXT,
  severity    TEXT,
  state       TEXT,
  ts_ms       INTEGER
);
CREATE INDEX IF NOT EXISTS items_alerts_by_ts ON items (ts_ms, id) WHERE kind = 'alert';
CREATE INDEX IF NOT EXISTS items_alerts_by_node ON items (node, ts_ms, id) WHERE kind = 'alert';
CREATE TABLE IF NOT EXISTS nodes (
  node         TEXT PRIMARY KEY NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
)sql";

// Version 2: rollups in a table of their own (not in items), deduplicated by id and
// indexed for GET /v1/rollups; the latest status report per node.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS rollups (
  id          TEXT PRIMARY KEY NOT NULL,
  node        TEXT NOT NULL,
  sensor      TEXT NOT NULL,
  start_ms    INTEGER NOT NULL,
  end_ms      INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  min         REAL NOT NULL,
  max         REAL NOT NULL,
  mean        REAL NOT NULL,
  last        REAL NOT NULL,
  created_ms  INTEGER NOT NULL,
  received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rollups_by_start ON rollups (start_ms, id);
CREATE INDEX IF NOT EXISTS rollups_by_node ON rollups (node, sensor, start_ms, id);
ALTER TABLE nodes ADD COLUMN status TEXT;
ALTER TABLE nodes ADD COLUMN status_ms INTEGER;
)sql";

// Version 3: the bytes held per node (for the storage quota), kept up to date by every
// stored batch; filled from the items already held (rollups, whose payload is not kept, by
// their columns' text length plus a fixed estimate for the numbers).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE nodes ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE nodes SET stored_bytes =
  COALESCE((SELECT SUM(length(CAST(id AS BLOB)) + length(CAST(kind AS BLOB)) +
                       length(CAST(payload AS BLOB))) FROM items WHERE items.node = nodes.node), 0) +
  COALESCE((SELECT SUM(length(CAST(id AS BLOB)) + length(CAST(sensor AS BLOB)) + 120)
            FROM rollups WHERE rollups.node = nodes.node), 0);
)sql";

constexpr const char* kRollupColumns =
    "SELECT id, received_ms, node, sensor, start_ms, end_ms, count, min, max, mean, last "
    "FROM rollups ";

constexpr const char* kAlertColumns =
    "SELECT id, received_ms, node, rule, sensor, severity, state, ts_ms, payload FROM items ";

class SqliteConsoleStore final : public ConsoleStore, private SqliteConnection {
 public:
  SqliteConsoleStore(DbPtr db, StoreOptions options)
      : SqliteConnection(std::move(db)), options_(options) {}

  Status Init() {
    // WAL lets readers proceed during a write; synchronous=FULL makes every commit durable
    // before StoreBatch returns, which is what an ack promises.
    Result<std::string> mode = UseWalDurable();
    if (!mode) return mode.status();
    if (*mode != "wal") return Status::Error("cannot enable WAL (journal_mode is " + *mode + ")");
    Result<std::string> version = QueryText("PRAGMA user_version");
    if (!version) return version.status();
    if (std::stoi(*version) > kSchemaVersion) {
      return Status::Error("database schema version " + *version + " is newer than supported " +
                           std::to_string(kSchemaVersion));
    }
    // Creating and upgrading happen in one transaction: a crash leaves either version.
    if (Status s = Exec("BEGIN IMMEDIATE"); !s) return s;
    Status migrated = Exec(kSchema);
    if (migrated && std::stoi(*version) < 2) migrated = Exec(kSchemaV2);
    if (migrated && std::stoi(*version) < 3) migrated = Exec(kSchemaV3);
    if (migrated) migrated = Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    if (migrated) migrated = Exec("COMMIT");
    if (!migrated) {
      if (sqlite3_get_autocommit(db_.get()) == 0) (void)Exec("ROLLBACK");
      return migrated;
    }
    if (Status s = Prepare(
            "INSERT OR IGNORE INTO items (id, node, kind, created_ms, received_ms, payload, rule,"
            " sensor, severity, state, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
            "?11)",
            &insert_item_);
        !s) {
      return s;
    }
    if (Status s =
            Prepare("INSERT INTO nodes (node, last_seen_ms, stored_bytes) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (node) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,"
                    " stored_bytes = stored_bytes + excluded.stored_bytes",
                    &touch_node_);
        !s) {
      return s;
    }
    if (Status s = Prepare("SELECT stored_bytes FROM nodes WHERE node = ?1", &node_bytes_); !s) {
      return s;
    }
    if (Status s = Prepare(
            "INSERT OR IGNORE INTO rollups (id, node, sensor, start_ms, end_ms, count, min, max,"
            " mean, last, created_ms, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
            " ?10, ?11, ?12)",
            &insert_rollup_);
        !s) {
      return s;
    }
    return Status::Ok();
  }

  Result<StoreOutcome> StoreBatch(const Batch& batch, int64_t received_ms) override {
    if (Status s = Exec("BEGIN IMMEDIATE"); !s) return s;
    Result<StoreOutcome> outcome = InsertAll(batch, received_ms);
    if (outcome && outcome->over_quota) {
      // Nothing of the batch may stay: the caller refuses it as a whole.
      if (Status s = Exec("ROLLBACK"); !s) return s;
      StoreOutcome refused;
      refused.over_quota = true;
      refused.node_bytes = outcome->node_bytes;
      return refused;
    }
    if (!outcome) {
      // The transaction may already be gone (SQLite rolls back on some errors).
      if (sqlite3_get_autocommit(db_.get()) == 0) (void)Exec("ROLLBACK");
      return outcome;
    }
    if (Status s = Exec("COMMIT"); !s) {
      if (sqlite3_get_autocommit(db_.get()) == 0) (void)Exec("ROLLBACK");
      return s;
    }
    return outcome;
  }

  Result<std::vector<StoredAlert>> Alerts(const AlertQuery& query) override {
    std::string sql = std::string(kAlertColumns) + "WHERE kind = 'alert'";
    if (query.node) sql += " AND node = ?1";
    if (query.since_ms) sql += " AND ts_ms >= ?2";
    sql += " ORDER BY ts_ms, id LIMIT ?3";
    return QueryRows(sql, "reading alerts", ReadAlert, query.node, query.since_ms, query.limit);
  }

  Result<std::vector<StoredAlert>> LatestAlerts(int64_t limit) override {
    return QueryRows(
        std::string(kAlertColumns) + "WHERE kind = 'alert' ORDER BY ts_ms DESC, id DESC LIMIT ?1",
        "reading alerts", ReadAlert, limit);
  }

  Result<std::vector<StoredRollup>> Rollups(const RollupQuery& query) override {
    std::string sql = std::string(kRollupColumns) + "WHERE 1";
    if (query.node) sql += " AND node = ?1";
    if (query.sensor) sql += " AND sensor = ?2";
    if (query.since_ms) sql += " AND start_ms >= ?3";
    sql += " ORDER BY start_ms, id LIMIT ?4";
    return QueryRows(sql, "reading rollups", ReadRollup, query.node, query.sensor, query.since_ms,
                     query.limit);
  }

  Status StoreStatus(const std::string& node, int64_t received_ms,
                     const std::string& status_json) override {
    return Run(
        "INSERT INTO nodes (node, last_seen_ms, status, status_ms) VALUES (?1, ?2, ?3, ?2)"
        " ON CONFLICT (node) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,"
        " status = excluded.status, status_ms = excluded.status_ms",
        "storing status of " + node, node, received_ms, status_json);
  }

  Result<std::vector<NodeActivity>> Activity() override {
    std::map<std::string, NodeActivity> by_node;
    StmtPtr seen;
    if (Status s = Prepare("SELECT node, last_seen_ms, status, status_ms FROM nodes", &seen); !s) {
      return s;
    }
    int rc;
    while ((rc = sqlite3_step(seen.get())) == SQLITE_ROW) {
      NodeActivity& a = by_node[ColumnText(seen.get(), 0)];
      a.last_seen_ms = sqlite3_column_int64(seen.get(), 1);
      if (sqlite3_column_type(seen.get(), 3) != SQLITE_NULL) {
        a.status_ms = sqlite3_column_int64(seen.get(), 3);
        a.status_json = ColumnText(seen.get(), 2);
      }
    }
    if (rc != SQLITE_DONE) return DbError("reading nodes");
    StmtPtr counts;
    if (Status s =
            Prepare("SELECT node, COUNT(*) FROM items WHERE kind = 'alert' GROUP BY node", &counts);
        !s) {
      return s;
    }
    while ((rc = sqlite3_step(counts.get())) == SQLITE_ROW) {
      by_node[ColumnText(counts.get(), 0)].alerts = sqlite3_column_int64(counts.get(), 1);
    }
    if (rc != SQLITE_DONE) return DbError("counting alerts");
    std::vector<NodeActivity> out;
    out.reserve(by_node.size());
    for (auto& [node, activity] : by_node) {
      activity.node = node;
      out.push_back(std::move(activity));
    }
    return out;
  }

 private:
  Result<int64_t> NodeBytes(const std::string& node) {
    sqlite3_stmt* stmt = node_bytes_.get();
    sqlite3_reset(stmt);
    BindText(stmt, 1, node);
    const int rc = sqlite3_step(stmt);
    const int64_t bytes = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return DbError("reading stored bytes of " + node);
    return bytes;
  }

  Result<StoreOutcome> InsertAll(const Batch& batch, int64_t received_ms) {
    StoreOutcome outcome;
    Result<int64_t> held = NodeBytes(batch.node);
    if (!held) return held.status();
    int64_t added = 0;
    std::unordered_set<std::string_view> seen_in_batch;
    sqlite3_stmt* stmt = insert_item_.get();
    for (size_t i = 0; i < batch.items.size(); ++i) {
      const BatchItem& item = batch.items[i];
      if (item.rollup) {
        Result<bool> stored = InsertRollup(batch.node, item, received_ms);
        if (!stored) return stored.status();
        if (*stored) {
          ++outcome.accepted;
          ++outcome.new_rollups;
          added += QuotaBytes(item);
        } else {
          ++outcome.duplicates;
        }
        if (seen_in_batch.insert(item.id).second) outcome.acked.push_back(item.id);
        continue;
      }
      sqlite3_reset(stmt);
      sqlite3_clear_bindings(stmt);
      BindAll(stmt, item.id, batch.node, item.kind, item.created_ms, received_ms,
              item.payload_json);
      if (const auto& a = item.alert) {
        BindFrom(stmt, 7, a->rule, a->sensor, a->severity, a->state, a->ts_ms);
      }
      const int rc = sqlite3_step(stmt);
      if (rc != SQLITE_DONE) return DbError("storing item " + item.id);
      if (sqlite3_changes(db_.get()) == 1) {
        ++outcome.accepted;
        added += QuotaBytes(item);
        if (item.alert) outcome.new_alert_items.push_back(i);
      } else {
        ++outcome.duplicates;
      }
      if (seen_in_batch.insert(item.id).second) outcome.acked.push_back(item.id);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    outcome.node_bytes = *held + added;
    if (options_.node_quota_bytes > 0 && added > 0 &&
        outcome.node_bytes > options_.node_quota_bytes) {
      outcome.over_quota = true;
      return outcome;
    }

    sqlite3_stmt* touch = touch_node_.get();
    sqlite3_reset(touch);
    BindAll(touch, batch.node, received_ms, added);
    const int rc = sqlite3_step(touch);
    sqlite3_reset(touch);
    if (rc != SQLITE_DONE) return DbError("updating node last_seen_ms");
    return outcome;
  }

  // True when the rollup was new, false when its id was already held.
  Result<bool> InsertRollup(const std::string& node, const BatchItem& item, int64_t received_ms) {
    sqlite3_stmt* stmt = insert_rollup_.get();
    const RollupFields& r = *item.rollup;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    BindAll(stmt, item.id, node, r.sensor, r.start_ms, r.end_ms, r.count, r.min, r.max, r.mean,
            r.last, item.created_ms, received_ms);
    if (sqlite3_step(stmt) != SQLITE_DONE) return DbError("storing rollup " + item.id);
    const bool stored = sqlite3_changes(db_.get()) == 1;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stored;
  }

  static StoredAlert ReadAlert(sqlite3_stmt* stmt) {
    StoredAlert a;
    ReadColumns(stmt, a.id, a.received_ms, a.node, a.fields.rule, a.fields.sensor,
                a.fields.severity, a.fields.state, a.fields.ts_ms, a.payload_json);
    return a;
  }

  static StoredRollup ReadRollup(sqlite3_stmt* stmt) {
    StoredRollup r;
    ReadColumns(stmt, r.id, r.received_ms, r.node, r.fields.sensor, r.fields.start_ms,
                r.fields.end_ms, r.fields.count, r.fields.min, r.fields.max, r.fields.mean,
                r.fields.last);
    return r;
  }

  // Statements are members of this class, destroyed before the connection it derives from.
  StoreOptions options_;
  StmtPtr insert_item_;
  StmtPtr touch_node_;
  StmtPtr insert_rollup_;
  StmtPtr node_bytes_;
};

}  // namespace

int64_t QuotaBytes(const BatchItem& item) {
  return static_cast<int64_t>(item.id.size() + item.kind.size() + item.payload_json.size());
}

Result<std::unique_ptr<ConsoleStore>> OpenSqliteConsoleStore(const std::string& path,
                                                             StoreOptions options) {
  Result<DbPtr> db = OpenDb(path);
  if (!db) return db.status();
  auto store = std::make_unique<SqliteConsoleStore>(std::move(*db), options);
  if (Status s = store->Init(); !s) return Status::Error(path + ": " + s.message());
  return std::unique_ptr<ConsoleStore>(std::move(store));
}

}  // namespace edge::console
