// libFuzzer target for SparkplugDecoder. The input is a sequence of messages, each a topic
// selector byte, a length byte and that many payload bytes, fed to one decoder made for the
// input (births, aliases and deaths are state within it, so a crash reproduces from its
// input alone) under small bounds. Any input must
// decode or be rejected, never crash; a reject leaves the output untouched; readings name a
// sensor under spBv1.0/ within the id limit; the bounds hold.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "edge/agent/sparkplug.h"

namespace {

constexpr std::string_view kTopics[] = {
    "spBv1.0/g/NBIRTH/n1",    "spBv1.0/g/DBIRTH/n1/d1", "spBv1.0/g/NDATA/n1",
    "spBv1.0/g/DDATA/n1/d1",  "spBv1.0/g/DDEATH/n1/d1", "spBv1.0/g/NDEATH/n1",
    "spBv1.0/g/NBIRTH/n2",    "spBv1.0/g/DBIRTH/n2/d2", "spBv1.0/g/DDATA/n2/d2",
    "spBv1.0/g/NCMD/n1",      "spBv1.0/STATE/host",     "spBv1.0/g/NDATA/n1/extra",
    "spBv1.0/g/DBIRTH/n3/d1", "spBv1.0/g/NBIRTH/n4",    "spBv1.0/g/NBIRTH/n5",
    "spBv1.0//NDATA/n1"};

edge::agent::SparkplugOptions Options() {
  edge::agent::SparkplugOptions o;
  o.max_nodes = 3;
  o.max_metrics_per_node = 32;
  o.max_sensor_id_bytes = 48;
  o.max_state_bytes = 16 * 1024;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const edge::agent::SparkplugOptions options = Options();
  edge::agent::SparkplugDecoder decoder(options);
  const edge::rules::Reading sentinel{"sentinel", 1, 2.0};
  size_t i = 0;
  while (i + 2 <= size) {
    const std::string_view topic = kTopics[data[i] % std::size(kTopics)];
    const size_t len = std::min<size_t>(data[i + 1], size - i - 2);
    const std::string_view payload(reinterpret_cast<const char*>(data + i + 2), len);
    i += 2 + len;
    std::vector<edge::rules::Reading> out{sentinel};
    const edge::agent::SparkplugOutcome o = decoder.Decode(topic, payload, 1'700'000'000'000, out);
    if (out.empty() || out[0].sensor != sentinel.sensor) std::abort();
    if (o.reject && out.size() != 1) std::abort();
    for (size_t r = 1; r < out.size(); ++r) {
      if (!edge::agent::IsSparkplugTopic(out[r].sensor) ||
          out[r].sensor.size() > options.max_sensor_id_bytes) {
        std::abort();
      }
    }
    if (decoder.nodes() > options.max_nodes) std::abort();
  }
  return 0;
}
