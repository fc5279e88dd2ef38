// libFuzzer target for the MQTT parser (mqtt_codec.h). Input: one byte choosing the packet
// size limit, one byte choosing how the rest is cut into reads, then the byte stream from
// the "broker". Whatever the bytes, the parser must not crash, must never hold more than
// the limit plus a fixed header, must make progress on every call, and must report the same
// packets, skips and error whether the stream comes whole or in pieces.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "edge/agent/mqtt_codec.h"

namespace {

using edge::agent::mqtt::kMaxFixedHeader;
using edge::agent::mqtt::MqttParser;
using edge::agent::mqtt::ParseEvent;
using edge::agent::mqtt::ParseResult;

// A comparable summary of every event.
std::string Run(std::string_view stream, size_t max_packet, size_t piece_size) {
  MqttParser parser(max_packet);
  std::string log;
  for (size_t at = 0; at < stream.size() || at == 0; at += piece_size) {
    std::string_view piece = stream.substr(at, piece_size);
    while (true) {
      const size_t before = piece.size();
      const ParseResult r = parser.Next(piece);
      if (parser.buffered_bytes() > parser.max_packet_bytes() + kMaxFixedHeader) std::abort();
      if (r.event == ParseEvent::kNeedMore) {
        if (!piece.empty()) std::abort();
        break;
      }
      if (r.event == ParseEvent::kError) {
        if (r.error.empty()) std::abort();
        return log + "E";
      }
      if (r.event == ParseEvent::kPacket && piece.size() == before && before != 0 &&
          parser.buffered_bytes() == 0) {
        std::abort();  // a packet out of nothing
      }
      log += r.event == ParseEvent::kSkipped ? "S" : "P";
      log += std::to_string(static_cast<int>(r.packet.type)) + ":" +
             std::to_string(r.packet.packet_id) + ":" + std::to_string(r.packet.qos) + ":";
      log.append(r.packet.topic);
      log += "|";
      log += std::to_string(r.packet.payload.size()) + "|";
      log.append(r.packet.suback_results);
      log += ";";
    }
    if (stream.empty()) break;
  }
  return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_packet = 2 + static_cast<size_t>(data[0]) * 4;
  const size_t piece_size = 1 + data[1] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string whole = Run(stream, max_packet, stream.size() + 1);
  const std::string pieces = Run(stream, max_packet, piece_size);
  if (whole != pieces) std::abort();
  return 0;
}
