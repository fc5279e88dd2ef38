// The console policy in force, kept by StoreReader (store.h) across restarts.
#include <sqlite3.h>

#include <optional>
#include <string>

#include "edge/agent/store.h"
#include "store/sqlite_util.h"

namespace edge::agent {

using store_impl::BindText;
using store_impl::ColumnText;
using store_impl::Describe;
using store_impl::Exec;
using store_impl::Stmt;
using store_impl::Transaction;

Result<std::optional<StoredConsolePolicy>> StoreReader::LoadConsolePolicy() {
  Stmt s(db_,
         "SELECT name, version, body, signature, applied_ms, seq FROM console_policy WHERE id = 1");
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
  p.seq = sqlite3_column_int64(s.get(), 5);
  return std::optional<StoredConsolePolicy>(std::move(p));
}

Status StoreReader::SaveConsolePolicy(const StoredConsolePolicy& policy) {
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return Status::Error(s.message());
  Stmt current(db_,
               "INSERT OR REPLACE INTO console_policy(id, name, version, body, signature, "
               "applied_ms, seq) VALUES (1, ?, ?, ?, ?, ?, ?)");
  if (!current.ok()) {
    return Status::Error(Describe(db_, current.rc(), "prepare save console policy"));
  }
  sqlite3_stmt* c = current.get();
  BindText(c, 1, policy.name);
  sqlite3_bind_int64(c, 2, policy.version);
  BindText(c, 3, policy.body);
  BindText(c, 4, policy.signature);
  sqlite3_bind_int64(c, 5, policy.applied_ms);
  sqlite3_bind_int64(c, 6, policy.seq);
  // One statement: SQLite makes it atomic and, with synchronous=FULL, durable.
  if (int rc = sqlite3_step(c); rc != SQLITE_DONE) {
    return Status::Error(Describe(db_, rc, "save console policy"));
  }
  return Status::Ok();
}

}  // namespace edge::agent
