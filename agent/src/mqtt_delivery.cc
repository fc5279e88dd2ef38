#include "edge/agent/mqtt_delivery.h"

#include <algorithm>
#include <cstdlib>

namespace edge::agent {
namespace {

constexpr uint32_t kFnvOffset = 2166136261u;
constexpr uint32_t kFnvPrime = 16777619u;
constexpr size_t kPacketIds = 65'536;
constexpr size_t kDeliveredBytes = 6;

uint32_t Fnv(uint32_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

}  // namespace

uint32_t MessageDigest(std::string_view topic, std::string_view payload) {
  uint32_t h = Fnv(kFnvOffset, topic);
  h = Fnv(h, std::string_view("\0", 1));
  h = Fnv(h, payload);
  return h == 0 ? 1 : h;
}

std::string EncodeDelivered(std::span<const DeliveredMessage> messages) {
  std::string out;
  out.reserve(messages.size() * kDeliveredBytes);
  for (const DeliveredMessage& m : messages) {
    out.push_back(static_cast<char>(m.packet_id & 0xff));
    out.push_back(static_cast<char>(m.packet_id >> 8));
    for (int shift = 0; shift < 32; shift += 8) {
      out.push_back(static_cast<char>((m.digest >> shift) & 0xff));
    }
  }
  return out;
}

std::vector<DeliveredMessage> DecodeDelivered(std::string_view blob) {
  std::vector<DeliveredMessage> out;
  if (blob.size() % kDeliveredBytes != 0) return out;
  out.reserve(blob.size() / kDeliveredBytes);
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(blob[i])); };
  for (size_t i = 0; i < blob.size(); i += kDeliveredBytes) {
    DeliveredMessage m;
    m.packet_id = static_cast<uint16_t>(byte(i) | byte(i + 1) << 8);
    m.digest = byte(i + 2) | byte(i + 3) << 8 | byte(i + 4) << 16 | byte(i + 5) << 24;
    out.push_back(m);
  }
  return out;
}

void DeliveryTracker::FreeSlots::operator()(Slot* p) const { std::free(p); }

// calloc: the slots of ids never used stay untouched zero pages.
DeliveryTracker::DeliveryTracker()
    : slots_(static_cast<Slot*>(std::calloc(kPacketIds, sizeof(Slot)))) {
  if (!slots_) throw std::bad_alloc();
}

void DeliveryTracker::Seed(std::span<const DeliveredMessage> committed) {
  // Seeded messages are numbered 0: durable from the start.
  for (const DeliveredMessage& m : committed) slots_[m.packet_id] = {m.digest, 0};
}

bool DeliveryTracker::IsDurable(uint32_t seq32) const {
  return static_cast<int32_t>(seq32 - static_cast<uint32_t>(durable_)) <= 0;
}

DeliveryTracker::Verdict DeliveryTracker::OnPublish(uint16_t packet_id, uint8_t qos, bool dup,
                                                    uint32_t digest, uint64_t seq,
                                                    std::vector<Ack>& acks_now) {
  Slot& slot = slots_[packet_id];
  if (dup && slot.digest == digest) {
    if (owed_ids_[packet_id])
      return Verdict::kDuplicate;  // acknowledged once, when its first copy is
    if (IsDurable(slot.seq)) {
      acks_now.push_back({packet_id, qos});
      return Verdict::kDuplicate;
    }
    // Its first copy came on an earlier connection and is not committed yet.
    const uint64_t first =
        durable_ + static_cast<uint32_t>(slot.seq - static_cast<uint32_t>(durable_));
    auto at = std::upper_bound(owed_.begin(), owed_.end(), first,
                               [](uint64_t s, const Owed& o) { return s < o.seq; });
    owed_.insert(at, {first, packet_id, qos});
    owed_ids_[packet_id] = true;
    return Verdict::kDuplicate;
  }
  slot = {digest, static_cast<uint32_t>(seq)};
  Verdict verdict = Verdict::kNew;
  if (owed_.size() >= kMaxOwed) {
    acks_now.push_back({owed_.front().packet_id, owed_.front().qos});
    owed_ids_[owed_.front().packet_id] = false;
    owed_.pop_front();
    verdict = Verdict::kNewOverflow;
  }
  owed_.push_back({seq, packet_id, qos});
  owed_ids_[packet_id] = true;
  return verdict;
}

void DeliveryTracker::Durable(uint64_t seq, std::vector<Ack>& acks) {
  durable_ = std::max(durable_, seq);
  while (!owed_.empty() && owed_.front().seq <= durable_) {
    acks.push_back({owed_.front().packet_id, owed_.front().qos});
    owed_ids_[owed_.front().packet_id] = false;
    owed_.pop_front();
  }
}

}  // namespace edge::agent
