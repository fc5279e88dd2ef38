// libFuzzer target for DecodePayload: any byte string must decode or be rejected with a
// reason, never crash, and a reject must leave the output untouched. It also checks that
// DecodePayload's shortcut for flat objects of numbers gives exactly what the streaming
// parser gives (internal::DecodePayloadWithParser): same reason, same readings, values
// equal to the bit.

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "edge/agent/decoder.h"

namespace {

constexpr std::string_view kTopic = "fuzz/topic";
constexpr int64_t kReceiveTs = 1'700'000'000'000;

void CheckSameAsParser(std::string_view payload, const edge::agent::DecodeOptions& options) {
  const edge::rules::Reading sentinel{"sentinel", 1, 2.0};
  std::vector<edge::rules::Reading> fast{sentinel};
  std::vector<edge::rules::Reading> full{sentinel};
  const auto fast_reject = edge::agent::DecodePayload(kTopic, payload, kReceiveTs, options, fast);
  const auto full_reject =
      edge::agent::internal::DecodePayloadWithParser(kTopic, payload, kReceiveTs, options, full);
  if (fast_reject != full_reject || fast.size() != full.size()) std::abort();
  for (size_t i = 0; i < fast.size(); ++i) {
    if (fast[i].sensor != full[i].sensor || fast[i].ts_ms != full[i].ts_ms ||
        std::bit_cast<uint64_t>(fast[i].value) != std::bit_cast<uint64_t>(full[i].value)) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  edge::agent::DecodeOptions options;

  CheckSameAsParser(payload, options);
  // Tight limits, so that the shortcut's limit checks are compared too.
  CheckSameAsParser(payload, edge::agent::DecodeOptions{options.max_payload_bytes, 1, 1});
  // Deep nesting allowed, past the decoder's inline frames.
  CheckSameAsParser(payload, edge::agent::DecodeOptions{options.max_payload_bytes, 256, 64});

  std::vector<edge::rules::Reading> out;
  out.push_back(edge::rules::Reading{"sentinel", 1, 2.0});
  const auto reject = edge::agent::DecodePayload(kTopic, payload, kReceiveTs, options, out);
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
