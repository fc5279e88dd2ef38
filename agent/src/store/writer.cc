// StoreWriter (store.h): opening the database (moving a corrupt file aside), the writer's
// connection (SqliteStoreWriter) and its failure handling, and the store's value types. The
// writer's jobs are in outbox.cc, readings_ring.cc and episodes.cc; StoreReader is in
// reader.cc.
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>

#include "edge/agent/store.h"
#include "store/checkpointer.h"
#include "store/schema.h"
#include "store/sqlite_util.h"
#include "store/writer_internals.h"

namespace edge::agent {

using store_impl::Exec;
using store_impl::NowMs;
using store_impl::OpenAndInit;
using store_impl::QueryInt;
using store_impl::RemoveQuietly;
using store_impl::SqliteError;

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
// SqliteStoreWriter

SqliteStoreWriter::SqliteStoreWriter(sqlite3* db, std::string epoch, StoreOptions options)
    : db_(db),
      epoch_(std::move(epoch)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : system_clock_),
      stmts_(std::make_unique<Statements>(db)),
      open_(std::make_unique<OpenBlocks>()) {}

SqliteStoreWriter::~SqliteStoreWriter() {
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
    // Permission or missing-directory problems are not corruption, nor are an I/O error, a
    // full disk or a lock another process holds: they say nothing about the file, and moving
    // it aside would abandon every row it holds. Nor is a file of a newer schema (a
    // rollback: kInvalidArgument). Report them as they are.
    const Status::Code code = db.status().code();
    if (code == Status::Code::kIOError || code == Status::Code::kFull ||
        code == Status::Code::kUnavailable || code == Status::Code::kInvalidArgument ||
        !std::filesystem::exists(options.path, ec) ||
        access(options.path.c_str(), R_OK | W_OK) != 0) {
      return db.status();
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
  return SqliteStoreWriter::Start(*db, std::move(epoch), options);
}

Result<std::unique_ptr<StoreWriter>> SqliteStoreWriter::Start(sqlite3* db, std::string epoch,
                                                              const StoreOptions& options) {
  auto rows = QueryInt(db, "SELECT value FROM counters WHERE name = 'readings_rows'");
  auto bytes = QueryInt(db, "SELECT value FROM counters WHERE name = 'readings_bytes'");
  if (!rows.ok() || !bytes.ok()) {
    sqlite3_close(db);
    return Status::Error(rows.ok() ? bytes.error() : rows.error());
  }
  std::unique_ptr<SqliteStoreWriter> w(new SqliteStoreWriter(db, std::move(epoch), options));
  if (!w->stmts_->ok()) return SqliteError(w->db_, SQLITE_ERROR, "prepare");
  w->readings_rows_ = *rows;
  w->readings_bytes_ = *bytes;
  if (Status s = w->LoadOpenBlocks(); !s) return s;
  w->checkpointer_ = store_impl::Checkpointer::Start(options);
  if (!w->checkpointer_) {
    // Without the thread the writer checkpoints every 1 MiB of log, on its own thread.
    if (Status s = Exec(w->db_, "PRAGMA wal_autocheckpoint=256"); !s) return s;
  }
  return std::unique_ptr<StoreWriter>(std::move(w));
}

Status SqliteStoreWriter::SetSynchronous(bool full) {
  if (synchronous_full_ == full) return Status::Ok();
  synchronous_full_.reset();  // unknown until the pragma has run
  if (Status s = Exec(db_, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"); !s) {
    return s;
  }
  synchronous_full_ = full;
  return Status::Ok();
}

Status SqliteStoreWriter::Fail(const Status& s) {
  // A statement error may already have rolled the transaction back; then this is a no-op.
  if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
  return s;
}

// Copies the write-ahead log into the database so that the next transaction writes the log
// from its start again. On a full file system the log cannot grow, but the space it already
// has is enough once it is reused; truncating it would hand that space to whoever fills the
// disk. Best effort (a reader in a transaction delays the restart).
void SqliteStoreWriter::RestartWal() {
  (void)sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
}

}  // namespace edge::agent
