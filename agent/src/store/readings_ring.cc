// The readings ring of StoreWriter (store.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <unordered_set>

#include "store/checkpointer.h"
#include "store/writer_internals.h"

namespace edge::agent {

using store_impl::BindText;
using store_impl::BlockBuilder;
using store_impl::Exec;
using store_impl::ExecPrepared;
using store_impl::InsertBlock;
using store_impl::QueryInt;
using store_impl::SqliteError;
using store_impl::Transaction;

// Readings ring
//
// Readings are stored in blocks, one row per sensor holding up to
// reading_block_max_readings of its readings (reading_block.h has the encoding), so that
// a reading costs about five bytes and a fraction of a row instead of a row and an index
// entry. A sensor's open block lives in memory; what makes its readings durable before the
// block is written is the journal: every commit writes one reading_journal row holding all
// of that commit's readings. A block is written when it is full or reading_block_max_age_ms
// after it opened (jittered per sensor, so that sensors opened together are not all
// written at once), and `sensors.flushed_journal` then records the last journal row whose
// readings of that sensor are in written blocks. A journal row is deleted once no open
// block holds a reading from it.
//
// The database alone defines the ring: blocks, plus the journal's readings of each sensor
// newer than its flushed_journal. The open blocks are rebuilt from it when the writer opens
// and after a failed transaction (LoadOpenBlocks), and the reader serves the same union.

namespace {

// The sensor-id cache of the writer is cleared when it grows past this (ids come from
// untrusted topics).
// Sensor ids are cached by name for sensors whose caller keeps no id hint; a sensor id can
// be 1 KiB long, so the cache stays small (the pipeline's hints skip it).
constexpr size_t kMaxCachedSensors = 4096;
// Rows of sensors with no readings left in the ring are deleted at most this often, after
// the ring was pruned (a sweep reads the sensors table).
constexpr int64_t kSensorSweepIntervalMs = 10'000;

// Open blocks hold at most this many encoded bytes in memory; past it every open block is
// written at the end of the commit.
constexpr int64_t kMaxOpenBlockBytes = int64_t{8} << 20;
// Block rows cost their data plus this in the ring's byte accounting (the SQL below writes
// it as a literal).
static_assert(kReadingBlockOverhead == 48);

}  // namespace

Result<int64_t> SqliteStoreWriter::SensorId(std::string_view name) {
  if (auto it = sensor_ids_.find(name); it != sensor_ids_.end()) return it->second;
  sqlite3_stmt* ins = stmts_->insert_sensor.fresh();
  BindText(ins, 1, name);
  if (int rc = sqlite3_step(ins); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "insert sensor");
  }
  sqlite3_reset(ins);
  sqlite3_stmt* sel = stmts_->select_sensor.fresh();
  BindText(sel, 1, name);
  if (int rc = sqlite3_step(sel); rc != SQLITE_ROW) {
    return SqliteError(db_, rc, "select sensor");
  }
  const int64_t id = sqlite3_column_int64(sel, 0);
  sqlite3_reset(sel);
  if (sensor_ids_.size() >= kMaxCachedSensors) sensor_ids_.clear();
  sensor_ids_.emplace(std::string(name), id);
  return id;
}

int64_t SqliteStoreWriter::BlockAgeMs(int64_t sensor) const {
  const int64_t max_age = options_.reading_block_max_age_ms;
  if (max_age <= 0) return 0;
  // Between half the age and the age, fixed per sensor.
  const uint64_t mix = static_cast<uint64_t>(sensor) * 0x9E3779B97F4A7C15ull;
  return max_age / 2 + static_cast<int64_t>((mix >> 33) % static_cast<uint64_t>(max_age / 2 + 1));
}

Status SqliteStoreWriter::LoadOpenBlocks() {
  OpenBlocks& ob = *open_;
  ob.Clear();
  Stmt journal(db_, "SELECT seq, data, format FROM reading_journal ORDER BY seq");
  if (!journal.ok()) return SqliteError(db_, journal.rc(), "read journal");
  std::vector<std::pair<int64_t, std::vector<JournalReading>>> rows;
  int rc;
  while ((rc = sqlite3_step(journal.get())) == SQLITE_ROW) {
    const int64_t seq = sqlite3_column_int64(journal.get(), 0);
    const auto* p = static_cast<const char*>(sqlite3_column_blob(journal.get(), 1));
    const std::string_view data(p, static_cast<size_t>(sqlite3_column_bytes(journal.get(), 1)));
    ob.journal.emplace_back(seq, static_cast<int64_t>(data.size()) + kReadingBlockOverhead);
    std::vector<JournalReading> readings;
    const auto format = static_cast<BlockFormat>(sqlite3_column_int(journal.get(), 2));
    if (!DecodeJournal(data, format, readings)) {
      spdlog::error(
          "store: journal row {} of the readings ring is malformed; its readings are "
          "skipped",
          seq);
      continue;
    }
    rows.emplace_back(seq, std::move(readings));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "read journal");
  if (!rows.empty()) {
    std::unordered_map<int64_t, int64_t> flushed;
    Stmt s(db_, "SELECT id, flushed_journal FROM sensors WHERE flushed_journal >= ?");
    if (!s.ok()) return SqliteError(db_, s.rc(), "read sensors");
    sqlite3_bind_int64(s.get(), 1, rows.front().first);
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      flushed[sqlite3_column_int64(s.get(), 0)] = sqlite3_column_int64(s.get(), 1);
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "read sensors");
    const int64_t now = clock_.MonotonicMs();
    for (const auto& [seq, readings] : rows) {
      for (const JournalReading& r : readings) {
        if (auto it = flushed.find(r.sensor); it != flushed.end() && seq <= it->second) continue;
        AddToOpenBlock(r.sensor, seq, r.ts_ms, r.value, now);
      }
    }
  }
  ob.valid = true;
  return Status::Ok();
}

int64_t SqliteStoreWriter::AddToOpenBlock(int64_t sensor, int64_t journal, int64_t ts_ms,
                                          double value, int64_t now_mono_ms) {
  OpenBlocks& ob = *open_;
  OpenBlocks::Block& b = ob.by_sensor[sensor];
  if (b.b.n == 0) {
    b.first_journal = journal;
    b.deadline_ms = now_mono_ms + BlockAgeMs(sensor);
    ob.by_deadline.emplace(b.deadline_ms, sensor);
    // Sensors that fill blocks fast leave entries of written blocks behind; past twice the
    // open blocks, the queue is rebuilt from the open blocks.
    if (ob.by_deadline.size() > 2 * ob.by_sensor.size() + 1024) {
      std::vector<std::pair<int64_t, int64_t>> live;
      live.reserve(ob.by_sensor.size());
      for (const auto& [id, open] : ob.by_sensor) live.emplace_back(open.deadline_ms, id);
      ob.by_deadline = decltype(ob.by_deadline)(std::greater<>(), std::move(live));
    }
    ++ob.by_first_journal[journal];
  }
  const size_t before = b.b.data.size();
  b.b.Add(ts_ms, value);
  b.last_journal = journal;
  ob.bytes += static_cast<int64_t>(b.b.data.size() - before);
  return b.b.n;
}

// Inside a transaction: writes the open block of `sensor` and forgets it.
Status SqliteStoreWriter::FlushBlock(int64_t sensor, int64_t* bytes_added) {
  OpenBlocks& ob = *open_;
  auto it = ob.by_sensor.find(sensor);
  if (it == ob.by_sensor.end()) return Status::Ok();
  const OpenBlocks::Block& b = it->second;
  sqlite3_stmt* ins = stmts_->insert_block.get();
  sqlite3_reset(ins);
  if (int rc = InsertBlock(ins, sensor, b.b); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "write readings block");
  }
  sqlite3_stmt* mark = stmts_->mark_flushed.get();
  sqlite3_reset(mark);
  sqlite3_bind_int64(mark, 1, b.last_journal);
  sqlite3_bind_int64(mark, 2, sensor);
  if (int rc = sqlite3_step(mark); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "mark readings block");
  }
  *bytes_added += static_cast<int64_t>(b.b.data.size()) + kReadingBlockOverhead;
  ob.bytes -= static_cast<int64_t>(b.b.data.size());
  if (auto j = ob.by_first_journal.find(b.first_journal);
      j != ob.by_first_journal.end() && --j->second == 0) {
    ob.by_first_journal.erase(j);
  }
  ob.by_sensor.erase(it);
  return Status::Ok();
}

// Inside a transaction: deletes the journal rows no open block needs any more.
Status SqliteStoreWriter::TrimJournal(int64_t* bytes_removed) {
  OpenBlocks& ob = *open_;
  const int64_t keep_from =
      ob.by_first_journal.empty() ? INT64_MAX : ob.by_first_journal.begin()->first;
  int64_t last = 0;
  while (!ob.journal.empty() && ob.journal.front().first < keep_from) {
    last = ob.journal.front().first;
    *bytes_removed += ob.journal.front().second;
    ob.journal.pop_front();
  }
  if (last == 0) return Status::Ok();
  sqlite3_stmt* del = stmts_->delete_journal.fresh();
  sqlite3_bind_int64(del, 1, last);
  if (int rc = sqlite3_step(del); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "trim journal");
  }
  return Status::Ok();
}

// Inside a transaction: deletes the blocks with seq < `before`, counting their readings and
// bytes.
Status SqliteStoreWriter::DeleteBlocksBefore(int64_t before, int64_t* readings, int64_t* bytes) {
  sqlite3_stmt* sum = stmts_->sum_blocks_before.fresh();
  sqlite3_bind_int64(sum, 1, before);
  if (int rc = sqlite3_step(sum); rc != SQLITE_ROW) {
    return SqliteError(db_, rc, "count readings blocks");
  }
  const int64_t n = sqlite3_column_int64(sum, 0);
  const int64_t b = sqlite3_column_int64(sum, 1);
  sqlite3_reset(sum);
  if (n == 0 && b == 0) return Status::Ok();
  return RemoveBlocksBefore(before, n, b, readings, bytes);
}

// Inside a transaction: deletes the blocks before seq `before`, which hold `n` readings
// and `b` bytes, and adds those to the totals.
Status SqliteStoreWriter::RemoveBlocksBefore(int64_t before, int64_t n, int64_t b,
                                             int64_t* readings, int64_t* bytes) {
  sqlite3_stmt* del = stmts_->delete_blocks_before.fresh();
  sqlite3_bind_int64(del, 1, before);
  if (int rc = sqlite3_step(del); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "prune readings");
  }
  *readings += n;
  *bytes += b;
  return Status::Ok();
}

// Inside a transaction: deletes the oldest blocks until at least `readings` readings
// (when > 0) or `bytes` bytes (when > 0) are gone, counting them.
Status SqliteStoreWriter::DeleteOldestBlocks(int64_t readings, int64_t bytes, int64_t* removed,
                                             int64_t* bytes_removed) {
  sqlite3_stmt* q = stmts_->oldest_blocks.fresh();
  int64_t n = 0;
  int64_t b = 0;
  int64_t last = -1;
  int rc = SQLITE_DONE;
  while ((readings <= 0 || n < readings) && (bytes <= 0 || b < bytes) &&
         (rc = sqlite3_step(q)) == SQLITE_ROW) {
    last = sqlite3_column_int64(q, 0);
    n += sqlite3_column_int64(q, 1);
    b += sqlite3_column_int64(q, 2);
  }
  sqlite3_reset(q);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "oldest readings blocks");
  }
  if (last < 0) return Status::Ok();
  return RemoveBlocksBefore(last + 1, n, b, removed, bytes_removed);
}

Status SqliteStoreWriter::WriteDelivered(std::span<const DeliveredMessage> delivered) {
  if (delivered.empty()) return Status::Ok();
  delivered_buf_ = EncodeDelivered(delivered);
  sqlite3_stmt* st = stmts_->save_delivered.fresh();
  sqlite3_bind_blob(st, 1, delivered_buf_.data(), static_cast<int>(delivered_buf_.size()),
                    SQLITE_STATIC);
  if (int rc = sqlite3_step(st); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "write delivered messages");
  }
  return Status::Ok();
}

Result<std::vector<DeliveredMessage>> SqliteStoreWriter::LoadDelivered() {
  store_impl::Stmt st(db_, "SELECT data FROM mqtt_delivered WHERE id = 1");
  if (!st.ok()) return SqliteError(db_, st.rc(), "select delivered messages");
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::vector<DeliveredMessage>{};
  if (rc != SQLITE_ROW) return SqliteError(db_, rc, "select delivered messages");
  const auto* data = static_cast<const char*>(sqlite3_column_blob(st.get(), 0));
  const int n = sqlite3_column_bytes(st.get(), 0);
  return DecodeDelivered(std::string_view(data == nullptr ? "" : data, static_cast<size_t>(n)));
}

Status SqliteStoreWriter::AppendReadings(const std::vector<NewReading>& readings, int64_t now_ms,
                                         int64_t* pruned,
                                         std::span<const DeliveredMessage> delivered) {
  if (pruned != nullptr) *pruned = 0;
  if (readings.empty() && delivered.empty()) return Status::Ok();
  Status s = AppendReadingsOnce(readings, now_ms, pruned, delivered);
  if (s.ok() || !s.IsFull()) return s;
  // Full: as in Append, the log first, then a quarter of the ring.
  RestartWal();
  s = AppendReadingsOnce(readings, now_ms, pruned, delivered);
  if (s.ok() || !s.IsFull()) return s;
  int64_t cut = 0;
  if (Status c = CutReadings(std::max<int64_t>(readings_rows_ / 4, 1), &cut); !c) return c;
  if (pruned != nullptr) *pruned = cut;
  if (cut == 0) return s;
  RestartWal();
  int64_t more = 0;
  s = AppendReadingsOnce(readings, now_ms, &more, delivered);
  if (pruned != nullptr) *pruned += more;
  return s;
}

Status SqliteStoreWriter::AppendReadingsOnce(const std::vector<NewReading>& readings,
                                             int64_t now_ms, int64_t* pruned,
                                             std::span<const DeliveredMessage> delivered) {
  // Durability per transaction: NORMAL skips the WAL fsync (a process crash loses nothing
  // committed; a power loss may). The checkpoint thread syncs the log right after the
  // commit (SyncLogSoon below) and at every checkpoint, which bounds what a power loss takes.
  if (Status s = SetSynchronous(/*full=*/false); !s) return Fail(s);
  if (Status s = ExecPrepared(db_, stmts_->begin); !s) return Fail(s.Annotate("begin: "));
  const ReadingsBatch batch{readings, now_ms, delivered, pruned};
  ReadingsOutcome outcome;
  Status s = WriteReadings(batch, outcome);
  int rc = SQLITE_OK;
  if (s.ok() && !ExecPrepared(db_, stmts_->commit, &rc).ok()) {
    s = SqliteError(db_, rc, "commit readings");
  }
  if (!s.ok()) {
    // The transaction rolls back and the open blocks are rebuilt from what the database
    // still holds.
    Status f = Fail(s);
    ReadingsRolledBack();
    return f;
  }
  // The log is synced in the background now, rather than by the next alert's commit, which
  // would otherwise have to write this commit's pages before its own.
  if (checkpointer_) checkpointer_->SyncLogSoon();
  ReadingsCommitted(batch, outcome);
  return Status::Ok();
}

void SqliteStoreWriter::ReadingsRolledBack() {
  sensor_ids_.clear();  // ids inserted in the transaction are gone
  if (++id_generation_ == 0) id_generation_ = 1;
  if (Status l = LoadOpenBlocks(); !l) {
    open_->Clear();
    spdlog::warn("store: reloading the open readings blocks failed (retried): {}", l.message());
  }
}

void SqliteStoreWriter::ReadingsCommitted(const ReadingsBatch& batch, const ReadingsOutcome& out) {
  readings_rows_ += out.rows_delta;
  readings_bytes_ += out.bytes_delta;
  if (options_.retention_ms > 0 && batch.now_ms - last_retention_ms_ >= 1000) {
    last_retention_ms_ = batch.now_ms;
  }
  if (batch.pruned != nullptr) *batch.pruned = out.removed;
}

Status SqliteStoreWriter::WriteReadings(const ReadingsBatch& batch, ReadingsOutcome& out) {
  const std::vector<NewReading>& readings = batch.readings;
  const int64_t now_ms = batch.now_ms;
  OpenBlocks& ob = *open_;
  if (!ob.valid) {
    if (Status s = LoadOpenBlocks(); !s) return s;
  }
  if (Status s = WriteDelivered(batch.delivered); !s) return s;
  if (readings.empty()) return Status::Ok();

  // 1. The journal row of this commit.
  journal_buf_.clear();
  sensor_buf_.clear();
  sensor_buf_.reserve(readings.size());
  int64_t prev_ts = 0;
  for (const NewReading& r : readings) {
    int64_t id = 0;
    if (r.id_hint != nullptr && *r.id_hint >> 32 == id_generation_) {
      id = static_cast<uint32_t>(*r.id_hint);
    } else {
      auto found = SensorId(r.sensor);
      if (!found.ok()) return found.status();
      id = *found;
      if (r.id_hint != nullptr && id > 0 && id <= UINT32_MAX) {
        *r.id_hint = uint64_t{id_generation_} << 32 | static_cast<uint64_t>(id);
      }
    }
    sensor_buf_.push_back(id);
    AppendJournalReading(journal_buf_, prev_ts, id, r.ts_ms, r.value);
  }
  sqlite3_stmt* ins = stmts_->insert_journal.fresh();
  sqlite3_bind_int64(ins, 1, static_cast<int64_t>(readings.size()));
  sqlite3_bind_blob(ins, 2, journal_buf_.data(), static_cast<int>(journal_buf_.size()),
                    SQLITE_STATIC);
  sqlite3_bind_int(ins, 3, static_cast<int>(kBlockFormat));
  if (int rc = sqlite3_step(ins); rc != SQLITE_DONE) {
    return SqliteError(db_, rc, "write readings journal");
  }
  const int64_t journal = sqlite3_last_insert_rowid(db_);
  const int64_t journal_bytes = static_cast<int64_t>(journal_buf_.size()) + kReadingBlockOverhead;
  ob.journal.emplace_back(journal, journal_bytes);
  int64_t bytes_delta = journal_bytes;

  // 2. Blocks past their age, before this commit's readings join them.
  const int64_t now = clock_.MonotonicMs();
  int64_t written = 0;
  if (now >= ob.next_due_check_ms) {
    ob.next_due_check_ms = now + std::min<int64_t>(1000, options_.reading_block_max_age_ms / 8);
    due_buf_.clear();
    while (!ob.by_deadline.empty() && ob.by_deadline.top().first <= now) {
      const int64_t sensor = ob.by_deadline.top().second;
      ob.by_deadline.pop();
      // Its block may have been written (full) and a newer one opened since: that one has
      // its own entry, and is due only if its own deadline has passed too.
      if (auto it = ob.by_sensor.find(sensor);
          it != ob.by_sensor.end() && it->second.deadline_ms <= now) {
        due_buf_.push_back(sensor);
      }
    }
    for (int64_t sensor : due_buf_) {
      if (Status s = FlushBlock(sensor, &written); !s) return s;
    }
  }

  // 3. This commit's readings into the open blocks; 4. full blocks written. A block is
  // written only at the end of a commit, so that a journal row's readings of one sensor are
  // either all in written blocks or all in the open block.
  due_buf_.clear();
  const int64_t max_readings = std::max(1, options_.reading_block_max_readings);
  for (size_t i = 0; i < readings.size(); ++i) {
    if (AddToOpenBlock(sensor_buf_[i], journal, readings[i].ts_ms, readings[i].value, now) ==
        max_readings) {
      due_buf_.push_back(sensor_buf_[i]);
    }
  }
  if (options_.reading_block_max_age_ms <= 0 || ob.bytes > kMaxOpenBlockBytes) {
    due_buf_.clear();
    for (const auto& [sensor, b] : ob.by_sensor) due_buf_.push_back(sensor);
  }
  for (int64_t sensor : due_buf_) {
    if (Status s = FlushBlock(sensor, &written); !s) return s;
  }
  bytes_delta += written;
  int64_t journal_removed = 0;
  if (Status s = TrimJournal(&journal_removed); !s) return s;
  bytes_delta -= journal_removed;

  // Retention, in arrival order: every block before the first one holding a reading young
  // enough goes.
  int64_t removed = 0;
  int64_t removed_bytes = 0;
  if (options_.retention_ms > 0 && now_ms - last_retention_ms_ >= 1000) {
    sqlite3_stmt* q = stmts_->first_kept.fresh();
    sqlite3_bind_int64(q, 1, now_ms - options_.retention_ms);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "retention");
    }
    // No block young enough (all timestamps are old): all go.
    const int64_t first = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : INT64_MAX;
    sqlite3_reset(q);
    if (Status s = DeleteBlocksBefore(first, &removed, &removed_bytes); !s) return s;
  }
  // Byte share.
  if (const int64_t budget = options_.readings_budget();
      budget > 0 && readings_bytes_ + bytes_delta - removed_bytes > budget) {
    const int64_t excess = readings_bytes_ + bytes_delta - removed_bytes - budget;
    if (Status s = DeleteOldestBlocks(0, excess, &removed, &removed_bytes); !s) return s;
  }
  bytes_delta -= removed_bytes;
  if (removed > 0) pruned_since_sensor_sweep_ = true;
  if (pruned_since_sensor_sweep_ && now >= next_sensor_sweep_ms_) {
    int64_t deleted = 0;
    if (Status s = DeleteUnusedSensors(&deleted); !s) return s;
    next_sensor_sweep_ms_ = now + kSensorSweepIntervalMs;
    pruned_since_sensor_sweep_ = false;
  }
  const int64_t rows_delta = static_cast<int64_t>(readings.size()) - removed;
  for (const auto& [name, by] : {std::pair{"readings_rows", rows_delta},
                                 {"readings_pruned", removed},
                                 {"readings_bytes", bytes_delta}}) {
    sqlite3_stmt* c = stmts_->add_counter.fresh();
    sqlite3_bind_int64(c, 1, by);
    sqlite3_bind_text(c, 2, name, -1, SQLITE_STATIC);
    if (int rc = sqlite3_step(c); rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "count readings");
    }
  }
  out.rows_delta = rows_delta;
  out.bytes_delta = bytes_delta;
  out.removed = removed;
  return Status::Ok();
}

// Deletes the rows of sensors nothing in the ring refers to any more: no written block, no
// open block, and no journal row that may hold their readings (their flushed_journal is
// older than every journal row left; a newer unflushed reading would have an open block).
// The ids are then unknown, so the name cache and the callers' id hints start afresh.
// Runs inside the caller's transaction.
Status SqliteStoreWriter::DeleteUnusedSensors(int64_t* deleted) {
  const OpenBlocks& ob = *open_;
  const int64_t oldest_journal = ob.journal.empty() ? INT64_MAX : ob.journal.front().first;
  Stmt q(db_,
         "SELECT id FROM sensors s WHERE s.flushed_journal < ? AND NOT EXISTS "
         "(SELECT 1 FROM reading_blocks b WHERE b.sensor = s.id)");
  if (!q.ok()) return SqliteError(db_, q.rc(), "find unused sensors");
  sqlite3_bind_int64(q.get(), 1, oldest_journal);
  std::vector<int64_t> ids;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(q.get(), 0);
    if (!ob.by_sensor.contains(id)) ids.push_back(id);
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "find unused sensors");
  if (ids.empty()) return Status::Ok();
  Stmt del(db_, "DELETE FROM sensors WHERE id = ?");
  if (!del.ok()) return SqliteError(db_, del.rc(), "delete unused sensors");
  for (int64_t id : ids) {
    sqlite3_bind_int64(del.get(), 1, id);
    if (int drc = sqlite3_step(del.get()); drc != SQLITE_DONE) {
      return SqliteError(db_, drc, "delete unused sensors");
    }
    sqlite3_reset(del.get());
  }
  sensor_ids_.clear();
  if (++id_generation_ == 0) id_generation_ = 1;
  *deleted = static_cast<int64_t>(ids.size());
  return Status::Ok();
}

Status SqliteStoreWriter::FlushOpenBlocks() {
  OpenBlocks& ob = *open_;
  if (!ob.valid || ob.by_sensor.empty()) return Status::Ok();
  if (Status s = SetSynchronous(/*full=*/true); !s) return Fail(s);
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Fail(s);
  auto fail = [&](Status st) {
    Status f = Fail(st);
    ob.Clear();
    return f;
  };
  int64_t written = 0;
  due_buf_.clear();
  for (const auto& [sensor, b] : ob.by_sensor) due_buf_.push_back(sensor);
  for (int64_t sensor : due_buf_) {
    if (Status s = FlushBlock(sensor, &written); !s) return fail(s);
  }
  int64_t journal_removed = 0;
  if (Status s = TrimJournal(&journal_removed); !s) return fail(s);
  sqlite3_stmt* c = stmts_->add_counter.fresh();
  sqlite3_bind_int64(c, 1, written - journal_removed);
  sqlite3_bind_text(c, 2, "readings_bytes", -1, SQLITE_STATIC);
  if (int rc = sqlite3_step(c); rc != SQLITE_DONE) {
    return fail(SqliteError(db_, rc, "count readings"));
  }
  if (Status s = Exec(db_, "COMMIT"); !s) return fail(s);
  readings_bytes_ += written - journal_removed;
  return Status::Ok();
}

// Deletes the oldest blocks holding at least `rows` readings in a transaction of their own.
// With no block written yet, the journal and the open blocks go.
Status SqliteStoreWriter::CutReadings(int64_t rows, int64_t* pruned) {
  *pruned = 0;
  if (readings_rows_ <= 0 || rows <= 0) return Status::Ok();
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return Fail(s);
  auto fail = [&](Status st) {
    Status f = Fail(st);
    open_->Clear();
    return f;
  };
  int64_t n = 0;
  int64_t bytes = 0;
  if (Status s = DeleteOldestBlocks(rows, 0, &n, &bytes); !s) return fail(s);
  const bool journal_cut = n == 0 && !open_->journal.empty();
  if (journal_cut) {
    if (int rc = sqlite3_step(stmts_->delete_all_journal.fresh()); rc != SQLITE_DONE) {
      return fail(SqliteError(db_, rc, "cut readings"));
    }
    for (const auto& [sensor, b] : open_->by_sensor) n += b.b.n;
    for (const auto& [seq, b] : open_->journal) bytes += b;
  }
  for (const auto& [name, by] :
       {std::pair{"readings_rows", -n}, {"readings_pruned", n}, {"readings_bytes", -bytes}}) {
    sqlite3_stmt* c = stmts_->add_counter.fresh();
    sqlite3_bind_int64(c, 1, by);
    sqlite3_bind_text(c, 2, name, -1, SQLITE_STATIC);
    if (int rc = sqlite3_step(c); rc != SQLITE_DONE) {
      return fail(SqliteError(db_, rc, "count readings"));
    }
  }
  if (Status s = Exec(db_, "COMMIT"); !s) return fail(s);
  readings_rows_ -= n;
  readings_bytes_ -= bytes;
  *pruned = n;
  // The open blocks went with the journal (the next append reloads the now empty state).
  if (journal_cut) open_->Clear();
  return Status::Ok();
}

Result<int64_t> SqliteStoreWriter::ReadingsCount() {
  auto stored = QueryInt(db_, "SELECT total(n) FROM reading_blocks");
  if (!stored.ok()) return stored;
  int64_t open = 0;
  for (const auto& [sensor, b] : open_->by_sensor) open += b.b.n;
  return *stored + open;
}

}  // namespace edge::agent
