#include "sqlite_db.h"

namespace edge::console {

Result<DbPtr> OpenDb(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return Status::Error(path + ": cannot open database: " +
                         (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  return db;
}

std::string ColumnText(sqlite3_stmt* stmt, int col) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  if (text == nullptr) return {};
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, col)));
}

void BindText(sqlite3_stmt* stmt, int index, const std::string& text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

Status SqliteConnection::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errmsg(db_.get());
    sqlite3_free(error);
    return Status::Error("sqlite: " + message);
  }
  return Status::Ok();
}

Result<std::string> SqliteConnection::QueryText(const std::string& sql) {
  StmtPtr stmt;
  if (Status s = Prepare(sql, &stmt); !s) return s;
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return DbError(sql);
  return ColumnText(stmt.get(), 0);
}

Status SqliteConnection::Prepare(const std::string& sql, StmtPtr* out) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return DbError("prepare");
  }
  out->reset(stmt);
  return Status::Ok();
}

Status SqliteConnection::DbError(const std::string& what) {
  return Status::Error("sqlite: " + what + ": " + sqlite3_errmsg(db_.get()));
}

Result<std::string> SqliteConnection::UseWalDurable() {
  Result<std::string> mode = QueryText("PRAGMA journal_mode=WAL");
  if (!mode) return mode.status();
  if (Status s = Exec("PRAGMA synchronous=FULL"); !s) return s;
  if (sqlite3_busy_timeout(db_.get(), 5000) != SQLITE_OK) return DbError("busy_timeout");
  return mode;
}

}  // namespace edge::console
