// Loading recorded readings: CSV and JSON lines files, or an agent database's ring.
#include "recorded_readings.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string_view>
#include <system_error>

#include "edge/agent/decoder.h"
#include "edge/agent/store.h"
#include "edge/common/strings.h"

namespace edge::agent {
namespace {

// Problems reported one by one before they are only counted.
constexpr int kMaxReportedProblems = 10;
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
  Reader(RecordedReadings& input, std::ostream& err) : input_(input), err_(err) {}

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
      std::string_view name;
      if (sensor_col >= 0) name = Trim(f[static_cast<size_t>(sensor_col)]);
      const uint32_t sensor = input_.Sensor(name.empty() ? default_sensor : std::string(name));
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
  RecordedReadings& input_;
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

void RunRows(rules::Engine& engine, const RecordedReadings& in, std::span<const RecordedRow> rows,
             const RowEvents& on_events) {
  constexpr int64_t kAdvanceStepMs = 1000;
  std::vector<rules::AlertEvent> events;
  bool advanced = false;
  int64_t last_advance = 0;
  rules::Reading reading;
  for (const RecordedRow& row : rows) {
    if (!advanced || row.ts_ms - last_advance >= kAdvanceStepMs) {
      engine.Advance(row.ts_ms, events);
      last_advance = row.ts_ms;
      advanced = true;
    }
    reading.sensor = in.sensors[row.sensor];
    reading.ts_ms = row.ts_ms;
    reading.value = row.value;
    engine.Process(reading, events);
    on_events(row, events);
    events.clear();
  }
}

bool LoadRecordedFiles(const std::vector<std::string>& paths, const std::string& default_sensor,
                       RecordedReadings& out, std::ostream& err) {
  Reader reader(out, err);
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      err << path << ": cannot read\n";
      return false;
    }
    const std::string sensor =
        default_sensor.empty() ? std::filesystem::path(path).stem().string() : default_sensor;
    if (LooksLikeJsonLines(path, in)) {
      reader.JsonLines(path, in, sensor);
    } else if (!reader.Csv(path, in, sensor)) {
      return false;
    }
  }
  std::stable_sort(out.rows.begin(), out.rows.end(),
                   [](const RecordedRow& a, const RecordedRow& b) { return a.ts_ms < b.ts_ms; });
  return true;
}

bool LoadStoredReadings(const std::string& db_path, int64_t since_ms, RecordedReadings& out,
                        std::ostream& err) {
  if (!std::filesystem::exists(db_path)) {
    err << db_path << ": no such database\n";
    return false;
  }
  StoreOptions options;
  options.path = db_path;
  auto reader = StoreReader::Open(options);
  if (!reader.ok()) {
    err << db_path << ": " << reader.status().message() << "\n";
    return false;
  }
  auto sensors = (*reader)->Sensors();
  if (!sensors.ok()) {
    err << db_path << ": " << sensors.status().message() << "\n";
    return false;
  }
  for (const std::string& name : *sensors) {
    auto readings = (*reader)->Readings(name, since_ms, std::numeric_limits<int64_t>::max(),
                                        std::numeric_limits<size_t>::max());
    if (!readings.ok()) {
      err << db_path << ": " << readings.status().message() << "\n";
      return false;
    }
    const uint32_t id = out.Sensor(name);
    for (const StoredReading& r : *readings) out.rows.push_back({r.ts_ms, r.value, id});
  }
  std::stable_sort(out.rows.begin(), out.rows.end(),
                   [](const RecordedRow& a, const RecordedRow& b) { return a.ts_ms < b.ts_ms; });
  return true;
}

}  // namespace edge::agent
