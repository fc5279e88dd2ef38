// StoreWriter and StoreReader (store.h) over the store's files in store/.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "edge/agent/reading_block.h"
#include "edge/agent/store.h"
#include "store/block_builder.h"
#include "store/checkpointer.h"
#include "store/schema.h"
#include "store/sqlite_util.h"
#include "store/writer_internals.h"

namespace edge::agent {
namespace {

using store_impl::BindText;
using store_impl::BlockBuilder;
using store_impl::CodeOf;
using store_impl::ColumnText;
using store_impl::Describe;
using store_impl::Exec;
using store_impl::ExecPrepared;
using store_impl::FileSize;
using store_impl::InsertBlock;
using store_impl::kInsertBlock;
using store_impl::kSelectDeadLetterOldest;
using store_impl::kSelectEvictable;
using store_impl::NowMs;
using store_impl::OpenAndInit;
using store_impl::OpenConnection;
using store_impl::QueryInt;
using store_impl::ReadMeta;
using store_impl::RemoveQuietly;
using store_impl::Stmt;
using store_impl::Transaction;

}  // namespace

int64_t StoreOptions::outbox_budget() const {
  if (max_bytes <= 0) return 0;
  return std::max<int64_t>(1, max_bytes - readings_budget());
}

int64_t StoreOptions::readings_budget() const {
  if (max_bytes <= 0) return 0;
  const double share = std::clamp(readings_share, 0.0, 0.95);
  return static_cast<int64_t>(static_cast<double>(max_bytes) * share);
}

int64_t StoreOptions::dead_letter_budget() const {
  if (max_bytes <= 0) return 0;
  return std::max<int64_t>(1, outbox_budget() / 10);
}

int64_t StoreStats::alerts_evicted() const {
  auto it = outbox.find("alert");
  return it == outbox.end() ? 0 : it->second.evicted;
}

int64_t Evictions::total() const {
  int64_t n = 0;
  for (const auto& [kind, count] : by_kind) n += count;
  return n;
}

std::string RecordId(std::string_view node, std::string_view epoch, int64_t seq) {
  std::string id;
  id.reserve(node.size() + epoch.size() + 22);
  id.append(node).append(":").append(epoch).append(":").append(std::to_string(seq));
  return id;
}

// ---------------------------------------------------------------------------------------
// StoreWriter

StoreWriter::StoreWriter(sqlite3* db, std::string epoch, StoreOptions options)
    : db_(db),
      epoch_(std::move(epoch)),
      options_(std::move(options)),
      stmts_(std::make_unique<Statements>(db)),
      open_(std::make_unique<OpenBlocks>()) {}

StoreWriter::~StoreWriter() {
  // The open blocks are written, so that the next start finds no journal to replay.
  if (Status s = FlushOpenBlocks(); !s) {
    spdlog::warn("store: writing the open readings blocks failed (the journal keeps them): {}",
                 s.message());
  }
  checkpointer_.reset();  // its last checkpoint before the writer's connection closes
  stmts_.reset();         // statements before their connection
  sqlite3_close(db_);
}

Result<std::unique_ptr<StoreWriter>> StoreWriter::Open(const StoreOptions& options,
                                                       OpenReport* report) {
  OpenReport local;
  OpenReport& r = report != nullptr ? *report : local;
  r = OpenReport{};
  std::error_code ec;
  r.created = !std::filesystem::exists(options.path, ec);
  if (auto parent = std::filesystem::path(options.path).parent_path(); !parent.empty()) {
    std::filesystem::create_directories(parent, ec);
  }

  std::string epoch;
  auto db = OpenAndInit(options, &epoch);
  if (!db.ok()) {
    // Permission or missing-directory problems are not corruption: report them as they are.
    if (!std::filesystem::exists(options.path, ec) ||
        access(options.path.c_str(), R_OK | W_OK) != 0) {
      return Status::Error(db.error());
    }
    r.recovered = true;
    r.reason = db.error();
    r.moved_aside_path = options.path + ".corrupt-" + std::to_string(NowMs());
    std::filesystem::rename(options.path, r.moved_aside_path, ec);
    if (ec) {
      return Status::Error("database " + options.path + " is unusable (" + db.error() +
                           ") and could not be moved aside: " + ec.message());
    }
    for (const char* suffix : {"-wal", "-shm"}) {
      std::error_code ignore;
      std::filesystem::rename(options.path + suffix, r.moved_aside_path + suffix, ignore);
      RemoveQuietly(options.path + suffix);
    }
    r.created = true;
    db = OpenAndInit(options, &epoch);
    if (!db.ok()) return Status::Error(db.error());
  }
  auto rows = QueryInt(*db, "SELECT value FROM counters WHERE name = 'readings_rows'");
  auto bytes = QueryInt(*db, "SELECT value FROM counters WHERE name = 'readings_bytes'");
  if (!rows.ok() || !bytes.ok()) {
    sqlite3_close(*db);
    return Status::Error(rows.ok() ? bytes.error() : rows.error());
  }
  std::unique_ptr<StoreWriter> w(new StoreWriter(*db, std::move(epoch), options));
  if (!w->stmts_->ok()) return Status::Error(Describe(w->db_, SQLITE_ERROR, "prepare"));
  w->readings_rows_ = *rows;
  w->readings_bytes_ = *bytes;
  if (Status s = w->LoadOpenBlocks(); !s) return s;
  w->checkpointer_ = Checkpointer::Start(options);
  if (!w->checkpointer_) {
    // Without the thread the writer checkpoints every 1 MiB of log, on its own thread.
    if (Status s = Exec(w->db_, "PRAGMA wal_autocheckpoint=256"); !s) return s;
  }
  return w;
}

Status StoreWriter::Fail(const Status& s) {
  const int rc = sqlite3_extended_errcode(db_);
  // A statement error may already have rolled the transaction back; then this is a no-op.
  if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
  if (s.ok()) return s;
  return Status::WithCode(CodeOf(rc), s.message());
}

// Copies the write-ahead log into the database so that the next transaction writes the log
// from its start again. On a full file system the log cannot grow, but the space it already
// has is enough once it is reused; truncating it would hand that space to whoever fills the
// disk. Best effort (a reader in a transaction delays the restart).
void StoreWriter::RestartWal() {
  (void)sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
}

Status StoreWriter::SaveEpisodes(const std::vector<StoredEpisode>& firing,
                                 const std::vector<EpisodeKey>& resolved) {
  if (firing.empty() && resolved.empty()) return Status::Ok();
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s) return Fail(s);
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Fail(s);
  Stmt upsert(db_,
              "INSERT OR REPLACE INTO rule_episodes(rule, sensor, started_ms, last_ts_ms, "
              "last_value) VALUES (?, ?, ?, ?, ?)");
  Stmt remove(db_, "DELETE FROM rule_episodes WHERE rule = ? AND sensor = ?");
  if (!upsert.ok() || !remove.ok()) {
    return Fail(
        Status::Error(Describe(db_, upsert.ok() ? remove.rc() : upsert.rc(), "prepare episodes")));
  }
  // The caller passes disjoint keys (the last state of each episode in its batch).
  for (const EpisodeKey& k : resolved) {
    sqlite3_stmt* st = remove.fresh();
    BindText(st, 1, k.rule);
    BindText(st, 2, k.sensor);
    if (int rc = sqlite3_step(st); rc != SQLITE_DONE) {
      return Fail(Status::Error(Describe(db_, rc, "delete episode")));
    }
  }
  for (const StoredEpisode& e : firing) {
    sqlite3_stmt* st = upsert.fresh();
    BindText(st, 1, e.rule);
    BindText(st, 2, e.sensor);
    sqlite3_bind_int64(st, 3, e.started_ms);
    sqlite3_bind_int64(st, 4, e.last_ts_ms);
    sqlite3_bind_double(st, 5, e.last_value);
    if (int rc = sqlite3_step(st); rc != SQLITE_DONE) {
      return Fail(Status::Error(Describe(db_, rc, "save episode")));
    }
  }
  int rc = SQLITE_OK;
  if (Status s = Exec(db_, "COMMIT", &rc); !s) return Fail(s);
  return Status::Ok();
}

Result<std::vector<StoredEpisode>> StoreWriter::LoadEpisodes() {
  Stmt st(db_,
          "SELECT rule, sensor, started_ms, last_ts_ms, last_value FROM rule_episodes "
          "ORDER BY rule, sensor");
  if (!st.ok()) return Status::Error(Describe(db_, st.rc(), "select episodes"));
  std::vector<StoredEpisode> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    out.push_back({ColumnText(st.get(), 0), ColumnText(st.get(), 1),
                   sqlite3_column_int64(st.get(), 2), sqlite3_column_int64(st.get(), 3),
                   sqlite3_column_double(st.get(), 4)});
  }
  if (rc != SQLITE_DONE) return Status::Error(Describe(db_, rc, "select episodes"));
  return out;
}

// ---------------------------------------------------------------------------------------
// StoreReader

StoreReader::StoreReader(sqlite3* db, std::string epoch, StoreOptions options)
    : db_(db), epoch_(std::move(epoch)), options_(std::move(options)) {}
StoreReader::~StoreReader() { sqlite3_close(db_); }

Result<std::unique_ptr<StoreReader>> StoreReader::Open(const StoreOptions& options) {
  auto opened = OpenConnection(options, /*create=*/false);
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  auto epoch = ReadMeta(db, "epoch");
  if (!epoch.ok() || epoch->empty()) {
    sqlite3_close(db);
    return Status::Error("database " + options.path + " has no epoch (not initialized)");
  }
  return std::unique_ptr<StoreReader>(new StoreReader(db, std::move(*epoch), options));
}

Result<std::vector<StoredReading>> StoreReader::Readings(std::string_view sensor, int64_t since_ms,
                                                         int64_t until_ms, size_t limit) {
  // One read transaction: blocks and journal from the same snapshot.
  if (Status s = Exec(db_, "BEGIN"); !s) return Status::Error("begin: " + s.message());
  struct Rollback {
    sqlite3* db;
    ~Rollback() { (void)Exec(db, "ROLLBACK"); }
  } rollback{db_};
  Stmt id_q(db_, "SELECT id, flushed_journal FROM sensors WHERE name = ?");
  if (!id_q.ok()) return Status::Error(Describe(db_, id_q.rc(), "prepare readings"));
  BindText(id_q.get(), 1, sensor);
  int rc = sqlite3_step(id_q.get());
  if (rc == SQLITE_DONE) return std::vector<StoredReading>();
  if (rc != SQLITE_ROW) return Status::Error(Describe(db_, rc, "readings"));
  const int64_t id = sqlite3_column_int64(id_q.get(), 0);
  const int64_t flushed = sqlite3_column_int64(id_q.get(), 1);

  std::vector<StoredReading> out;
  std::vector<BlockReading> block;
  Stmt blocks(db_,
              "SELECT data FROM reading_blocks WHERE sensor = ? AND max_ts >= ? AND min_ts <= ? "
              "ORDER BY seq");
  if (!blocks.ok()) return Status::Error(Describe(db_, blocks.rc(), "prepare readings"));
  sqlite3_bind_int64(blocks.get(), 1, id);
  sqlite3_bind_int64(blocks.get(), 2, since_ms);
  sqlite3_bind_int64(blocks.get(), 3, until_ms);
  while ((rc = sqlite3_step(blocks.get())) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(blocks.get(), 0));
    block.clear();
    if (!DecodeBlock({p, static_cast<size_t>(sqlite3_column_bytes(blocks.get(), 0))}, block)) {
      return Status::Error("readings: a block of sensor " + std::string(sensor) + " is malformed");
    }
    for (const BlockReading& r : block) {
      if (r.ts_ms >= since_ms && r.ts_ms <= until_ms) out.push_back(r);
    }
  }
  if (rc != SQLITE_DONE) return Status::Error(Describe(db_, rc, "readings"));
  // Readings not yet in a written block are in the journal rows after flushed_journal.
  Stmt journal(db_, "SELECT data FROM reading_journal WHERE seq > ? ORDER BY seq");
  if (!journal.ok()) return Status::Error(Describe(db_, journal.rc(), "prepare readings"));
  sqlite3_bind_int64(journal.get(), 1, flushed);
  std::vector<JournalReading> rows;
  while ((rc = sqlite3_step(journal.get())) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(journal.get(), 0));
    rows.clear();
    if (!DecodeJournal({p, static_cast<size_t>(sqlite3_column_bytes(journal.get(), 0))}, rows)) {
      return Status::Error("readings: a journal row is malformed");
    }
    for (const JournalReading& r : rows) {
      if (r.sensor == id && r.ts_ms >= since_ms && r.ts_ms <= until_ms) {
        out.push_back({r.ts_ms, r.value});
      }
    }
  }
  if (rc != SQLITE_DONE) return Status::Error(Describe(db_, rc, "readings"));
  // Oldest first; equal timestamps keep arrival order.
  std::stable_sort(out.begin(), out.end(), [](const StoredReading& a, const StoredReading& b) {
    return a.ts_ms < b.ts_ms;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<StoreStats> StoreReader::Stats() {
  StoreStats st;
  st.max_bytes = options_.max_bytes;
  // One read transaction: the counters are consistent with each other.
  if (Status s = Exec(db_, "BEGIN"); !s) return Status::Error("begin: " + s.message());
  auto fail = [&](int rc, std::string_view what) -> Result<StoreStats> {
    std::string msg = Describe(db_, rc, what);
    if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
    return Status::Error(std::move(msg));
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
  (void)Exec(db_, "COMMIT");
  st.db_file_bytes = FileSize(options_.path) + FileSize(options_.path + "-wal");
  return st;
}

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
