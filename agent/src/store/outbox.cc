// The outbox of StoreWriter and StoreReader (store.h): appends with eviction to the bound,
// fetches, acknowledged deletes and dead-lettering.
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "store/reader_internals.h"
#include "store/sqlite_util.h"
#include "store/writer_internals.h"

namespace edge::agent {

using store_impl::BindText;
using store_impl::ColumnText;
using store_impl::Exec;
using store_impl::ExecPrepared;
using store_impl::kSelectDeadLetterOldest;
using store_impl::NowMs;
using store_impl::QueryInt;
using store_impl::SqliteError;
using store_impl::Stmt;
using store_impl::Transaction;

Status SqliteStoreWriter::Append(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out,
                                 Evictions* evicted) {
  return AppendRetrying(rows, seqs_out, evicted, nullptr, nullptr);
}

Status SqliteStoreWriter::AppendWithEpisodes(const std::vector<NewRow>& rows,
                                             EpisodeChanges episodes, Evictions* evicted,
                                             const ReadingsBatch* readings) {
  return AppendRetrying(rows, nullptr, evicted, &episodes, readings);
}

Status SqliteStoreWriter::AppendRetrying(const std::vector<NewRow>& rows,
                                         std::vector<int64_t>* seqs_out, Evictions* evicted,
                                         const EpisodeChanges* episodes,
                                         const ReadingsBatch* readings) {
  if (seqs_out != nullptr) seqs_out->clear();
  if (evicted != nullptr) evicted->by_kind.clear();
  if (rows.empty()) {
    return readings == nullptr ? Status::Ok()
                               : AppendReadings(readings->readings, readings->now_ms,
                                                readings->pruned, readings->delivered);
  }
  Status s = AppendOnce(rows, seqs_out, evicted, episodes, readings);
  if (s.ok() || !s.IsFull()) return s;
  // Full. First the write-ahead log is reused from its start; then the readings ring gives way
  // to the outbox, and with an empty ring an eighth of the outbox goes by the eviction
  // order. One more attempt after each step.
  RestartWal();
  s = AppendOnce(rows, seqs_out, evicted, episodes, readings);
  if (s.ok() || !s.IsFull()) return s;
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
  s = AppendOnce(rows, seqs_out, evicted, episodes, readings);
  if (s.ok() && evicted != nullptr) {
    for (const auto& [kind, n] : made_room.by_kind) evicted->by_kind[kind] += n;
  }
  return s;
}

Status SqliteStoreWriter::AppendOnce(const std::vector<NewRow>& rows,
                                     std::vector<int64_t>* seqs_out, Evictions* evicted,
                                     const EpisodeChanges* episodes,
                                     const ReadingsBatch* readings) {
  Evictions local;
  Evictions& ev = evicted != nullptr ? *evicted : local;
  ev.by_kind.clear();
  if (seqs_out != nullptr) seqs_out->clear();
  if (Status s = SetSynchronous(/*full=*/true); !s) return Fail(s);
  if (Status s = ExecPrepared(db_, stmts_->begin); !s) return Fail(s.Annotate("begin: "));
  auto fail = [&](int rc, std::string_view what) {
    Status s = Fail(SqliteError(db_, rc, what));
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
  if (episodes != nullptr) {
    if (Status s = WriteEpisodes(*episodes); !s) {
      Status f = Fail(s);
      if (seqs_out != nullptr) seqs_out->clear();
      ev.by_kind.clear();
      return f;
    }
  }
  ReadingsOutcome outcome;
  if (readings != nullptr) {
    if (Status s = WriteReadings(*readings, outcome); !s) {
      Status f = Fail(s);
      ReadingsRolledBack();
      if (seqs_out != nullptr) seqs_out->clear();
      ev.by_kind.clear();
      return f;
    }
  }
  int rc = SQLITE_OK;
  if (Status s = ExecPrepared(db_, stmts_->commit, &rc); !s) {
    Status f = fail(rc, "commit");
    if (readings != nullptr) ReadingsRolledBack();
    return f;
  }
  if (readings != nullptr) ReadingsCommitted(*readings, outcome);
  return Status::Ok();
}

// Inside an open transaction: deletes outbox rows worth at least `bytes` (or all), oldest
// first from the lowest priority up, and counts them.
Status SqliteStoreWriter::Evict(int64_t bytes, Evictions& ev) {
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
    if (bytes > 0 && rc != SQLITE_DONE) return SqliteError(db_, rc, "select evictable");
  }
  std::map<std::string, int64_t> counted;
  for (const auto& [seq, kind] : victims) {
    sqlite3_stmt* del = stmts_->delete_outbox.fresh();
    sqlite3_bind_int64(del, 1, seq);
    if (int rc = sqlite3_step(del); rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "evict");
    }
    ++counted[kind];
  }
  for (const auto& [kind, n] : counted) {
    sqlite3_stmt* c = stmts_->count_evicted.fresh();
    sqlite3_bind_int64(c, 1, n);
    BindText(c, 2, kind);
    if (int rc = sqlite3_step(c); rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "count evictions");
    }
    ev.by_kind[kind] += n;
  }
  return Status::Ok();
}

Result<int64_t> SqliteStoreWriter::OutboxCount() {
  return QueryInt(db_, "SELECT count(*) FROM outbox");
}

// ---------------------------------------------------------------------------------------
// StoreReader

namespace {

// Runs an outbox SELECT of (seq, kind, priority, created_ms, payload) bound to one limit.
Result<std::vector<OutboxRow>> QueryOutbox(sqlite3* db, const char* sql, size_t limit) {
  Stmt s(db, sql);
  if (!s.ok()) return SqliteError(db, s.rc(), "prepare fetch");
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
  if (rc != SQLITE_DONE) return SqliteError(db, rc, "fetch");
  return rows;
}

}  // namespace

Result<std::vector<OutboxRow>> SqliteStoreReader::Fetch(size_t max_items, size_t max_bytes) {
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

Result<int64_t> SqliteStoreReader::Delete(const std::vector<int64_t>& seqs) {
  if (seqs.empty()) return int64_t{0};
  // Deleting acknowledged rows need not survive a power loss: a delete lost with the last
  // WAL frames only re-sends rows the console deduplicates by id. Without the fsync a
  // backlog drains faster (one fewer disk flush per batch); crash safety is unchanged. Every
  // write on this connection sets its own level first.
  if (Status s = Exec(db_, "PRAGMA synchronous=NORMAL"); !s) {
    return s.Annotate("delete: ");
  }
  Transaction txn(db_);
  if (!txn.begin_status()) return txn.begin_status().Annotate("begin: ");
  Stmt del(db_, "DELETE FROM outbox WHERE seq = ?");
  if (!del.ok()) return SqliteError(db_, del.rc(), "prepare delete");
  int64_t deleted = 0;
  for (int64_t seq : seqs) {
    sqlite3_reset(del.get());
    sqlite3_bind_int64(del.get(), 1, seq);
    int rc = sqlite3_step(del.get());
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "delete outbox");
    deleted += sqlite3_changes(db_);
  }
  if (Status s = txn.Commit(); !s) return s.Annotate("commit: ");
  return deleted;
}

Result<int64_t> SqliteStoreReader::DeadLetter(const std::vector<int64_t>& seqs,
                                              std::string_view reason) {
  if (seqs.empty()) return int64_t{0};
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return s;
  Transaction txn(db_);
  if (!txn.begin_status()) return txn.begin_status().Annotate("begin: ");
  auto fail = [&](int rc, std::string_view what) -> Result<int64_t> {
    return SqliteError(db_, rc, what);
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
  if (Status s = txn.Commit(&rc); !s) return fail(rc, "commit dead letter");
  return moved;
}

Result<int64_t> SqliteStoreReader::OutboxCount() {
  return QueryInt(db_, "SELECT count(*) FROM outbox");
}

}  // namespace edge::agent
