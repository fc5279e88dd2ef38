// Firing rule episodes kept in the store across restarts.
#include <gtest/gtest.h>

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
