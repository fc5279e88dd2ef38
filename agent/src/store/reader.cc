// StoreReader (store.h): opening SqliteStoreReader's connection, the readings it serves and
// the statistics; the outbox side is in outbox.cc, the console policy in console_policy.cc.
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "edge/agent/reading_block.h"
#include "edge/agent/store.h"
#include "store/reader_internals.h"
#include "store/schema.h"
#include "store/sqlite_util.h"

namespace edge::agent {

using store_impl::BindText;
using store_impl::ColumnText;
using store_impl::Exec;
using store_impl::FileSize;
using store_impl::OpenConnection;
using store_impl::QueryInt;
using store_impl::ReadMeta;
using store_impl::SqliteError;
using store_impl::Stmt;
using store_impl::Transaction;

SqliteStoreReader::SqliteStoreReader(sqlite3* db, std::string epoch, StoreOptions options)
    : db_(db), epoch_(std::move(epoch)), options_(std::move(options)) {}
SqliteStoreReader::~SqliteStoreReader() { sqlite3_close(db_); }

Result<std::unique_ptr<StoreReader>> StoreReader::Open(const StoreOptions& options) {
  auto opened = OpenConnection(options, /*create=*/false);
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  auto epoch = ReadMeta(db, "epoch");
  if (!epoch.ok() || epoch->empty()) {
    sqlite3_close(db);
    return Status::Error("database " + options.path + " has no epoch (not initialized)");
  }
  return std::unique_ptr<StoreReader>(
      std::make_unique<SqliteStoreReader>(db, std::move(*epoch), options));
}

Result<std::vector<std::string>> SqliteStoreReader::Sensors() {
  Stmt q(db_, "SELECT name FROM sensors ORDER BY name");
  if (!q.ok()) return SqliteError(db_, q.rc(), "prepare sensors");
  std::vector<std::string> out;
  int rc = 0;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) out.push_back(ColumnText(q.get(), 0));
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "sensors");
  return out;
}

Result<std::vector<StoredReading>> SqliteStoreReader::Readings(std::string_view sensor,
                                                               int64_t since_ms, int64_t until_ms,
                                                               size_t limit) {
  // One read transaction: blocks and journal from the same snapshot.
  // Only reads: rolled back when it goes out of scope.
  Transaction txn(db_, "BEGIN");
  if (!txn.begin_status()) return txn.begin_status().Annotate("begin: ");
  Stmt id_q(db_, "SELECT id, flushed_journal FROM sensors WHERE name = ?");
  if (!id_q.ok()) return SqliteError(db_, id_q.rc(), "prepare readings");
  BindText(id_q.get(), 1, sensor);
  int rc = sqlite3_step(id_q.get());
  if (rc == SQLITE_DONE) return std::vector<StoredReading>();
  if (rc != SQLITE_ROW) return SqliteError(db_, rc, "readings");
  const int64_t id = sqlite3_column_int64(id_q.get(), 0);
  const int64_t flushed = sqlite3_column_int64(id_q.get(), 1);

  std::vector<StoredReading> out;
  std::vector<BlockReading> block;
  Stmt blocks(db_,
              "SELECT data, format FROM reading_blocks WHERE sensor = ? AND max_ts >= ? AND "
              "min_ts <= ? "
              "ORDER BY seq");
  if (!blocks.ok()) return SqliteError(db_, blocks.rc(), "prepare readings");
  sqlite3_bind_int64(blocks.get(), 1, id);
  sqlite3_bind_int64(blocks.get(), 2, since_ms);
  sqlite3_bind_int64(blocks.get(), 3, until_ms);
  while ((rc = sqlite3_step(blocks.get())) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(blocks.get(), 0));
    block.clear();
    const auto format = static_cast<BlockFormat>(sqlite3_column_int(blocks.get(), 1));
    if (!DecodeBlock({p, static_cast<size_t>(sqlite3_column_bytes(blocks.get(), 0))}, format,
                     block)) {
      return Status::Error("readings: a block of sensor " + std::string(sensor) + " is malformed");
    }
    for (const BlockReading& r : block) {
      if (r.ts_ms >= since_ms && r.ts_ms <= until_ms) out.push_back(r);
    }
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "readings");
  // Readings not yet in a written block are in the journal rows after flushed_journal.
  Stmt journal(db_, "SELECT data, format FROM reading_journal WHERE seq > ? ORDER BY seq");
  if (!journal.ok()) return SqliteError(db_, journal.rc(), "prepare readings");
  sqlite3_bind_int64(journal.get(), 1, flushed);
  std::vector<JournalReading> rows;
  while ((rc = sqlite3_step(journal.get())) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(journal.get(), 0));
    rows.clear();
    const auto format = static_cast<BlockFormat>(sqlite3_column_int(journal.get(), 1));
    if (!DecodeJournal({p, static_cast<size_t>(sqlite3_column_bytes(journal.get(), 0))}, format,
                       rows)) {
      return Status::Error("readings: a journal row is malformed");
    }
    for (const JournalReading& r : rows) {
      if (r.sensor == id && r.ts_ms >= since_ms && r.ts_ms <= until_ms) {
        out.push_back({r.ts_ms, r.value});
      }
    }
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "readings");
  // Oldest first; equal timestamps keep arrival order.
  std::stable_sort(out.begin(), out.end(), [](const StoredReading& a, const StoredReading& b) {
    return a.ts_ms < b.ts_ms;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<StoreStats> SqliteStoreReader::Stats() {
  StoreStats st;
  st.max_bytes = options_.max_bytes;
  // One read transaction: the counters are consistent with each other.
  Transaction txn(db_, "BEGIN");
  if (!txn.begin_status()) return txn.begin_status().Annotate("begin: ");
  auto fail = [&](int rc, std::string_view what) -> Result<StoreStats> {
    return SqliteError(db_, rc, what);
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
      if (name == "readings_bytes") st.readings_bytes = v;
    }
    if (rc != SQLITE_DONE) return fail(rc, "stats");
  }
  (void)txn.Commit();
  st.db_file_bytes = FileSize(options_.path) + FileSize(options_.path + "-wal");
  return st;
}

}  // namespace edge::agent
