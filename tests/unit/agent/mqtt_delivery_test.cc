#include "edge/agent/mqtt_delivery.h"

#include <gtest/gtest.h>

#include <vector>

namespace edge::agent {
namespace {

using Ack = DeliveryTracker::Ack;
using Verdict = DeliveryTracker::Verdict;

std::vector<uint16_t> Ids(const std::vector<Ack>& acks) {
  std::vector<uint16_t> ids;
  for (const Ack& a : acks) ids.push_back(a.packet_id);
  return ids;
}

TEST(DeliveryTracker, AcksWaitForTheirCommitAndGoInOrder) {
  DeliveryTracker t;
  std::vector<Ack> now;
  EXPECT_EQ(t.OnPublish(7, 1, false, 100, 1, now), Verdict::kNew);
  EXPECT_EQ(t.OnPublish(8, 2, false, 200, 2, now), Verdict::kNew);
  EXPECT_EQ(t.OnPublish(9, 1, false, 300, 3, now), Verdict::kNew);
  EXPECT_TRUE(now.empty());
  EXPECT_EQ(t.owed(), 3u);

  std::vector<Ack> acks;
  t.Durable(2, acks);
  EXPECT_EQ(Ids(acks), (std::vector<uint16_t>{7, 8}));
  EXPECT_EQ(acks[1].qos, 2);  // a PUBREC for the QoS 2 message
  acks.clear();
  t.Durable(3, acks);
  EXPECT_EQ(Ids(acks), (std::vector<uint16_t>{9}));
  EXPECT_EQ(t.owed(), 0u);
}

TEST(DeliveryTracker, AResendOfACommittedMessageIsAcknowledgedAtOnceAndNotHandedOver) {
  DeliveryTracker t;
  std::vector<Ack> now;
  ASSERT_EQ(t.OnPublish(7, 1, false, 100, 1, now), Verdict::kNew);
  std::vector<Ack> acks;
  t.Durable(1, acks);
  // The PUBACK was lost with the connection; the broker sends the message again.
  t.Disconnected();
  EXPECT_EQ(t.OnPublish(7, 1, true, 100, 2, now), Verdict::kDuplicate);
  EXPECT_EQ(Ids(now), (std::vector<uint16_t>{7}));
}

TEST(DeliveryTracker, AResendOfAnUncommittedMessageIsAcknowledgedWhenItsFirstCopyCommits) {
  DeliveryTracker t;
  std::vector<Ack> now;
  ASSERT_EQ(t.OnPublish(7, 1, false, 100, 1, now), Verdict::kNew);
  ASSERT_EQ(t.OnPublish(8, 1, false, 200, 2, now), Verdict::kNew);
  t.Disconnected();  // both owed on a lost connection: dropped
  EXPECT_EQ(t.owed(), 0u);
  EXPECT_EQ(t.OnPublish(7, 1, true, 100, 3, now), Verdict::kDuplicate);
  EXPECT_EQ(t.OnPublish(8, 1, true, 200, 3, now), Verdict::kDuplicate);
  EXPECT_TRUE(now.empty());
  // Sent again before its ack: still owed once.
  EXPECT_EQ(t.OnPublish(8, 1, true, 200, 3, now), Verdict::kDuplicate);
  EXPECT_EQ(t.owed(), 2u);
  std::vector<Ack> acks;
  t.Durable(1, acks);
  EXPECT_EQ(Ids(acks), (std::vector<uint16_t>{7}));
  acks.clear();
  t.Durable(2, acks);
  EXPECT_EQ(Ids(acks), (std::vector<uint16_t>{8}));
}

TEST(DeliveryTracker, ANewMessageOnAReusedIdIsHandedOver) {
  DeliveryTracker t;
  std::vector<Ack> now;
  ASSERT_EQ(t.OnPublish(7, 1, false, 100, 1, now), Verdict::kNew);
  std::vector<Ack> acks;
  t.Durable(1, acks);
  // Not a resend: no DUP flag, or a different topic and payload.
  EXPECT_EQ(t.OnPublish(7, 1, false, 100, 2, now), Verdict::kNew);
  t.Durable(2, acks);
  EXPECT_EQ(t.OnPublish(7, 1, true, 555, 3, now), Verdict::kNew);
  EXPECT_TRUE(now.empty());
}

TEST(DeliveryTracker, SeededMessagesFromBeforeARestartAreRecognised) {
  DeliveryTracker t;
  const std::vector<DeliveredMessage> last_commit = {{7, 100}, {8, 200}};
  t.Seed(last_commit);
  std::vector<Ack> now;
  EXPECT_EQ(t.OnPublish(7, 1, true, 100, 1, now), Verdict::kDuplicate);
  EXPECT_EQ(t.OnPublish(8, 1, true, 999, 1, now), Verdict::kNew);  // another message
  EXPECT_EQ(Ids(now), (std::vector<uint16_t>{7}));
}

TEST(DeliveryTracker, PastTheBoundTheOldestAckGoesAtOnce) {
  DeliveryTracker t;
  std::vector<Ack> now;
  for (size_t i = 0; i < DeliveryTracker::kMaxOwed; ++i) {
    ASSERT_EQ(t.OnPublish(static_cast<uint16_t>(i), 1, false, 1, i + 1, now), Verdict::kNew);
  }
  EXPECT_EQ(t.OnPublish(3, 1, false, 2, DeliveryTracker::kMaxOwed + 1, now), Verdict::kNewOverflow);
  EXPECT_EQ(Ids(now), (std::vector<uint16_t>{0}));
  EXPECT_EQ(t.owed(), DeliveryTracker::kMaxOwed);
}

TEST(DeliveredMessages, RoundTripThroughTheStoredForm) {
  const std::vector<DeliveredMessage> in = {{1, 0xdeadbeef}, {65535, 1}, {0, 42}};
  const std::string blob = EncodeDelivered(in);
  EXPECT_EQ(blob.size(), 18u);
  EXPECT_EQ(DecodeDelivered(blob), in);
  EXPECT_TRUE(DecodeDelivered(blob.substr(0, 17)).empty());
}

TEST(DeliveredMessages, TheDigestTellsTopicFromPayloadAndIsNeverZero) {
  EXPECT_NE(MessageDigest("a/b", "1"), MessageDigest("a/b1", ""));
  EXPECT_EQ(MessageDigest("a/b", "1"), MessageDigest("a/b", "1"));
  EXPECT_NE(MessageDigest("", ""), 0u);
}

}  // namespace
}  // namespace edge::agent
