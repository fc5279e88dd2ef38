// The firing rule episodes of StoreWriter (store.h): saved so that a restart resumes them.
#include <sqlite3.h>

#include <string>
#include <vector>

#include "store/sqlite_util.h"
#include "store/writer_internals.h"

namespace edge::agent {

using store_impl::ColumnText;
using store_impl::Exec;
using store_impl::SqliteError;
using store_impl::Stmt;

Status SqliteStoreWriter::SaveEpisodes(const std::vector<StoredEpisode>& firing,
                                       const std::vector<EpisodeKey>& resolved) {
  if (firing.empty() && resolved.empty()) return Status::Ok();
  if (Status s = SetSynchronous(/*full=*/true); !s) return Fail(s);
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Fail(s);
  if (Status s = WriteEpisodes({firing, resolved}); !s) return Fail(s);
  int rc = SQLITE_OK;
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return Fail(s);
  return Status::Ok();
}

Status SqliteStoreWriter::WriteEpisodes(const EpisodeChanges& episodes) {
  if (episodes.firing.empty() && episodes.resolved.empty()) return Status::Ok();
  Stmt upsert(db_,
              "INSERT OR REPLACE INTO rule_episodes(rule, sensor, started_ms, last_ts_ms, "
              "last_value) VALUES (?, ?, ?, ?, ?)");
  Stmt remove(db_, "DELETE FROM rule_episodes WHERE rule = ? AND sensor = ?");
  if (!upsert.ok() || !remove.ok()) {
    return SqliteError(db_, upsert.ok() ? remove.rc() : upsert.rc(), "prepare episodes");
  }
  // The caller passes disjoint keys (the last state of each episode in its batch).
  for (const EpisodeKey& k : episodes.resolved) {
    sqlite3_stmt* st = remove.fresh();
    store_impl::Bind(st, k.rule, k.sensor);
    if (int rc = sqlite3_step(st); rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "delete episode");
    }
  }
  for (const StoredEpisode& e : episodes.firing) {
    sqlite3_stmt* st = upsert.fresh();
    store_impl::Bind(st, std::string_view(e.rule), std::string_view(e.sensor), e.started_ms,
                     e.last_ts_ms, e.last_value);
    if (int rc = sqlite3_step(st); rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "save episode");
    }
  }
  return Status::Ok();
}

Result<std::vector<StoredEpisode>> SqliteStoreWriter::LoadEpisodes() {
  Stmt st(db_,
          "SELECT rule, sensor, started_ms, last_ts_ms, last_value FROM rule_episodes "
          "ORDER BY rule, sensor");
  if (!st.ok()) return SqliteError(db_, st.rc(), "select episodes");
  std::vector<StoredEpisode> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    out.push_back({ColumnText(st.get(), 0), ColumnText(st.get(), 1),
                   sqlite3_column_int64(st.get(), 2), sqlite3_column_int64(st.get(), 3),
                   sqlite3_column_double(st.get(), 4)});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "select episodes");
  return out;
}

}  // namespace edge::agent
