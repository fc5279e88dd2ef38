// Micro-benchmarks of the uplink's per-batch CPU work while a backlog drains: encoding a
// batch body from outbox rows, and compressing it. Figures in docs/performance.md.

#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "edge/cloudsync/batch_codec.h"
#include "edge/cloudsync/gzip.h"

namespace {

using edge::cloudsync::OutboxItem;

// Alert rows shaped like the agent's (docs/protocol.md, "Alert payload"), ~500 bytes each.
std::vector<OutboxItem> AlertRows(int n) {
  std::vector<OutboxItem> rows;
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int64_t ts = 1'764'167'000'000 + i * 1000;
    std::string context = "[";
    for (int k = 0; k < 10; ++k) {
      if (k > 0) context += ',';
      context += "[" + std::to_string(ts - (9 - k) * 1000) + "," +
                 std::to_string(40 + (i + k) % 30) + "." + std::to_string(k) + "]";
    }
    context += "]";
    const std::string sensor =
        "plant/line-" + std::to_string(i % 7) + "/dev-" + std::to_string(i % 113) + "/temperature";
    OutboxItem row;
    row.seq = i + 1;
    row.id = "node-1:5f3a9c0e12ab44d1:" + std::to_string(i + 1);
    row.kind = "alert";
    row.created_ms = ts;
    row.payload_json = R"({"node":"node-1","rule":"boiler-overheat","sensor":")" + sensor +
                       R"(","severity":"critical","state":")" + (i % 2 ? "resolved" : "firing") +
                       R"(","value":)" + std::to_string(50 + i % 40) + R"(.5,"ts_ms":)" +
                       std::to_string(ts) + R"(,"started_ms":)" + std::to_string(ts - 5000) +
                       R"(,"episode":"boiler-overheat|)" + sensor + "|" +
                       std::to_string(ts - 5000) + R"(","context":)" + context + "}";
    rows.push_back(std::move(row));
  }
  return rows;
}

void BM_EncodeBatchBody(benchmark::State& state) {
  const auto rows = AlertRows(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    auto body = edge::cloudsync::EncodeBatchBody("node-1", 1'764'167'000'000, rows);
    bytes = body.body.size();
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_EncodeBatchBody)->Arg(500)->Arg(2000);

// Baseline: the same body built through a JSON DOM (every payload parsed and dumped
// again), as the uplink did before it embedded payloads as stored.
void BM_EncodeBatchBodyViaDom(benchmark::State& state) {
  const auto rows = AlertRows(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    nlohmann::json items = nlohmann::json::array();
    for (const OutboxItem& row : rows) {
      nlohmann::json payload = nlohmann::json::parse(row.payload_json, nullptr, false);
      items.push_back({{"id", row.id},
                       {"kind", row.kind},
                       {"created_ms", row.created_ms},
                       {"payload", std::move(payload)}});
    }
    nlohmann::json doc = {{"node", "node-1"}, {"sent_ms", 1}, {"items", std::move(items)}};
    std::string body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EncodeBatchBodyViaDom)->Arg(500)->Arg(2000);

void BM_GzipBatchBody(benchmark::State& state) {
  const auto rows = AlertRows(500);
  const std::string body = edge::cloudsync::EncodeBatchBody("node-1", 1, rows).body;
  const int level = static_cast<int>(state.range(0));
  size_t out = 0;
  for (auto _ : state) {
    auto z = edge::cloudsync::GzipCompress(body, level);
    out = z.ok() ? z->size() : 0;
    benchmark::DoNotOptimize(z);
  }
  state.SetItemsProcessed(state.iterations() * 500);
  state.counters["ratio"] = static_cast<double>(out) / static_cast<double>(body.size());
}
BENCHMARK(BM_GzipBatchBody)->Arg(1)->Arg(6);

}  // namespace
