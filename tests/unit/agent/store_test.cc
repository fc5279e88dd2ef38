#include "edge/agent/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <bit>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "../wait_for.h"
#include "edge/common/clock.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using testing::TempDir;

StoreWriter::NewRow Row(std::string_view payload, Priority p = Priority::kAlert) {
  return {"alert", p, 1000, payload};
}

TEST(SqliteStore, AppendedRowsAreFetchedInPriorityThenAgeOrder) {
  TempDir dir;
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok()) << w.error();
  std::vector<int64_t> seqs;
  ASSERT_TRUE((*w)->Append({Row("{\"n\":1}", Priority::kRollup), Row("{\"n\":2}"),
                            Row("{\"n\":3}", Priority::kStatus), Row("{\"n\":4}")},
                           &seqs));
  ASSERT_EQ(seqs.size(), 4u);
  auto r = StoreReader::Open({dir.File("a.db")});
  ASSERT_TRUE(r.ok()) << r.error();
  auto rows = (*r)->Fetch(10, 1 << 20);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0].payload, "{\"n\":2}");
  EXPECT_EQ((*rows)[1].payload, "{\"n\":4}");
  EXPECT_EQ((*rows)[2].payload, "{\"n\":1}");
  EXPECT_EQ((*rows)[3].payload, "{\"n\":3}");
  EXPECT_EQ((*r)->epoch(), (*w)->epoch());
}

TEST(SqliteStore, FetchHonoursItemAndByteLimitsButReturnsAtLeastOneRow) {
  TempDir dir;
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok());
  std::string big(1000, 'x');
  ASSERT_TRUE((*w)->Append({Row(big), Row(big), Row(big)}));
  auto r = StoreReader::Open({dir.File("a.db")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->Fetch(2, 1 << 20)->size(), 2u);
  EXPECT_EQ((*r)->Fetch(10, 2500)->size(), 2u);
  EXPECT_EQ((*r)->Fetch(10, 10)->size(), 1u);
}

TEST(SqliteStore, ALiveAlertIsFetchedWithTheFirstBatchOfABacklog) {
  TempDir dir;
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok());
  std::vector<StoreWriter::NewRow> backlog;
  std::vector<std::string> payloads;
  for (int i = 0; i < 1000; ++i) payloads.push_back("{\"n\":" + std::to_string(i) + "}");
  for (const std::string& p : payloads) backlog.push_back(Row(p));
  ASSERT_TRUE((*w)->Append(backlog));
  ASSERT_TRUE((*w)->Append({Row("{\"n\":\"rollup\"}", Priority::kRollup)}));
  ASSERT_TRUE((*w)->Append({Row("{\"n\":\"live\"}")}));
  auto r = StoreReader::Open({dir.File("a.db")});
  ASSERT_TRUE(r.ok());

  auto rows = (*r)->Fetch(80, 1 << 20);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 80u);
  EXPECT_EQ(rows->front().payload, "{\"n\":\"live\"}");  // the newest alert leads
  std::set<int64_t> seqs;
  for (const auto& row : *rows) seqs.insert(row.seq);
  EXPECT_EQ(seqs.size(), 80u);  // no row twice
  // The rest is the oldest backlog, in order: 10 newest (80/8), 70 oldest.
  EXPECT_EQ((*rows)[10].payload, "{\"n\":0}");
  EXPECT_EQ((*rows)[79].payload, "{\"n\":69}");
  for (const auto& row : *rows) EXPECT_NE(row.payload, "{\"n\":\"rollup\"}");

  // With bytes the limit, the newest rows still take at most an eighth of the batch.
  auto by_bytes = (*r)->Fetch(1000, 400);
  ASSERT_TRUE(by_bytes.ok());
  ASSERT_GE(by_bytes->size(), 40u);
  EXPECT_EQ(by_bytes->front().payload, "{\"n\":\"live\"}");
  size_t newest = 0;  // rows before the oldest one
  while (newest < by_bytes->size() && (*by_bytes)[newest].payload != "{\"n\":0}") ++newest;
  ASSERT_LT(newest, by_bytes->size());
  EXPECT_GE(newest, 1u);
  EXPECT_LE(newest, by_bytes->size() / 8 + 1);

  // Once the backlog fits in a batch, plain priority-then-age order again.
  auto everything = (*r)->Fetch(5000, 1 << 30);
  ASSERT_TRUE(everything.ok());
  ASSERT_EQ(everything->size(), 1002u);
  EXPECT_EQ(everything->front().payload, "{\"n\":0}");
  EXPECT_EQ(everything->back().payload, "{\"n\":\"rollup\"}");
}

TEST(SqliteStore, DeletedSequenceNumbersAreNeverReused) {
  TempDir dir;
  std::vector<int64_t> first, second;
  {
    auto w = StoreWriter::Open({dir.File("a.db")});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append({Row("1"), Row("2")}, &first));
    auto r = StoreReader::Open({dir.File("a.db")});
    ASSERT_TRUE(r.ok());
    auto deleted = (*r)->Delete(first);
    ASSERT_TRUE(deleted.ok());
    EXPECT_EQ(*deleted, 2);
    EXPECT_EQ(*(*r)->OutboxCount(), 0);
  }
  auto w = StoreWriter::Open({dir.File("a.db")});  // reopened, as after a restart
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append({Row("3")}, &second));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GT(second[0], first[1]);
}

TEST(SqliteStore, EpochSurvivesReopenAndDiffersForANewFile) {
  TempDir dir;
  std::string epoch;
  {
    auto w = StoreWriter::Open({dir.File("a.db")});
    ASSERT_TRUE(w.ok());
    epoch = (*w)->epoch();
    EXPECT_EQ(epoch.size(), 16u);
  }
  auto again = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->epoch(), epoch);
  auto other = StoreWriter::Open({dir.File("b.db")});
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->epoch(), epoch);
}

TEST(SqliteStore, CorruptFileIsMovedAsideAndReplaced) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  {
    std::ofstream f(path, std::ios::binary);
    f << std::string(8192, '\x5a');  // not a SQLite database
  }
  OpenReport report;
  auto w = StoreWriter::Open({path}, &report);
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_TRUE(report.recovered);
  EXPECT_TRUE(report.created);
  EXPECT_FALSE(report.reason.empty());
  EXPECT_TRUE(std::filesystem::exists(report.moved_aside_path));
  EXPECT_TRUE((*w)->Append({Row("{}")}));
  EXPECT_EQ(*(*w)->OutboxCount(), 1);
}

TEST(SqliteStore, UnwritableLocationIsAnErrorNotARecovery) {
  OpenReport report;
  auto w = StoreWriter::Open({"/proc/definitely/not/here.db"}, &report);
  EXPECT_FALSE(w.ok());
  EXPECT_FALSE(report.recovered);
}

TEST(SqliteStore, ADatabaseLockedByAnotherWriterIsAnErrorNotARecovery) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  {
    auto w = StoreWriter::Open({path});
    ASSERT_TRUE(w.ok()) << w.error();
    ASSERT_TRUE((*w)->Append({Row("{\"kept\":1}")}));
  }
  // Another process's writer holds the write lock past the busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  StoreOptions options{path};
  options.busy_timeout_ms = 50;
  OpenReport report;
  auto locked = StoreWriter::Open(options, &report);
  EXPECT_FALSE(locked.ok());
  EXPECT_EQ(locked.status().code(), Status::Code::kUnavailable) << locked.error();
  EXPECT_FALSE(report.recovered);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  // The file is still the one with the row: nothing was moved aside.
  auto w = StoreWriter::Open({path}, &report);
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_FALSE(report.recovered);
  EXPECT_EQ(*(*w)->OutboxCount(), 1);
}

TEST(SqliteStore, ReaderNeedsAnInitializedDatabase) {
  TempDir dir;
  auto r = StoreReader::Open({dir.File("missing.db")});
  EXPECT_FALSE(r.ok());
}

TEST(SqliteStore, DeadLetterMovesRowsOutOfTheOutboxWithTheReason) {
  TempDir dir;
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok()) << w.error();
  std::vector<int64_t> seqs;
  ASSERT_TRUE((*w)->Append({Row("{\"n\":1}"), Row("{\"n\":2}"), Row("{\"n\":3}")}, &seqs));
  auto r = StoreReader::Open({dir.File("a.db")});
  ASSERT_TRUE(r.ok()) << r.error();
  auto moved = (*r)->DeadLetter({seqs[0], seqs[2], 999999}, "console: 400 bad item");
  ASSERT_TRUE(moved.ok()) << moved.error();
  EXPECT_EQ(*moved, 2);
  auto rows = (*r)->Fetch(10, 1 << 20);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].seq, seqs[1]);
  auto stats = (*r)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.error();
  EXPECT_EQ(stats->dead_letter_rows, 2);
  EXPECT_EQ(stats->outbox["alert"].rows, 1);
  EXPECT_EQ(stats->outbox["alert"].dead_lettered, 2);
  EXPECT_EQ(stats->outbox_rows, 1);
}

TEST(SqliteStore, DeadLetterTableIsBoundedOldestFirst) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.max_bytes = 40'000;
  o.readings_share = 0.5;  // outbox 20000, dead letters 2000
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  auto r = StoreReader::Open(o);
  ASSERT_TRUE(r.ok());
  const std::string payload(500, 'x');
  for (int i = 0; i < 10; ++i) {
    std::vector<int64_t> seqs;
    ASSERT_TRUE((*w)->Append({Row(payload)}, &seqs));
    ASSERT_TRUE((*r)->DeadLetter(seqs, "bad").ok());
  }
  auto stats = (*r)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_LE(stats->dead_letter_bytes, o.dead_letter_budget());
  EXPECT_EQ(stats->dead_letter_rows + stats->dead_letter_evicted, 10);
  EXPECT_GT(stats->dead_letter_evicted, 0);
}

TEST(SqliteStore, OutboxOverItsShareEvictsOldestLowestPriorityFirstAlertsLast) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  const std::string payload(952, 'x');  // 952 + len("alert") + overhead ~ 1 KB per row
  o.max_bytes = 20 * 1024;
  o.readings_share = 0.5;  // outbox: 10 KiB, room for 10 rows
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  auto rollup = [&](std::string_view p) -> StoreWriter::NewRow {
    return {"rollup", Priority::kRollup, 1, p};
  };
  std::vector<int64_t> alerts, rollups;
  ASSERT_TRUE((*w)->Append({Row(payload), Row(payload), Row(payload)}, &alerts));
  ASSERT_TRUE((*w)->Append(
      {rollup(payload), rollup(payload), rollup(payload), rollup(payload), rollup(payload)},
      &rollups));
  Evictions ev;
  ASSERT_TRUE((*w)->Append({Row(payload), Row(payload), Row(payload)}, nullptr, &ev));
  EXPECT_EQ(ev.by_kind["rollup"], 1);
  EXPECT_EQ(ev.by_kind.count("alert"), 0u);
  ASSERT_TRUE((*w)->Append(
      {Row(payload), Row(payload), Row(payload), Row(payload), Row(payload), Row(payload)}, nullptr,
      &ev));
  EXPECT_EQ(ev.by_kind["rollup"], 4);
  EXPECT_EQ(ev.by_kind["alert"], 2);
  auto r = StoreReader::Open(o);
  ASSERT_TRUE(r.ok());
  auto rows = (*r)->Fetch(100, 1 << 20);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 10u);
  for (const auto& row : *rows) {
    EXPECT_EQ(row.kind, "alert");
    EXPECT_NE(row.seq, alerts[0]);  // the two oldest alerts went
    EXPECT_NE(row.seq, alerts[1]);
  }
  auto stats = (*r)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->alerts_evicted(), 2);
  EXPECT_EQ(stats->outbox["rollup"].evicted, 5);
  EXPECT_LE(stats->outbox_bytes, o.outbox_budget());
}

TEST(SqliteStore, ReadingsAreServedBySensorAndTimeRange) {
  TempDir dir;
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok());
  std::vector<StoreWriter::NewReading> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back({"plant/a", 1000 + i, static_cast<double>(i)});
    batch.push_back({"plant/b", 1000 + i, -static_cast<double>(i)});
  }
  ASSERT_TRUE((*w)->AppendReadings(batch, 2000));
  auto r = StoreReader::Open({dir.File("a.db")});
  ASSERT_TRUE(r.ok());
  auto got = (*r)->Readings("plant/a", 1003, 1006, 100);
  ASSERT_TRUE(got.ok()) << got.error();
  ASSERT_EQ(got->size(), 4u);
  EXPECT_EQ((*got)[0].ts_ms, 1003);
  EXPECT_EQ((*got)[3].value, 6.0);
  EXPECT_EQ((*r)->Readings("plant/b", 0, 5000, 3)->size(), 3u);
  EXPECT_TRUE((*r)->Readings("nope", 0, 5000, 3)->empty());
  EXPECT_EQ((*r)->Stats()->readings_rows, 20);
}

TEST(SqliteStore, ReadingsRingKeepsItsByteShare) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.reading_block_max_age_ms = 0;  // every commit writes its blocks
  // A commit of 60 readings 1 ms apart writes a journal row and a block, and deletes the
  // journal row again. The block: 10 bytes a reading (one-byte time step; a value that is
  // no short decimal, a tag byte and 8 bytes), one more for the first reading's two-byte
  // step, and 48 of row overhead: 649 bytes. A share of 1,500 bytes holds two such blocks.
  o.max_bytes = 3000;
  o.readings_share = 0.5;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  for (int cycle = 0; cycle < 5; ++cycle) {
    std::vector<StoreWriter::NewReading> batch;
    for (int i = 0; i < 60; ++i) batch.push_back({"s", cycle * 100 + i, 1.0 / 3});
    int64_t pruned = 0;
    ASSERT_TRUE((*w)->AppendReadings(batch, 10'000, &pruned));
  }
  EXPECT_EQ(*(*w)->ReadingsCount(), 120);
  auto r = StoreReader::Open(o);
  ASSERT_TRUE(r.ok());
  auto got = (*r)->Readings("s", 0, 1'000'000, 1000);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 120u);
  EXPECT_EQ(got->front().ts_ms, 300);  // the newest stay
  EXPECT_EQ(got->back().ts_ms, 459);
  auto st = (*r)->Stats();
  EXPECT_EQ(st->readings_pruned, 180);
  EXPECT_EQ(st->readings_rows, 120);
  EXPECT_EQ(st->readings_bytes, 2 * 649);
  EXPECT_LE(st->readings_bytes, o.readings_budget());
}

TEST(SqliteStore, ReadingsOlderThanRetentionArePruned) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.retention_ms = 60'000;
  o.reading_block_max_age_ms = 0;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AppendReadings({{"s", 1'000, 1}, {"s", 2'000, 2}}, 3'000));
  ASSERT_TRUE((*w)->AppendReadings({{"s", 70'000, 3}}, 70'000));
  EXPECT_EQ(*(*w)->ReadingsCount(), 1);
}

// Names in the sensors table, read on a connection of the test's own.
std::vector<std::string> SensorNames(const std::string& path) {
  std::vector<std::string> names;
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return names;
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM sensors ORDER BY name", -1, &q, nullptr);
  while (q != nullptr && sqlite3_step(q) == SQLITE_ROW) {
    names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return names;
}

TEST(SqliteStore, SensorRowGoesWhenItsLastReadingLeavesTheRing) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.retention_ms = 60'000;
  o.reading_block_max_age_ms = 0;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  uint64_t hint_b = 0;
  ASSERT_TRUE((*w)->AppendReadings({{"a", 1'000, 1}, {"b", 2'000, 2, &hint_b}}, 3'000));
  ASSERT_TRUE((*w)->AppendReadings({{"b", 50'000, 3, &hint_b}}, 50'000));
  EXPECT_EQ(SensorNames(o.path), (std::vector<std::string>{"a", "b"}));
  // Retention takes a's only block and b's first: a's row goes, b's stays.
  ASSERT_TRUE((*w)->AppendReadings({{"b", 70'000, 4, &hint_b}}, 70'000));
  EXPECT_EQ(SensorNames(o.path), (std::vector<std::string>{"b"}));
  // A stale hint is looked up again; a returning sensor gets a row again.
  ASSERT_TRUE((*w)->AppendReadings({{"b", 71'000, 5, &hint_b}, {"a", 71'000, 6}}, 71'000));
  auto r = StoreReader::Open(o);
  ASSERT_TRUE(r.ok());
  auto b = (*r)->Readings("b", 0, 100'000, 100);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 3u);
  auto a = (*r)->Readings("a", 0, 100'000, 100);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ(a->front().ts_ms, 71'000);
}

TEST(SqliteStore, SensorRowsAreSweptAtMostEveryTenSecondsOfTheStoreClock) {
  TempDir dir;
  FakeClock clock;
  StoreOptions o{dir.File("a.db")};
  o.retention_ms = 60'000;
  o.reading_block_max_age_ms = 0;
  o.clock = &clock;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AppendReadings({{"a", 1'000, 1}}, 1'000));
  // Retention takes a's block: the first sweep deletes a's row at once.
  ASSERT_TRUE((*w)->AppendReadings({{"b", 65'000, 2}}, 65'000));
  EXPECT_EQ(SensorNames(o.path), (std::vector<std::string>{"b"}));
  // Retention takes b's block, but the next sweep is not due yet.
  clock.Advance(9'999);
  ASSERT_TRUE((*w)->AppendReadings({{"c", 130'000, 3}}, 130'000));
  EXPECT_EQ(SensorNames(o.path), (std::vector<std::string>{"b", "c"}));
  // Ten seconds after the first sweep, the next commit sweeps b's row.
  clock.Advance(1);
  ASSERT_TRUE((*w)->AppendReadings({{"c", 130'500, 4}}, 130'500));
  EXPECT_EQ(SensorNames(o.path), (std::vector<std::string>{"c"}));
}

TEST(SqliteStore, FullDatabaseCutsTheRingSoAlertsStillCommit) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.max_bytes = 0;  // no logical bound: only the page limit
  o.max_pages = 64;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  std::vector<StoreWriter::NewReading> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back({"s", i, 1.0});
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    // Each call either fits or cuts the ring and retries; it never fails while there are
    // readings to cut, so "full" shows as a shrinking ring.
    Status s = (*w)->AppendReadings(batch, 1000 + i);
    refused = !s.ok();
  }
  const std::string payload(2000, 'x');
  for (int i = 0; i < 20; ++i) {
    Status s = (*w)->Append({Row(payload)});
    EXPECT_TRUE(s.ok()) << s.message();
  }
  auto r = StoreReader::Open(o);
  ASSERT_TRUE(r.ok());
  EXPECT_GT((*r)->Stats()->readings_pruned, 0);
}

TEST(SqliteStore, FullDatabaseWithoutReadingsEvictsByPriority) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.max_bytes = 0;
  o.max_pages = 40;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  const std::string payload(3000, 'x');
  int failures = 0;
  int64_t evicted = 0;
  for (int i = 0; i < 200; ++i) {
    Evictions ev;
    Status s = (*w)->Append({{"rollup", Priority::kRollup, 1, payload}}, nullptr, &ev);
    if (!s.ok()) ++failures;
    evicted += ev.total();
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(evicted, 0);
  EXPECT_LE(*(*w)->OutboxCount(), 200 - evicted);
}

TEST(SqliteStore, ARowLargerThanTheDatabaseFailsWithTheFullCode) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.max_bytes = 0;
  o.max_pages = 40;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE((*w)->Append({Row("small")}).ok());
  const Status s = (*w)->Append({Row(std::string(400'000, 'x'))});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsFull()) << s.message();
  EXPECT_FALSE(s.IsIOError());
  EXPECT_TRUE((*w)->Append({Row("after")}).ok());  // a failure leaves the store usable
}

TEST(SqliteStore, VersionOneDatabaseIsUpgradedWithItsRowsCounted) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                           "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "kind TEXT NOT NULL, priority INTEGER NOT NULL, "
                           "created_ms INTEGER NOT NULL, payload TEXT NOT NULL);"
                           "INSERT INTO meta VALUES ('epoch', '00000000000000aa'), "
                           "('schema_version', '1');"
                           "INSERT INTO outbox(kind, priority, created_ms, payload) VALUES "
                           "('alert', 2, 1, '{}'), ('alert', 2, 1, '{}');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto w = StoreWriter::Open({path});
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_EQ((*w)->epoch(), "00000000000000aa");
  auto r = StoreReader::Open({path});
  ASSERT_TRUE(r.ok());
  auto stats = (*r)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->outbox["alert"].rows, 2);
  EXPECT_EQ(stats->outbox["alert"].bytes, 2 * (2 + 5 + kOutboxRowOverhead));
}

TEST(SqliteStore, VersionThreeReadingRowsBecomeBlocks) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    std::string sql =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('epoch', '00000000000000bb'), ('schema_version', '3');"
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO counters VALUES ('readings_rows', 150), ('readings_pruned', 7);"
        "CREATE TABLE sensors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        "INSERT INTO sensors VALUES (1, 'plant/a'), (2, 'plant/b');"
        "CREATE TABLE readings (seq INTEGER PRIMARY KEY, sensor INTEGER NOT NULL, "
        "ts_ms INTEGER NOT NULL, value REAL NOT NULL);"
        "CREATE INDEX readings_by_sensor ON readings (sensor, ts_ms);";
    // 100 readings of plant/a and 50 of plant/b, interleaved.
    for (int i = 0; i < 150; ++i) {
      const bool a = i % 3 != 2;
      sql += "INSERT INTO readings(sensor, ts_ms, value) VALUES (" + std::string(a ? "1" : "2") +
             ", " + std::to_string(1000 + i) + ", " + std::to_string(i) + ");";
    }
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto w = StoreWriter::Open({path});
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_EQ(*(*w)->ReadingsCount(), 150);
  auto r = StoreReader::Open({path});
  ASSERT_TRUE(r.ok());
  auto a = (*r)->Readings("plant/a", 0, 10'000, 1000);
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_EQ(a->size(), 100u);
  EXPECT_EQ(a->front().ts_ms, 1000);
  EXPECT_EQ(a->back().ts_ms, 1148);
  EXPECT_EQ(a->back().value, 148.0);
  EXPECT_EQ((*r)->Readings("plant/b", 0, 10'000, 1000)->size(), 50u);
  auto st = (*r)->Stats();
  EXPECT_EQ(st->readings_rows, 150);
  EXPECT_EQ(st->readings_pruned, 7);
  // plant/a: two blocks (64 + 36), plant/b: one; a one-byte time step and an integer under
  // 2,048 (one or two bytes) a reading, a two-byte first step per block.
  EXPECT_GE(st->readings_bytes, 150 * 2 + 3 * kReadingBlockOverhead);
  EXPECT_LE(st->readings_bytes, 150 * 3 + 3 * (kReadingBlockOverhead + 1));
  // The old table is gone; new readings join the converted ones.
  ASSERT_TRUE((*w)->AppendReadings({{"plant/a", 2000, 1}}, 3000));
  EXPECT_EQ((*r)->Readings("plant/a", 0, 10'000, 1000)->size(), 101u);
}

// A version 6 ring (blocks and journal rows of 8-byte values, no `format` column) reads the
// same after the upgrade, and new readings join it.
TEST(SqliteStore, VersionSixBlocksOfEightByteValuesStillRead) {
  TempDir dir;
  const std::string path = dir.File("v6.db");
  {
    StoreOptions o{path};
    o.reading_block_max_age_ms = 0;  // every commit writes its blocks
    auto w = StoreWriter::Open(o);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AppendReadings({{"s", 1000, 21.37}, {"s", 1001, -2.5}}, 2000));
  }
  {
    // The same block as version 6 wrote it: time steps, then each value's 8 bytes.
    std::string old;
    const auto put_double = [&old](double v) {
      const uint64_t bits = std::bit_cast<uint64_t>(v);
      for (int i = 0; i < 8; ++i) old.push_back(static_cast<char>(bits >> (8 * i)));
    };
    old += "\xd0\x0f";  // zigzag(1000) as a varint
    put_double(21.37);
    old += "\x02";  // zigzag(1)
    put_double(-2.5);
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE reading_blocks SET data = ?", -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_blob(st, 1, old.data(), static_cast<int>(old.size()), SQLITE_STATIC);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    ASSERT_EQ(sqlite3_exec(db,
                           "ALTER TABLE reading_blocks DROP COLUMN format;"
                           "ALTER TABLE reading_journal DROP COLUMN format;"
                           "UPDATE meta SET value = '6' WHERE key = 'schema_version';",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto w = StoreWriter::Open({path});
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE((*w)->AppendReadings({{"s", 1002, 7}}, 3000));
  auto r = StoreReader::Open({path});
  ASSERT_TRUE(r.ok());
  auto got = (*r)->Readings("s", 0, 10'000, 100);
  ASSERT_TRUE(got.ok()) << got.error();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].value, 21.37);
  EXPECT_EQ((*got)[1].ts_ms, 1001);
  EXPECT_EQ((*got)[1].value, -2.5);
  EXPECT_EQ((*got)[2].value, 7.0);
}

TEST(SqliteStore, ADatabaseOfANewerSchemaIsRefusedNotRewritten) {
  TempDir dir;
  const std::string path = dir.File("newer.db");
  { ASSERT_TRUE(StoreWriter::Open({path}).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto w = StoreWriter::Open({path});
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().find("newer than this agent's"), std::string::npos) << w.error();
  EXPECT_TRUE(std::filesystem::exists(path));  // not moved aside
}

TEST(SqliteStore, AVersionFourConsolePolicyGetsASequenceOfZero) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  { ASSERT_TRUE(StoreWriter::Open({path}).ok()); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* sql =
        "DROP TABLE console_policy;"
        "CREATE TABLE console_policy (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL,"
        " version INTEGER NOT NULL, body TEXT NOT NULL, signature TEXT NOT NULL,"
        " applied_ms INTEGER NOT NULL);"
        "INSERT INTO console_policy VALUES (1, 'boilers', 7, 'rules: []', 'sig', 5);"
        "CREATE TABLE policy_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL);"
        "UPDATE meta SET value = '4' WHERE key = 'schema_version';";
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto w = StoreWriter::Open({path});
  ASSERT_TRUE(w.ok()) << w.error();
  auto r = StoreReader::Open({path});
  ASSERT_TRUE(r.ok()) << r.error();
  auto stored = (*r)->LoadConsolePolicy();
  ASSERT_TRUE(stored.ok()) << stored.error();
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->version, 7);
  EXPECT_EQ((*stored)->seq, 0);
  StoredConsolePolicy next{"chillers", 2, "rules: []", "sig2", 9, 1234};
  ASSERT_TRUE((*r)->SaveConsolePolicy(next).ok());
  EXPECT_EQ((*(*r)->LoadConsolePolicy())->seq, 1234);
}

// The integer columns of the first row `sql` returns, on a connection of its own; empty
// when the query fails.
std::vector<int64_t> QueryInts(const std::string& path, const char* sql) {
  std::vector<int64_t> out;
  sqlite3* db = nullptr;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(st); ++i) out.push_back(sqlite3_column_int64(st, i));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// The values of `sensor`'s readings (ts 0 to 100), oldest first, read by a StoreReader.
std::vector<double> ReadValues(const StoreOptions& o, const std::string& sensor) {
  std::vector<double> values;
  auto r = StoreReader::Open(o);
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return values;
  auto got = (*r)->Readings(sensor, 0, 100, 100);
  EXPECT_TRUE(got.ok());
  if (got.ok()) {
    for (const StoredReading& x : *got) values.push_back(x.value);
  }
  return values;
}

// Copies the database and its write-ahead log as they are now: what a process killed at
// this point leaves behind.
void CopyAsCrashed(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal"}) {
    std::filesystem::copy_file(from + suffix, to + suffix,
                               std::filesystem::copy_options::overwrite_existing);
  }
}

TEST(SqliteStore, OpenBlocksLiveInTheJournalUntilWrittenAndSurviveACrash) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  o.reading_block_max_readings = 3;  // blocks are written when full; none ages in this test
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE((*w)->AppendReadings({{"a", 1, 1}, {"a", 2, 2}, {"b", 1, 10}}, 100));
  // a reaches 3 readings here, and 4 by the end of the commit: its block is written whole.
  ASSERT_TRUE((*w)->AppendReadings({{"a", 3, 3}, {"a", 4, 4}, {"b", 2, 20}}, 100));
  ASSERT_TRUE((*w)->AppendReadings({{"c", 5, 5}}, 100));
  EXPECT_EQ(*(*w)->ReadingsCount(), 7);

  // The reader sees written blocks and the journal, each reading once.
  auto r = StoreReader::Open(o);
  ASSERT_TRUE(r.ok());
  const auto values = [](StoreReader& reader, std::string_view sensor) {
    std::vector<double> v;
    auto got = reader.Readings(sensor, 0, 100, 100);
    if (!got.ok()) return v;
    for (const StoredReading& x : *got) v.push_back(x.value);
    return v;
  };
  EXPECT_EQ(values(**r, "a"), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(values(**r, "b"), (std::vector<double>{10, 20}));
  EXPECT_EQ(values(**r, "c"), (std::vector<double>{5}));

  // Killed now: a's block is written, b's and c's are only in the journal.
  StoreOptions crashed = o;
  crashed.path = dir.File("crashed.db");
  CopyAsCrashed(o.path, crashed.path);
  {
    auto w2 = StoreWriter::Open(crashed);
    ASSERT_TRUE(w2.ok()) << w2.error();
    EXPECT_EQ(*(*w2)->ReadingsCount(), 7);
    auto r2 = StoreReader::Open(crashed);
    ASSERT_TRUE(r2.ok());
    EXPECT_EQ(values(**r2, "a"), (std::vector<double>{1, 2, 3, 4}));
    EXPECT_EQ(values(**r2, "b"), (std::vector<double>{10, 20}));
    // The open blocks go on where they stopped: b's third reading fills its block.
    ASSERT_TRUE((*w2)->AppendReadings({{"b", 3, 30}}, 100));
    EXPECT_EQ(values(**r2, "b"), (std::vector<double>{10, 20, 30}));
  }
  // A clean close writes every open block: nothing is left in the journal, nothing is lost.
  EXPECT_EQ(
      QueryInts(crashed.path,
                "SELECT count(*), (SELECT total(n) FROM reading_blocks) FROM reading_journal"),
      (std::vector<int64_t>{0, 8}));
  auto w3 = StoreWriter::Open(crashed);
  ASSERT_TRUE(w3.ok());
  EXPECT_EQ(*(*w3)->ReadingsCount(), 8);
}

TEST(SqliteStore, BlocksOlderThanTheirAgeAreWrittenAndTheJournalTrimmed) {
  TempDir dir;
  FakeClock clock;
  StoreOptions o{dir.File("a.db")};
  o.reading_block_max_age_ms = 2;  // written 1 or 2 ms after the first reading
  o.clock = &clock;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AppendReadings({{"a", 1, 1}, {"b", 1, 2}}, 100));
  clock.Advance(5);
  ASSERT_TRUE((*w)->AppendReadings({{"c", 2, 3}}, 100));
  // a and b were written before c joined the open blocks; the journal keeps c's row only.
  EXPECT_EQ(QueryInts(o.path,
                      "SELECT (SELECT count(*) FROM reading_journal), "
                      "(SELECT count(*) FROM reading_blocks)"),
            (std::vector<int64_t>{1, 2}));
}

TEST(SqliteStore, ABlockReopenedAfterAFullOneIsStillWrittenAtItsAge) {
  TempDir dir;
  FakeClock clock;
  StoreOptions o{dir.File("a.db")};
  o.reading_block_max_readings = 2;
  o.reading_block_max_age_ms = 2;
  o.clock = &clock;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  // The first block of a is full at once and written; the second one is opened right after
  // (the first one's deadline entry is left behind) and is due 1 or 2 ms later.
  ASSERT_TRUE((*w)->AppendReadings({{"a", 1, 1}, {"a", 2, 2}}, 100));
  ASSERT_TRUE((*w)->AppendReadings({{"a", 3, 3}}, 100));
  EXPECT_EQ(QueryInts(o.path, "SELECT count(*) FROM reading_blocks"), (std::vector<int64_t>{1}));
  clock.Advance(5);
  ASSERT_TRUE((*w)->AppendReadings({{"c", 4, 4}}, 100));
  EXPECT_EQ(QueryInts(o.path,
                      "SELECT (SELECT count(*) FROM reading_journal), "
                      "(SELECT count(*) FROM reading_blocks), "
                      "(SELECT total(n) FROM reading_blocks)"),
            (std::vector<int64_t>{1, 2, 3}));
}

TEST(SqliteStore, AnOpenBlockOutlivesTheRebuildOfTheDeadlineQueue) {
  TempDir dir;
  FakeClock clock;
  StoreOptions o{dir.File("a.db")};
  o.reading_block_max_readings = 2;
  o.reading_block_max_age_ms = 1000;  // written 0.5 to 1 s after its first reading
  o.clock = &clock;
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AppendReadings({{"b", 1, 1}}, 100));  // b's block stays open
  // 1,100 full blocks of a, each written in its commit, leave 1,100 deadline entries
  // behind: past 1,028 (twice the two open blocks, plus 1,024) the queue is rebuilt from
  // the open blocks, b's among them.
  for (int i = 0; i < 1100; ++i) {
    ASSERT_TRUE((*w)->AppendReadings({{"a", 2 * i, 1}, {"a", 2 * i + 1, 2}}, 100));
  }
  clock.Advance(1050);
  ASSERT_TRUE((*w)->AppendReadings({{"c", 1, 3}}, 100));
  EXPECT_EQ(QueryInts(o.path,
                      "SELECT count(*) FROM reading_blocks b JOIN sensors s ON s.id = b.sensor "
                      "WHERE s.name = 'b'"),
            (std::vector<int64_t>{1}));
  EXPECT_EQ(QueryInts(o.path, "SELECT count(*) FROM reading_journal"), (std::vector<int64_t>{1}));
}

TEST(RecordId, JoinsNodeEpochAndSequence) {
  EXPECT_EQ(RecordId("node-1", "00ff", 17), "node-1:00ff:17");
}

// Rows in `table` of the database file alone, as a copy without its write-ahead log sees
// it: what has been checkpointed. -1 if the copy cannot be read.
int64_t CheckpointedRows(const std::string& path, const std::string& copy, const char* table) {
  std::error_code ec;
  std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return -1;
  sqlite3* db = nullptr;
  int64_t rows = -1;
  if (sqlite3_open_v2(copy.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    const std::string sql = std::string("SELECT count(*) FROM ") + table;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      rows = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return rows;
}

TEST(SqliteStore, TheCheckpointThreadMovesCommitsIntoTheDatabaseFileWithoutFurtherWrites) {
  // A few readings stay far below the connections' own checkpoint threshold (16 MiB of
  // log): only the writer's checkpoint thread can bring them into the database file.
  TempDir dir;
  const std::string path = dir.File("a.db");
  auto w = StoreWriter::Open({path});
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE((*w)->AppendReadings({{"s", 1'000, 1}, {"s", 2'000, 2}, {"s", 3'000, 3}}, 3'000));
  int64_t rows = -1;
  edge::testutil::WaitFor(
      [&] {
        rows = CheckpointedRows(path, dir.File("copy.db"), "reading_journal");
        return rows == 1;
      },
      std::chrono::seconds(5), "the checkpoint thread to checkpoint the journal row");
  EXPECT_EQ(rows, 1);  // within 5 s; the thread runs every 250 ms
}

TEST(SqliteStore, ReadingIdHintsCacheTheSensorIdAndAForeignOneIsLookedUpAgain) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  uint64_t hint_a = 0;
  uint64_t hint_b = 0;
  ASSERT_TRUE((*w)->AppendReadings({{"a", 1, 1.0, &hint_a}, {"b", 1, 2.0, &hint_b}}, 10));
  const std::vector<int64_t> id_a = QueryInts(o.path, "SELECT id FROM sensors WHERE name='a'");
  const std::vector<int64_t> id_b = QueryInts(o.path, "SELECT id FROM sensors WHERE name='b'");
  ASSERT_EQ(id_a.size(), 1u);
  ASSERT_EQ(id_b.size(), 1u);
  EXPECT_EQ(static_cast<int64_t>(hint_a & 0xffffffffu), id_a[0]);
  EXPECT_EQ(static_cast<int64_t>(hint_b & 0xffffffffu), id_b[0]);
  EXPECT_NE(hint_a >> 32, 0u);

  // Hints in use; one of another generation (a writer's failed commit) is ignored.
  uint64_t foreign = uint64_t{0xfffffff0u} << 32 | static_cast<uint64_t>(id_a[0]);
  ASSERT_TRUE((*w)->AppendReadings({{"a", 2, 3.0, &hint_a}, {"b", 2, 4.0, &foreign}}, 20));
  EXPECT_EQ(foreign, hint_b);  // looked up by name, then cached
  w->reset();
  EXPECT_EQ(ReadValues(o, "a"), (std::vector<double>{1.0, 3.0}));
  EXPECT_EQ(ReadValues(o, "b"), (std::vector<double>{2.0, 4.0}));
}

TEST(SqliteStore, ASensorIdPast32BitsIsStoredWithoutAnIdHint) {
  TempDir dir;
  StoreOptions o{dir.File("a.db")};
  {
    auto w = StoreWriter::Open(o);
    ASSERT_TRUE(w.ok()) << w.error();
    ASSERT_TRUE((*w)->AppendReadings({{"a", 1, 1.0}}, 10));
  }
  // Ids are rowids: a database can hold any, and one past 32 bits does not fit a hint.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(o.path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO sensors(id, name) VALUES (5000000000, 'big')", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  {
    auto w = StoreWriter::Open(o);
    ASSERT_TRUE(w.ok()) << w.error();
    uint64_t hint_big = 0;
    uint64_t hint_a = 0;
    ASSERT_TRUE((*w)->AppendReadings(
        {{"big", 10, 1.5, &hint_big}, {"a", 11, 2.0, &hint_a}, {"big", 12, 2.5, &hint_big}}, 20));
    EXPECT_EQ(hint_big, 0u);
    EXPECT_NE(hint_a, 0u);
    ASSERT_TRUE((*w)->AppendReadings({{"a", 13, 3.0, &hint_a}, {"big", 14, 3.5, &hint_big}}, 30));
    EXPECT_EQ(*(*w)->ReadingsCount(), 6);
  }
  EXPECT_EQ(QueryInts(o.path, "SELECT count(*) FROM reading_journal"), std::vector<int64_t>{0});
  EXPECT_EQ(QueryInts(o.path, "SELECT sum(n) FROM reading_blocks WHERE sensor = 5000000000"),
            std::vector<int64_t>{3});
  EXPECT_EQ(ReadValues(o, "big"), (std::vector<double>{1.5, 2.5, 3.5}));
  EXPECT_EQ(ReadValues(o, "a"), (std::vector<double>{1.0, 2.0, 3.0}));
}

}  // namespace
}  // namespace edge::agent
