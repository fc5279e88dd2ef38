#pragma once

// SqliteStoreWriter, the StoreWriter (store.h) that StoreWriter::Open returns, and what its
// files (writer.cc, outbox.cc, readings_ring.cc, episodes.cc) share: its prepared statements
// and the open blocks of the readings ring. Internal to the store; used by the writer's
// thread only.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "edge/agent/store.h"
#include "edge/common/clock.h"
#include "edge/common/string_hash.h"
#include "store/block_builder.h"
#include "store/schema.h"
#include "store/sqlite_util.h"

namespace edge::agent {

using store_impl::Stmt;

namespace store_impl {
class Checkpointer;
}

class SqliteStoreWriter final : public StoreWriter {
 public:
  // Takes `db`, an initialized connection (schema.h OpenAndInit), and loads the writer's
  // state from it; closes it on failure.
  static Result<std::unique_ptr<StoreWriter>> Start(sqlite3* db, std::string epoch,
                                                    const StoreOptions& options);
  ~SqliteStoreWriter() override;

  const std::string& epoch() const override { return epoch_; }
  const StoreOptions& options() const override { return options_; }
  Status Append(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out,
                Evictions* evicted) override;
  Result<std::vector<DeliveredMessage>> LoadDelivered() override;
  Status AppendReadings(const std::vector<NewReading>& readings, int64_t now_ms, int64_t* pruned,
                        std::span<const DeliveredMessage> delivered) override;
  Result<int64_t> OutboxCount() override;
  Result<int64_t> ReadingsCount() override;
  Status SaveEpisodes(const std::vector<StoredEpisode>& firing,
                      const std::vector<EpisodeKey>& resolved) override;
  Result<std::vector<StoredEpisode>> LoadEpisodes() override;
  Status AppendWithEpisodes(const std::vector<NewRow>& rows, EpisodeChanges episodes,
                            Evictions* evicted, const ReadingsBatch* readings) override;

 private:
  struct Statements;
  struct OpenBlocks;
  SqliteStoreWriter(sqlite3* db, std::string epoch, StoreOptions options);
  // Append, and with `episodes` and `readings` (optional) AppendWithEpisodes.
  Status AppendRetrying(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out,
                        Evictions* evicted, const EpisodeChanges* episodes,
                        const ReadingsBatch* readings);
  Status AppendOnce(const std::vector<NewRow>& rows, std::vector<int64_t>* seqs_out,
                    Evictions* evicted, const EpisodeChanges* episodes,
                    const ReadingsBatch* readings);
  // The statements of SaveEpisodes, inside the caller's transaction.
  Status WriteEpisodes(const EpisodeChanges& episodes);
  Status AppendReadingsOnce(const std::vector<NewReading>& readings, int64_t now_ms,
                            int64_t* pruned, std::span<const DeliveredMessage> delivered);
  // What a readings write changed, applied to the writer's counts once its transaction
  // committed (ReadingsCommitted).
  struct ReadingsOutcome {
    int64_t rows_delta = 0;
    int64_t bytes_delta = 0;
    int64_t removed = 0;
  };
  // The body of AppendReadings inside the caller's transaction; nothing is rolled back.
  Status WriteReadings(const ReadingsBatch& batch, ReadingsOutcome& out);
  void ReadingsCommitted(const ReadingsBatch& batch, const ReadingsOutcome& out);
  // After a failed transaction that wrote readings: the open blocks are rebuilt from what
  // the database still holds, and cached sensor ids are dropped.
  void ReadingsRolledBack();
  // The statement of `delivered`, inside the caller's transaction.
  Status WriteDelivered(std::span<const DeliveredMessage> delivered);
  Status Evict(int64_t bytes, Evictions& ev);
  Result<int64_t> SensorId(std::string_view name);
  Status CutReadings(int64_t rows, int64_t* pruned);
  Status DeleteUnusedSensors(int64_t* deleted);
  int64_t BlockAgeMs(int64_t sensor) const;
  Status LoadOpenBlocks();
  // Returns the readings the sensor's open block now holds.
  int64_t AddToOpenBlock(int64_t sensor, int64_t journal, int64_t ts_ms, double value,
                         int64_t now_mono_ms);
  Status FlushBlock(int64_t sensor, int64_t* bytes_added);
  Status FlushOpenBlocks();
  Status TrimJournal(int64_t* bytes_removed);
  Status DeleteBlocksBefore(int64_t before, int64_t* readings, int64_t* bytes);
  Status RemoveBlocksBefore(int64_t before, int64_t n, int64_t b, int64_t* readings,
                            int64_t* bytes);
  Status DeleteOldestBlocks(int64_t readings, int64_t bytes, int64_t* removed,
                            int64_t* bytes_removed);
  void RestartWal();
  Status Fail(const Status& s);
  // Sets PRAGMA synchronous on the writer's connection to FULL (an fsync of the log at
  // commit) or NORMAL. The pragma takes effect when its statement is prepared, not when it
  // is stepped, so it cannot be a cached statement (one prepared once and stepped again does
  // nothing): it is run as text, and only when the level changes. Nothing else on db_ sets
  // the pragma, so that the remembered level is the connection's.
  Status SetSynchronous(bool full);

  sqlite3* db_;
  std::string epoch_;
  StoreOptions options_;
  SystemClock system_clock_;
  const Clock& clock_;  // options_.clock, or system_clock_
  std::unique_ptr<Statements> stmts_;
  std::optional<bool> synchronous_full_;  // what SetSynchronous last set; none: unknown
  // Cache of the sensors table.
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> sensor_ids_;
  // NewReading::id_hint is generation << 32 | id; a failed transaction (which may take
  // back ids it inserted) starts a new generation, so older hints are looked up again.
  uint32_t id_generation_ = 1;
  std::unique_ptr<OpenBlocks> open_;  // open blocks of the readings ring
  std::string journal_buf_;           // reused per commit
  std::string delivered_buf_;         // reused per commit
  std::vector<int64_t> sensor_buf_;
  std::vector<int64_t> due_buf_;
  int64_t readings_rows_ = 0;               // readings in the ring (the writer is its only writer)
  int64_t readings_bytes_ = 0;              // logical bytes of blocks and journal rows
  int64_t last_retention_ms_ = 0;           // wall time of the last retention prune
  bool pruned_since_sensor_sweep_ = false;  // blocks were removed since DeleteUnusedSensors
  int64_t next_sensor_sweep_ms_ = 0;        // clock_'s monotonic time
  std::unique_ptr<store_impl::Checkpointer> checkpointer_;  // stopped first by the destructor
};

// Statements of the hot paths, prepared once per connection.
struct SqliteStoreWriter::Statements {
  explicit Statements(sqlite3* db)
      : insert_outbox(db,
                      "INSERT INTO outbox(kind, priority, created_ms, payload) "
                      "VALUES (?, ?, ?, ?)"),
        insert_journal(db, "INSERT INTO reading_journal(n, data, format) VALUES (?, ?, ?)"),
        save_delivered(db, "INSERT OR REPLACE INTO mqtt_delivered(id, data) VALUES (1, ?)"),
        insert_block(db, store_impl::kInsertBlock),
        mark_flushed(db, "UPDATE sensors SET flushed_journal = ? WHERE id = ?"),
        delete_journal(db, "DELETE FROM reading_journal WHERE seq <= ?"),
        delete_all_journal(db, "DELETE FROM reading_journal"),
        insert_sensor(db, "INSERT OR IGNORE INTO sensors(name) VALUES (?)"),
        select_sensor(db, "SELECT id FROM sensors WHERE name = ?"),
        outbox_bytes(db, "SELECT total(bytes) FROM outbox_kinds"),
        select_evictable(db, store_impl::kSelectEvictable),
        delete_outbox(db, "DELETE FROM outbox WHERE seq = ?"),
        count_evicted(db, "UPDATE outbox_kinds SET evicted = evicted + ? WHERE kind = ?"),
        count_inserted(db,
                       "INSERT INTO outbox_kinds(kind, rows, bytes) VALUES (?, ?, ?) "
                       "ON CONFLICT(kind) DO UPDATE SET rows = rows + excluded.rows, "
                       "bytes = bytes + excluded.bytes"),
        first_kept(db, "SELECT seq FROM reading_blocks WHERE max_ts >= ? ORDER BY seq LIMIT 1"),
        oldest_blocks(db,
                      "SELECT seq, n, length(data) + 48 "
                      "FROM reading_blocks ORDER BY seq"),
        sum_blocks_before(
            db, "SELECT total(n), total(length(data) + 48) FROM reading_blocks WHERE seq < ?"),
        delete_blocks_before(db, "DELETE FROM reading_blocks WHERE seq < ?"),
        add_counter(db, "UPDATE counters SET value = value + ? WHERE name = ?"),
        begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT") {}

  bool ok() const {
    for (const Stmt* s : {&insert_outbox,
                          &insert_journal,
                          &save_delivered,
                          &insert_block,
                          &mark_flushed,
                          &delete_journal,
                          &delete_all_journal,
                          &insert_sensor,
                          &select_sensor,
                          &outbox_bytes,
                          &select_evictable,
                          &delete_outbox,
                          &count_evicted,
                          &count_inserted,
                          &first_kept,
                          &oldest_blocks,
                          &sum_blocks_before,
                          &delete_blocks_before,
                          &add_counter,
                          &begin,
                          &commit}) {
      if (!s->ok()) return false;
    }
    return true;
  }

  Stmt insert_outbox;
  Stmt insert_journal;
  Stmt save_delivered;
  Stmt insert_block;
  Stmt mark_flushed;
  Stmt delete_journal;
  Stmt delete_all_journal;
  Stmt insert_sensor;
  Stmt select_sensor;
  Stmt outbox_bytes;
  Stmt select_evictable;
  Stmt delete_outbox;
  Stmt count_evicted;
  Stmt count_inserted;
  Stmt first_kept;
  Stmt oldest_blocks;
  Stmt sum_blocks_before;
  Stmt delete_blocks_before;
  Stmt add_counter;
  // The statements every append runs, prepared once (see ExecPrepared). Not PRAGMA
  // synchronous: see SqliteStoreWriter::SetSynchronous.
  Stmt begin;
  Stmt commit;
};

// The open blocks of the readings ring (readings_ring.cc).
struct SqliteStoreWriter::OpenBlocks {
  struct Block {
    store_impl::BlockBuilder b;
    int64_t first_journal = 0;
    int64_t last_journal = 0;
    int64_t deadline_ms = 0;  // the writer's monotonic clock
  };
  std::unordered_map<int64_t, Block> by_sensor;
  // (deadline, sensor) of every block opened, soonest first, so that finding the blocks
  // past their age looks at those only, not at every open block. An entry whose block was
  // written early (full) stays until its deadline and is then skipped.
  std::priority_queue<std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>,
                      std::greater<>>
      by_deadline;
  std::map<int64_t, int64_t> by_first_journal;      // journal seq -> open blocks from it
  std::deque<std::pair<int64_t, int64_t>> journal;  // (seq, logical bytes) of journal rows
  int64_t bytes = 0;                                // encoded bytes held
  int64_t next_due_check_ms = 0;                    // the writer's monotonic clock
  bool valid = false;                               // false: reload before the next append

  void Clear() {
    by_sensor.clear();
    by_deadline = {};
    by_first_journal.clear();
    journal.clear();
    bytes = 0;
    valid = false;
  }
};

}  // namespace edge::agent
