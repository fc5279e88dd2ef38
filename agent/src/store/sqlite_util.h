#pragma once

// SQLite helpers of the agent's store (agent/src/store/): prepared-statement and transaction
// guards, and the small queries every part of the store runs. Internal to the store; this
// folder holds the only files that include sqlite3.h. Nothing here is thread-safe: each
// helper works on the connection it is given, owned by one thread.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::agent::store_impl {

// "<what>: <SQLite's message>" for a failed call on `db` (or for `rc` when db is null).
std::string Describe(sqlite3* db, int rc, std::string_view what);
// A failed Status with the code of `rc` (CodeOf) and Describe's message.
Status SqliteError(sqlite3* db, int rc, std::string_view what);

// The Status code callers branch on for an SQLite result code.
Status::Code CodeOf(int rc);

// Wall clock, milliseconds since the epoch.
int64_t NowMs();

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

inline void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

// Binds `values` to parameters 1, 2, ... of `s` (text as SQLITE_STATIC: it must outlive the
// step).
inline void BindOne(sqlite3_stmt* s, int i, std::string_view v) { BindText(s, i, v); }
inline void BindOne(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
inline void BindOne(sqlite3_stmt* s, int i, double v) { sqlite3_bind_double(s, i, v); }
template <typename... Values>
void Bind(sqlite3_stmt* s, const Values&... values) {
  int i = 0;
  (BindOne(s, ++i, values), ...);
}

std::string ColumnText(sqlite3_stmt* s, int i);

// Exec that also reports the result code (to tell SQLITE_FULL apart).
Status Exec(sqlite3* db, const char* sql, int* rc_out = nullptr);

// Runs a prepared statement that returns nothing, as Exec runs SQL text but without
// parsing it again: the transaction statements of every append.
Status ExecPrepared(sqlite3* db, Stmt& stmt, int* rc_out = nullptr);

// A transaction that rolls back when it goes out of scope uncommitted. `begin` is the SQL
// that opens it ("BEGIN IMMEDIATE" when it writes, "BEGIN" for a consistent read); check
// begin_status() before using it. A failed Commit() leaves it open, to be rolled back.
class Transaction {
 public:
  explicit Transaction(sqlite3* db, const char* begin = "BEGIN IMMEDIATE") : db_(db) {
    begin_ = Exec(db, begin);
    open_ = begin_.ok();
  }
  ~Transaction() { Rollback(); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Status& begin_status() const { return begin_; }
  // `rc_out` (optional) receives COMMIT's result code.
  Status Commit(int* rc_out = nullptr) {
    Status s = Exec(db_, "COMMIT", rc_out);
    if (s.ok()) open_ = false;
    return s;
  }
  // Rolls back now if still open (a failed statement may already have ended it).
  void Rollback() {
    if (open_ && !sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
    open_ = false;
  }

 private:
  sqlite3* db_;
  Status begin_;
  bool open_ = false;
};

// Whether `table` has a column named `column`.
Result<bool> HasColumn(sqlite3* db, const char* table, std::string_view column);
// The value of `key` in the meta table; empty when absent.
Result<std::string> ReadMeta(sqlite3* db, const char* key);
// The first column of the first row of `sql`; 0 when there is no row.
Result<int64_t> QueryInt(sqlite3* db, const char* sql);

// Removes a file, ignoring errors.
void RemoveQuietly(const std::string& path);
// Size of a file in bytes; 0 when it cannot be read.
int64_t FileSize(const std::string& path);

}  // namespace edge::agent::store_impl
