// libFuzzer target for DecodePayload: any byte string must decode or be rejected with a
// reason, never crash, and a reject must leave the output untouched.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "edge/agent/decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  edge::agent::DecodeOptions options;
  std::vector<edge::rules::Reading> out;
  out.push_back(edge::rules::Reading{"sentinel", 1, 2.0});
  const auto reject =
      edge::agent::DecodePayload("fuzz/topic", payload, 1'700'000'000'000, options, out);
  if (reject) {
    if (out.size() != 1 || out[0].sensor != "sentinel") std::abort();
    if (edge::agent::ReasonLabel(*reject).empty()) std::abort();
    return 0;
  }
  if (out.size() < 2 || out.size() - 1 > options.max_readings) std::abort();
  for (size_t i = 1; i < out.size(); ++i) {
    if (!std::isfinite(out[i].value)) std::abort();
    if (out[i].sensor.compare(0, 10, "fuzz/topic") != 0) std::abort();
  }
  return 0;
}
