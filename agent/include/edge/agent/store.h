#pragma once

// The agent's SQLite database (one file, WAL mode): the outbox of records waiting for the
// console, the dead-letter table of records the console refused, the readings ring, and the
// store epoch that makes record ids unique across database replacement.
//
// Two connections share the file: the pipeline thread owns a StoreWriter (appends in
// group-committed transactions, evicts, prunes the ring), the network thread owns a
// StoreReader (fetches, deletes acknowledged rows, dead-letters refused ones, serves
// readings and statistics). Each object is used by one thread only; neither is thread-safe
// on its own. SQLite serializes the two writers (busy timeout).
//
// StoreWriter and StoreReader are interfaces; their Open factories return the SQLite
// implementation (agent/src/store/), which this header does not show.
//
// Record id = "<node>:<epoch>:<seq>"; seq is an AUTOINCREMENT rowid, never reused even after
// rows are deleted, and a new database file gets a new random epoch.
//
// Size bound (docs/operations.md): `max_bytes` is split into the readings ring
// (`readings_share` of it) and the outbox (the rest). The dead-letter table is bounded to a
// tenth of the outbox share. Sizes are logical: payload bytes plus a fixed per-row overhead
// (kOutboxRowOverhead, kReadingBlockOverhead), calibrated against SQLite's page usage.
//
// Errors: every method returns a Status/Result and leaves the database as it was on failure
// (one transaction per call). SQLITE_FULL and I/O errors are errors like any other, never a
// crash; the writer's failures carry the code of what failed (Status::IsFull() for
// SQLITE_FULL, IsIOError(), IsCorruption(), IsUnavailable() for a busy database).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edge/agent/mqtt_delivery.h"
#include "edge/agent/reading_block.h"
#include "edge/common/clock.h"
#include "edge/common/status.h"

namespace edge::agent {

inline constexpr int64_t kDefaultStoreMaxBytes = int64_t{256} << 20;
// Logical cost of one outbox or dead-letter row besides its kind and payload bytes.
inline constexpr int64_t kOutboxRowOverhead = 48;
// Logical cost of one block of the readings ring besides its encoded readings (table cell
// and index entry); a reading itself costs 2 to 10 bytes, about 5 (reading_block.h).
inline constexpr int64_t kReadingBlockOverhead = 48;

struct StoreOptions {
  std::string path;
  int busy_timeout_ms = 5000;
  // Bound of the logical content; 0 disables every bound (tests).
  int64_t max_bytes = kDefaultStoreMaxBytes;
  // Fraction of max_bytes for the readings ring, 0 to 0.95; the outbox gets the rest.
  double readings_share = 0.5;
  // Readings older than this (by arrival order, see PruneReadings) are pruned; 0 keeps them
  // until the byte bound removes them.
  int64_t retention_ms = 24 * 3600 * 1000;
  // PRAGMA max_page_count on both connections; 0 leaves SQLite's default. A test knob that
  // makes the file system "full" at a chosen size.
  int64_t max_pages = 0;
  // Readings ring blocks (StoreWriter::AppendReadings): a sensor's block is written when it
  // holds this many readings, or this long after its first reading (between half of it
  // and all of it, fixed per sensor); 0 writes every block at the end of its commit.
  int reading_block_max_readings = 64;
  int64_t reading_block_max_age_ms = 30'000;
  // Monotonic time of the readings ring: block ages and how often sensors without readings
  // are swept. Borrowed (must outlive the writer); null: the system clock.
  const Clock* clock = nullptr;

  int64_t outbox_budget() const;
  int64_t readings_budget() const;
  int64_t dead_letter_budget() const;
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

// One raw reading of the ring.
using StoredReading = BlockReading;

// Counts per outbox kind. `rows`/`bytes` are what is in the outbox now; `evicted` and
// `dead_lettered` are totals since the database file was created (they survive restarts).
struct OutboxKindStats {
  int64_t rows = 0;
  int64_t bytes = 0;
  int64_t evicted = 0;
  int64_t dead_lettered = 0;
};

// A snapshot of the store for the status heartbeat and /metrics.
struct StoreStats {
  std::map<std::string, OutboxKindStats> outbox;  // by kind ("alert", "rollup", "status")
  int64_t outbox_rows = 0;                        // sums over kinds
  int64_t outbox_bytes = 0;
  int64_t dead_letter_rows = 0;
  int64_t dead_letter_bytes = 0;
  int64_t dead_letter_evicted = 0;  // dead-letter rows dropped by its bound, total
  int64_t readings_rows = 0;
  int64_t readings_bytes = 0;
  int64_t readings_pruned = 0;  // by retention or by the byte bound, total
  int64_t db_file_bytes = 0;    // database file plus its -wal file, on disk
  int64_t max_bytes = 0;        // the configured bound (0: unbounded)

  int64_t alerts_evicted() const;
};

// What one outbox append evicted to stay within the bound, by kind.
struct Evictions {
  std::map<std::string, int64_t> by_kind;
  int64_t total() const;
};

// A firing episode of one rule on one sensor (see StoreWriter::SaveEpisodes).
struct StoredEpisode {
  std::string rule;
  std::string sensor;
  int64_t started_ms = 0;
  int64_t last_ts_ms = 0;
  double last_value = 0;
};
struct EpisodeKey {
  std::string_view rule;
  std::string_view sensor;
};

// The console policy in force (docs/protocol.md, "Policy channel"): a signed version as
// received, kept so that a restart runs it again without the console.
struct StoredConsolePolicy {
  std::string name;
  int64_t version = 0;
  std::string body;
  std::string signature;   // base64, as the console sent it
  int64_t applied_ms = 0;  // wall clock when it was applied
  int64_t seq = 0;         // the console's fleet sequence; 0: stored by an agent before it
};

class StoreWriter {
 public:
  virtual ~StoreWriter() = default;
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Opens or creates the database and its schema (upgrading an older schema in place). A
  // file that SQLite cannot read as a database, or that fails `PRAGMA quick_check`, is
  // renamed to `<path>.corrupt-<ms>` (with its -wal/-shm) and replaced by a new, empty one;
  // `report` says so.
  static Result<std::unique_ptr<StoreWriter>> Open(const StoreOptions& options,
                                                   OpenReport* report = nullptr);

  virtual const std::string& epoch() const = 0;
  virtual const StoreOptions& options() const = 0;

  // One group commit of outbox rows: all rows are inserted in a single transaction and are
  // durable (synchronous=FULL) when this returns OK. Before inserting, rows are evicted
  // oldest first from the lowest priority up (status, rollup, then alert) until the outbox
  // fits its share; `evicted` (optional) says what went. When the file system or
  // max_page_count is full, the write-ahead log is restarted, then the readings ring is cut
  // (or, when it is empty, an eighth of the outbox evicted), retrying after each step. On
  // failure nothing is inserted or evicted. `seqs_out` (optional) receives the sequence
  // numbers in order.
  struct NewRow {
    std::string_view kind;
    Priority priority;
    int64_t created_ms;
    std::string_view payload;
  };
  virtual Status Append(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out = nullptr,
                        Evictions* evicted = nullptr) = 0;

  // One group commit of readings into the ring, with a cheaper durability than Append:
  // synchronous=NORMAL (survives a process crash as soon as this returns; a power loss can
  // take back what was committed since the last fsync). The writer's checkpoint thread
  // syncs the log right after, and checkpoints every kCheckpointIntervalMs, so that window
  // stays short without an fsync on the caller's thread. The readings go into one journal row and
  // into each sensor's open block; blocks that are full or old enough are written (the "Readings
  // ring" comment in store/readings_ring.cc). In the same transaction the ring is pruned, whole
  // blocks at a time, by retention (arrival order, `now_ms` wall time) and by its byte
  // share; `pruned` (optional) receives the readings removed. On SQLITE_FULL the
  // write-ahead log is restarted, then a quarter of the ring is cut, retrying after each
  // step; on failure the readings are not stored.
  //
  // `id_hint` (optional) is a word the caller keeps per sensor for this writer, zero at
  // first: the writer caches the sensor's id there and then skips the lookup by name.
  struct NewReading {
    std::string_view sensor;
    int64_t ts_ms;
    double value;
    uint64_t* id_hint = nullptr;
  };
  //
  // `delivered` (optional): the packet ids and digests of the QoS 1/2 messages these
  // readings came from (mqtt_delivery.h), kept in the same transaction in place of the last
  // commit's; with no readings, only they are written.
  virtual Status AppendReadings(const std::vector<NewReading>& readings, int64_t now_ms,
                                int64_t* pruned = nullptr,
                                std::span<const DeliveredMessage> delivered = {}) = 0;
  // The `delivered` of the last readings commit that had any.
  virtual Result<std::vector<DeliveredMessage>> LoadDelivered() = 0;

  virtual Result<int64_t> OutboxCount() = 0;
  // Readings in the ring: in written blocks and in open ones.
  virtual Result<int64_t> ReadingsCount() = 0;

  // Firing rule episodes, kept so that a restart neither fires them again nor loses their
  // resolve (docs/policy.md, "Restarts"). One durable transaction (synchronous=FULL):
  // `resolved` are deleted first, then `firing` are inserted or replace the row of their
  // (rule, sensor). On failure nothing changes. AppendWithEpisodes (below) writes them with
  // the outbox rows of their events.
  virtual Status SaveEpisodes(const std::vector<StoredEpisode>& firing,
                              const std::vector<EpisodeKey>& resolved) = 0;
  virtual Result<std::vector<StoredEpisode>> LoadEpisodes() = 0;

  // Append (above) with the episode changes of SaveEpisodes in the same transaction
  // (synchronous=FULL): one commit and one sync for an alert and the episode it records. On
  // failure neither the rows nor the episodes are written.
  struct EpisodeChanges {
    const std::vector<StoredEpisode>& firing;
    const std::vector<EpisodeKey>& resolved;
  };
  //
  // `readings` (optional): AppendReadings' arguments, committed in the same transaction (at
  // synchronous=FULL), so that the readings, the alerts they raised and the record of the
  // messages they came from are on disk together or not at all (acknowledge after commit).
  struct ReadingsBatch {
    const std::vector<NewReading>& readings;
    int64_t now_ms = 0;
    std::span<const DeliveredMessage> delivered;
    int64_t* pruned = nullptr;
  };
  virtual Status AppendWithEpisodes(const std::vector<NewRow>& rows, EpisodeChanges episodes,
                                    Evictions* evicted,
                                    const ReadingsBatch* readings = nullptr) = 0;

  // How often the checkpoint thread copies the write-ahead log into the database (and
  // syncs both). Checkpoints run there, on a connection of their own, so neither the
  // pipeline nor the uplink ever waits for one; the connections checkpoint themselves only
  // as a backstop, when the log passes 16 MiB (the thread is stuck or could not start).
  // Each checkpoint writes every page changed since the last one to the database file, so
  // a longer interval writes a page changed by many commits (the ring's index, its counts)
  // once instead of several times: 1 s wrote 9% less than 250 ms at 10,000 readings/s
  // (docs/performance.md, "Flash wear"), for a log of about 0.5 MiB at that rate.
  static constexpr int64_t kCheckpointIntervalMs = 1000;

 protected:
  StoreWriter() = default;
};

class StoreReader {
 public:
  virtual ~StoreReader() = default;
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // Opens a second connection to a database that a StoreWriter already created.
  static Result<std::unique_ptr<StoreReader>> Open(const StoreOptions& options);

  virtual const std::string& epoch() const = 0;

  // Highest priority first, then oldest first; at most max_items rows and max_bytes of
  // payload (but at least one row when any exists). When more rows wait than one batch
  // holds, the newest rows of the highest priority lead the batch, within an eighth of its
  // rows and of max_bytes, so that a live alert never waits behind a backlog of older
  // alerts (the console deduplicates by id and orders alerts by time, so delivery order is
  // free).
  virtual Result<std::vector<OutboxRow>> Fetch(size_t max_items, size_t max_bytes) = 0;
  // Deletes the given rows (after the console acknowledged them). Returns rows deleted.
  virtual Result<int64_t> Delete(const std::vector<int64_t>& seqs) = 0;
  // Moves the given outbox rows to the dead-letter table with `reason` and the current wall
  // time, in one transaction (synchronous=FULL); seqs not in the outbox are ignored. The
  // dead-letter table is then cut, oldest first, to its bound (counted in
  // StoreStats::dead_letter_evicted). Returns rows moved.
  virtual Result<int64_t> DeadLetter(const std::vector<int64_t>& seqs, std::string_view reason) = 0;
  virtual Result<int64_t> OutboxCount() = 0;

  // Readings of one sensor with since_ms <= ts_ms <= until_ms, oldest first, at most
  // `limit`. An unknown sensor gives an empty list.
  virtual Result<std::vector<StoredReading>> Readings(std::string_view sensor, int64_t since_ms,
                                                      int64_t until_ms, size_t limit) = 0;

  // The ids of the sensors the readings ring has held readings of, sorted (a sensor whose
  // readings were all pruned may still be listed).
  virtual Result<std::vector<std::string>> Sensors() = 0;

  // Counters kept in the database itself, plus the file size; cheap (no table scans).
  virtual Result<StoreStats> Stats() = 0;

  // Console policies. The one in force, if any.
  virtual Result<std::optional<StoredConsolePolicy>> LoadConsolePolicy() = 0;
  // One durable statement (synchronous=FULL): `policy` becomes the one in force, and its
  // seq the floor below which the console's versions are refused. On failure nothing
  // changes.
  virtual Status SaveConsolePolicy(const StoredConsolePolicy& policy) = 0;

 protected:
  StoreReader() = default;
};

// "<node>:<epoch>:<seq>"
std::string RecordId(std::string_view node, std::string_view epoch, int64_t seq);

}  // namespace edge::agent
