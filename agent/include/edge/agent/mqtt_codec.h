#pragma once

// MQTT 3.1.1 (OASIS standard, 2014) for a subscribing client: encoders for what the client
// sends and an incremental parser for what a broker sends. Pure: no I/O, no clock, no
// logging; nothing here throws on input. Used by the native ingest (native_ingest.cc).
//
// Encoders append to a caller-owned std::string so that several packets share one buffer
// (one write per batch of acks).
//
// MqttParser takes the byte stream in pieces of any size. Complete packets found in a piece
// are returned as views into that piece (no copy); a packet split across pieces is copied
// into the parser until it is complete, so the parser holds at most max_packet_bytes plus a
// 5-byte fixed header. A packet whose remaining length exceeds max_packet_bytes is skipped
// as it streams past, never buffered; for a skipped PUBLISH its QoS and packet id are still
// reported so that the client can acknowledge it. Not thread-safe: one parser per
// connection, owned by the connection's thread.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::agent::mqtt {

enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

// Largest remaining length the 4-byte variable-length encoding can express.
inline constexpr size_t kMaxRemainingLength = 268'435'455;
// Longest fixed header: the type byte and a 4-byte remaining length.
inline constexpr size_t kMaxFixedHeader = 5;

// ---- encoders: each appends one packet to `out` ----

struct ConnectOptions {
  std::string_view client_id;  // may be empty (the broker then assigns one)
  uint16_t keepalive_s = 30;   // 0 turns keepalive off
  std::string_view username;   // empty: no user name flag
  std::string_view password;   // empty: no password flag (needs a user name when set)
  bool clean_session = true;   // false: the broker resumes (or starts) a persistent session
};

// CONNECT with protocol name "MQTT" and level 4. Fails (and appends
// nothing) when a string is longer than 65,535 bytes or a password has no user name.
[[nodiscard]] Status EncodeConnect(const ConnectOptions& options, std::string& out);

struct SubscribeFilter {
  std::string_view filter;
  uint8_t qos = 0;  // 0..2
};

// SUBSCRIBE (fixed-header flags 0x2). Fails (and appends nothing) for no filters, an
// empty or too long filter, qos above 2, packet id 0 or a packet over the size limit.
[[nodiscard]] Status EncodeSubscribe(uint16_t packet_id, std::span<const SubscribeFilter> filters,
                                     std::string& out);

void EncodePuback(uint16_t packet_id, std::string& out);
void EncodePubrec(uint16_t packet_id, std::string& out);
void EncodePubcomp(uint16_t packet_id, std::string& out);
void EncodePingreq(std::string& out);
void EncodeDisconnect(std::string& out);

// Appends the variable-length encoding of `value` (at most kMaxRemainingLength).
void EncodeRemainingLength(size_t value, std::string& out);

// ---- decoded packets ----

// CONNACK return codes (3.2.2.3).
enum class ConnackCode : uint8_t {
  kAccepted = 0,
  kBadProtocolVersion = 1,
  kIdentifierRejected = 2,
  kServerUnavailable = 3,
  kBadUserNameOrPassword = 4,
  kNotAuthorized = 5,
};

// "accepted", "unacceptable protocol version", ...; "return code N" for codes above 5.
std::string_view ConnackCodeText(uint8_t code);

inline constexpr uint8_t kSubackFailure = 0x80;

// One packet from the broker. Views point into the piece passed to MqttParser::Next or
// into the parser's own buffer: valid until the next call to Next or Reset.
struct Packet {
  PacketType type = PacketType::kPingresp;
  uint8_t flags = 0;       // low nibble of the fixed header
  uint16_t packet_id = 0;  // PUBLISH with qos > 0, PUBACK..PUBCOMP, SUBACK, UNSUBACK
  // PUBLISH
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  // CONNACK
  bool session_present = false;
  uint8_t connack_code = 0;  // ConnackCode values; others are passed through
  // SUBACK: one byte per filter in SUBSCRIBE order, granted qos 0..2 or kSubackFailure.
  std::string_view suback_results;
};

enum class ParseEvent {
  kNeedMore,  // the piece is used up; feed the next one
  kPacket,    // `packet` holds a complete packet
  kSkipped,   // an oversize packet began streaming past; `packet` has its type, and for a
              // PUBLISH its qos and packet_id (topic and payload empty)
  kError,     // protocol error, described by `error`; the connection must be closed
};

struct ParseResult {
  ParseEvent event = ParseEvent::kNeedMore;
  Packet packet;
  std::string error;  // kError only
};

class MqttParser {
 public:
  // max_packet_bytes: largest remaining length buffered; at least 2 (raised if lower).
  explicit MqttParser(size_t max_packet_bytes);

  // Consumes bytes from the front of `input` (advancing it) up to the end of the next
  // packet, and returns that packet; or consumes all of `input` and returns kNeedMore.
  // Call again with the rest until kNeedMore. After kError the parser stays in error (every
  // call returns the same error) until Reset.
  ParseResult Next(std::string_view& input);

  // Forgets any partial packet and error: for a new connection.
  void Reset();

  size_t max_packet_bytes() const { return max_packet_bytes_; }
  // Bytes of partial packets held right now (at most max_packet_bytes + kMaxFixedHeader).
  size_t buffered_bytes() const { return partial_.size(); }
  // Oversize packets skipped since construction.
  uint64_t skipped_packets() const { return skipped_packets_; }

 private:
  struct Header {
    uint8_t first = 0;
    size_t remaining = 0;
    size_t header_size = 0;
  };
  enum class HeaderStatus { kIncomplete, kComplete, kMalformed };

  static HeaderStatus ReadHeader(std::string_view bytes, Header& header);
  ParseResult Fail(std::string message);
  // Checks what the fixed header alone tells (type, flags, fixed lengths).
  Status CheckHeader(const Header& header) const;
  void StartSkip(const Header& header);
  ParseResult ContinueSkip(std::string_view& input);
  ParseResult Decode(const Header& header, std::string_view body);

  size_t max_packet_bytes_;
  std::string partial_;           // bytes of a packet split across pieces (header included)
  bool release_partial_ = false;  // partial_ was returned as a packet: clear on next call
  std::string error_;             // set after a protocol error
  uint64_t skipped_packets_ = 0;

  // Skipping an oversize packet.
  bool skipping_ = false;
  bool skip_reported_ = false;
  Header skip_header_;
  size_t skip_pos_ = 0;         // body bytes passed so far
  uint8_t skip_bytes_[4] = {};  // PUBLISH: topic length, then packet id
  size_t skip_topic_length_ = 0;
};

}  // namespace edge::agent::mqtt
