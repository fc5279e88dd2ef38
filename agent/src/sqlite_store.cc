// The only file that includes sqlite3.h.
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_set>

#include "edge/agent/store.h"

namespace edge::agent {
namespace {

constexpr int kSchemaVersion = 3;
// The sensor-id cache of the writer is cleared when it grows past this (ids come from
// untrusted topics).
constexpr size_t kMaxCachedSensors = 65536;

// Version 1: meta, outbox. Version 2 adds the per-kind outbox counters (kept by a delete
// trigger, and by StoreWriter::AppendOnce for inserts, once per kind and commit),
// the dead-letter table, the readings ring and its sensors, and scalar counters. Version 3
// adds the console policy in force (one row) and the highest version applied per policy
// name; both are new tables, so nothing is migrated.
//
// The logical cost of an outbox or dead-letter row is its payload and kind bytes plus
// kOutboxRowOverhead (48); the triggers and the eviction code use the same expression.
#define EDGE_ROW_COST(r) \
  "(length(CAST(" r ".payload AS BLOB)) + length(CAST(" r ".kind AS BLOB)) + 48)"

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
  ('readings_rows', 0), ('readings_pruned', 0);
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
CREATE TABLE IF NOT EXISTS sensors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS readings (
  seq    INTEGER PRIMARY KEY,
  sensor INTEGER NOT NULL,
  ts_ms  INTEGER NOT NULL,
  value  REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_by_sensor ON readings (sensor, ts_ms);
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
  applied_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
  name    TEXT PRIMARY KEY,
  version INTEGER NOT NULL
);
)sql";

// Counters of a version 1 database, whose outbox had no triggers yet.
constexpr const char* kBackfillV1 =
    "INSERT OR REPLACE INTO outbox_kinds(kind, rows, bytes) "
    "SELECT kind, count(*), total(" EDGE_ROW_COST("outbox") ") FROM outbox GROUP BY kind";

constexpr const char* kSelectEvictable =
    "SELECT seq, kind, " EDGE_ROW_COST("outbox") " FROM outbox WHERE priority = ? ORDER BY seq";

constexpr const char* kSelectDeadLetterOldest =
    "SELECT seq, " EDGE_ROW_COST("dead_letter") " FROM dead_letter ORDER BY dead_ms, seq";

#undef EDGE_ROW_COST

std::string Describe(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return msg;
}

bool IsFull(int rc) { return (rc & 0xff) == SQLITE_FULL; }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// RAII prepared statement.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  int rc() const { return rc_; }
  sqlite3_stmt* get() { return stmt_; }
  // Ready for new bindings.
  sqlite3_stmt* fresh() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return stmt_;
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_MISUSE;
};

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p != nullptr ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i)))
                      : std::string();
}

// Exec that also reports the result code (to tell SQLITE_FULL apart).
Status Exec(sqlite3* db, const char* sql, int* rc_out = nullptr) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc_out != nullptr) *rc_out = rc;
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status::Error(msg);
  }
  return Status::Ok();
}

std::string NewEpoch() {
  std::random_device rd;
  uint64_t v = (uint64_t{rd()} << 32) ^ uint64_t { rd() };
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Result<std::string> ReadMeta(sqlite3* db, const char* key) {
  Stmt s(db, "SELECT value FROM meta WHERE key = ?");
  if (!s.ok()) return Status::Error(Describe(db, s.rc(), "read meta"));
  sqlite3_bind_text(s.get(), 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return ColumnText(s.get(), 0);
  if (rc == SQLITE_DONE) return std::string();
  return Status::Error(Describe(db, rc, "read meta"));
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql) {
  Stmt s(db, sql);
  if (!s.ok()) return Status::Error(Describe(db, s.rc(), sql));
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return sqlite3_column_int64(s.get(), 0);
  if (rc == SQLITE_DONE) return int64_t{0};
  return Status::Error(Describe(db, rc, sql));
}

Status Configure(sqlite3* db, int busy_timeout_ms, int64_t max_pages) {
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  // WAL: the reader and the writer do not block each other. synchronous=FULL by default: a
  // committed alert survives power loss, not only a process crash. Readings commits lower
  // it per transaction (StoreWriter::AppendReadings).
  if (Status s = Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s) return s;
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
  if (Status s = Exec(db, "BEGIN IMMEDIATE"); !s) return s;
  auto fail = [&](std::string msg) {
    (void)Exec(db, "ROLLBACK");
    return Status::Error(std::move(msg));
  };
  if (Status s = Exec(db, kSchema); !s) return fail("create schema: " + s.message());
  auto existing = ReadMeta(db, "epoch");
  if (!existing.ok()) return fail(existing.error());
  auto version = ReadMeta(db, "schema_version");
  if (!version.ok()) return fail(version.error());
  if (existing->empty()) {
    *epoch = NewEpoch();
    std::string sql = "INSERT INTO meta(key, value) VALUES ('epoch', '" + *epoch + "')";
    if (Status s = Exec(db, sql.c_str()); !s) return fail("write meta: " + s.message());
  } else {
    *epoch = *existing;
    if (*version == "1") {
      if (Status s = Exec(db, kBackfillV1); !s) return fail("upgrade schema: " + s.message());
    }
  }
  if (*version != std::to_string(kSchemaVersion)) {
    std::string sql = "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '" +
                      std::to_string(kSchemaVersion) + "')";
    if (Status s = Exec(db, sql.c_str()); !s) return fail("write meta: " + s.message());
  }
  if (Status s = Exec(db, "COMMIT"); !s) return fail("commit schema: " + s.message());
  return Status::Ok();
}

// Opens and fully initializes the writer's connection; any failure here means the file is
// unusable as our database.
Result<sqlite3*> OpenAndInit(const StoreOptions& options, std::string* epoch) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = Describe(db, rc, "open " + options.path);
    sqlite3_close(db);
    return Status::Error(msg);
  }
  auto fail = [&](std::string msg) -> Result<sqlite3*> {
    sqlite3_close(db);
    return Status::Error(std::move(msg));
  };
  if (Status s = Configure(db, options.busy_timeout_ms, options.max_pages); !s) {
    return fail(s.message());
  }
  {
    Stmt check(db, "PRAGMA quick_check");
    if (!check.ok()) return fail(Describe(db, check.rc(), "quick_check"));
    int step = sqlite3_step(check.get());
    if (step != SQLITE_ROW) return fail(Describe(db, step, "quick_check"));
    std::string verdict = ColumnText(check.get(), 0);
    if (verdict != "ok") return fail("quick_check: " + verdict);
  }
  if (Status s = InitSchema(db, epoch); !s) return fail(s.message());
  return db;
}

void RemoveQuietly(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

}  // namespace

int64_t StoreOptions::outbox_budget() const {
  if (max_bytes <= 0) return 0;
  return std::max<int64_t>(1, max_bytes - readings_budget());
}

int64_t StoreOptions::readings_budget() const {
  if (max_bytes <= 0) return 0;
  const double share = std::clamp(readings_share, 0.0, 0.95);
  return static_cast<int64_t>(static_cast<double>(max_bytes) * share);
}

int64_t StoreOptions::dead_letter_budget() const {
  if (max_bytes <= 0) return 0;
  return std::max<int64_t>(1, outbox_budget() / 10);
}

int64_t StoreStats::alerts_evicted() const {
  auto it = outbox.find("alert");
  return it == outbox.end() ? 0 : it->second.evicted;
}

int64_t Evictions::total() const {
  int64_t n = 0;
  for (const auto& [kind, count] : by_kind) n += count;
  return n;
}

std::string RecordId(std::string_view node, std::string_view epoch, int64_t seq) {
  std::string id;
  id.reserve(node.size() + epoch.size() + 22);
  id.append(node).append(":").append(epoch).append(":").append(std::to_string(seq));
  return id;
}

// ---------------------------------------------------------------------------------------
// StoreWriter

// Statements of the hot paths, prepared once per connection.
struct StoreWriter::Statements {
  explicit Statements(sqlite3* db)
      : insert_outbox(db,
                      "INSERT INTO outbox(kind, priority, created_ms, payload) "
                      "VALUES (?, ?, ?, ?)"),
        insert_reading(db, "INSERT INTO readings(sensor, ts_ms, value) VALUES (?, ?, ?)"),
        insert_sensor(db, "INSERT OR IGNORE INTO sensors(name) VALUES (?)"),
        select_sensor(db, "SELECT id FROM sensors WHERE name = ?"),
        outbox_bytes(db, "SELECT total(bytes) FROM outbox_kinds"),
        select_evictable(db, kSelectEvictable),
        delete_outbox(db, "DELETE FROM outbox WHERE seq = ?"),
        count_evicted(db, "UPDATE outbox_kinds SET evicted = evicted + ? WHERE kind = ?"),
        count_inserted(db,
                       "INSERT INTO outbox_kinds(kind, rows, bytes) VALUES (?, ?, ?) "
                       "ON CONFLICT(kind) DO UPDATE SET rows = rows + excluded.rows, "
                       "bytes = bytes + excluded.bytes"),
        first_kept(db, "SELECT seq FROM readings WHERE ts_ms >= ? ORDER BY seq LIMIT 1"),
        nth_reading(db, "SELECT seq FROM readings ORDER BY seq LIMIT 1 OFFSET ?"),
        delete_readings_before(db, "DELETE FROM readings WHERE seq < ?"),
        delete_all_readings(db, "DELETE FROM readings"),
        add_counter(db, "UPDATE counters SET value = value + ? WHERE name = ?") {}

  bool ok() const {
    for (const Stmt* s :
         {&insert_outbox, &insert_reading, &insert_sensor, &select_sensor, &outbox_bytes,
          &select_evictable, &delete_outbox, &count_evicted, &count_inserted, &first_kept,
          &nth_reading, &delete_readings_before, &delete_all_readings, &add_counter}) {
      if (!s->ok()) return false;
    }
    return true;
  }

  Stmt insert_outbox;
  Stmt insert_reading;
  Stmt insert_sensor;
  Stmt select_sensor;
  Stmt outbox_bytes;
  Stmt select_evictable;
  Stmt delete_outbox;
  Stmt count_evicted;
  Stmt count_inserted;
  Stmt first_kept;
  Stmt nth_reading;
  Stmt delete_readings_before;
  Stmt delete_all_readings;
  Stmt add_counter;
};

StoreWriter::StoreWriter(sqlite3* db, std::string epoch, StoreOptions options)
    : db_(db),
      epoch_(std::move(epoch)),
      options_(std::move(options)),
      stmts_(std::make_unique<Statements>(db)) {}

// Runs PASSIVE checkpoints on a connection of its own, every kCheckpointIntervalMs. A
// passive checkpoint never takes the write lock: writers go on while it copies the log into
// the database. It syncs the log before copying, which is what makes the readings' NORMAL
// commits durable within about one interval, and the database after.
class StoreWriter::Checkpointer {
 public:
  static std::unique_ptr<Checkpointer> Start(const StoreOptions& options) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc == SQLITE_OK) {
      sqlite3_busy_timeout(db, options.busy_timeout_ms);
      rc = sqlite3_exec(db, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
    }
    if (rc != SQLITE_OK) {
      spdlog::warn("store: no checkpoint thread ({}); the connections checkpoint themselves",
                   Describe(db, rc, "open " + options.path));
      sqlite3_close(db);
      return nullptr;
    }
    return std::unique_ptr<Checkpointer>(new Checkpointer(db));
  }

  ~Checkpointer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    sqlite3_close(db_);
  }

 private:
  explicit Checkpointer(sqlite3* db) : db_(db), thread_([this] { Run(); }) {}

  void Run() {
    bool failing = false;
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(kCheckpointIntervalMs),
                         [this] { return stop_; })) {
      lock.unlock();
      const int rc =
          sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      // BUSY: another checkpoint is running (a backstop or a log restart); next time then.
      const bool failed = rc != SQLITE_OK && rc != SQLITE_BUSY;
      if (failed && !failing) {
        spdlog::warn("store: checkpoint failed: {}", Describe(db_, rc, "checkpoint"));
      }
      failing = failed;
      lock.lock();
    }
  }

  sqlite3* db_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;  // last: starts after everything it uses
};

StoreWriter::~StoreWriter() {
  checkpointer_.reset();  // its last checkpoint before the writer's connection closes
  stmts_.reset();         // statements before their connection
  sqlite3_close(db_);
}

Result<std::unique_ptr<StoreWriter>> StoreWriter::Open(const StoreOptions& options,
                                                       OpenReport* report) {
  OpenReport local;
  OpenReport& r = report != nullptr ? *report : local;
  r = OpenReport{};
  std::error_code ec;
  r.created = !std::filesystem::exists(options.path, ec);
  if (auto parent = std::filesystem::path(options.path).parent_path(); !parent.empty()) {
    std::filesystem::create_directories(parent, ec);
  }

  std::string epoch;
  auto db = OpenAndInit(options, &epoch);
  if (!db.ok()) {
    // Permission or missing-directory problems are not corruption: report them as they are.
    if (!std::filesystem::exists(options.path, ec) ||
        access(options.path.c_str(), R_OK | W_OK) != 0) {
      return Status::Error(db.error());
    }
    r.recovered = true;
    r.reason = db.error();
    r.moved_aside_path = options.path + ".corrupt-" + std::to_string(NowMs());
    std::filesystem::rename(options.path, r.moved_aside_path, ec);
    if (ec) {
      return Status::Error("database " + options.path + " is unusable (" + db.error() +
                           ") and could not be moved aside: " + ec.message());
    }
    for (const char* suffix : {"-wal", "-shm"}) {
      std::error_code ignore;
      std::filesystem::rename(options.path + suffix, r.moved_aside_path + suffix, ignore);
      RemoveQuietly(options.path + suffix);
    }
    r.created = true;
    db = OpenAndInit(options, &epoch);
    if (!db.ok()) return Status::Error(db.error());
  }
  auto rows = QueryInt(*db, "SELECT value FROM counters WHERE name = 'readings_rows'");
  if (!rows.ok()) {
    sqlite3_close(*db);
    return Status::Error(rows.error());
  }
  std::unique_ptr<StoreWriter> w(new StoreWriter(*db, std::move(epoch), options));
  if (!w->stmts_->ok()) return Status::Error(Describe(w->db_, SQLITE_ERROR, "prepare"));
  w->readings_rows_ = *rows;
  w->checkpointer_ = Checkpointer::Start(options);
  if (!w->checkpointer_) {
    // Without the thread the writer checkpoints every 1 MiB of log, on its own thread.
    if (Status s = Exec(w->db_, "PRAGMA wal_autocheckpoint=256"); !s) return s;
  }
  return w;
}

Status StoreWriter::Fail(const Status& s) {
  const int rc = sqlite3_extended_errcode(db_);
  last_error_full_ = IsFull(rc);
  // A statement error may already have rolled the transaction back; then this is a no-op.
  if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
  return s;
}

Status StoreWriter::Append(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out,
                           Evictions* evicted) {
  if (seqs_out != nullptr) seqs_out->clear();
  if (evicted != nullptr) evicted->by_kind.clear();
  if (rows.empty()) return Status::Ok();
  Status s = AppendOnce(rows, seqs_out, evicted);
  if (s.ok() || !last_error_full_) return s;
  // Full. First the write-ahead log is reused from its start; then the readings ring gives way
  // to the outbox, and with an empty ring an eighth of the outbox goes by the eviction
  // order. One more attempt after each step.
  RestartWal();
  s = AppendOnce(rows, seqs_out, evicted);
  if (s.ok() || !last_error_full_) return s;
  int64_t cut = 0;
  if (Status c = CutReadings(std::max<int64_t>(readings_rows_ / 4, 1), &cut); !c) return c;
  Evictions made_room;
  if (cut == 0) {
    auto bytes = QueryInt(db_, "SELECT total(bytes) FROM outbox_kinds");
    if (!bytes.ok() || *bytes <= 0) return s;
    if (Status b = Exec(db_, "BEGIN IMMEDIATE"); !b) return Fail(b);
    if (Status e = Evict(std::max<int64_t>(*bytes / 8, 1), made_room); !e) return Fail(e);
    if (Status c = Exec(db_, "COMMIT"); !c) return Fail(c);
  }
  RestartWal();
  s = AppendOnce(rows, seqs_out, evicted);
  if (s.ok() && evicted != nullptr) {
    for (const auto& [kind, n] : made_room.by_kind) evicted->by_kind[kind] += n;
  }
  return s;
}

Status StoreWriter::AppendOnce(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out,
                               Evictions* evicted) {
  Evictions local;
  Evictions& ev = evicted != nullptr ? *evicted : local;
  ev.by_kind.clear();
  if (seqs_out != nullptr) seqs_out->clear();
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return Fail(s);
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s)
    return Fail(Status::Error("begin: " + s.message()));
  auto fail = [&](int rc, std::string_view what) {
    Status s = Fail(Status::Error(Describe(db_, rc, what)));
    if (seqs_out != nullptr) seqs_out->clear();
    ev.by_kind.clear();
    return s;
  };

  // Evict, oldest first from the lowest priority up, until the new rows fit.
  if (const int64_t budget = options_.outbox_budget(); budget > 0) {
    int64_t incoming = 0;
    for (const NewRow& row : rows) {
      incoming += static_cast<int64_t>(row.payload.size() + row.kind.size()) + kOutboxRowOverhead;
    }
    sqlite3_stmt* q = stmts_->outbox_bytes.fresh();
    if (int rc = sqlite3_step(q); rc != SQLITE_ROW) return fail(rc, "outbox bytes");
    const int64_t excess = sqlite3_column_int64(q, 0) + incoming - budget;
    sqlite3_reset(q);
    if (excess > 0) {
      if (Status s = Evict(excess, ev); !s) {
        Status f = Fail(s);
        if (seqs_out != nullptr) seqs_out->clear();
        ev.by_kind.clear();
        return f;
      }
    }
  }

  // Per kind: rows and bytes added, counted once per commit.
  std::map<std::string_view, std::pair<int64_t, int64_t>> added;
  for (const NewRow& row : rows) {
    auto& [n, bytes] = added[row.kind];
    ++n;
    bytes += static_cast<int64_t>(row.payload.size() + row.kind.size()) + kOutboxRowOverhead;
    sqlite3_stmt* ins = stmts_->insert_outbox.get();
    sqlite3_reset(ins);
    BindText(ins, 1, row.kind);
    sqlite3_bind_int(ins, 2, static_cast<int>(row.priority));
    sqlite3_bind_int64(ins, 3, row.created_ms);
    BindText(ins, 4, row.payload);
    if (int rc = sqlite3_step(ins); rc != SQLITE_DONE) return fail(rc, "insert outbox");
    if (seqs_out != nullptr) seqs_out->push_back(sqlite3_last_insert_rowid(db_));
  }
  sqlite3_reset(stmts_->insert_outbox.get());
  for (const auto& [kind, counts] : added) {
    sqlite3_stmt* c = stmts_->count_inserted.fresh();
    BindText(c, 1, kind);
    sqlite3_bind_int64(c, 2, counts.first);
    sqlite3_bind_int64(c, 3, counts.second);
    if (int rc = sqlite3_step(c); rc != SQLITE_DONE) return fail(rc, "count outbox");
  }
  int rc = SQLITE_OK;
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return fail(rc, "commit");
  last_error_full_ = false;
  return Status::Ok();
}

// Inside an open transaction: deletes outbox rows worth at least `bytes` (or all), oldest
// first from the lowest priority up, and counts them.
Status StoreWriter::Evict(int64_t bytes, Evictions& ev) {
  std::vector<std::pair<int64_t, std::string>> victims;
  for (int p = static_cast<int>(Priority::kStatus);
       bytes > 0 && p <= static_cast<int>(Priority::kAlert); ++p) {
    sqlite3_stmt* sel = stmts_->select_evictable.fresh();
    sqlite3_bind_int(sel, 1, p);
    int rc = SQLITE_DONE;
    while (bytes > 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
      victims.emplace_back(sqlite3_column_int64(sel, 0), ColumnText(sel, 1));
      bytes -= sqlite3_column_int64(sel, 2);
    }
    sqlite3_reset(sel);
    if (bytes > 0 && rc != SQLITE_DONE) return Status::Error(Describe(db_, rc, "select evictable"));
  }
  std::map<std::string, int64_t> counted;
  for (const auto& [seq, kind] : victims) {
    sqlite3_stmt* del = stmts_->delete_outbox.fresh();
    sqlite3_bind_int64(del, 1, seq);
    if (int rc = sqlite3_step(del); rc != SQLITE_DONE) {
      return Status::Error(Describe(db_, rc, "evict"));
    }
    ++counted[kind];
  }
  for (const auto& [kind, n] : counted) {
    sqlite3_stmt* c = stmts_->count_evicted.fresh();
    sqlite3_bind_int64(c, 1, n);
    BindText(c, 2, kind);
    if (int rc = sqlite3_step(c); rc != SQLITE_DONE) {
      return Status::Error(Describe(db_, rc, "count evictions"));
    }
    ev.by_kind[kind] += n;
  }
  return Status::Ok();
}

Result<int64_t> StoreWriter::SensorId(std::string_view name) {
  if (auto it = sensor_ids_.find(name); it != sensor_ids_.end()) return it->second;
  sqlite3_stmt* ins = stmts_->insert_sensor.fresh();
  BindText(ins, 1, name);
  if (int rc = sqlite3_step(ins); rc != SQLITE_DONE) {
    return Status::Error(Describe(db_, rc, "insert sensor"));
  }
  sqlite3_reset(ins);
  sqlite3_stmt* sel = stmts_->select_sensor.fresh();
  BindText(sel, 1, name);
  if (int rc = sqlite3_step(sel); rc != SQLITE_ROW) {
    return Status::Error(Describe(db_, rc, "select sensor"));
  }
  const int64_t id = sqlite3_column_int64(sel, 0);
  sqlite3_reset(sel);
  if (sensor_ids_.size() >= kMaxCachedSensors) sensor_ids_.clear();
  sensor_ids_.emplace(std::string(name), id);
  return id;
}

Status StoreWriter::AppendReadings(const std::vector<NewReading>& readings, int64_t now_ms,
                                   int64_t* pruned) {
  if (pruned != nullptr) *pruned = 0;
  if (readings.empty()) return Status::Ok();
  Status s = AppendReadingsOnce(readings, now_ms, pruned);
  if (s.ok() || !last_error_full_) return s;
  // Full: as in Append, the log first, then a quarter of the ring.
  RestartWal();
  s = AppendReadingsOnce(readings, now_ms, pruned);
  if (s.ok() || !last_error_full_) return s;
  int64_t cut = 0;
  if (Status c = CutReadings(std::max<int64_t>(readings_rows_ / 4, 1), &cut); !c) return c;
  if (pruned != nullptr) *pruned = cut;
  if (cut == 0) return s;
  RestartWal();
  int64_t more = 0;
  s = AppendReadingsOnce(readings, now_ms, &more);
  if (pruned != nullptr) *pruned += more;
  return s;
}

Status StoreWriter::AppendReadingsOnce(const std::vector<NewReading>& readings, int64_t now_ms,
                                       int64_t* pruned) {
  // Durability per transaction: NORMAL skips the WAL fsync (a process crash loses nothing
  // committed; a power loss may). One FULL commit per interval bounds what power loss takes,
  // and it also makes every earlier NORMAL commit durable (the WAL is synced as a whole).
  if (Status s = Exec(db_, "PRAGMA synchronous=NORMAL"); !s) return Fail(s);
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s)
    return Fail(Status::Error("begin: " + s.message()));
  const int64_t rows_before = readings_rows_;
  auto fail = [&](Status st) {
    readings_rows_ = rows_before;
    sensor_ids_.clear();  // ids inserted in this transaction are gone
    return Fail(st);
  };
  auto step_fail = [&](int rc, std::string_view what) {
    return fail(Status::Error(Describe(db_, rc, what)));
  };

  for (const NewReading& r : readings) {
    auto id = SensorId(r.sensor);
    if (!id.ok()) return fail(id.status());
    sqlite3_stmt* ins = stmts_->insert_reading.get();
    sqlite3_reset(ins);
    sqlite3_bind_int64(ins, 1, *id);
    sqlite3_bind_int64(ins, 2, r.ts_ms);
    sqlite3_bind_double(ins, 3, r.value);
    if (int rc = sqlite3_step(ins); rc != SQLITE_DONE) return step_fail(rc, "insert reading");
  }
  sqlite3_reset(stmts_->insert_reading.get());
  readings_rows_ += static_cast<int64_t>(readings.size());

  int64_t removed = 0;
  // Retention, in arrival order: everything before the first reading young enough goes.
  if (options_.retention_ms > 0 && now_ms - last_retention_ms_ >= 1000) {
    sqlite3_stmt* q = stmts_->first_kept.fresh();
    sqlite3_bind_int64(q, 1, now_ms - options_.retention_ms);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return step_fail(rc, "retention");
    // No reading young enough (all timestamps are old): all go.
    const int64_t first = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : INT64_MAX;
    sqlite3_reset(q);
    sqlite3_stmt* del = stmts_->delete_readings_before.fresh();
    sqlite3_bind_int64(del, 1, first);
    if (rc = sqlite3_step(del); rc != SQLITE_DONE) return step_fail(rc, "prune readings");
    removed += sqlite3_changes(db_);
  }
  readings_rows_ -= removed;
  // Byte share.
  if (const int64_t budget = options_.readings_budget(); budget > 0) {
    const int64_t max_rows = std::max<int64_t>(1, budget / kReadingRowBytes);
    if (readings_rows_ > max_rows) {
      sqlite3_stmt* q = stmts_->nth_reading.fresh();
      sqlite3_bind_int64(q, 1, readings_rows_ - max_rows);
      int rc = sqlite3_step(q);
      if (rc != SQLITE_ROW) return step_fail(rc, "ring bound");
      const int64_t first = sqlite3_column_int64(q, 0);
      sqlite3_reset(q);
      sqlite3_stmt* del = stmts_->delete_readings_before.fresh();
      sqlite3_bind_int64(del, 1, first);
      if (rc = sqlite3_step(del); rc != SQLITE_DONE) return step_fail(rc, "prune readings");
      const int64_t n = sqlite3_changes(db_);
      removed += n;
      readings_rows_ -= n;
    }
  }
  for (const auto& [name, by] :
       {std::pair{"readings_rows", readings_rows_ - rows_before}, {"readings_pruned", removed}}) {
    sqlite3_stmt* c = stmts_->add_counter.fresh();
    sqlite3_bind_int64(c, 1, by);
    sqlite3_bind_text(c, 2, name, -1, SQLITE_STATIC);
    if (int rc = sqlite3_step(c); rc != SQLITE_DONE) return step_fail(rc, "count readings");
  }
  int rc = SQLITE_OK;
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return step_fail(rc, "commit readings");
  if (options_.retention_ms > 0 && now_ms - last_retention_ms_ >= 1000) {
    last_retention_ms_ = now_ms;
  }
  if (pruned != nullptr) *pruned = removed;
  last_error_full_ = false;
  return Status::Ok();
}

// Copies the write-ahead log into the database so that the next transaction writes the log
// from its start again. On a full file system the log cannot grow, but the space it already
// has is enough once it is reused; truncating it would hand that space to whoever fills the
// disk. Best effort (a reader in a transaction delays the restart).
void StoreWriter::RestartWal() {
  (void)sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
}

// Deletes the oldest `rows` readings in a transaction of their own.
Status StoreWriter::CutReadings(int64_t rows, int64_t* pruned) {
  *pruned = 0;
  if (readings_rows_ <= 0 || rows <= 0) return Status::Ok();
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Fail(s);
  int rc;
  if (rows >= readings_rows_) {
    rc = sqlite3_step(stmts_->delete_all_readings.fresh());
  } else {
    sqlite3_stmt* q = stmts_->nth_reading.fresh();
    sqlite3_bind_int64(q, 1, rows);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
      const int64_t first = sqlite3_column_int64(q, 0);
      sqlite3_reset(q);
      sqlite3_stmt* del = stmts_->delete_readings_before.fresh();
      sqlite3_bind_int64(del, 1, first);
      rc = sqlite3_step(del);
    }
  }
  if (rc != SQLITE_DONE) return Fail(Status::Error(Describe(db_, rc, "cut readings")));
  const int64_t n = sqlite3_changes(db_);
  for (const auto& [name, by] : {std::pair{"readings_rows", -n}, {"readings_pruned", n}}) {
    sqlite3_stmt* c = stmts_->add_counter.fresh();
    sqlite3_bind_int64(c, 1, by);
    sqlite3_bind_text(c, 2, name, -1, SQLITE_STATIC);
    if (rc = sqlite3_step(c); rc != SQLITE_DONE) {
      return Fail(Status::Error(Describe(db_, rc, "count readings")));
    }
  }
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return Fail(s);
  readings_rows_ -= n;
  *pruned = n;
  return Status::Ok();
}

Result<int64_t> StoreWriter::OutboxCount() { return QueryInt(db_, "SELECT count(*) FROM outbox"); }

Status StoreWriter::SaveEpisodes(const std::vector<StoredEpisode>& firing,
                                 const std::vector<EpisodeKey>& resolved) {
  if (firing.empty() && resolved.empty()) return Status::Ok();
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return Fail(s);
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Fail(s);
  Stmt upsert(db_,
              "INSERT OR REPLACE INTO rule_episodes(rule, sensor, started_ms, last_ts_ms, "
              "last_value) VALUES (?, ?, ?, ?, ?)");
  Stmt remove(db_, "DELETE FROM rule_episodes WHERE rule = ? AND sensor = ?");
  if (!upsert.ok() || !remove.ok()) {
    return Fail(
        Status::Error(Describe(db_, upsert.ok() ? remove.rc() : upsert.rc(), "prepare episodes")));
  }
  // The caller passes disjoint keys (the last state of each episode in its batch).
  for (const EpisodeKey& k : resolved) {
    sqlite3_stmt* st = remove.fresh();
    BindText(st, 1, k.rule);
    BindText(st, 2, k.sensor);
    if (int rc = sqlite3_step(st); rc != SQLITE_DONE) {
      return Fail(Status::Error(Describe(db_, rc, "delete episode")));
    }
  }
  for (const StoredEpisode& e : firing) {
    sqlite3_stmt* st = upsert.fresh();
    BindText(st, 1, e.rule);
    BindText(st, 2, e.sensor);
    sqlite3_bind_int64(st, 3, e.started_ms);
    sqlite3_bind_int64(st, 4, e.last_ts_ms);
    sqlite3_bind_double(st, 5, e.last_value);
    if (int rc = sqlite3_step(st); rc != SQLITE_DONE) {
      return Fail(Status::Error(Describe(db_, rc, "save episode")));
    }
  }
  int rc = SQLITE_OK;
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return Fail(s);
  return Status::Ok();
}

Result<std::vector<StoredEpisode>> StoreWriter::LoadEpisodes() {
  Stmt st(db_,
          "SELECT rule, sensor, started_ms, last_ts_ms, last_value FROM rule_episodes "
          "ORDER BY rule, sensor");
  if (!st.ok()) return Status::Error(Describe(db_, st.rc(), "select episodes"));
  std::vector<StoredEpisode> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    out.push_back({ColumnText(st.get(), 0), ColumnText(st.get(), 1),
                   sqlite3_column_int64(st.get(), 2), sqlite3_column_int64(st.get(), 3),
                   sqlite3_column_double(st.get(), 4)});
  }
  if (rc != SQLITE_DONE) return Status::Error(Describe(db_, rc, "select episodes"));
  return out;
}

Result<int64_t> StoreWriter::ReadingsCount() {
  return QueryInt(db_, "SELECT count(*) FROM readings");
}

// ---------------------------------------------------------------------------------------
// StoreReader

StoreReader::StoreReader(sqlite3* db, std::string epoch, StoreOptions options)
    : db_(db), epoch_(std::move(epoch)), options_(std::move(options)) {}
StoreReader::~StoreReader() { sqlite3_close(db_); }

Result<std::unique_ptr<StoreReader>> StoreReader::Open(const StoreOptions& options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = Describe(db, rc, "open " + options.path);
    sqlite3_close(db);
    return Status::Error(msg);
  }
  if (Status s = Configure(db, options.busy_timeout_ms, options.max_pages); !s) {
    sqlite3_close(db);
    return Status::Error(s.message());
  }
  auto epoch = ReadMeta(db, "epoch");
  if (!epoch.ok() || epoch->empty()) {
    sqlite3_close(db);
    return Status::Error("database " + options.path + " has no epoch (not initialized)");
  }
  return std::unique_ptr<StoreReader>(new StoreReader(db, std::move(*epoch), options));
}

namespace {

// Runs an outbox SELECT of (seq, kind, priority, created_ms, payload) bound to one limit.
Result<std::vector<OutboxRow>> QueryOutbox(sqlite3* db, const char* sql, size_t limit) {
  Stmt s(db, sql);
  if (!s.ok()) return Status::Error(Describe(db, s.rc(), "prepare fetch"));
  sqlite3_bind_int64(s.get(), 1, static_cast<int64_t>(limit));
  std::vector<OutboxRow> rows;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    OutboxRow row;
    row.seq = sqlite3_column_int64(s.get(), 0);
    row.kind = ColumnText(s.get(), 1);
    row.priority = sqlite3_column_int(s.get(), 2);
    row.created_ms = sqlite3_column_int64(s.get(), 3);
    row.payload = ColumnText(s.get(), 4);
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return Status::Error(Describe(db, rc, "fetch"));
  return rows;
}

}  // namespace

Result<std::vector<OutboxRow>> StoreReader::Fetch(size_t max_items, size_t max_bytes) {
  max_items = std::max<size_t>(1, max_items);
  // One row more than a batch holds tells whether a backlog is waiting.
  auto oldest = QueryOutbox(db_,
                            "SELECT seq, kind, priority, created_ms, payload FROM outbox "
                            "ORDER BY priority DESC, seq LIMIT ?",
                            max_items + 1);
  if (!oldest.ok()) return oldest.status();
  // Takes rows from `from` in order while they fit the item and byte budgets (always one).
  std::vector<OutboxRow> picked;
  size_t bytes = 0;
  const auto take = [&](std::vector<OutboxRow>& from, size_t items, size_t byte_budget,
                        const std::unordered_set<int64_t>& skip) {
    for (OutboxRow& row : from) {
      if (picked.size() >= items) return;
      if (skip.count(row.seq) != 0) continue;
      if (!picked.empty() && bytes + row.payload.size() > byte_budget) return;
      bytes += row.payload.size();
      picked.push_back(std::move(row));
    }
  };
  size_t fit = 0;
  for (size_t used = 0; fit < std::min(oldest->size(), max_items); ++fit) {
    used += (*oldest)[fit].payload.size();
    if (fit > 0 && used > max_bytes) break;
  }
  if (fit == oldest->size()) {  // everything waiting fits: plain order
    take(*oldest, max_items, max_bytes, {});
    return picked;
  }
  // A backlog: the newest rows of the highest priority lead, within an eighth of the
  // batch's items and bytes; the oldest rows fill the rest.
  auto newest = QueryOutbox(db_,
                            "SELECT seq, kind, priority, created_ms, payload FROM outbox "
                            "WHERE priority = (SELECT MAX(priority) FROM outbox) "
                            "ORDER BY seq DESC LIMIT ?",
                            std::max<size_t>(1, fit / 8));
  if (!newest.ok()) return newest.status();
  take(*newest, newest->size(), std::max<size_t>(1, max_bytes / 8), {});
  std::unordered_set<int64_t> taken;
  for (const OutboxRow& row : picked) taken.insert(row.seq);
  take(*oldest, max_items, max_bytes, taken);
  return picked;
}

Result<int64_t> StoreReader::Delete(const std::vector<int64_t>& seqs) {
  if (seqs.empty()) return int64_t{0};
  // Deleting acknowledged rows need not survive a power loss: a delete lost with the last
  // WAL frames only re-sends rows the console deduplicates by id. Without the fsync a
  // backlog drains faster (one fewer disk flush per batch); crash safety is unchanged. Every
  // write on this connection sets its own level first.
  if (Status s = Exec(db_, "PRAGMA synchronous=NORMAL"); !s) {
    return Status::Error("delete: " + s.message());
  }
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Status::Error("begin: " + s.message());
  Stmt del(db_, "DELETE FROM outbox WHERE seq = ?");
  if (!del.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return Status::Error(Describe(db_, del.rc(), "prepare delete"));
  }
  int64_t deleted = 0;
  for (int64_t seq : seqs) {
    sqlite3_reset(del.get());
    sqlite3_bind_int64(del.get(), 1, seq);
    int rc = sqlite3_step(del.get());
    if (rc != SQLITE_DONE) {
      std::string msg = Describe(db_, rc, "delete outbox");
      if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
      return Status::Error(msg);
    }
    deleted += sqlite3_changes(db_);
  }
  if (Status s = Exec(db_, "COMMIT"); !s) {
    if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
    return Status::Error("commit: " + s.message());
  }
  return deleted;
}

Result<int64_t> StoreReader::DeadLetter(const std::vector<int64_t>& seqs, std::string_view reason) {
  if (seqs.empty()) return int64_t{0};
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return Status::Error(s.message());
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Status::Error("begin: " + s.message());
  auto fail = [&](int rc, std::string_view what) -> Result<int64_t> {
    std::string msg = Describe(db_, rc, what);
    if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
    return Status::Error(std::move(msg));
  };
  Stmt copy(db_,
            "INSERT OR REPLACE INTO dead_letter"
            "(seq, kind, priority, created_ms, payload, reason, dead_ms) "
            "SELECT seq, kind, priority, created_ms, payload, ?, ? FROM outbox WHERE seq = ?");
  Stmt count(db_,
             "UPDATE outbox_kinds SET dead_lettered = dead_lettered + 1 "
             "WHERE kind = (SELECT kind FROM outbox WHERE seq = ?)");
  Stmt del(db_, "DELETE FROM outbox WHERE seq = ?");
  for (Stmt* st : {&copy, &count, &del}) {
    if (!st->ok()) return fail(st->rc(), "prepare dead letter");
  }
  const int64_t now = NowMs();
  int64_t moved = 0;
  for (int64_t seq : seqs) {
    sqlite3_stmt* c = copy.fresh();
    BindText(c, 1, reason);
    sqlite3_bind_int64(c, 2, now);
    sqlite3_bind_int64(c, 3, seq);
    if (int rc = sqlite3_step(c); rc != SQLITE_DONE) return fail(rc, "dead letter");
    if (sqlite3_changes(db_) == 0) continue;
    sqlite3_stmt* n = count.fresh();
    sqlite3_bind_int64(n, 1, seq);
    if (int rc = sqlite3_step(n); rc != SQLITE_DONE) return fail(rc, "count dead letter");
    sqlite3_stmt* d = del.fresh();
    sqlite3_bind_int64(d, 1, seq);
    if (int rc = sqlite3_step(d); rc != SQLITE_DONE) return fail(rc, "delete outbox");
    ++moved;
  }

  // The table's own bound: oldest dead letters go first, counted.
  if (const int64_t budget = options_.dead_letter_budget(); budget > 0) {
    auto bytes = QueryInt(db_, "SELECT value FROM counters WHERE name = 'dead_letter_bytes'");
    if (!bytes.ok()) return fail(SQLITE_ERROR, bytes.error());
    if (int64_t excess = *bytes - budget; excess > 0) {
      std::vector<int64_t> victims;
      {
        Stmt sel(db_, kSelectDeadLetterOldest);
        if (!sel.ok()) return fail(sel.rc(), "prepare dead letter bound");
        int rc;
        while (excess > 0 && (rc = sqlite3_step(sel.get())) == SQLITE_ROW) {
          victims.push_back(sqlite3_column_int64(sel.get(), 0));
          excess -= sqlite3_column_int64(sel.get(), 1);
        }
        if (excess > 0 && rc != SQLITE_DONE) return fail(rc, "dead letter bound");
      }
      Stmt drop(db_, "DELETE FROM dead_letter WHERE seq = ?");
      if (!drop.ok()) return fail(drop.rc(), "prepare dead letter bound");
      for (int64_t seq : victims) {
        sqlite3_stmt* d = drop.fresh();
        sqlite3_bind_int64(d, 1, seq);
        if (int rc = sqlite3_step(d); rc != SQLITE_DONE) return fail(rc, "dead letter bound");
      }
      const std::string sql = "UPDATE counters SET value = value + " +
                              std::to_string(victims.size()) +
                              " WHERE name = 'dead_letter_evicted'";
      int rc = SQLITE_OK;
      if (Status s = Exec(db_, sql.c_str(), &rc); !s) return fail(rc, "count dead letter bound");
    }
  }
  int rc = SQLITE_OK;
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return fail(rc, "commit dead letter");
  return moved;
}

Result<int64_t> StoreReader::OutboxCount() { return QueryInt(db_, "SELECT count(*) FROM outbox"); }

Result<std::vector<StoredReading>> StoreReader::Readings(std::string_view sensor, int64_t since_ms,
                                                         int64_t until_ms, size_t limit) {
  Stmt s(db_,
         "SELECT r.ts_ms, r.value FROM readings r "
         "WHERE r.sensor = (SELECT id FROM sensors WHERE name = ?) "
         "AND r.ts_ms >= ? AND r.ts_ms <= ? ORDER BY r.ts_ms, r.seq LIMIT ?");
  if (!s.ok()) return Status::Error(Describe(db_, s.rc(), "prepare readings"));
  BindText(s.get(), 1, sensor);
  sqlite3_bind_int64(s.get(), 2, since_ms);
  sqlite3_bind_int64(s.get(), 3, until_ms);
  sqlite3_bind_int64(s.get(), 4, static_cast<int64_t>(limit));
  std::vector<StoredReading> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    out.push_back({sqlite3_column_int64(s.get(), 0), sqlite3_column_double(s.get(), 1)});
  }
  if (rc != SQLITE_DONE) return Status::Error(Describe(db_, rc, "readings"));
  return out;
}

Result<StoreStats> StoreReader::Stats() {
  StoreStats st;
  st.max_bytes = options_.max_bytes;
  // One read transaction: the counters are consistent with each other.
  if (Status s = Exec(db_, "BEGIN"); !s) return Status::Error("begin: " + s.message());
  auto fail = [&](int rc, std::string_view what) -> Result<StoreStats> {
    std::string msg = Describe(db_, rc, what);
    if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
    return Status::Error(std::move(msg));
  };
  {
    Stmt s(db_, "SELECT kind, rows, bytes, evicted, dead_lettered FROM outbox_kinds");
    if (!s.ok()) return fail(s.rc(), "stats");
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      OutboxKindStats& k = st.outbox[ColumnText(s.get(), 0)];
      k.rows = sqlite3_column_int64(s.get(), 1);
      k.bytes = sqlite3_column_int64(s.get(), 2);
      k.evicted = sqlite3_column_int64(s.get(), 3);
      k.dead_lettered = sqlite3_column_int64(s.get(), 4);
      st.outbox_rows += k.rows;
      st.outbox_bytes += k.bytes;
    }
    if (rc != SQLITE_DONE) return fail(rc, "stats");
  }
  {
    Stmt s(db_, "SELECT name, value FROM counters");
    if (!s.ok()) return fail(s.rc(), "stats");
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      const std::string name = ColumnText(s.get(), 0);
      const int64_t v = sqlite3_column_int64(s.get(), 1);
      if (name == "dead_letter_rows") st.dead_letter_rows = v;
      if (name == "dead_letter_bytes") st.dead_letter_bytes = v;
      if (name == "dead_letter_evicted") st.dead_letter_evicted = v;
      if (name == "readings_rows") st.readings_rows = v;
      if (name == "readings_pruned") st.readings_pruned = v;
    }
    if (rc != SQLITE_DONE) return fail(rc, "stats");
  }
  (void)Exec(db_, "COMMIT");
  st.readings_bytes = st.readings_rows * kReadingRowBytes;
  st.db_file_bytes = FileSize(options_.path) + FileSize(options_.path + "-wal");
  return st;
}

Result<std::optional<StoredConsolePolicy>> StoreReader::LoadConsolePolicy() {
  Stmt s(db_, "SELECT name, version, body, signature, applied_ms FROM console_policy WHERE id = 1");
  if (!s.ok()) return Status::Error(Describe(db_, s.rc(), "prepare console policy"));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<StoredConsolePolicy>();
  if (rc != SQLITE_ROW) return Status::Error(Describe(db_, rc, "read console policy"));
  StoredConsolePolicy p;
  p.name = ColumnText(s.get(), 0);
  p.version = sqlite3_column_int64(s.get(), 1);
  p.body = ColumnText(s.get(), 2);
  p.signature = ColumnText(s.get(), 3);
  p.applied_ms = sqlite3_column_int64(s.get(), 4);
  return std::optional<StoredConsolePolicy>(std::move(p));
}

Result<int64_t> StoreReader::AppliedPolicyVersion(std::string_view name) {
  Stmt s(db_, "SELECT version FROM policy_versions WHERE name = ?");
  if (!s.ok()) return Status::Error(Describe(db_, s.rc(), "prepare policy version"));
  BindText(s.get(), 1, name);
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return sqlite3_column_int64(s.get(), 0);
  if (rc == SQLITE_DONE) return int64_t{0};
  return Status::Error(Describe(db_, rc, "read policy version"));
}

Status StoreReader::SaveConsolePolicy(const StoredConsolePolicy& policy) {
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return Status::Error(s.message());
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Status::Error("begin: " + s.message());
  auto fail = [&](int rc, std::string_view what) {
    std::string msg = Describe(db_, rc, what);
    if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
    return Status::Error(std::move(msg));
  };
  Stmt current(db_,
               "INSERT OR REPLACE INTO console_policy(id, name, version, body, signature, "
               "applied_ms) VALUES (1, ?, ?, ?, ?, ?)");
  Stmt highest(db_,
               "INSERT INTO policy_versions(name, version) VALUES (?, ?) ON CONFLICT(name) DO "
               "UPDATE SET version = max(version, excluded.version)");
  for (Stmt* st : {&current, &highest}) {
    if (!st->ok()) return fail(st->rc(), "prepare save console policy");
  }
  sqlite3_stmt* c = current.get();
  BindText(c, 1, policy.name);
  sqlite3_bind_int64(c, 2, policy.version);
  BindText(c, 3, policy.body);
  BindText(c, 4, policy.signature);
  sqlite3_bind_int64(c, 5, policy.applied_ms);
  if (int rc = sqlite3_step(c); rc != SQLITE_DONE) return fail(rc, "save console policy");
  sqlite3_stmt* h = highest.get();
  BindText(h, 1, policy.name);
  sqlite3_bind_int64(h, 2, policy.version);
  if (int rc = sqlite3_step(h); rc != SQLITE_DONE) return fail(rc, "save policy version");
  int rc = SQLITE_OK;
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return fail(rc, "commit console policy");
  return Status::Ok();
}

}  // namespace edge::agent
