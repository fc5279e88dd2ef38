#pragma once

// What the native MQTT client owes the broker for QoS 1 and 2 messages when it acknowledges
// them only after their readings are committed (mqtt.ack: commit), and how it recognises
// the broker's resend of a message it already has.
//
// Messages handed to the pipeline are numbered (`seq`, from 1, in the order received); the
// pipeline reports the highest number whose effects are committed (Durable), and the
// PUBACK (QoS 1) or PUBREC (QoS 2) of every message up to it is then sent, in order.
//
// A resend is a PUBLISH with the DUP flag whose packet id last carried a message with the
// same topic and payload (a 32-bit digest of both): it is not handed over again, and its
// acknowledgement is owed once the first copy is committed. Across a restart the store
// keeps the ids and digests of the latest committed messages (the last commit's, and at
// least the latest 256: Seed), which are those a crash between a commit and its
// acknowledgements, or acknowledgements lost with a connection, leave unacknowledged.
// A new message
// that the broker sends with the DUP flag, on an id whose last message had the very same
// topic and payload, is taken for a resend: with payloads that carry a timestamp it is
// one; without, one repeated reading is lost (docs/operations.md).
//
// Bounds: one 8-byte slot per packet id (512 KiB of address space, allocated zeroed and
// touched only for ids in use) and at most kMaxOwed acknowledgements owed; past that the
// oldest is sent at once and counted by the caller (Verdict::kNewOverflow).
// Not thread-safe: owned by the MQTT client's thread.

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edge::agent {

// A QoS 1 or 2 message as the store remembers it after a readings commit.
struct DeliveredMessage {
  uint16_t packet_id = 0;
  uint32_t digest = 0;  // MessageDigest(topic, payload)

  bool operator==(const DeliveredMessage&) const = default;
};

// FNV-1a over the topic, a separator and the payload; never 0 (0 marks an unused slot).
// Stable across builds and machines: it is stored.
uint32_t MessageDigest(std::string_view topic, std::string_view payload);

// Encodes and decodes the store's form of a set of DeliveredMessage (6 bytes each, little
// endian). Decoding a blob of the wrong length gives an empty set.
std::string EncodeDelivered(std::span<const DeliveredMessage> messages);
std::vector<DeliveredMessage> DecodeDelivered(std::string_view blob);

class DeliveryTracker {
 public:
  struct Ack {
    uint16_t packet_id = 0;
    uint8_t qos = 1;  // 1: PUBACK, 2: PUBREC
  };
  enum class Verdict {
    kNew,          // hand it over as message `seq`; its ack is owed
    kNewOverflow,  // as kNew, and the oldest owed ack was moved to `acks_now`
    kDuplicate,    // a resend: do not hand it over; its ack is owed or in `acks_now`
  };
  static constexpr size_t kMaxOwed = 65'536;

  DeliveryTracker();

  // The messages of the last readings commit before this process started: committed, and
  // perhaps never acknowledged.
  void Seed(std::span<const DeliveredMessage> committed);

  // A PUBLISH with qos 1 or 2 arrived; `seq` is the number it gets if it is handed over.
  Verdict OnPublish(uint16_t packet_id, uint8_t qos, bool dup, uint32_t digest, uint64_t seq,
                    std::vector<Ack>& acks_now);

  // Every message numbered up to `seq` is committed: appends the acks owed for them.
  void Durable(uint64_t seq, std::vector<Ack>& acks);

  // The connection is gone: the acks owed on it are dropped (a persistent session's broker
  // sends those messages again, with DUP, on the next connection).
  void Disconnected() {
    owed_.clear();
    owed_ids_.reset();
  }

  uint64_t durable_seq() const { return durable_; }
  size_t owed() const { return owed_.size(); }

 private:
  struct Slot {
    uint32_t digest = 0;  // 0: unused
    uint32_t seq = 0;     // low 32 bits of the message's number
  };
  struct Owed {
    uint64_t seq = 0;
    uint16_t packet_id = 0;
    uint8_t qos = 1;
  };
  struct FreeSlots {
    void operator()(Slot* p) const;
  };
  bool IsDurable(uint32_t seq32) const;

  std::unique_ptr<Slot[], FreeSlots> slots_;  // by packet id
  std::deque<Owed> owed_;                     // ordered by seq
  std::bitset<65'536> owed_ids_;              // packet ids in owed_
  uint64_t durable_ = 0;
};

}  // namespace edge::agent
