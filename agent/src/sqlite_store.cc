// The only file that includes sqlite3.h.
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "edge/agent/store.h"

namespace edge::agent {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  kind       TEXT    NOT NULL,
  priority   INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  payload    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_priority ON outbox (priority DESC, seq);
)sql";

std::string Describe(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return msg;
}

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  int rc() const { return rc_; }
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
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
  if (rc == SQLITE_ROW) {
    return std::string(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
  }
  if (rc == SQLITE_DONE) return std::string();
  return Status::Error(Describe(db, rc, "read meta"));
}

Status Configure(sqlite3* db, int busy_timeout_ms) {
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  // WAL: the reader and the writer do not block each other. synchronous=FULL: a committed
  // alert survives power loss, not only a process crash.
  if (Status s = Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s) return s;
  return Status::Ok();
}

// Opens and fully initializes the writer's connection; any failure here means the file is
// unusable as our database.
Result<sqlite3*> OpenAndInit(const std::string& path, int busy_timeout_ms, std::string* epoch) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = Describe(db, rc, "open " + path);
    sqlite3_close(db);
    return Status::Error(msg);
  }
  auto fail = [&](std::string msg) -> Result<sqlite3*> {
    sqlite3_close(db);
    return Status::Error(std::move(msg));
  };
  if (Status s = Configure(db, busy_timeout_ms); !s) return fail(s.message());
  {
    Stmt check(db, "PRAGMA quick_check");
    if (!check.ok()) return fail(Describe(db, check.rc(), "quick_check"));
    int step = sqlite3_step(check.get());
    if (step != SQLITE_ROW) return fail(Describe(db, step, "quick_check"));
    std::string verdict = reinterpret_cast<const char*>(sqlite3_column_text(check.get(), 0));
    if (verdict != "ok") return fail("quick_check: " + verdict);
  }
  if (Status s = Exec(db, kSchema); !s) return fail("create schema: " + s.message());
  auto existing = ReadMeta(db, "epoch");
  if (!existing.ok()) return fail(existing.error());
  if (existing->empty()) {
    *epoch = NewEpoch();
    std::string sql = "INSERT INTO meta(key, value) VALUES ('epoch', '" + *epoch +
                      "'), ('schema_version', '" + std::to_string(kSchemaVersion) + "')";
    if (Status s = Exec(db, sql.c_str()); !s) return fail("write meta: " + s.message());
  } else {
    *epoch = *existing;
  }
  return db;
}

void RemoveQuietly(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace

std::string RecordId(std::string_view node, std::string_view epoch, int64_t seq) {
  std::string id;
  id.reserve(node.size() + epoch.size() + 22);
  id.append(node).append(":").append(epoch).append(":").append(std::to_string(seq));
  return id;
}

// ---------------------------------------------------------------------------------------
// StoreWriter

StoreWriter::StoreWriter(sqlite3* db, std::string epoch) : db_(db), epoch_(std::move(epoch)) {}
StoreWriter::~StoreWriter() { sqlite3_close(db_); }

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
  auto db = OpenAndInit(options.path, options.busy_timeout_ms, &epoch);
  if (!db.ok()) {
    // Permission or missing-directory problems are not corruption: report them as they are.
    if (!std::filesystem::exists(options.path, ec) ||
        access(options.path.c_str(), R_OK | W_OK) != 0) {
      return Status::Error(db.error());
    }
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    r.recovered = true;
    r.reason = db.error();
    r.moved_aside_path = options.path + ".corrupt-" + std::to_string(now_ms);
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
    db = OpenAndInit(options.path, options.busy_timeout_ms, &epoch);
    if (!db.ok()) return Status::Error(db.error());
  }
  return std::unique_ptr<StoreWriter>(new StoreWriter(*db, std::move(epoch)));
}

Status StoreWriter::Append(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out) {
  if (seqs_out != nullptr) seqs_out->clear();
  if (rows.empty()) return Status::Ok();
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Status::Error("begin: " + s.message());
  Stmt ins(db_, "INSERT INTO outbox(kind, priority, created_ms, payload) VALUES (?, ?, ?, ?)");
  auto rollback = [&](std::string msg) {
    (void)Exec(db_, "ROLLBACK");
    if (seqs_out != nullptr) seqs_out->clear();
    return Status::Error(std::move(msg));
  };
  if (!ins.ok()) return rollback(Describe(db_, ins.rc(), "prepare insert"));
  for (const NewRow& row : rows) {
    sqlite3_reset(ins.get());
    sqlite3_bind_text(ins.get(), 1, row.kind.data(), static_cast<int>(row.kind.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int(ins.get(), 2, static_cast<int>(row.priority));
    sqlite3_bind_int64(ins.get(), 3, row.created_ms);
    sqlite3_bind_text(ins.get(), 4, row.payload.data(), static_cast<int>(row.payload.size()),
                      SQLITE_STATIC);
    int rc = sqlite3_step(ins.get());
    if (rc != SQLITE_DONE) return rollback(Describe(db_, rc, "insert outbox"));
    if (seqs_out != nullptr) seqs_out->push_back(sqlite3_last_insert_rowid(db_));
  }
  if (Status s = Exec(db_, "COMMIT"); !s) return rollback("commit: " + s.message());
  return Status::Ok();
}

Result<int64_t> StoreWriter::OutboxCount() {
  Stmt s(db_, "SELECT count(*) FROM outbox");
  if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) {
    return Status::Error(Describe(db_, s.rc(), "count outbox"));
  }
  return sqlite3_column_int64(s.get(), 0);
}

// ---------------------------------------------------------------------------------------
// StoreReader

StoreReader::StoreReader(sqlite3* db, std::string epoch) : db_(db), epoch_(std::move(epoch)) {}
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
  if (Status s = Configure(db, options.busy_timeout_ms); !s) {
    sqlite3_close(db);
    return Status::Error(s.message());
  }
  auto epoch = ReadMeta(db, "epoch");
  if (!epoch.ok() || epoch->empty()) {
    sqlite3_close(db);
    return Status::Error("database " + options.path + " has no epoch (not initialized)");
  }
  return std::unique_ptr<StoreReader>(new StoreReader(db, std::move(*epoch)));
}

Result<std::vector<OutboxRow>> StoreReader::Fetch(size_t max_items, size_t max_bytes) {
  Stmt s(db_,
         "SELECT seq, kind, priority, created_ms, payload FROM outbox "
         "ORDER BY priority DESC, seq LIMIT ?");
  if (!s.ok()) return Status::Error(Describe(db_, s.rc(), "prepare fetch"));
  sqlite3_bind_int64(s.get(), 1, static_cast<int64_t>(max_items));
  std::vector<OutboxRow> rows;
  size_t bytes = 0;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    const int payload_len = sqlite3_column_bytes(s.get(), 4);
    if (!rows.empty() && bytes + static_cast<size_t>(payload_len) > max_bytes) break;
    OutboxRow row;
    row.seq = sqlite3_column_int64(s.get(), 0);
    row.kind = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 1));
    row.priority = sqlite3_column_int(s.get(), 2);
    row.created_ms = sqlite3_column_int64(s.get(), 3);
    row.payload.assign(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 4)),
                       static_cast<size_t>(payload_len));
    bytes += static_cast<size_t>(payload_len);
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Status::Error(Describe(db_, rc, "fetch"));
  return rows;
}

Result<int64_t> StoreReader::Delete(const std::vector<int64_t>& seqs) {
  if (seqs.empty()) return int64_t{0};
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
      (void)Exec(db_, "ROLLBACK");
      return Status::Error(Describe(db_, rc, "delete outbox"));
    }
    deleted += sqlite3_changes(db_);
  }
  if (Status s = Exec(db_, "COMMIT"); !s) {
    (void)Exec(db_, "ROLLBACK");
    return Status::Error("commit: " + s.message());
  }
  return deleted;
}

Result<int64_t> StoreReader::OutboxCount() {
  Stmt s(db_, "SELECT count(*) FROM outbox");
  if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) {
    return Status::Error(Describe(db_, s.rc(), "count outbox"));
  }
  return sqlite3_column_int64(s.get(), 0);
}

}  // namespace edge::agent
