#include "store/checkpointer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>

#include "store/sqlite_util.h"

namespace edge::agent::store_impl {

std::unique_ptr<Checkpointer> Checkpointer::Start(const StoreOptions& options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, options.busy_timeout_ms);
    rc = sqlite3_exec(db, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  }
  if (rc != SQLITE_OK) {
    spdlog::warn("store: no checkpoint thread ({}); the connections checkpoint themselves",
                 Describe(db, rc, "open " + options.path));
    sqlite3_close(db);
    return nullptr;
  }
  return std::unique_ptr<Checkpointer>(new Checkpointer(db, options.path + "-wal"));
}

Checkpointer::Checkpointer(sqlite3* db, std::string wal_path)
    : db_(db), wal_path_(std::move(wal_path)), thread_([this] { Run(); }) {}

void Checkpointer::SyncLogSoon() {
  {
    std::lock_guard lock(mu_);
    sync_log_ = true;
  }
  cv_.notify_one();
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (wal_fd_ >= 0) ::close(wal_fd_);
  sqlite3_close(db_);
}

void Checkpointer::SyncLog() {
  if (wal_fd_ < 0) wal_fd_ = ::open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (wal_fd_ >= 0) (void)::fdatasync(wal_fd_);
}

void Checkpointer::Run() {
  bool failing = false;
  std::unique_lock lock(mu_);
  auto next = std::chrono::steady_clock::now() +
              std::chrono::milliseconds(StoreWriter::kCheckpointIntervalMs);
  while (true) {
    cv_.wait_until(lock, next, [this] { return stop_ || sync_log_; });
    if (stop_) break;
    if (sync_log_ && std::chrono::steady_clock::now() < next) {
      sync_log_ = false;
      lock.unlock();
      SyncLog();
      lock.lock();
      continue;
    }
    sync_log_ = false;
    next = std::chrono::steady_clock::now() +
           std::chrono::milliseconds(StoreWriter::kCheckpointIntervalMs);
    lock.unlock();
    const int rc =
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    // BUSY: another checkpoint is running (a backstop or a log restart); next time then.
    const bool failed = rc != SQLITE_OK && rc != SQLITE_BUSY;
    if (failed && !failing) {
      spdlog::warn("store: checkpoint failed: {}", Describe(db_, rc, "checkpoint"));
    }
    failing = failed;
    lock.lock();
  }
}

}  // namespace edge::agent::store_impl
