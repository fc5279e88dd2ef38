// `edge-agent suggest` on synthetic recordings of normal operation, from a file and from an
// agent database's readings ring: the suggested settings meet the false-alert budget, are
// the most sensitive that do, and the output shows them as a diff with the backtest.
#include "edge/agent/suggest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "edge/agent/store.h"
#include "test_util.h"

namespace edge::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr int64_t kStepMs = 60'000;  // one reading a minute
constexpr int kDays = 3;

// Three days of a noisy signal around 20 with a rare spike to about 30: normal operation.
struct Recording {
  std::vector<std::pair<int64_t, double>> rows;
  Recording() {
    std::mt19937 rng(7);
    std::normal_distribution<double> noise(0, 0.5);
    for (int64_t i = 0; i < kDays * 1440; ++i) {
      double v = 20 + noise(rng);
      if (i % 2000 == 1000) v = 30 + noise(rng);  // about one spike a sensor-day
      rows.emplace_back(kStartMs + i * kStepMs, v);
    }
  }
};

class SuggestTest : public ::testing::Test {
 protected:
  std::string WritePolicy(const std::string& text) {
    const std::string path = dir_.File("policy.yaml");
    std::ofstream(path) << text;
    return path;
  }
  std::string WriteCsv(const std::string& sensor) {
    const std::string path = dir_.File("rec.csv");
    std::ofstream f(path);
    f << "timestamp,value,sensor\n";
    for (const auto& [ts, v] : Recording().rows) f << ts << "," << v << "," << sensor << "\n";
    return path;
  }
  int Run(SuggestOptions o) {
    out_.str("");
    err_.str("");
    return RunSuggest(o, out_, err_);
  }
  // The "suggested" alerts of a rule's row in the backtest table.
  int64_t SuggestedAlerts(const std::string& rule) const {
    const std::regex row("\\| " + rule +
                         " \\|[^|]*\\|[^|]*\\|[^|]*\\|[^|]*\\|[^|]*\\|[^|]*\\| (\\d+) \\|");
    std::smatch m;
    const std::string text = out_.str();
    if (!std::regex_search(text, m, row)) return -1;
    return std::stoll(m[1]);
  }

  testing::TempDir dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(SuggestTest, AThresholdInTheNoiseIsRetunedToMeetTheBudget) {
  SuggestOptions o;
  o.policy_file = WritePolicy(
      "rules:\n  - {id: hot, match: \"plant/#\", kind: threshold, above: 21, clear: 20.5}\n");
  o.inputs = {WriteCsv("plant/boiler/temp")};
  o.budget = 0.5;
  ASSERT_EQ(Run(o), 0) << err_.str();
  const std::string text = out_.str();
  EXPECT_THAT(text, HasSubstr("-    above: 21\n"));
  EXPECT_THAT(text, HasSubstr("+    above: "));
  // Three days of one sensor at 0.5 a day: at most 1 firing alert.
  const int64_t alerts = SuggestedAlerts("hot");
  ASSERT_GE(alerts, 0) << text;
  EXPECT_LE(alerts, 1) << text;
  EXPECT_THAT(text, HasSubstr("| yes |"));
  // The clear level keeps its 0.5 distance.
  std::smatch above;
  std::smatch clear;
  ASSERT_TRUE(std::regex_search(text, above, std::regex("\\+    above: ([0-9.]+)"))) << text;
  ASSERT_TRUE(std::regex_search(text, clear, std::regex("\\+    clear: ([0-9.]+)"))) << text;
  EXPECT_NEAR(std::stod(above[1]) - std::stod(clear[1]), 0.5, 1e-9);
  // Before: the rule fired many times a day in the noise.
  std::smatch now;
  ASSERT_TRUE(std::regex_search(
      text, now, std::regex("\\| hot \\| threshold \\| 1 \\| 3\\.00 \\| (\\d+) \\|")))
      << text;
  EXPECT_GT(std::stoll(now[1]), 10);
}

TEST_F(SuggestTest, AGenerousBudgetMakesAQuietRuleMoreSensitive) {
  SuggestOptions o;
  o.policy_file = WritePolicy(
      "rules:\n  - {id: jump, match: \"plant/#\", kind: zscore, window: 1h, z: 10}\n"
      "  - {id: odd, match: \"plant/#\", kind: anomaly, sensitivity: 0.1}\n");
  o.inputs = {WriteCsv("plant/boiler/temp")};
  o.budget = 5;
  ASSERT_EQ(Run(o), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("-    z: 10\n"));
  EXPECT_THAT(out_.str(), HasSubstr("-    sensitivity: 0.1\n"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("| no |")));
}

TEST_F(SuggestTest, ReadsTheReadingsRingOfAnAgentDatabase) {
  const std::string db = dir_.File("agent.db");
  {
    auto w = StoreWriter::Open({db});
    ASSERT_TRUE(w.ok()) << w.status().message();
    std::vector<StoreWriter::NewReading> batch;
    for (const auto& [ts, v] : Recording().rows) batch.push_back({"plant/boiler/temp", ts, v});
    ASSERT_TRUE((*w)->AppendReadings(batch, kStartMs + kDays * 86'400'000LL).ok());
  }
  SuggestOptions o;
  o.policy_file =
      WritePolicy("rules:\n  - {id: hot, match: \"plant/#\", kind: threshold, above: 21}\n");
  o.db = db;
  o.budget = 0.5;
  ASSERT_EQ(Run(o), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("# Backtest on 4320 readings of 1 sensor(s)"));
  EXPECT_THAT(out_.str(), HasSubstr("+    above: "));
  EXPECT_LE(SuggestedAlerts("hot"), 1);
}

TEST_F(SuggestTest, NoMatchingReadingOrNoDataIsAnError) {
  SuggestOptions o;
  o.policy_file =
      WritePolicy("rules:\n  - {id: hot, match: \"other/#\", kind: threshold, above: 21}\n");
  o.inputs = {WriteCsv("plant/boiler/temp")};
  EXPECT_EQ(Run(o), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no reading matched any rule"));
  o.inputs.clear();
  o.db = dir_.File("missing.db");
  EXPECT_EQ(Run(o), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no such database"));
}

}  // namespace
}  // namespace edge::agent
