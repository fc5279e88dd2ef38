#pragma once

// The agent's SQLite database (one file, WAL mode): the outbox of records waiting for the
// console, and the store epoch that makes record ids unique across database replacement.
//
// Two connections share the file: the pipeline thread owns a StoreWriter (appends in
// group-committed transactions), the network thread owns a StoreReader (fetches and
// deletes acknowledged rows). Each object is used by one thread only; neither is
// thread-safe on its own. SQLite serializes the two writers (busy timeout).
//
// Record id = "<node>:<epoch>:<seq>"; seq is an AUTOINCREMENT rowid, never reused even after
// rows are deleted, and a new database file gets a new random epoch.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edge/common/status.h"

struct sqlite3;

namespace edge::agent {

struct StoreOptions {
  std::string path;
  int busy_timeout_ms = 5000;
};

// Outbox priorities: higher is sent first and evicted last.
enum class Priority : int { kStatus = 0, kRollup = 1, kAlert = 2 };

struct OutboxRow {
  int64_t seq = 0;
  std::string kind;
  int priority = 0;
  int64_t created_ms = 0;
  std::string payload;
};

struct OpenReport {
  bool created = false;          // the file did not exist (or was replaced)
  bool recovered = false;        // a corrupt/unreadable file was moved aside
  std::string moved_aside_path;  // where it went, when recovered
  std::string reason;            // why it was considered corrupt
};

class StoreWriter {
 public:
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Opens or creates the database and its schema. A file that SQLite cannot read as a
  // database, or that fails `PRAGMA quick_check`, is renamed to `<path>.corrupt-<ms>`
  // (with its -wal/-shm) and replaced by a new, empty one; `report` says so.
  static Result<std::unique_ptr<StoreWriter>> Open(const StoreOptions& options,
                                                   OpenReport* report = nullptr);

  const std::string& epoch() const { return epoch_; }

  // One group commit: all rows are inserted in a single transaction and are durable
  // (synchronous=FULL) when this returns OK. On failure nothing is inserted. `seqs_out`
  // (optional) receives the sequence numbers in order.
  struct NewRow {
    std::string_view kind;
    Priority priority;
    int64_t created_ms;
    std::string_view payload;
  };
  Status Append(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out = nullptr);

  Result<int64_t> OutboxCount();

 private:
  StoreWriter(sqlite3* db, std::string epoch);
  sqlite3* db_;
  std::string epoch_;
};

class StoreReader {
 public:
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // Opens a second connection to a database that a StoreWriter already created.
  static Result<std::unique_ptr<StoreReader>> Open(const StoreOptions& options);

  const std::string& epoch() const { return epoch_; }

  // Highest priority first, then oldest first; at most max_items rows and max_bytes of
  // payload (but at least one row when any exists).
  Result<std::vector<OutboxRow>> Fetch(size_t max_items, size_t max_bytes);
  // Deletes the given rows (after the console acknowledged them). Returns rows deleted.
  Result<int64_t> Delete(const std::vector<int64_t>& seqs);
  Result<int64_t> OutboxCount();

 private:
  StoreReader(sqlite3* db, std::string epoch);
  sqlite3* db_;
  std::string epoch_;
};

// "<node>:<epoch>:<seq>"
std::string RecordId(std::string_view node, std::string_view epoch, int64_t seq);

}  // namespace edge::agent
