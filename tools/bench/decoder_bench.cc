// Decoder throughput: messages and bytes per CPU second through DecodePayload for the
// payload formats sensors send (docs/payloads.md). The pipeline decodes on one thread, so
// this bounds the agent's ingest rate before rules and storage.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "edge/agent/decoder.h"
#include "edge/rules/reading.h"

namespace {

using edge::agent::DecodeOptions;
using edge::agent::DecodePayload;
using edge::rules::Reading;

constexpr std::string_view kTopic = "sim/line-3/dev-27/temperature";

using DecodeFn = decltype(&DecodePayload);

void Run(benchmark::State& state, std::string_view topic, std::string_view payload,
         DecodeFn decode = &DecodePayload) {
  const DecodeOptions options;
  std::vector<Reading> out;
  out.reserve(64);
  int64_t readings = 0;
  for (auto _ : state) {
    out.clear();
    if (decode(topic, payload, 1'764'167'000'000, options, out).has_value()) {
      state.SkipWithError("payload rejected");
      break;
    }
    readings += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload.size()));
  state.counters["readings_per_msg"] =
      static_cast<double>(readings) / static_cast<double>(state.iterations());
}

void BM_Decode_Plain(benchmark::State& state) { Run(state, kTopic, "21.37"); }

void BM_Decode_JsonValueTs(benchmark::State& state) {
  Run(state, kTopic, R"({"value":21.37,"ts":1764167000123})");
}

// The same payload through the streaming parser, as payloads of other shapes go.
void BM_Decode_JsonValueTsWithParser(benchmark::State& state) {
  Run(state, kTopic, R"({"value":21.37,"ts":1764167000123})",
      &edge::agent::internal::DecodePayloadWithParser);
}

void BM_Decode_Zigbee2Mqtt(benchmark::State& state) {
  Run(state, "sim/z2m/dev-2",
      R"({"temperature":21.37,"humidity":48.2,"linkquality":131,"battery":97,)"
      R"("voltage":2995,"occupancy":false,"last_seen":"2025-11-26T14:03:20Z"})");
}

void BM_Decode_TasmotaNested(benchmark::State& state) {
  Run(state, "tele/plug-7/SENSOR",
      R"({"Time":"2025-11-26T14:03:20","ENERGY":{"TotalStartTime":"2024-01-01T00:00:00",)"
      R"("Total":123.456,"Yesterday":1.234,"Today":0.567,"Power":42,"ApparentPower":50,)"
      R"("ReactivePower":27,"Factor":0.84,"Voltage":231,"Current":0.216},)"
      R"("DS18B20":{"Id":"0316A27949B6","Temperature":21.4},"TempUnit":"C"})");
}

// A 64-element array: the larger end of what one message carries.
void BM_Decode_Array64(benchmark::State& state) {
  std::string payload = "[";
  for (int i = 0; i < 64; ++i) {
    if (i > 0) payload += ',';
    payload += std::to_string(20 + i % 7) + "." + std::to_string(10 + i % 90);
  }
  payload += ']';
  Run(state, "plant/adc-1/channels", payload);
}

BENCHMARK(BM_Decode_Plain);
BENCHMARK(BM_Decode_JsonValueTs);
BENCHMARK(BM_Decode_JsonValueTsWithParser);
BENCHMARK(BM_Decode_Zigbee2Mqtt);
BENCHMARK(BM_Decode_TasmotaNested);
BENCHMARK(BM_Decode_Array64);

}  // namespace
