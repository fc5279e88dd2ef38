#include "sim_model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>

namespace sensor_sim {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr std::int64_t kLongAnomalyMs = 60'000;
constexpr double kDriftPerMs = 1.0 / 10'000.0;  // +1 degree per 10 s
constexpr double kWalkReversion = 0.1;          // pull towards the baseline per reading
constexpr double kWalkStd = 0.2;                // stationary standard deviation
constexpr int kDevicesPerLine = 8;

std::uint64_t SplitMix64(std::uint64_t& state) {
  state += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t StreamSeed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t s = stream;
  std::uint64_t mixed = SplitMix64(s);
  std::uint64_t t = seed ^ mixed;
  return SplitMix64(t);
}

std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

double Round2(double x) { return std::round(x * 100.0) / 100.0; }

// Innovation std that gives kWalkStd as the stationary std of the AR(1) walk.
double WalkInnovationStd() {
  const double keep = 1.0 - kWalkReversion;
  return kWalkStd * std::sqrt(1.0 - keep * keep);
}

void AppendFixed(std::string& out, double value, int decimals) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  if (n > 0) out.append(buf, static_cast<size_t>(std::min(n, static_cast<int>(sizeof buf) - 1)));
}

// The names used on the command line and in the anomaly log, one table per enum.
constexpr std::pair<Format, std::string_view> kFormatNames[] = {{Format::kPlain, "plain"},
                                                                {Format::kJson, "json"},
                                                                {Format::kZ2m, "z2m"},
                                                                {Format::kMixed, "mixed"}};
constexpr std::pair<AnomalyKind, std::string_view> kAnomalyNames[] = {
    {AnomalyKind::kSpike, "spike"},
    {AnomalyKind::kDrift, "drift"},
    {AnomalyKind::kStuck, "stuck"},
    {AnomalyKind::kSilence, "silence"}};

// The name of `value` in `names`; "?" for a value not listed.
template <typename Enum, size_t N>
std::string_view NameOf(const std::pair<Enum, std::string_view> (&names)[N], Enum value) {
  for (const auto& [listed, name] : names) {
    if (listed == value) return name;
  }
  return "?";
}

}  // namespace

std::optional<Format> ParseFormat(std::string_view text) {
  for (const auto& [format, name] : kFormatNames) {
    if (name == text) return format;
  }
  return std::nullopt;
}

std::string_view FormatName(Format format) { return NameOf(kFormatNames, format); }

std::string_view AnomalyName(AnomalyKind kind) { return NameOf(kAnomalyNames, kind); }

std::optional<std::int64_t> ParseDurationMs(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) != 0 || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  double number = 0.0;
  const std::string number_text(text.substr(0, digits));
  char* end = nullptr;
  number = std::strtod(number_text.c_str(), &end);
  if (end != number_text.c_str() + number_text.size() || !std::isfinite(number) || number < 0) {
    return std::nullopt;
  }
  const std::string_view unit = text.substr(digits);
  double scale = 0.0;
  if (unit.empty() || unit == "s") {
    scale = 1000.0;
  } else if (unit == "ms") {
    scale = 1.0;
  } else if (unit == "m") {
    scale = 60'000.0;
  } else if (unit == "h") {
    scale = 3'600'000.0;
  } else {
    return std::nullopt;
  }
  const double ms = number * scale;
  if (ms > 1e15) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(ms));
}

Rng::Rng(std::uint64_t seed) {
  std::uint64_t state = seed;
  for (auto& word : s_) word = SplitMix64(state);
}

std::uint64_t Rng::Next() {
  const std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

double Rng::Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

std::uint64_t Rng::Below(std::uint64_t n) {
  // Rejection sampling keeps the result unbiased.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x = Next();
  while (x >= limit) x = Next();
  return x % n;
}

double Rng::Normal() {
  double u1 = Uniform();
  while (u1 <= 0.0) u1 = Uniform();
  const double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

Simulation::Simulation(const SimConfig& config) : config_(config) {
  const int n = std::max(1, config_.sensors);
  config_.sensors = n;
  sensors_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    SensorState& s = sensors_[static_cast<size_t>(i)];
    s.rng = Rng(StreamSeed(config_.seed, static_cast<std::uint64_t>(i) + 1));
    Format format = config_.format;
    if (format == Format::kMixed) {
      static constexpr Format kSpread[] = {Format::kPlain, Format::kJson, Format::kZ2m};
      format = kSpread[i % 3];
    }
    s.info.format = format;
    const std::string dev = "dev-" + std::to_string(i);
    if (format == Format::kZ2m) {
      s.info.topic = config_.prefix + "/z2m/" + dev;
      s.info.sensor_id = s.info.topic + "/temperature";
    } else {
      s.info.topic = config_.prefix + "/line-" + std::to_string(i / kDevicesPerLine) + "/" + dev +
                     "/temperature";
      s.info.sensor_id = s.info.topic;
    }
    s.info.baseline = Round2(s.rng.Uniform(20.0, 25.0));
    s.value = s.info.baseline + kWalkStd * s.rng.Normal();
    s.humidity_baseline = Round2(s.rng.Uniform(40.0, 60.0));
    s.humidity = s.humidity_baseline;
  }

  // Number of events whose due time lies strictly inside the duration.
  const double total_rate = static_cast<double>(n) * config_.rate;
  const std::int64_t duration_ns = config_.duration_ms * 1'000'000;
  std::int64_t count = static_cast<std::int64_t>(
      std::ceil(static_cast<double>(config_.duration_ms) / 1000.0 * total_rate));
  while (count > 0 && EventDueNs(count - 1) >= duration_ns) --count;
  while (EventDueNs(count) < duration_ns) ++count;
  event_count_ = count;

  Schedule();
}

std::int64_t Simulation::EventDueNs(std::int64_t event) const {
  const double total_rate = static_cast<double>(config_.sensors) * config_.rate;
  return static_cast<std::int64_t>(std::llround(static_cast<double>(event) * 1e9 / total_rate));
}

std::int64_t Simulation::ReadingOffsetMs(int sensor, std::int64_t reading) const {
  return EventDueNs(reading * config_.sensors + sensor) / 1'000'000;
}

bool Simulation::TryPlace(Rng& rng, Anomaly& anomaly, std::int64_t length_ms) {
  const int n = config_.sensors;
  const std::int64_t duration = config_.duration_ms;
  const std::int64_t warmup = std::min<std::int64_t>(5'000, duration / 10);
  const double period_ms = 1000.0 / config_.rate;
  const std::int64_t gap =
      std::max<std::int64_t>(2'000, static_cast<std::int64_t>(std::ceil(3.0 * period_ms)));

  anomaly.sensor = static_cast<int>(rng.Below(static_cast<std::uint64_t>(n)));
  const SensorState& state = sensors_[static_cast<size_t>(anomaly.sensor)];
  // Readings of this sensor inside the run: k * n + sensor < event_count_.
  const std::int64_t readings =
      event_count_ > anomaly.sensor ? (event_count_ - anomaly.sensor + n - 1) / n : 0;

  std::int64_t first = 0;
  if (anomaly.kind == AnomalyKind::kSpike) {
    const auto len = static_cast<std::int64_t>(anomaly.spike_offsets.size());
    std::int64_t lo = 0;
    while (lo < readings && ReadingOffsetMs(anomaly.sensor, lo) < warmup) ++lo;
    if (readings - len < lo) return false;
    first = lo + static_cast<std::int64_t>(
                     rng.Below(static_cast<std::uint64_t>(readings - len - lo + 1)));
    anomaly.start_ms = ReadingOffsetMs(anomaly.sensor, first);
    anomaly.end_ms = ReadingOffsetMs(anomaly.sensor, first + len);
  } else {
    if (duration < length_ms) return false;
    const std::int64_t lo = std::min(warmup, duration - length_ms);
    const std::int64_t start = lo + static_cast<std::int64_t>(rng.Below(
                                        static_cast<std::uint64_t>(duration - length_ms - lo + 1)));
    // Snap to the first reading at or after the chosen time.
    first = static_cast<std::int64_t>(
        std::ceil(static_cast<double>(start) * config_.rate / 1000.0 -
                  static_cast<double>(anomaly.sensor) / static_cast<double>(n)));
    first = std::max<std::int64_t>(0, first - 1);
    while (ReadingOffsetMs(anomaly.sensor, first) < start) ++first;
    if (first >= readings) return false;
    anomaly.start_ms = ReadingOffsetMs(anomaly.sensor, first);
    anomaly.end_ms = anomaly.start_ms + length_ms;
  }
  anomaly.first_reading = first;

  for (size_t idx : state.anomaly_indices) {
    const Anomaly& other = anomalies_[idx];
    if (anomaly.start_ms < other.end_ms + gap && other.start_ms < anomaly.end_ms + gap)
      return false;
  }
  return true;
}

void Simulation::Schedule() {
  Rng rng(StreamSeed(config_.seed, 0));
  const std::int64_t length_ms = std::min(kLongAnomalyMs, config_.duration_ms / 2);
  for (int j = 0; j < config_.anomalies; ++j) {
    Anomaly anomaly;
    anomaly.kind = static_cast<AnomalyKind>(rng.Below(4));
    if (anomaly.kind == AnomalyKind::kSpike) {
      const std::uint64_t len = 1 + rng.Below(3);
      for (std::uint64_t r = 0; r < len; ++r)
        anomaly.spike_offsets.push_back(rng.Uniform(15.0, 30.0));
    }
    const double stuck_jitter = rng.Uniform(-0.3, 0.3);

    bool placed = false;
    for (int attempt = 0; attempt < 200 && !placed; ++attempt) {
      placed = TryPlace(rng, anomaly, length_ms);
    }
    if (!placed) {
      ++unplaced_;
      continue;
    }
    const double baseline = sensors_[static_cast<size_t>(anomaly.sensor)].info.baseline;
    switch (anomaly.kind) {
      case AnomalyKind::kSpike: {
        const double top =
            *std::max_element(anomaly.spike_offsets.begin(), anomaly.spike_offsets.end());
        anomaly.peak = Round2(baseline + top);
        break;
      }
      case AnomalyKind::kDrift:
        anomaly.peak = Round2(baseline + static_cast<double>(length_ms) * kDriftPerMs);
        break;
      case AnomalyKind::kStuck:
        anomaly.stuck_value = Round2(baseline + stuck_jitter);
        anomaly.peak = anomaly.stuck_value;
        break;
      case AnomalyKind::kSilence:
        break;
    }
    anomalies_.push_back(std::move(anomaly));
    sensors_[static_cast<size_t>(anomalies_.back().sensor)].anomaly_indices.push_back(
        anomalies_.size() - 1);
  }
  for (auto& s : sensors_) {
    std::sort(s.anomaly_indices.begin(), s.anomaly_indices.end(), [this](size_t a, size_t b) {
      return anomalies_[a].start_ms < anomalies_[b].start_ms;
    });
  }
}

const Anomaly* Simulation::ActiveAnomaly(const SensorState& state, std::int64_t offset_ms) const {
  for (size_t idx : state.anomaly_indices) {
    const Anomaly& a = anomalies_[idx];
    if (offset_ms < a.start_ms) break;
    if (offset_ms < a.end_ms) return &a;
  }
  return nullptr;
}

std::optional<Message> Simulation::Next(std::int64_t event, std::int64_t wall_start_ms) {
  const int n = config_.sensors;
  const int index = static_cast<int>(event % n);
  const std::int64_t reading = event / n;
  SensorState& s = sensors_[static_cast<size_t>(index)];
  s.next_reading = reading + 1;

  // The walk advances on every reading, published or not, so that values after an
  // anomaly do not depend on what the anomaly was.
  const double keep = 1.0 - kWalkReversion;
  s.value =
      s.info.baseline + keep * (s.value - s.info.baseline) + WalkInnovationStd() * s.rng.Normal();
  double humidity = 0.0;
  int linkquality = 0;
  if (s.info.format == Format::kZ2m) {
    s.humidity = s.humidity_baseline + keep * (s.humidity - s.humidity_baseline) +
                 5.0 * WalkInnovationStd() * s.rng.Normal();
    humidity = std::clamp(s.humidity, 0.0, 100.0);
    linkquality = 60 + static_cast<int>(s.rng.Below(140));
  }

  const std::int64_t offset_ms = ReadingOffsetMs(index, reading);
  double value = s.value;
  if (const Anomaly* a = ActiveAnomaly(s, offset_ms)) {
    switch (a->kind) {
      case AnomalyKind::kSpike: {
        const auto pos = static_cast<size_t>(std::clamp<std::int64_t>(
            reading - a->first_reading, 0, static_cast<std::int64_t>(a->spike_offsets.size()) - 1));
        value = s.info.baseline + a->spike_offsets[pos];
        break;
      }
      case AnomalyKind::kDrift:
        value = s.value + static_cast<double>(offset_ms - a->start_ms) * kDriftPerMs;
        break;
      case AnomalyKind::kStuck:
        value = a->stuck_value;
        break;
      case AnomalyKind::kSilence:
        return std::nullopt;
    }
  }
  value = Round2(value);

  Message msg;
  msg.topic = s.info.topic;
  switch (s.info.format) {
    case Format::kPlain:
    case Format::kMixed:
      AppendFixed(msg.payload, value, 2);
      break;
    case Format::kJson:
      msg.payload = "{\"value\":";
      AppendFixed(msg.payload, value, 2);
      msg.payload += ",\"ts\":";
      msg.payload += std::to_string(wall_start_ms + offset_ms);
      msg.payload += '}';
      break;
    case Format::kZ2m:
      msg.payload = "{\"temperature\":";
      AppendFixed(msg.payload, value, 2);
      msg.payload += ",\"humidity\":";
      AppendFixed(msg.payload, humidity, 1);
      msg.payload += ",\"linkquality\":";
      msg.payload += std::to_string(linkquality);
      msg.payload += '}';
      break;
  }
  return msg;
}

std::string Simulation::TruthLine(const Anomaly& anomaly, std::int64_t wall_start_ms) const {
  const SensorInfo& info = sensor(anomaly.sensor);
  nlohmann::ordered_json line;
  line["sensor"] = info.sensor_id;
  line["anomaly"] = AnomalyName(anomaly.kind);
  line["start_ms"] = wall_start_ms + anomaly.start_ms;
  line["end_ms"] = wall_start_ms + anomaly.end_ms;
  if (anomaly.peak) {
    line["peak"] = *anomaly.peak;
  } else {
    line["peak"] = nullptr;
  }
  line["topic"] = info.topic;
  line["format"] = FormatName(info.format);
  return line.dump();
}

}  // namespace sensor_sim
