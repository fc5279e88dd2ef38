#pragma once

// The writer's checkpoint thread (StoreWriter::kCheckpointIntervalMs). Internal to the
// store.

#include <sqlite3.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "edge/agent/store.h"

namespace edge::agent::store_impl {

// Runs PASSIVE checkpoints on a connection of its own, every kCheckpointIntervalMs. A
// passive checkpoint never takes the write lock: writers go on while it copies the log into
// the database. It syncs the log before copying, and the database after. Between
// checkpoints it syncs the log when asked (after each readings commit), which makes the
// readings' NORMAL commits durable within one sync, and leaves an alert's FULL commit only
// its own pages to write. Owned by the StoreWriter; SyncLogSoon() is called from the
// writer's thread, everything else runs on the checkpoint thread.
class Checkpointer {
 public:
  // Opens the connection and starts the thread; null (logged) when the connection cannot
  // be opened, and the connections then checkpoint themselves.
  static std::unique_ptr<Checkpointer> Start(const StoreOptions& options);

  // Asks for the log to be synced now, on this thread: what a NORMAL commit left in the
  // page cache is then on disk before the next FULL commit (an alert's) would have to sync
  // it itself.
  void SyncLogSoon();

  // Stops and joins the thread, then closes the connection.
  ~Checkpointer();

 private:
  Checkpointer(sqlite3* db, std::string wal_path);

  // The log through a descriptor of its own. SQLite keeps its locks on the database and
  // the shared-memory file, never on the log, so this descriptor cannot release one of
  // them when it is closed (as closing a second descriptor of a locked file would).
  void SyncLog();
  void Run();

  sqlite3* db_;
  std::string wal_path_;
  int wal_fd_ = -1;  // the log, opened at the first SyncLog
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;      // guarded by mu_
  bool sync_log_ = false;  // guarded by mu_
  std::thread thread_;     // last: starts after everything it uses
};

}  // namespace edge::agent::store_impl
