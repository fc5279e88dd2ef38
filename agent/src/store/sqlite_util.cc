#include "store/sqlite_util.h"

#include <chrono>
#include <filesystem>
#include <system_error>

namespace edge::agent::store_impl {

std::string Describe(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return msg;
}

Status::Code CodeOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Status::Code::kFull;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Code::kCorruption;
    case SQLITE_IOERR:
      return Status::Code::kIOError;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Code::kUnavailable;
    default:
      return Status::Code::kError;
  }
}

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  return Status::WithCode(CodeOf(rc), Describe(db, rc, what));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p != nullptr ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i)))
                      : std::string();
}

Status Exec(sqlite3* db, const char* sql, int* rc_out) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc_out != nullptr) *rc_out = rc;
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status::WithCode(CodeOf(rc), msg);
  }
  return Status::Ok();
}

Status ExecPrepared(sqlite3* db, Stmt& stmt, int* rc_out) {
  sqlite3_stmt* s = stmt.get();
  int rc = sqlite3_step(s);
  while (rc == SQLITE_ROW) rc = sqlite3_step(s);
  Status result =
      rc == SQLITE_DONE ? Status::Ok() : Status::WithCode(CodeOf(rc), sqlite3_errmsg(db));
  sqlite3_reset(s);
  if (rc_out != nullptr) *rc_out = rc == SQLITE_DONE ? SQLITE_OK : rc;
  return result;
}

Result<bool> HasColumn(sqlite3* db, const char* table, std::string_view column) {
  const std::string sql =
      std::string("SELECT 1 FROM pragma_table_info('") + table + "') WHERE name = ?";
  Stmt s(db, sql.c_str());
  if (!s.ok()) return SqliteError(db, s.rc(), "prepare table info");
  BindText(s.get(), 1, column);
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db, rc, "read table info");
}

Result<std::string> ReadMeta(sqlite3* db, const char* key) {
  Stmt s(db, "SELECT value FROM meta WHERE key = ?");
  if (!s.ok()) return SqliteError(db, s.rc(), "read meta");
  sqlite3_bind_text(s.get(), 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return ColumnText(s.get(), 0);
  if (rc == SQLITE_DONE) return std::string();
  return SqliteError(db, rc, "read meta");
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql) {
  Stmt s(db, sql);
  if (!s.ok()) return SqliteError(db, s.rc(), sql);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return sqlite3_column_int64(s.get(), 0);
  if (rc == SQLITE_DONE) return int64_t{0};
  return SqliteError(db, rc, sql);
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

}  // namespace edge::agent::store_impl
