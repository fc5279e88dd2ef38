// sensor-sim: publishes simulated sensor readings (with injected anomalies) to an MQTT
// broker at a paced rate, and writes the anomaly schedule as ground truth.
#include <mqtt/async_client.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sim_model.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Paho's buffer limit makes a QoS 0 flood fail instead of growing memory without
// bound. Our own window of outstanding publishes stays far below it: Paho scans its
// command queue on every publish, so a short queue is also the faster one.
constexpr int kMaxBuffered = 10'000;
constexpr long kWindow = 256;
constexpr auto kConnectTimeout = 5s;
constexpr auto kDrainTimeout = 5s;
constexpr auto kProgressEvery = 5s;

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void OnSignal(int /*signo*/) { g_stop.store(true); }

void InstallSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Counts completions of publish tokens and bounds how many may be outstanding.
class DeliveryTracker : public mqtt::iaction_listener {
 public:
  void on_success(const mqtt::token& tok) override {
    std::uint64_t size = 0;
    if (const auto* dt = dynamic_cast<const mqtt::delivery_token*>(&tok)) {
      if (const auto msg = dt->get_message()) size = msg->get_payload().size();
    }
    delivered_.fetch_add(1);
    bytes_.fetch_add(size);
    Release();
  }

  void on_failure(const mqtt::token& /*tok*/) override {
    failed_.fetch_add(1);
    Release();
  }

  void Acquire() {
    std::lock_guard lock(mu_);
    ++inflight_;
  }

  void Release() {
    {
      std::lock_guard lock(mu_);
      --inflight_;
    }
    cv_.notify_all();
  }

  // Waits until fewer than `limit` publishes are outstanding, or `max_wait` passed.
  bool WaitBelow(long limit, std::chrono::milliseconds max_wait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, max_wait, [&] { return inflight_ < limit; });
  }

  long inflight() {
    std::lock_guard lock(mu_);
    return inflight_;
  }
  std::uint64_t delivered() const { return delivered_.load(); }
  std::uint64_t bytes() const { return bytes_.load(); }
  std::uint64_t failed() const { return failed_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  long inflight_ = 0;
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> failed_{0};
};

class ConnectionEvents : public mqtt::callback {
 public:
  explicit ConnectionEvents(bool quiet) : quiet_(quiet) {}
  void connection_lost(const std::string& cause) override {
    std::fprintf(stderr, "sensor-sim: connection lost%s%s; reconnecting\n",
                 cause.empty() ? "" : ": ", cause.c_str());
  }
  void connected(const std::string& /*cause*/) override {
    if (!quiet_) std::fprintf(stderr, "sensor-sim: connected\n");
  }

 private:
  bool quiet_;
};

struct Options {
  std::string broker = "tcp://127.0.0.1:1883";
  int sensors = 20;
  double rate = 1.0;
  std::string duration = "60s";
  std::uint64_t seed = 1;
  std::string prefix = "sim";
  std::string format = "plain";
  int qos = 0;
  int anomalies = -1;
  std::string truth;
  std::int64_t count = 0;
  bool quiet = false;
  bool dry_run = false;
};

std::int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string SummaryLine(std::uint64_t messages, std::uint64_t bytes, double elapsed_s,
                        std::uint64_t errors, size_t anomalies, bool interrupted) {
  nlohmann::ordered_json s;
  s["messages"] = messages;
  s["bytes"] = bytes;
  s["elapsed_s"] = std::round(elapsed_s * 1000.0) / 1000.0;
  s["rate_achieved"] =
      elapsed_s > 0 ? std::round(static_cast<double>(messages) / elapsed_s * 10.0) / 10.0 : 0.0;
  s["errors"] = errors;
  s["anomalies"] = anomalies;
  s["interrupted"] = interrupted;
  return s.dump();
}

bool WriteTruth(const std::string& path, const sensor_sim::Simulation& sim,
                std::int64_t wall_start_ms) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return false;
  std::vector<const sensor_sim::Anomaly*> sorted;
  for (const auto& anomaly : sim.anomalies()) sorted.push_back(&anomaly);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->start_ms < b->start_ms; });
  for (const auto* anomaly : sorted) out << sim.TruthLine(*anomaly, wall_start_ms) << '\n';
  out.flush();
  return static_cast<bool>(out);
}

// Prints the messages instead of publishing them (no broker, no pacing).
int DryRun(sensor_sim::Simulation& sim, const Options& opt) {
  const std::int64_t wall_start_ms = WallNowMs();
  if (!opt.truth.empty() && !WriteTruth(opt.truth, sim, wall_start_ms)) {
    std::fprintf(stderr, "sensor-sim: error: cannot write truth file %s\n", opt.truth.c_str());
    return 1;
  }
  const auto start = Clock::now();
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  for (std::int64_t g = 0; g < sim.EventCount() && !g_stop.load(); ++g) {
    if (opt.count > 0 && static_cast<std::int64_t>(messages) >= opt.count) break;
    auto msg = sim.Next(g, wall_start_ms);
    if (!msg) continue;
    std::cout << msg->topic << ' ' << msg->payload << '\n';
    ++messages;
    bytes += msg->payload.size();
  }
  std::cout.flush();
  std::cerr << SummaryLine(messages, bytes, Seconds(Clock::now() - start), 0,
                           sim.anomalies().size(), g_stop.load())
            << '\n';
  return 0;
}

int Run(sensor_sim::Simulation& sim, const Options& opt) {
  const std::string client_id = "sensor-sim-" + std::to_string(::getpid());
  mqtt::create_options create_opts(MQTTVERSION_3_1_1, kMaxBuffered);
  create_opts.set_send_while_disconnected(false);
  std::unique_ptr<mqtt::async_client> client;
  try {
    client = std::make_unique<mqtt::async_client>(opt.broker, client_id, create_opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sensor-sim: error: invalid broker address %s: %s\n", opt.broker.c_str(),
                 e.what());
    return 1;
  }
  ConnectionEvents events(opt.quiet);
  client->set_callback(events);

  auto conn_opts = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_3_1_1)
                       .clean_session(true)
                       .keep_alive_interval(20s)
                       .connect_timeout(kConnectTimeout)
                       .automatic_reconnect(1s, 5s)
                       .finalize();
  try {
    if (!client->connect(conn_opts)->wait_for(kConnectTimeout + 2s)) {
      std::fprintf(stderr,
                   "sensor-sim: error: cannot connect to broker %s: timed out after %llds\n",
                   opt.broker.c_str(), static_cast<long long>(kConnectTimeout.count()));
      return 1;
    }
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "sensor-sim: error: cannot connect to broker %s: %s\n", opt.broker.c_str(),
                 e.what());
    return 1;
  }

  const std::int64_t wall_start_ms = WallNowMs();
  if (!opt.truth.empty() && !WriteTruth(opt.truth, sim, wall_start_ms)) {
    std::fprintf(stderr, "sensor-sim: error: cannot write truth file %s\n", opt.truth.c_str());
    return 1;
  }
  if (!opt.quiet) {
    std::fprintf(stderr,
                 "sensor-sim: %d sensors at %g/s for %.3f s (%lld events), format %s, qos %d, "
                 "%zu anomalies\n",
                 sim.sensor_count(), opt.rate,
                 static_cast<double>(sim.config().duration_ms) / 1000.0,
                 static_cast<long long>(sim.EventCount()), opt.format.c_str(), opt.qos,
                 sim.anomalies().size());
    if (sim.unplaced_anomalies() > 0) {
      std::fprintf(stderr,
                   "sensor-sim: %d anomalies did not fit without overlap and were skipped\n",
                   sim.unplaced_anomalies());
    }
  }

  DeliveryTracker tracker;
  std::uint64_t attempts = 0;
  std::uint64_t publish_errors = 0;
  int last_error_code = 0;
  const auto start = Clock::now();
  auto next_progress = start + kProgressEvery;

  for (std::int64_t g = 0; g < sim.EventCount(); ++g) {
    if (opt.count > 0 && attempts >= static_cast<std::uint64_t>(opt.count)) break;
    // Due times are computed from the start, never accumulated: no drift.
    const auto due = start + std::chrono::nanoseconds(sim.EventDueNs(g));
    for (auto now = Clock::now(); now < due && !g_stop.load(); now = Clock::now()) {
      std::this_thread::sleep_until(std::min(due, now + 100ms));
    }
    if (g_stop.load()) break;

    auto msg = sim.Next(g, wall_start_ms);
    if (!msg) continue;  // silenced sensor
    ++attempts;

    while (!tracker.WaitBelow(kWindow, 100ms) && !g_stop.load()) {
    }
    auto mqtt_msg = mqtt::make_message(msg->topic, msg->payload, opt.qos, false);
    bool sent = false;
    for (int retry = 0; !sent; ++retry) {
      tracker.Acquire();
      try {
        client->publish(mqtt_msg, nullptr, tracker);
        sent = true;
      } catch (const mqtt::exception& e) {
        tracker.Release();
        const int rc = e.get_return_code();
        if (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES && retry < 5000 && !g_stop.load()) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        ++publish_errors;
        if (rc != last_error_code) {
          std::fprintf(stderr, "sensor-sim: publish failed: %s\n", e.what());
          last_error_code = rc;
        }
        break;
      }
    }
    if (sent) last_error_code = 0;

    if (!opt.quiet && Clock::now() >= next_progress) {
      next_progress += kProgressEvery;
      std::fprintf(stderr, "sensor-sim: t=%.1fs sent=%llu delivered=%llu errors=%llu\n",
                   Seconds(Clock::now() - start), static_cast<unsigned long long>(attempts),
                   static_cast<unsigned long long>(tracker.delivered()),
                   static_cast<unsigned long long>(publish_errors + tracker.failed()));
    }
  }

  // Let outstanding publishes complete, then leave cleanly.
  const bool interrupted = g_stop.load();
  tracker.WaitBelow(1, std::chrono::duration_cast<std::chrono::milliseconds>(kDrainTimeout));
  const long undelivered = std::max(0L, tracker.inflight());
  const auto elapsed = Clock::now() - start;
  try {
    client->disconnect(std::chrono::duration_cast<std::chrono::milliseconds>(1s).count())
        ->wait_for(3s);
  } catch (const mqtt::exception& e) {
    if (!opt.quiet) std::fprintf(stderr, "sensor-sim: disconnect: %s\n", e.what());
  }
  if (undelivered > 0) {
    std::fprintf(stderr, "sensor-sim: %ld messages still unconfirmed at exit\n", undelivered);
  }

  const std::uint64_t errors =
      publish_errors + tracker.failed() + static_cast<std::uint64_t>(undelivered);
  std::cout << SummaryLine(tracker.delivered(), tracker.bytes(), Seconds(elapsed), errors,
                           sim.anomalies().size(), interrupted)
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"sensor-sim: publish simulated sensor readings with injected anomalies"};
  app.add_option("--broker", opt.broker, "MQTT broker URL")->capture_default_str();
  app.add_option("--sensors", opt.sensors, "Number of sensors")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--rate", opt.rate, "Readings per second per sensor")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--duration", opt.duration, "Run time, e.g. 60s, 2m, 500ms")
      ->capture_default_str();
  app.add_option("--seed", opt.seed, "Seed for values and anomalies")->capture_default_str();
  app.add_option("--prefix", opt.prefix, "Topic prefix")->capture_default_str();
  app.add_option("--format", opt.format, "Payload format")
      ->check(CLI::IsMember({"plain", "json", "z2m", "mixed"}))
      ->capture_default_str();
  app.add_option("--qos", opt.qos, "MQTT QoS")->check(CLI::Range(0, 1))->capture_default_str();
  app.add_option("--anomalies", opt.anomalies, "Anomalies to inject (default: sensors/4)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--truth", opt.truth, "Write the anomaly schedule here (JSON lines)");
  app.add_option("--count", opt.count, "Stop after this many messages (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--quiet", opt.quiet, "Only print errors and the summary");
  app.add_flag("--dry-run", opt.dry_run,
               "Print 'topic payload' lines to stdout instead of publishing (unpaced)");
  CLI11_PARSE(app, argc, argv);

  const auto duration_ms = sensor_sim::ParseDurationMs(opt.duration);
  if (!duration_ms || *duration_ms <= 0) {
    std::fprintf(stderr,
                 "sensor-sim: error: --duration: invalid duration '%s' (use e.g. 60s, 2m, 500ms)\n",
                 opt.duration.c_str());
    return 2;
  }
  if (opt.prefix.empty() || opt.prefix.find_first_of("+#") != std::string::npos) {
    std::fprintf(stderr, "sensor-sim: error: --prefix must be non-empty without wildcards\n");
    return 2;
  }

  sensor_sim::SimConfig config;
  config.prefix = opt.prefix;
  config.sensors = opt.sensors;
  config.rate = opt.rate;
  config.duration_ms = *duration_ms;
  config.seed = opt.seed;
  config.format = *sensor_sim::ParseFormat(opt.format);
  config.anomalies = opt.anomalies >= 0 ? opt.anomalies : opt.sensors / 4;
  sensor_sim::Simulation sim(config);

  InstallSignalHandlers();
  return opt.dry_run ? DryRun(sim, opt) : Run(sim, opt);
}
