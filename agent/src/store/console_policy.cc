// The console policy in force, kept by StoreReader (store.h) across restarts.
#include <sqlite3.h>

#include <optional>
#include <string>

#include "store/reader_internals.h"
#include "store/sqlite_util.h"

namespace edge::agent {

using store_impl::ColumnText;
using store_impl::Exec;
using store_impl::SqliteError;
using store_impl::Stmt;

Result<std::optional<StoredConsolePolicy>> SqliteStoreReader::LoadConsolePolicy() {
  Stmt s(db_,
         "SELECT name, version, body, signature, applied_ms, seq FROM console_policy WHERE id = 1");
  if (!s.ok()) return SqliteError(db_, s.rc(), "prepare console policy");
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<StoredConsolePolicy>();
  if (rc != SQLITE_ROW) return SqliteError(db_, rc, "read console policy");
  sqlite3_stmt* row = s.get();
  return std::optional<StoredConsolePolicy>(
      StoredConsolePolicy{.name = ColumnText(row, 0),
                          .version = sqlite3_column_int64(row, 1),
                          .body = ColumnText(row, 2),
                          .signature = ColumnText(row, 3),
                          .applied_ms = sqlite3_column_int64(row, 4),
                          .seq = sqlite3_column_int64(row, 5)});
}

Status SqliteStoreReader::SaveConsolePolicy(const StoredConsolePolicy& policy) {
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return s;
  Stmt current(db_,
               "INSERT OR REPLACE INTO console_policy(id, name, version, body, signature, "
               "applied_ms, seq) VALUES (1, ?, ?, ?, ?, ?, ?)");
  if (!current.ok()) {
    return SqliteError(db_, current.rc(), "prepare save console policy");
  }
  sqlite3_stmt* c = current.get();
  store_impl::Bind(c, std::string_view(policy.name), policy.version, std::string_view(policy.body),
                   std::string_view(policy.signature), policy.applied_ms, policy.seq);
  // One statement: SQLite makes it atomic and, with synchronous=FULL, durable.
  if (int rc = sqlite3_step(c); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "save console policy");
  }
  return Status::Ok();
}

}  // namespace edge::agent
