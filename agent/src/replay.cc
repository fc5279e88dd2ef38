#include "edge/agent/replay.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "edge/agent/decoder.h"
#include "edge/agent/pipeline.h"
#include "edge/common/strings.h"
#include "edge/rules/engine.h"
#include "edge/rules/policy.h"

namespace edge::agent {
namespace {

// Problems reported one by one before they are only counted.
constexpr int kMaxReportedProblems = 10;
// Clock-driven rules get the time at most once per this much event time.
constexpr int64_t kAdvanceStepMs = 1000;

struct Row {
  int64_t ts_ms;
  double value;
  uint32_t sensor;  // index into Input::sensors
};

struct Input {
  std::vector<std::string> sensors;
  std::unordered_map<std::string, uint32_t> sensor_index;
  std::vector<Row> rows;
  int64_t skipped = 0;
  int reported = 0;

  uint32_t Sensor(const std::string& name) {
    auto [it, inserted] = sensor_index.emplace(name, static_cast<uint32_t>(sensors.size()));
    if (inserted) sensors.push_back(name);
    return it->second;
  }
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits one CSV line; double-quoted fields may hold commas and "" for a quote.
std::vector<std::string> SplitCsv(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::optional<double> ParseValue(std::string_view text) {
  text = Trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || end != text.data() + text.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) return std::nullopt;
  if (ec != std::errc()) return std::nullopt;
  return v;  // NaN and infinities pass: the engine's filter drops and counts them
}

class Reader {
 public:
  Reader(Input& input, std::ostream& err) : input_(input), err_(err) {}

  void Problem(const std::string& file, size_t line, const std::string& what) {
    ++input_.skipped;
    if (input_.reported++ < kMaxReportedProblems) {
      err_ << file << ":" << line << ": skipped: " << what << "\n";
    }
  }

  bool Csv(const std::string& file, std::istream& in, const std::string& default_sensor) {
    std::string line;
    size_t line_no = 0;
    int ts_col = -1, value_col = -1, sensor_col = -1;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!Trim(line).empty()) break;
    }
    const std::vector<std::string> header = SplitCsv(line);
    for (size_t i = 0; i < header.size(); ++i) {
      const std::string name = Lower(Trim(header[i]));
      const int col = static_cast<int>(i);
      if (ts_col < 0 && (name == "timestamp" || name == "ts" || name == "time" ||
                         name == "datetime" || name == "date")) {
        ts_col = col;
      } else if (value_col < 0 && name == "value") {
        value_col = col;
      } else if (sensor_col < 0 && (name == "sensor" || name == "sensor_id")) {
        sensor_col = col;
      }
    }
    if (ts_col < 0 || value_col < 0) {
      err_ << file << ":" << line_no
           << ": the CSV header must name a timestamp and a value column, got '" << line << "'\n";
      return false;
    }
    const uint32_t fixed_sensor = input_.Sensor(default_sensor);
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (Trim(line).empty()) continue;
      const std::vector<std::string> f = SplitCsv(line);
      const size_t need = static_cast<size_t>(std::max({ts_col, value_col, sensor_col}));
      if (f.size() <= need) {
        Problem(file, line_no, "too few fields");
        continue;
      }
      const auto ts = ParseTimestamp(f[static_cast<size_t>(ts_col)]);
      if (!ts) {
        Problem(file, line_no, "bad timestamp '" + f[static_cast<size_t>(ts_col)] + "'");
        continue;
      }
      const auto value = ParseValue(f[static_cast<size_t>(value_col)]);
      if (!value) {
        Problem(file, line_no, "bad value '" + f[static_cast<size_t>(value_col)] + "'");
        continue;
      }
      uint32_t sensor = fixed_sensor;
      if (sensor_col >= 0) {
        const std::string_view s = Trim(f[static_cast<size_t>(sensor_col)]);
        if (!s.empty()) sensor = input_.Sensor(std::string(s));
      }
      input_.rows.push_back({*ts, *value, sensor});
    }
    return true;
  }

  void JsonLines(const std::string& file, std::istream& in, const std::string& default_sensor) {
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (Trim(line).empty()) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object()) {
        Problem(file, line_no, "not a JSON object");
        continue;
      }
      const auto value = j.find("value");
      if (value == j.end() || !value->is_number()) {
        Problem(file, line_no, "no numeric 'value'");
        continue;
      }
      std::optional<int64_t> ts;
      for (const char* key : {"ts", "timestamp", "time"}) {
        const auto t = j.find(key);
        if (t == j.end()) continue;
        if (t->is_number()) ts = ParseTimestamp(t->dump());
        if (t->is_string()) ts = ParseTimestamp(t->get<std::string>());
        break;
      }
      if (!ts) {
        Problem(file, line_no, "no readable 'ts'");
        continue;
      }
      std::string sensor = default_sensor;
      if (const auto s = j.find("sensor"); s != j.end() && s->is_string()) {
        sensor = s->get<std::string>();
      }
      input_.rows.push_back({*ts, value->get<double>(), input_.Sensor(sensor)});
    }
  }

 private:
  Input& input_;
  std::ostream& err_;
};

bool LooksLikeJsonLines(const std::string& path, std::istream& in) {
  const std::string ext = Lower(std::filesystem::path(path).extension().string());
  if (ext == ".jsonl" || ext == ".ndjson") return true;
  if (ext == ".csv") return false;
  char c = 0;
  while (in.get(c)) {
    if (!std::isspace(static_cast<unsigned char>(c))) break;
  }
  in.clear();
  in.seekg(0);
  return c == '{';
}

}  // namespace

int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err) {
  const auto t0 = std::chrono::steady_clock::now();
  std::ifstream policy_in(options.policy_file, std::ios::binary);
  if (!policy_in) {
    err << options.policy_file << ": cannot read\n";
    return 2;
  }
  std::ostringstream policy_text;
  policy_text << policy_in.rdbuf();
  auto policy = rules::ParsePolicy(policy_text.str(), options.policy_file);
  if (!policy.ok()) {
    err << policy.error() << "\n";
    return 2;
  }

  Input input;
  Reader reader(input, err);
  for (const std::string& path : options.inputs) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      err << path << ": cannot read\n";
      return 2;
    }
    const std::string sensor =
        options.sensor.empty() ? std::filesystem::path(path).stem().string() : options.sensor;
    if (LooksLikeJsonLines(path, in)) {
      reader.JsonLines(path, in, sensor);
    } else if (!reader.Csv(path, in, sensor)) {
      return 2;
    }
  }
  std::stable_sort(input.rows.begin(), input.rows.end(),
                   [](const Row& a, const Row& b) { return a.ts_ms < b.ts_ms; });

  rules::Engine engine(std::move(*policy));
  std::vector<rules::AlertEvent> events;
  std::map<std::string, std::pair<int64_t, int64_t>> per_rule;  // firing, resolved
  for (const auto& r : engine.policy().rules) per_rule[r.id];
  int64_t firing = 0, resolved = 0;
  const auto flush = [&] {
    for (const rules::AlertEvent& e : events) {
      out << AlertPayloadJson(e) << "\n";
      auto& counts = per_rule[e.rule_id];
      if (e.state == rules::AlertState::kFiring) {
        ++firing;
        ++counts.first;
      } else {
        ++resolved;
        ++counts.second;
      }
    }
    events.clear();
  };
  bool advanced = false;
  int64_t last_advance = 0;
  rules::Reading reading;
  for (const Row& row : input.rows) {
    if (!advanced || row.ts_ms - last_advance >= kAdvanceStepMs) {
      engine.Advance(row.ts_ms, events);
      last_advance = row.ts_ms;
      advanced = true;
    }
    reading.sensor = input.sensors[row.sensor];
    reading.ts_ms = row.ts_ms;
    reading.value = row.value;
    engine.Process(reading, events);
    flush();
  }
  out.flush();

  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  err << "replay: " << input.rows.size() << " readings of " << input.sensor_index.size()
      << " sensor(s) from " << options.inputs.size() << " file(s) in " << ms << " ms; " << firing
      << " firing, " << resolved << " resolved";
  if (!input.rows.empty()) {
    err << "; event time " << input.rows.front().ts_ms << ".." << input.rows.back().ts_ms;
  }
  err << "\n";
  err << "replay: skipped " << input.skipped << " unreadable row(s); ignored "
      << engine.out_of_order() << " out of order, " << engine.duplicates() << " duplicate, "
      << engine.non_finite() << " non-finite, " << engine.out_of_range() << " out of range\n";
  for (const auto& [rule, counts] : per_rule) {
    err << "replay: rule " << rule << ": " << counts.first << " firing, " << counts.second
        << " resolved\n";
  }
  return 0;
}

}  // namespace edge::agent
