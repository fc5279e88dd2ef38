#include "store/schema.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <unordered_map>
#include <vector>

#include "store/block_builder.h"
#include "store/sqlite_util.h"

namespace edge::agent::store_impl {
namespace {

constexpr int kSchemaVersion = 7;
// Rows of an old `readings` table converted per chunk when a version 2 or 3 database opens.
constexpr int64_t kMigrateChunkRows = 262'144;

// Version 1: meta, outbox. Version 2 adds the per-kind outbox counters (kept by a delete
// trigger, and by StoreWriter::AppendOnce for inserts, once per kind and commit),
// the dead-letter table, the readings ring and its sensors, and scalar counters. Version 3
// adds the console policy in force (one row) and the highest version applied per policy
// name; both are new tables, so nothing is migrated. Version 4 stores the readings ring in
// blocks (reading_blocks, reading_journal; StoreWriter's "Readings ring" comment) instead of
// one row per reading; the rows of a version 2 or 3 `readings` table are converted.
// Version 5 adds the fleet sequence to the console policy. Version 6 adds mqtt_delivered
// (one row: the QoS 1/2 messages of the last readings commit, mqtt_delivery.h); new, so
// nothing is migrated. Version 7 adds `format` to reading_blocks and reading_journal
// (reading_block.h: the rows before are kDouble, 0; new rows are written in kDecimal).

constexpr const char* kSchema =
    R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  kind       TEXT    NOT NULL,
  priority   INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  payload    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_priority ON outbox (priority DESC, seq);
CREATE TABLE IF NOT EXISTS outbox_kinds (
  kind          TEXT PRIMARY KEY,
  rows          INTEGER NOT NULL DEFAULT 0,
  bytes         INTEGER NOT NULL DEFAULT 0,
  evicted       INTEGER NOT NULL DEFAULT 0,
  dead_lettered INTEGER NOT NULL DEFAULT 0
);
DROP TRIGGER IF EXISTS outbox_counted_insert;
CREATE TRIGGER IF NOT EXISTS outbox_counted_delete AFTER DELETE ON outbox BEGIN
  UPDATE outbox_kinds SET rows = rows - 1, bytes = bytes - )sql" EDGE_ROW_COST("OLD") R"sql(
  WHERE kind = OLD.kind;
END;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters(name, value) VALUES
  ('dead_letter_rows', 0), ('dead_letter_bytes', 0), ('dead_letter_evicted', 0),
  ('readings_rows', 0), ('readings_pruned', 0), ('readings_bytes', 0);
CREATE TABLE IF NOT EXISTS dead_letter (
  seq        INTEGER PRIMARY KEY,
  kind       TEXT    NOT NULL,
  priority   INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  payload    TEXT    NOT NULL,
  reason     TEXT    NOT NULL,
  dead_ms    INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS dead_letter_counted_insert AFTER INSERT ON dead_letter BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'dead_letter_rows';
  UPDATE counters SET value = value + )sql" EDGE_ROW_COST("NEW") R"sql(
  WHERE name = 'dead_letter_bytes';
END;
CREATE TRIGGER IF NOT EXISTS dead_letter_counted_delete AFTER DELETE ON dead_letter BEGIN
  UPDATE counters SET value = value - 1 WHERE name = 'dead_letter_rows';
  UPDATE counters SET value = value - )sql" EDGE_ROW_COST("OLD") R"sql(
  WHERE name = 'dead_letter_bytes';
END;
CREATE TABLE IF NOT EXISTS sensors (
  id              INTEGER PRIMARY KEY,
  name            TEXT    NOT NULL UNIQUE,
  flushed_journal INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS reading_blocks (
  seq           INTEGER PRIMARY KEY,
  sensor        INTEGER NOT NULL,
  min_ts        INTEGER NOT NULL,
  max_ts        INTEGER NOT NULL,
  n             INTEGER NOT NULL,
  data          BLOB    NOT NULL,
  format        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reading_blocks_by_sensor ON reading_blocks (sensor, max_ts);
CREATE TABLE IF NOT EXISTS reading_journal (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  n      INTEGER NOT NULL,
  data   BLOB    NOT NULL,
  format INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS mqtt_delivered (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  data BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_episodes (
  rule       TEXT    NOT NULL,
  sensor     TEXT    NOT NULL,
  started_ms INTEGER NOT NULL,
  last_ts_ms INTEGER NOT NULL,
  last_value REAL    NOT NULL,
  PRIMARY KEY (rule, sensor)
);
CREATE TABLE IF NOT EXISTS console_policy (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  name       TEXT    NOT NULL,
  version    INTEGER NOT NULL,
  body       TEXT    NOT NULL,
  signature  TEXT    NOT NULL,
  applied_ms INTEGER NOT NULL,
  seq        INTEGER NOT NULL DEFAULT 0
);
)sql";

// Counters of a version 1 database, whose outbox had no triggers yet.
constexpr const char* kBackfillV1 =
    "INSERT OR REPLACE INTO outbox_kinds(kind, rows, bytes) "
    "SELECT kind, count(*), total(" EDGE_ROW_COST("outbox") ") FROM outbox GROUP BY kind";

#undef EDGE_ROW_COST

std::string NewEpoch() {
  std::random_device rd;
  uint64_t v = (uint64_t{rd()} << 32) ^ uint64_t { rd() };
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Converts the one-row-per-reading ring of schema 2 and 3 into blocks (arrival order is
// kept chunk by chunk) and drops its table. Inside InitSchema's transaction.
Status MigrateReadingRows(sqlite3* db) {
  auto exists =
      QueryInt(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'readings'");
  if (!exists.ok()) return exists.status();
  if (*exists == 0) return Status::Ok();
  Stmt sel(db, "SELECT seq, sensor, ts_ms, value FROM readings WHERE seq > ? ORDER BY seq LIMIT ?");
  Stmt ins(db, kInsertBlock);
  if (!sel.ok() || !ins.ok()) {
    return SqliteError(db, sel.ok() ? ins.rc() : sel.rc(), "prepare migration");
  }
  int64_t after = -1;
  int64_t bytes = 0;
  int64_t converted = 0;
  for (;;) {
    std::vector<int64_t> order;  // sensors by first appearance in the chunk
    std::unordered_map<int64_t, std::vector<BlockBuilder>> blocks;
    sqlite3_stmt* q = sel.fresh();
    sqlite3_bind_int64(q, 1, after);
    sqlite3_bind_int64(q, 2, kMigrateChunkRows);
    int rc;
    int64_t rows = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
      after = sqlite3_column_int64(q, 0);
      const int64_t sensor = sqlite3_column_int64(q, 1);
      auto& list = blocks[sensor];
      if (list.empty()) order.push_back(sensor);
      if (list.empty() || list.back().n >= 64) list.emplace_back();
      list.back().Add(sqlite3_column_int64(q, 2), sqlite3_column_double(q, 3));
      ++rows;
    }
    if (rc != SQLITE_DONE) return SqliteError(db, rc, "migrate readings");
    if (rows == 0) break;
    converted += rows;
    for (int64_t sensor : order) {
      for (const BlockBuilder& b : blocks[sensor]) {
        if (int step = InsertBlock(ins.get(), sensor, b); step != SQLITE_DONE) {
          return SqliteError(db, step, "migrate readings");
        }
        bytes += static_cast<int64_t>(b.data.size()) + kReadingBlockOverhead;
      }
    }
  }
  const std::string sql =
      "DROP TABLE readings; UPDATE counters SET value = " + std::to_string(bytes) +
      " WHERE name = 'readings_bytes'; UPDATE counters SET value = " + std::to_string(converted) +
      " WHERE name = 'readings_rows'";
  if (Status s = Exec(db, sql.c_str()); !s) return s;
  spdlog::info("store: converted {} readings of the ring to blocks", converted);
  return Status::Ok();
}

Status Configure(sqlite3* db, int busy_timeout_ms, int64_t max_pages) {
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  // WAL: the reader and the writer do not block each other. synchronous=FULL by default: a
  // committed alert survives power loss, not only a process crash. Readings commits lower
  // it per transaction (StoreWriter::AppendReadings).
  if (Status s = Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s) return s;
  // Deleted rows are zeroed only where that costs no extra write (FAST). Debian builds
  // SQLite with secure_delete on, which rewrote every page freed by the readings journal,
  // the ring's pruning and the outbox's deletions: a quarter of what the agent wrote
  // (docs/performance.md, "Flash wear"). Deleted content may stay in free pages of the file
  // until they are reused (docs/operations.md).
  if (Status s = Exec(db, "PRAGMA secure_delete=FAST;"); !s) return s;
  // The writer's checkpoint thread copies the log into the database every
  // StoreWriter::kCheckpointIntervalMs, which keeps the log small next to a nearly full disk;
  // a connection checkpoints on its own only past 16 MiB of log (a backstop). A log grown
  // larger than 4 MiB is cut back to that after a checkpoint.
  if (Status s = Exec(db, "PRAGMA wal_autocheckpoint=4096; PRAGMA journal_size_limit=4194304;");
      !s) {
    return s;
  }
  if (max_pages > 0) {
    const std::string pragma = "PRAGMA max_page_count=" + std::to_string(max_pages);
    if (Status s = Exec(db, pragma.c_str()); !s) return s;
  }
  return Status::Ok();
}

// Creates or upgrades the schema and returns the epoch; one transaction.
Status InitSchema(sqlite3* db, std::string* epoch) {
  Transaction txn(db);
  if (!txn.begin_status()) return txn.begin_status();
  if (Status s = Exec(db, kSchema); !s) return s.Annotate("create schema: ");
  auto existing = ReadMeta(db, "epoch");
  if (!existing.ok()) return existing.status();
  auto version = ReadMeta(db, "schema_version");
  if (!version.ok()) return version.status();
  if (existing->empty()) {
    *epoch = NewEpoch();
    std::string sql = "INSERT INTO meta(key, value) VALUES ('epoch', '" + *epoch + "')";
    if (Status s = Exec(db, sql.c_str()); !s) return s.Annotate("write meta: ");
  } else {
    *epoch = *existing;
    // A file of a newer agent (a rollback): its rows may be in forms this one cannot read
    // (schema 7's decimal values), and rewriting its version would hide that.
    if (const int v = std::atoi(version->c_str()); v > kSchemaVersion) {
      return Status::WithCode(Status::Code::kInvalidArgument,
                              "the database's schema version " + *version +
                                  " is newer than this agent's (" + std::to_string(kSchemaVersion) +
                                  "): run the newer edge-agent again, or move the file aside");
    }
    if (*version == "1") {
      if (Status s = Exec(db, kBackfillV1); !s) return s.Annotate("upgrade schema: ");
    }
    if (*version == "2" || *version == "3") {
      if (Status s = Exec(db,
                          "ALTER TABLE sensors ADD COLUMN flushed_journal INTEGER NOT NULL "
                          "DEFAULT 0");
          !s) {
        return s.Annotate("upgrade schema: ");
      }
      if (Status s = MigrateReadingRows(db); !s) return s.Annotate("upgrade schema: ");
    }
    // Before version 7 the ring's rows had no `format`: their values are kDouble (0).
    for (const char* table : {"reading_blocks", "reading_journal"}) {
      auto has_format = HasColumn(db, table, "format");
      if (!has_format.ok()) return has_format.status().Annotate("upgrade schema: ");
      if (*has_format) continue;
      const std::string sql =
          std::string("ALTER TABLE ") + table + " ADD COLUMN format INTEGER NOT NULL DEFAULT 0";
      if (Status s = Exec(db, sql.c_str()); !s) return s.Annotate("upgrade schema: ");
    }
    // Before version 5 the console policy carried no fleet sequence (docs/protocol.md,
    // "Signatures"); such a row no longer verifies and the console sends the policy again.
    if (*version == "1" || *version == "2" || *version == "3" || *version == "4") {
      auto has_seq = HasColumn(db, "console_policy", "seq");
      if (!has_seq.ok()) return has_seq.status().Annotate("upgrade schema: ");
      if (!*has_seq) {
        if (Status s = Exec(db,
                            "ALTER TABLE console_policy ADD COLUMN seq INTEGER NOT NULL "
                            "DEFAULT 0; DROP TABLE IF EXISTS policy_versions");
            !s) {
          return s.Annotate("upgrade schema: ");
        }
      }
    }
  }
  if (*version != std::to_string(kSchemaVersion)) {
    std::string sql = "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '" +
                      std::to_string(kSchemaVersion) + "')";
    if (Status s = Exec(db, sql.c_str()); !s) return s.Annotate("write meta: ");
  }
  if (Status s = txn.Commit(); !s) return s.Annotate("commit schema: ");
  return Status::Ok();
}

}  // namespace

Result<sqlite3*> OpenConnection(const StoreOptions& options, bool create) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(options.path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status failed = SqliteError(db, rc, "open " + options.path);
    sqlite3_close(db);
    return failed;
  }
  if (Status s = Configure(db, options.busy_timeout_ms, options.max_pages); !s) {
    sqlite3_close(db);
    return s;
  }
  return db;
}

Result<sqlite3*> OpenAndInit(const StoreOptions& options, std::string* epoch) {
  auto opened = OpenConnection(options, /*create=*/true);
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  // The failure keeps its code: StoreWriter::Open moves a file aside only for corruption.
  auto fail = [&](Status failed) -> Result<sqlite3*> {
    sqlite3_close(db);
    return failed;
  };
  {
    Stmt check(db, "PRAGMA quick_check");
    if (!check.ok()) return fail(SqliteError(db, check.rc(), "quick_check"));
    int step = sqlite3_step(check.get());
    if (step != SQLITE_ROW) return fail(SqliteError(db, step, "quick_check"));
    std::string verdict = ColumnText(check.get(), 0);
    if (verdict != "ok") {
      return fail(Status::WithCode(Status::Code::kCorruption, "quick_check: " + verdict));
    }
  }
  if (Status s = InitSchema(db, epoch); !s) return fail(s);
  return db;
}

}  // namespace edge::agent::store_impl
