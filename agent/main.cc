// edge-agent: command line and wiring only.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "edge/agent/check.h"
#include "edge/agent/config.h"
#include "edge/agent/logging.h"
#include "edge/agent/replay.h"
#include "edge/agent/runtime.h"
#include "edge/agent/suggest.h"
#include "edge/rules/duration.h"

namespace {

std::optional<std::string> GetEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::string JoinComma(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using edge::agent::Config;
  CLI::App app{
      "edge-agent: reads sensor data over MQTT, runs anomaly rules on the node, buffers in "
      "SQLite and syncs alerts with the console.\nEvery config key can also be set with an "
      "environment variable EDGE_AGENT_<KEY> (see docs/configuration.md).\nPrecedence: "
      "defaults < config file < environment < flags."};
  app.set_version_flag("--version", edge::agent::AgentVersion());
  app.require_subcommand(1);

  // run
  auto* run = app.add_subcommand("run", "Run the agent until SIGTERM/SIGINT");
  std::string config_file;
  std::string node_id, mqtt_url, db, http, console, token_file, policy, log_level, log_format;
  std::vector<std::string> topics;
  run->add_option("-c,--config", config_file, "YAML config file")->check(CLI::ExistingFile);
  run->add_option("--node-id", node_id, "Node id (node_id)");
  run->add_option("--mqtt", mqtt_url, "Broker URL, tcp://HOST:PORT or ssl://HOST:PORT (mqtt.url)");
  run->add_option("--topic", topics, "Topic filter to subscribe, repeatable (mqtt.topics)");
  run->add_option("--db", db, "SQLite database path (store.path)");
  run->add_option("--http", http,
                  "HTTP listen address for /metrics /healthz /readyz (http.listen)");
  run->add_option("--console", console, "Console URL; empty disables the uplink (console.url)");
  run->add_option("--token-file", token_file,
                  "File holding the node's console token "
                  "(console.token_file)");
  run->add_option("--policy", policy, "Local policy file, YAML or JSON (policy)");
  run->add_option("--log-level", log_level, "trace|debug|info|warn|error (log.level)");
  run->add_option("--log-format", log_format,
                  "json (default: one object per line, UTC time in microseconds) or text")
      ->check(CLI::IsMember({"json", "text"}));

  // check
  auto* check = app.add_subcommand(
      "check",
      "Validate config or policy files; errors name file:line:column; exit 1 if any "
      "is invalid");
  std::vector<std::string> check_files;
  check->add_option("files", check_files, "Files to check")->required();

  // replay
  auto* replay = app.add_subcommand(
      "replay",
      "Backtest a policy on recorded readings (CSV with timestamp,value[,sensor] columns, or "
      "JSON lines): alert events as JSON lines on stdout, a summary on stderr");
  edge::agent::ReplayOptions replay_options;
  replay->add_option("--policy", replay_options.policy_file, "Policy file, YAML or JSON")
      ->required()
      ->check(CLI::ExistingFile);
  replay->add_option("--sensor", replay_options.sensor,
                     "Sensor id for inputs without a sensor column (default: file base name)");
  replay->add_option("inputs", replay_options.inputs, "Recorded files")
      ->required()
      ->check(CLI::ExistingFile);

  // suggest
  auto* suggest = app.add_subcommand(
      "suggest",
      "Tune a policy's thresholds, for, z and sensitivity on recorded or stored readings of "
      "normal operation: the most sensitive settings within a false-alert budget, as a "
      "backtest table and a diff");
  edge::agent::SuggestOptions suggest_options;
  std::string suggest_since;
  suggest->add_option("--policy", suggest_options.policy_file, "Policy file, YAML or JSON")
      ->required()
      ->check(CLI::ExistingFile);
  suggest->add_option("--db", suggest_options.db,
                      "An agent database: its readings ring (read while the agent runs)");
  suggest->add_option("--since", suggest_since,
                      "With --db: only readings of this last stretch, e.g. 24h (default: all)");
  suggest
      ->add_option("--budget", suggest_options.budget,
                   "Firing alerts per sensor-day allowed (default 1)")
      ->check(CLI::PositiveNumber);
  suggest->add_option("--sensor", suggest_options.sensor,
                      "Sensor id for inputs without a sensor column (default: file base name)");
  suggest->add_option("inputs", suggest_options.inputs, "Recorded files (as for replay)")
      ->check(CLI::ExistingFile);

  // version
  auto* version = app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::cout << "edge-agent " << edge::agent::AgentVersion() << "\n";
    return 0;
  }

  if (replay->parsed()) return edge::agent::RunReplay(replay_options, std::cout, std::cerr);

  if (suggest->parsed()) {
    if (suggest_options.db.empty() && suggest_options.inputs.empty()) {
      std::cerr << "suggest: give recorded files, --db, or both\n";
      return 2;
    }
    if (!suggest_since.empty()) {
      auto ms = edge::rules::ParseDuration(suggest_since);
      if (!ms.ok()) {
        std::cerr << "--since: " << ms.status().message() << "\n";
        return 2;
      }
      suggest_options.since_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count() -
                                 *ms;
    }
    return edge::agent::RunSuggest(suggest_options, std::cout, std::cerr);
  }

  if (check->parsed()) {
    int rc = 0;
    for (const auto& f : check_files) {
      auto outcome = edge::agent::CheckFile(f);
      (outcome.ok ? std::cout : std::cerr) << outcome.message << "\n";
      if (!outcome.ok) rc = 1;
    }
    return rc;
  }

  // run: defaults < file < environment < flags.
  Config config;
  if (!config_file.empty()) {
    auto loaded = edge::agent::LoadConfigFile(config_file);
    if (!loaded.ok()) {
      std::cerr << loaded.error() << "\n";
      return 2;
    }
    config = std::move(*loaded);
  }
  if (auto s = edge::agent::ApplyEnvironment(config, GetEnv); !s) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  const std::vector<std::pair<const char*, std::string>> flags = {
      {"node_id", node_id},
      {"mqtt.url", mqtt_url},
      {"mqtt.topics", JoinComma(topics)},
      {"store.path", db},
      {"http.listen", http},
      {"console.url", console},
      {"console.token_file", token_file},
      {"policy", policy},
      {"log.level", log_level}};
  for (const auto& [key, value] : flags) {
    if (value.empty()) continue;
    if (auto s = edge::agent::ApplyOverride(config, key, value); !s) {
      std::cerr << "command line: " << s.message() << "\n";
      return 2;
    }
  }
  if (auto s = edge::agent::Validate(config); !s) {
    std::cerr << "invalid configuration: " << s.message() << "\n";
    return 2;
  }
  if (auto s = edge::agent::SetupLogging(config.log_level, log_format != "text"); !s) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  return edge::agent::RunAgent(config);
}
