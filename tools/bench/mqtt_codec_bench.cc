// MQTT parser throughput (mqtt_codec.h): nanoseconds per PUBLISH when a socket read holds
// many small ones, as the native ingest sees them at high rates (topic ~20 bytes, JSON
// payload ~40 bytes). Also the cost of acks for QoS 1 and of packets split across reads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "edge/agent/mqtt_codec.h"

namespace {

using edge::agent::mqtt::EncodePuback;
using edge::agent::mqtt::EncodeRemainingLength;
using edge::agent::mqtt::MqttParser;
using edge::agent::mqtt::ParseEvent;
using edge::agent::mqtt::ParseResult;

std::string Publish(const std::string& topic, const std::string& payload, int qos, uint16_t id) {
  std::string body;
  body.push_back(static_cast<char>(topic.size() >> 8));
  body.push_back(static_cast<char>(topic.size() & 0xff));
  body += topic;
  if (qos > 0) {
    body.push_back(static_cast<char>(id >> 8));
    body.push_back(static_cast<char>(id & 0xff));
  }
  body += payload;
  std::string out(1, static_cast<char>(0x30 | (qos << 1)));
  EncodeRemainingLength(body.size(), out);
  return out + body;
}

// About 64 KiB of back-to-back PUBLISH packets, as one large socket read returns them.
std::string Chunk(int qos, int64_t& packets) {
  std::string chunk;
  packets = 0;
  while (chunk.size() < 64 * 1024 - 100) {
    const int i = static_cast<int>(packets);
    chunk += Publish("plant/line-" + std::to_string(i % 8) + "/dev-" + std::to_string(i % 100),
                     "{\"value\":" + std::to_string(20 + i % 10) + ".25,\"ts\":1764167000" +
                         std::to_string(100 + i % 900) + "}",
                     qos, static_cast<uint16_t>(1 + i % 60000));
    ++packets;
  }
  return chunk;
}

void Parse(benchmark::State& state, int qos, size_t read_size) {
  int64_t per_chunk = 0;
  const std::string chunk = Chunk(qos, per_chunk);
  MqttParser parser(65536 + 65539);
  std::string acks;
  int64_t packets = 0;
  size_t bytes_seen = 0;
  for (auto _ : state) {
    acks.clear();
    for (size_t at = 0; at < chunk.size(); at += read_size) {
      std::string_view in = std::string_view(chunk).substr(at, read_size);
      while (true) {
        const ParseResult r = parser.Next(in);
        if (r.event != ParseEvent::kPacket) break;
        bytes_seen += r.packet.topic.size() + r.packet.payload.size();
        if (r.packet.qos == 1) EncodePuback(r.packet.packet_id, acks);
        ++packets;
      }
    }
    benchmark::DoNotOptimize(acks.data());
  }
  if (packets != per_chunk * static_cast<int64_t>(state.iterations())) {
    state.SkipWithError("packets lost");
  }
  benchmark::DoNotOptimize(bytes_seen);
  state.SetItemsProcessed(packets);
  state.SetBytesProcessed(static_cast<int64_t>(chunk.size()) * state.iterations());
  state.counters["ns_per_packet"] = benchmark::Counter(
      static_cast<double>(packets), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_packet"] =
      static_cast<double>(chunk.size()) / static_cast<double>(per_chunk);
}

void BM_ParsePublishQos0(benchmark::State& state) { Parse(state, 0, 64 * 1024); }
void BM_ParsePublishQos1WithPuback(benchmark::State& state) { Parse(state, 1, 64 * 1024); }
// 1500-byte reads: many packets straddle two reads and are copied once.
void BM_ParsePublishQos1SplitReads(benchmark::State& state) { Parse(state, 1, 1500); }

}  // namespace

BENCHMARK(BM_ParsePublishQos0);
BENCHMARK(BM_ParsePublishQos1WithPuback);
BENCHMARK(BM_ParsePublishQos1SplitReads);
