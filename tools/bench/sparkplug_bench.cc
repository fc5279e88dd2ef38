// Sparkplug B decode throughput: metrics per CPU second through SparkplugDecoder for the
// messages an edge node sends (DDATA by alias with 1, 10 and 100 metrics; a 100-metric
// DBIRTH), against the JSON decoder on an object of the same numbers in the same run. The
// pipeline decodes on one thread, so this bounds Sparkplug ingest before rules and storage.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edge/agent/decoder.h"
#include "edge/agent/sparkplug.h"
#include "edge/rules/reading.h"
#include "proto/sparkplug_b.pb.h"

namespace {

using edge::agent::SparkplugDecoder;
using edge::rules::Reading;
using Payload = edge::sparkplug::Payload;

constexpr int64_t kNowMs = 1'764'167'000'000;
constexpr char kBirthTopic[] = "spBv1.0/plant-3/DBIRTH/line-7/press-12";
constexpr char kDataTopic[] = "spBv1.0/plant-3/DDATA/line-7/press-12";

std::string MetricName(int i) { return "Motor/Channel_" + std::to_string(i) + "/Current"; }

double Value(int i, int64_t round) {
  return 20.0 + i * 0.37 + static_cast<double>(round % 7) * 0.01;
}

std::string Birth(int metrics, uint64_t seq) {
  Payload p;
  p.set_timestamp(kNowMs);
  p.set_seq(seq);
  for (int i = 0; i < metrics; ++i) {
    auto* m = p.add_metrics();
    m->set_name(MetricName(i));
    m->set_alias(static_cast<uint64_t>(i) + 1);
    m->set_datatype(edge::sparkplug::Double);
    m->set_double_value(Value(i, 0));
  }
  return p.SerializeAsString();
}

// DDATA by alias, each metric with its own timestamp, as Tahu-based nodes send it.
std::string Data(int metrics, uint64_t seq) {
  Payload p;
  p.set_timestamp(kNowMs);
  p.set_seq(seq);
  for (int i = 0; i < metrics; ++i) {
    auto* m = p.add_metrics();
    m->set_alias(static_cast<uint64_t>(i) + 1);
    m->set_timestamp(static_cast<uint64_t>(kNowMs) + static_cast<uint64_t>(i));
    m->set_double_value(Value(i, static_cast<int64_t>(seq)));
  }
  return p.SerializeAsString();
}

SparkplugDecoder BornDecoder(int metrics) {
  SparkplugDecoder d;
  std::vector<Reading> out;
  Payload nbirth;
  nbirth.set_seq(0);
  d.Decode("spBv1.0/plant-3/NBIRTH/line-7", nbirth.SerializeAsString(), kNowMs, out);
  d.Decode(kBirthTopic, Birth(metrics, 1), kNowMs, out);
  return d;
}

void BM_Sparkplug_DData(benchmark::State& state) {
  const int metrics = static_cast<int>(state.range(0));
  SparkplugDecoder decoder = BornDecoder(metrics);
  // 256 messages, one per seq, so that the sequence check sees no gap.
  std::vector<std::string> messages;
  for (uint64_t seq = 0; seq < 256; ++seq) messages.push_back(Data(metrics, (seq + 2) % 256));
  std::vector<Reading> out;
  size_t i = 0;
  for (auto _ : state) {
    out.clear();
    const auto o = decoder.Decode(kDataTopic, messages[i], kNowMs, out);
    if (o.reject || out.size() != static_cast<size_t>(metrics)) {
      state.SkipWithError("DDATA not decoded");
      break;
    }
    i = (i + 1) % messages.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * metrics);  // metrics, each one reading
}
BENCHMARK(BM_Sparkplug_DData)->Arg(1)->Arg(10)->Arg(100);

void BM_Sparkplug_DBirth(benchmark::State& state) {
  const int metrics = static_cast<int>(state.range(0));
  SparkplugDecoder decoder = BornDecoder(metrics);
  const std::string birth = Birth(metrics, 1);
  std::vector<Reading> out;
  for (auto _ : state) {
    out.clear();
    // A rebirth of the device: its definitions are replaced each time.
    if (decoder.Decode(kBirthTopic, birth, kNowMs, out).reject) {
      state.SkipWithError("DBIRTH refused");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * metrics);
}
BENCHMARK(BM_Sparkplug_DBirth)->Arg(100);

// Baseline: the same numbers as a flat JSON object (one reading per member) through the
// JSON decoder, the agent's other path.
void BM_Json_Object(benchmark::State& state) {
  const int metrics = static_cast<int>(state.range(0));
  std::string json = "{";
  for (int i = 0; i < metrics; ++i) {
    if (i > 0) json += ",";
    json += "\"Channel_" + std::to_string(i) + "_Current\":" + std::to_string(Value(i, 3));
  }
  json += "}";
  const edge::agent::DecodeOptions options;
  std::vector<Reading> out;
  for (auto _ : state) {
    out.clear();
    if (edge::agent::DecodePayload("plant-3/line-7/press-12", json, kNowMs, options, out)) {
      state.SkipWithError("JSON refused");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * metrics);
}
BENCHMARK(BM_Json_Object)->Arg(1)->Arg(10)->Arg(100);

}  // namespace
