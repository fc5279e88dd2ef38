#include "edge/agent/bounded_queue.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../wait_for.h"

namespace edge::agent {
namespace {

using namespace std::chrono_literals;

// Whether thread `tid` of this process is gone or asleep (state S in its /proc stat: blocked
// in a wait; for a consumer that takes no other lock, in the queue's).
bool GoneOrAsleep(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return true;
  const size_t name_end = text.rfind(')');  // the state follows the (name)
  return name_end != std::string::npos && name_end + 2 < text.size() && text[name_end + 2] == 'S';
}

// Waits until the consumer thread that stored its id in `tid` sleeps (or has ended).
void WaitUntilAsleep(const std::atomic<pid_t>& tid) {
  edge::testutil::WaitFor([&] { return tid != 0 && GoneOrAsleep(tid); }, 10s,
                          "the consumer to fall asleep");
}

TEST(BoundedQueue, DropsOldestWhenFull) {
  BoundedQueue<int> q(3);
  EXPECT_EQ(q.Push(1), BoundedQueue<int>::PushResult::kOk);
  EXPECT_EQ(q.Push(2), BoundedQueue<int>::PushResult::kOk);
  EXPECT_EQ(q.Push(3), BoundedQueue<int>::PushResult::kOk);
  EXPECT_EQ(q.Push(4), BoundedQueue<int>::PushResult::kDroppedOldest);
  std::vector<int> out;
  ASSERT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, (std::vector<int>{2, 3, 4}));
}

struct StringBytes {
  size_t operator()(const std::string& s) const { return s.size(); }
};
using ByteQueue = BoundedQueue<std::string, StringBytes>;

TEST(BoundedQueue, DropsOldestWhenTheBytesWouldPassTheByteBound) {
  ByteQueue q(100, 10);
  EXPECT_EQ(q.Push(std::string(4, 'a')), ByteQueue::PushResult::kOk);
  EXPECT_EQ(q.Push(std::string(4, 'b')), ByteQueue::PushResult::kOk);
  EXPECT_EQ(q.bytes(), 8u);
  EXPECT_EQ(q.Push(std::string(4, 'c')), ByteQueue::PushResult::kDroppedOldest);
  EXPECT_EQ(q.bytes(), 8u);
  std::vector<std::string> out;
  ASSERT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, (std::vector<std::string>{"bbbb", "cccc"}));
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(BoundedQueue, AnItemLargerThanTheByteBoundIsKeptAlone) {
  ByteQueue q(100, 10);
  std::vector<std::string> batch{"aa", std::string(30, 'x'), "bb"};
  const auto r = q.PushBatch(batch);
  EXPECT_EQ(r.dropped_oldest, 2u);  // "aa", then the large one to fit "bb"
  std::vector<std::string> out;
  ASSERT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, (std::vector<std::string>{"bb"}));
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(BoundedQueue, ByteCountFollowsCountDropsAndPops) {
  ByteQueue q(2, 1000);
  std::vector<std::string> batch{"a", "bb", "ccc"};
  EXPECT_EQ(q.PushBatch(batch).dropped_oldest, 1u);
  EXPECT_EQ(q.bytes(), 5u);
  std::vector<std::string> out;
  ASSERT_TRUE(q.PopBatch(out, 1, 0ms));
  EXPECT_EQ(q.bytes(), 3u);
}

TEST(BoundedQueue, PushBatchDropsTheOldestAsSinglePushesWould) {
  BoundedQueue<int> q(4);
  (void)q.Push(1);
  (void)q.Push(2);
  std::vector<int> batch{3, 4, 5};
  const auto r = q.PushBatch(batch);
  EXPECT_FALSE(r.closed);
  EXPECT_EQ(r.dropped_oldest, 1u);
  std::vector<int> out;
  ASSERT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, (std::vector<int>{2, 3, 4, 5}));
}

TEST(BoundedQueue, PushBatchLargerThanTheCapacityKeepsItsNewest) {
  BoundedQueue<int> q(3);
  (void)q.Push(1);
  std::vector<int> batch{2, 3, 4, 5, 6};
  EXPECT_EQ(q.PushBatch(batch).dropped_oldest, 3u);  // 1, 2 and 3
  std::vector<int> out;
  ASSERT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, (std::vector<int>{4, 5, 6}));
}

TEST(BoundedQueue, PushBatchAfterCloseIsRefused) {
  BoundedQueue<int> q(3);
  q.Close();
  std::vector<int> batch{1, 2};
  const auto r = q.PushBatch(batch);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.dropped_oldest, 0u);
  EXPECT_EQ(q.size(), 0u);
}

TEST(BoundedQueue, PushBatchLeavesRecycledItemsInTheProducersSlots) {
  BoundedQueue<std::string> q(10);
  std::vector<std::string> batch{"first", "second"};
  (void)q.PushBatch(batch);
  std::vector<std::string> spent;
  ASSERT_TRUE(q.PopBatch(spent, 10, 0ms));
  q.Recycle(spent);
  EXPECT_TRUE(spent.empty());
  std::vector<std::string> next{"a", "b", "c"};
  (void)q.PushBatch(next);
  // Taken from the back of the spent batch; the third slot is left moved-from.
  EXPECT_EQ(next[0], "second");
  EXPECT_EQ(next[1], "first");
  std::vector<std::string> out;
  ASSERT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(BoundedQueue, PopBatchTakesAtMostMax) {
  BoundedQueue<int> q(10);
  for (int i = 0; i < 5; ++i) (void)q.Push(int{i});
  std::vector<int> out;
  ASSERT_TRUE(q.PopBatch(out, 2, 0ms));
  EXPECT_EQ(out, (std::vector<int>{0, 1}));
  EXPECT_EQ(q.size(), 3u);
}

TEST(BoundedQueue, CloseRefusesPushesAndDrainsTheRest) {
  BoundedQueue<int> q(10);
  (void)q.Push(7);
  q.Close();
  EXPECT_EQ(q.Push(8), BoundedQueue<int>::PushResult::kClosed);
  std::vector<int> out;
  EXPECT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, std::vector<int>{7});
  EXPECT_FALSE(q.PopBatch(out, 10, 0ms));
  EXPECT_TRUE(out.empty());
}

TEST(BoundedQueue, CloseWakesAWaitingConsumer) {
  BoundedQueue<int> q(10);
  std::vector<int> out;
  bool result = true;
  std::thread consumer([&] { result = q.PopBatch(out, 10, 60s); });
  q.Close();
  consumer.join();  // would hang for a minute if Close() did not wake it
  EXPECT_FALSE(result);
}

TEST(BoundedQueue, WaitForItemsWakesOnAPushAndLeavesTheItem) {
  BoundedQueue<int> q(10);
  std::atomic<pid_t> consumer_tid{0};
  std::thread consumer([&] {
    consumer_tid = gettid();
    q.WaitForItems(60s);
  });
  WaitUntilAsleep(consumer_tid);
  (void)q.Push(7);
  consumer.join();  // would hang for a minute if the push did not wake it
  EXPECT_EQ(q.size(), 1u);
  q.WaitForItems(60s);  // an item is there: returns at once
  std::vector<int> out;
  ASSERT_TRUE(q.PopBatch(out, 10, 0ms));
  EXPECT_EQ(out, std::vector<int>{7});
  q.Close();
  q.WaitForItems(60s);  // closed: returns at once
}

TEST(BoundedQueue, WakeEndsOneWaitWhetherItComesBeforeOrDuringIt) {
  BoundedQueue<int> q(10);
  std::atomic<pid_t> consumer_tid{0};
  std::thread consumer([&] {
    consumer_tid = gettid();
    q.WaitForItems(60s);
  });
  WaitUntilAsleep(consumer_tid);
  q.Wake();
  consumer.join();  // would hang for a minute if Wake() did not end the wait
  q.Wake();
  q.WaitForItems(60s);  // woken before the wait: returns at once
  const auto start = std::chrono::steady_clock::now();
  q.WaitForItems(20ms);  // the wake-up was used: this one waits
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_EQ(q.size(), 0u);
}

TEST(BoundedQueue, EachPushAfterTheConsumerFellAsleepWakesIt) {
  // The producer signals only a sleeping consumer: every round here must still wake it,
  // whether the item comes before or after the consumer starts waiting. A missed wake-up
  // shows as a PopBatch that sat out its whole timeout with items waiting.
  constexpr auto kTimeout = 5s;
  BoundedQueue<int> q(1000);  // room for all: nothing is dropped
  std::vector<int> got;
  int timed_out = 0;
  std::atomic<pid_t> consumer_tid{0};
  std::thread consumer([&] {
    consumer_tid = gettid();
    std::vector<int> out;
    while (got.size() < 200) {
      const auto start = std::chrono::steady_clock::now();
      if (!q.PopBatch(out, 10, kTimeout)) break;
      if (std::chrono::steady_clock::now() - start >= kTimeout) ++timed_out;
      got.insert(got.end(), out.begin(), out.end());
    }
  });
  for (int i = 0; i < 200; ++i) {
    (void)q.Push(int{i});
    if (i % 3 == 0) WaitUntilAsleep(consumer_tid);
  }
  consumer.join();
  EXPECT_EQ(timed_out, 0);
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], i);
}

TEST(BoundedQueue, EachPushBatchAfterTheConsumerFellAsleepWakesIt) {
  // As above, with batches of 1 to 4 items.
  constexpr auto kTimeout = 5s;
  BoundedQueue<int> q(1000);
  std::vector<int> got;
  int timed_out = 0;
  std::atomic<pid_t> consumer_tid{0};
  std::thread consumer([&] {
    consumer_tid = gettid();
    std::vector<int> out;
    while (got.size() < 200) {
      const auto start = std::chrono::steady_clock::now();
      if (!q.PopBatch(out, 10, kTimeout)) break;
      if (std::chrono::steady_clock::now() - start >= kTimeout) ++timed_out;
      got.insert(got.end(), out.begin(), out.end());
    }
  });
  std::vector<int> batch;
  for (int i = 0, round = 0; i < 200; ++round) {
    batch.clear();
    for (int k = 0; k <= round % 4 && i < 200; ++k) batch.push_back(i++);
    EXPECT_EQ(q.PushBatch(batch).dropped_oldest, 0u);
    if (round % 2 == 0) WaitUntilAsleep(consumer_tid);
  }
  consumer.join();
  EXPECT_EQ(timed_out, 0);
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], i);
}

}  // namespace
}  // namespace edge::agent
