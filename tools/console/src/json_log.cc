// spdlog adapter for edge::console::Log: one JSON object per line on stdout.

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "edge/console/log.h"

namespace edge::console {
namespace {

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

class SpdlogJsonLog final : public Log {
 public:
  explicit SpdlogJsonLog(LogLevel min_level)
      : logger_(std::make_shared<spdlog::logger>(
            "edge-console", std::make_shared<spdlog::sinks::stdout_sink_mt>())) {
    // The pattern supplies ts and level; Write() supplies the rest of the object's members.
    logger_->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})",
                         spdlog::pattern_time_type::utc);
    logger_->set_level(ToSpdlog(min_level));
    // Operators and tests tail this output: every line must be visible at once.
    logger_->flush_on(spdlog::level::trace);
  }

  bool Enabled(LogLevel level) const override { return logger_->should_log(ToSpdlog(level)); }

  void Write(LogLevel level, std::string_view msg, const LogFields& fields) override {
    try {
      const auto spd_level = ToSpdlog(level);
      if (!logger_->should_log(spd_level)) return;
      nlohmann::ordered_json line = nlohmann::ordered_json::object();
      line["msg"] = msg;
      for (const auto& [key, value] : fields) {
        if (const auto* text = std::get_if<std::string>(&value)) {
          line[key] = *text;
        } else {
          line[key] = std::get<int64_t>(value);
        }
      }
      // Invalid UTF-8 from the network is replaced rather than allowed to throw.
      std::string text =
          line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      // Drop the outer braces: the pattern already opened the object.
      logger_->log(spd_level, "{}", std::string_view(text).substr(1, text.size() - 2));
    } catch (...) {
      // A failing log write (for example a closed stdout) must not take a request down;
      // stderr is the last place left to say so.
      std::fputs("edge-console: writing a log line failed\n", stderr);
    }
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace

std::unique_ptr<Log> MakeJsonStdoutLog(LogLevel min_level) {
  return std::make_unique<SpdlogJsonLog>(min_level);
}

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug") {
    *out = LogLevel::kDebug;
  } else if (text == "info") {
    *out = LogLevel::kInfo;
  } else if (text == "warn" || text == "warning") {
    *out = LogLevel::kWarn;
  } else if (text == "error") {
    *out = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

}  // namespace edge::console
