#include "edge/agent/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace edge::agent {
namespace {

// Runs `log` with SetupLogging(level, json) in force and returns the lines it printed on
// stdout; the test binary's logger is put back afterwards.
std::vector<std::string> CaptureLog(const std::string& level, bool json, void (*log)()) {
  const auto previous = spdlog::default_logger();
  testing::internal::CaptureStdout();
  const Status s = SetupLogging(level, json);
  if (s.ok()) {
    log();
    spdlog::default_logger()->flush();
  }
  const std::string out = testing::internal::GetCapturedStdout();
  spdlog::set_default_logger(previous);
  EXPECT_TRUE(s.ok()) << s.message();
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Logging, JsonLinesCarryAMicrosecondUtcTimestampAndTheEscapedMessage) {
  const auto lines = CaptureLog("info", true, [] {
    spdlog::debug("below the level");
    spdlog::warn("alert \"hot\" on\tline\n2");
  });
  ASSERT_EQ(lines.size(), 1u);
  const auto j = nlohmann::json::parse(lines[0]);  // throws (fails) on invalid JSON
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["msg"], "alert \"hot\" on\tline\n2");
  const std::string ts = j["ts"];
  EXPECT_TRUE(std::regex_match(ts, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"))) << ts;
}

TEST(Logging, ControlCharactersAreEscapedAsUnicode) {
  const auto lines = CaptureLog("info", true, [] { spdlog::info("bell\x07"); });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("bell\\u0007"), std::string::npos) << lines[0];
  EXPECT_EQ(nlohmann::json::parse(lines[0])["msg"], "bell\x07");
}

TEST(Logging, BackslashesAndCarriageReturnsAreEscaped) {
  const auto lines = CaptureLog("info", true, [] { spdlog::info("C:\\dir\r"); });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("C:\\\\dir\\r"), std::string::npos) << lines[0];
  EXPECT_EQ(nlohmann::json::parse(lines[0])["msg"], "C:\\dir\r");
}

TEST(Logging, UnknownLevelIsAnError) {
  const auto previous = spdlog::default_logger();
  const Status s = SetupLogging("loud");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown log level 'loud'"), std::string::npos) << s.message();
  EXPECT_EQ(spdlog::default_logger(), previous);  // nothing changed
}

}  // namespace
}  // namespace edge::agent
