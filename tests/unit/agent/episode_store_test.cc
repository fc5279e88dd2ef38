// Firing rule episodes kept in the store across restarts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "edge/agent/store.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using testing::TempDir;

TEST(EpisodeStore, SavedEpisodesSurviveReopen) {
  TempDir dir;
  {
    auto w = StoreWriter::Open({dir.File("a.db")});
    ASSERT_TRUE(w.ok()) << w.error();
    ASSERT_TRUE(
        (*w)->SaveEpisodes({{"hot", "plant/a", 100, 150, 95.5}, {"hot", "plant/b", 1, 2, 3}}, {}));
  }
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok()) << w.error();
  auto loaded = (*w)->LoadEpisodes();
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].rule, "hot");
  EXPECT_EQ((*loaded)[0].sensor, "plant/a");
  EXPECT_EQ((*loaded)[0].started_ms, 100);
  EXPECT_EQ((*loaded)[0].last_ts_ms, 150);
  EXPECT_EQ((*loaded)[0].last_value, 95.5);
}

TEST(EpisodeStore, AppendWithEpisodesCommitsTheRowsAndTheEpisodesTogether) {
  TempDir dir;
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE((*w)->SaveEpisodes({{"cold", "a", 1, 1, 1}}, {}));
  const std::vector<StoredEpisode> firing{{"hot", "a", 5, 6, 7}};
  const std::vector<EpisodeKey> resolved{{"cold", "a"}};
  const std::vector<StoreWriter::NewRow> rows{{"alert", Priority::kAlert, 1, "{}"}};
  ASSERT_TRUE((*w)->AppendWithEpisodes(rows, {firing, resolved}, nullptr));
  EXPECT_EQ(*(*w)->OutboxCount(), 1);
  auto loaded = (*w)->LoadEpisodes();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].rule, "hot");
}

TEST(EpisodeStore, AFailedAppendWithEpisodesWritesNeither) {
  TempDir dir;
  StoreOptions o{dir.File("small.db")};
  o.max_bytes = 0;
  o.max_pages = 24;  // 96 KiB: less than the rows below
  auto w = StoreWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.error();
  const std::string payload(200 * 1024, 'x');
  const std::vector<StoreWriter::NewRow> rows{{"alert", Priority::kAlert, 1, payload}};
  const std::vector<StoredEpisode> firing{{"hot", "a", 5, 6, 7}};
  EXPECT_FALSE((*w)->AppendWithEpisodes(rows, {firing, {}}, nullptr));
  EXPECT_EQ(*(*w)->OutboxCount(), 0);
  auto loaded = (*w)->LoadEpisodes();
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->empty());
}

TEST(EpisodeStore, ResolvedEpisodesAreRemovedAndFiringReplaced) {
  TempDir dir;
  auto w = StoreWriter::Open({dir.File("a.db")});
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE((*w)->SaveEpisodes({{"hot", "a", 1, 1, 1}, {"cold", "a", 1, 1, 1}}, {}));
  ASSERT_TRUE((*w)->SaveEpisodes({{"hot", "a", 5, 6, 7}}, {{"cold", "a"}}));
  auto loaded = (*w)->LoadEpisodes();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].rule, "hot");
  EXPECT_EQ((*loaded)[0].started_ms, 5);
}

}  // namespace
}  // namespace edge::agent
