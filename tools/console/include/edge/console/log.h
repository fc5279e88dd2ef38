#pragma once

// Structured operator log. Each Write() becomes one JSON object on one line, for example
// {"ts":"2025-11-26T14:23:20.123Z","level":"info","msg":"alert stored","node":"node-1"}.
// Implementations are thread-safe; Write() never throws.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace edge::console {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// A field value is a JSON string or a JSON integer.
using LogValue = std::variant<std::string, int64_t>;
using LogFields = std::vector<std::pair<std::string, LogValue>>;

class Log {
 public:
  virtual ~Log() = default;
  virtual void Write(LogLevel level, std::string_view msg, const LogFields& fields = {}) = 0;
  // Whether lines of this level are written (callers skip building their fields if not).
  virtual bool Enabled(LogLevel) const { return true; }
};

// Discards everything; for tests and tools that do not want output.
class NullLog final : public Log {
 public:
  void Write(LogLevel, std::string_view, const LogFields&) override {}
  bool Enabled(LogLevel) const override { return false; }
};

// JSON lines on stdout, flushed after every line. Lines below `min_level` are dropped.
std::unique_ptr<Log> MakeJsonStdoutLog(LogLevel min_level);

// Accepts "debug", "info", "warn" (or "warning") and "error"; false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out);

}  // namespace edge::console
