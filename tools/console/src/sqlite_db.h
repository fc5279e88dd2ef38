#pragma once

// The console's small SQLite helper (private to src/): one connection with statement RAII,
// Exec, Prepare, QueryText and error text, shared by the batch store (sqlite_store.cc) and
// the policy store (sqlite_policy_store.cc). Together with those two files, the only place
// that includes sqlite3.h.

#include <sqlite3.h>

#include <memory>
#include <string>

#include "edge/common/status.h"

namespace edge::console {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Opens (creating if missing) the database at `path` for use by one thread at a time.
Result<DbPtr> OpenDb(const std::string& path);

// Column `col` of the current row as text; "" for NULL.
std::string ColumnText(sqlite3_stmt* stmt, int col);

// Binds `text` without copying (SQLITE_STATIC): it must outlive the step that uses it.
void BindText(sqlite3_stmt* stmt, int index, const std::string& text);

// A store's connection: owns the database handle. A store derives from it and declares its
// prepared statements as its own members, so they are finalized before the database closes.
class SqliteConnection {
 protected:
  explicit SqliteConnection(DbPtr db) : db_(std::move(db)) {}

  // Runs one or more statements; "sqlite: <message>" on failure.
  Status Exec(const std::string& sql);
  // The first column of the first row of `sql` as text; an error if there is no row.
  Result<std::string> QueryText(const std::string& sql);
  Status Prepare(const std::string& sql, StmtPtr* out);
  // "sqlite: <what>: <the connection's last error message>".
  Status DbError(const std::string& what);
  // WAL journal (readers proceed during a write), synchronous=FULL (a commit is durable when
  // it returns) and a 5 s busy timeout. Returns the journal mode SQLite reports.
  Result<std::string> UseWalDurable();

  DbPtr db_;
};

}  // namespace edge::console
