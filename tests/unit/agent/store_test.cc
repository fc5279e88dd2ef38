#include "edge/agent/store.h"

#include <gtest/gtest.h>

#include <fstream>

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

TEST(SqliteStore, ReaderNeedsAnInitializedDatabase) {
  TempDir dir;
  auto r = StoreReader::Open({dir.File("missing.db")});
  EXPECT_FALSE(r.ok());
}

TEST(RecordId, JoinsNodeEpochAndSequence) {
  EXPECT_EQ(RecordId("node-1", "00ff", 17), "node-1:00ff:17");
}

}  // namespace
}  // namespace edge::agent
