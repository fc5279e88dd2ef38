#pragma once

// The console's small SQLite helper (private to src/): one connection with statement RAII,
// Exec, Prepare, QueryText, Run (one write), QueryRows (one reader per row type), binding
// and reading columns by type, and error text, shared by the batch store (sqlite_store.cc) and
// the policy store (sqlite_policy_store.cc). Together with those two files, the only place
// that includes sqlite3.h.

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "edge/common/c_ptr.h"
#include "edge/common/status.h"

namespace edge::console {

using DbPtr = CPtr<sqlite3, sqlite3_close_v2>;
using StmtPtr = CPtr<sqlite3_stmt, sqlite3_finalize>;

// Opens (creating if missing) the database at `path` for use by one thread at a time.
Result<DbPtr> OpenDb(const std::string& path);

// Column `col` of the current row as text; "" for NULL.
std::string ColumnText(sqlite3_stmt* stmt, int col);

// Binds `text` without copying (SQLITE_STATIC): it must outlive the step that uses it.
void BindText(sqlite3_stmt* stmt, int index, const std::string& text);

// Binds one value by its type: text (std::string, without copying, or a string literal),
// an integer, a double; an unset std::optional binds nothing (the parameter stays NULL).
template <typename T>
void BindValue(sqlite3_stmt* stmt, int index, const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    BindText(stmt, index, value);
  } else if constexpr (std::is_convertible_v<T, const char*>) {
    sqlite3_bind_text(stmt, index, value, -1, SQLITE_STATIC);
  } else if constexpr (std::is_floating_point_v<T>) {
    sqlite3_bind_double(stmt, index, value);
  } else if constexpr (std::is_integral_v<T>) {
    sqlite3_bind_int64(stmt, index, static_cast<sqlite3_int64>(value));
  } else {
    if (value) BindValue(stmt, index, *value);
  }
}

// Binds `values` to the parameters `first`, `first` + 1, ... in order (BindValue).
template <typename... Values>
void BindFrom([[maybe_unused]] sqlite3_stmt* stmt, int first, const Values&... values) {
  int index = first;
  (BindValue(stmt, index++, values), ...);
}

// Binds `values` to ?1, ?2, ... in order.
template <typename... Values>
void BindAll(sqlite3_stmt* stmt, const Values&... values) {
  BindFrom(stmt, 1, values...);
}

// Reads the current row's columns 0, 1, ... into `fields` in order: text into a
// std::string ("" for NULL), numbers into an integer or a double.
template <typename... Fields>
void ReadColumns(sqlite3_stmt* stmt, Fields&... fields) {
  int col = 0;
  (
      [&](auto& field) {
        using T = std::remove_reference_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          field = ColumnText(stmt, col);
        } else if constexpr (std::is_floating_point_v<T>) {
          field = sqlite3_column_double(stmt, col);
        } else {
          field = static_cast<T>(sqlite3_column_int64(stmt, col));
        }
        ++col;
      }(fields),
      ...);
}

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
  // Prepares `sql`, binds `values` to ?1, ?2, ... and runs it to completion; DbError(what)
  // when a step fails.
  template <typename... Values>
  Status Run(const std::string& sql, const std::string& what, const Values&... values) {
    StmtPtr stmt;
    if (Status s = Prepare(sql, &stmt); !s) return s;
    BindAll(stmt.get(), values...);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return DbError(what);
    return Status::Ok();
  }
  // Steps `stmt` to its end, one element per row made by `read(stmt)`; DbError(what) when a
  // step fails.
  template <typename ReadRow>
  auto ReadRows(sqlite3_stmt* stmt, const std::string& what, ReadRow&& read)
      -> Result<std::vector<std::invoke_result_t<ReadRow&, sqlite3_stmt*>>> {
    std::vector<std::invoke_result_t<ReadRow&, sqlite3_stmt*>> out;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) out.push_back(read(stmt));
    if (rc != SQLITE_DONE) return DbError(what);
    return out;
  }
  // Prepares `sql`, binds `values` to ?1, ?2, ... and reads every row (ReadRows).
  template <typename ReadRow, typename... Values>
  auto QueryRows(const std::string& sql, const std::string& what, ReadRow&& read,
                 const Values&... values)
      -> Result<std::vector<std::invoke_result_t<ReadRow&, sqlite3_stmt*>>> {
    StmtPtr stmt;
    if (Status s = Prepare(sql, &stmt); !s) return s;
    BindAll(stmt.get(), values...);
    return ReadRows(stmt.get(), what, read);
  }
  // "sqlite: <what>: <the connection's last error message>".
  Status DbError(const std::string& what);
  // WAL journal (readers proceed during a write), synchronous=FULL (a commit is durable when
  // it returns) and a 5 s busy timeout. Returns the journal mode SQLite reports.
  Result<std::string> UseWalDurable();

  DbPtr db_;
};

}  // namespace edge::console
