#include "edge/agent/runtime.h"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <sstream>
#include <thread>

#include "edge/agent/bounded_queue.h"
#include "edge/agent/console_policy.h"
#include "edge/agent/decoder.h"
#include "edge/agent/http_server.h"
#include "edge/agent/ingest.h"
#include "edge/agent/pipeline.h"
#include "edge/agent/policy_watcher.h"
#include "edge/agent/prometheus_metrics.h"
#include "edge/agent/store.h"
#include "edge/agent/store_api.h"
#include "edge/cloudsync/policy_channel.h"
#include "edge/cloudsync/policy_message.h"
#include "edge/cloudsync/uplink.h"
#include "edge/rules/policy.h"

#ifndef EDGE_AGENT_VERSION
#define EDGE_AGENT_VERSION "0.0.0"
#endif

namespace edge::agent {
namespace {

namespace asio = boost::asio;

// Drain budget after SIGTERM, well inside Kubernetes' default 30 s grace period and the
// 5 s we promise: ingest disconnect 1 s, pipeline commit, uplink last attempt 2 s.
constexpr int64_t kIngestStopMs = 1000;
constexpr int64_t kUplinkStopMs = 2000;
constexpr int64_t kChannelStopMs = 500;

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

// The gate of GET /v1/readings (http.readings_token_file; docs/operations.md, "Security").
Result<TokenOrLoopbackGate> ReadingsGate(const std::string& token_file, Metrics& metrics) {
  auto refused = [&metrics](const std::string& reason) -> CounterHandle& {
    return metrics.Counter("edge_agent_http_readings_refused_total",
                           "GET /v1/readings requests refused: no or a wrong bearer token, or "
                           "a client off this host without http.readings_token_file",
                           {{"reason", reason}});
  };
  std::string token;
  if (!token_file.empty()) {
    auto text = ReadTextFile(token_file, 4096);
    if (!text.ok()) return text.status();
    token = Trim(std::move(*text));
    if (token.empty()) return Status::Error(token_file + ": empty token");
  }
  return TokenOrLoopbackGate(std::move(token), refused("unauthorized"), refused("not_loopback"));
}

// The outbox as the uplink sees it: the network thread's own read connection.
class StoreOutboxSource final : public cloudsync::OutboxSource {
 public:
  StoreOutboxSource(StoreReader& reader, std::string node, Metrics& metrics)
      : reader_(reader),
        node_(std::move(node)),
        pending_(metrics.Gauge("edge_agent_outbox_pending", "Rows in the outbox")),
        errors_(metrics.Counter("edge_agent_store_errors_total", "Failed SQLite operations",
                                {{"op", "uplink"}})) {}

  Result<std::vector<cloudsync::OutboxItem>> Fetch(size_t max_items, size_t max_bytes) override {
    auto rows = reader_.Fetch(max_items, max_bytes);
    if (!rows.ok()) {
      errors_.Inc();
      return rows.status();
    }
    std::vector<cloudsync::OutboxItem> items;
    items.reserve(rows->size());
    for (auto& r : *rows) {
      items.push_back({r.seq, RecordId(node_, reader_.epoch(), r.seq), std::move(r.kind),
                       r.created_ms, std::move(r.payload)});
    }
    return items;
  }

  Status Ack(const std::vector<int64_t>& seqs) override {
    auto deleted = reader_.Delete(seqs);
    if (!deleted.ok()) {
      errors_.Inc();
      return deleted.status();
    }
    pending_.Add(-static_cast<double>(*deleted));
    return Status::Ok();
  }

  Result<int64_t> DeadLetter(const std::vector<int64_t>& seqs, std::string_view reason) override {
    auto moved = reader_.DeadLetter(seqs, reason);
    if (!moved.ok()) {
      errors_.Inc();
      return moved.status();
    }
    pending_.Add(-static_cast<double>(*moved));
    return *moved;
  }

 private:
  StoreReader& reader_;
  std::string node_;
  GaugeHandle& pending_;
  CounterHandle& errors_;
};

// The policy last handed to the pipeline, as the status heartbeat reports it. Written and
// read on the network thread only (startup aside, before that thread runs).
struct PolicyInfo {
  std::string version;
  size_t rules = 0;
};

// What the status heartbeat reads (docs/protocol.md, "Status heartbeat"). Everything is
// borrowed from RunAgent and outlives the uplink; BuildStatus runs on the network thread,
// which owns the StoreReader.
struct StatusSources {
  StoreReader* reader = nullptr;
  Ingest* ingest = nullptr;
  const Clock* clock = nullptr;
  const PolicyInfo* policy = nullptr;
  const std::map<std::string, std::string>* labels = nullptr;
  int64_t started_ms = 0;       // wall clock
  int64_t started_mono_ms = 0;  // monotonic clock
  CounterHandle* queue_full = nullptr;
  CounterHandle* alerts_dropped = nullptr;
  std::vector<CounterHandle*> readings_rejected;  // one per reason
};

std::string BuildStatus(const StatusSources& src) {
  using nlohmann::json;
  // The kinds the agent writes are always listed, so a console sees zeros, not gaps.
  json backlog = {{"alert", 0}, {"rollup", 0}, {"status", 0}};
  json evicted = backlog;
  json dead_lettered = backlog;
  double rejected = 0;
  for (const CounterHandle* c : src.readings_rejected) rejected += c->Value();
  json status = {
      {"agent_version", AgentVersion()},
      {"policy_version", src.policy->version},
      {"policy_rules", src.policy->rules},
      {"labels", *src.labels},
      {"started_ms", src.started_ms},
      {"uptime_s", (src.clock->MonotonicMs() - src.started_mono_ms) / 1000},
      {"mqtt_connected", src.ingest->Connected()},
      {"store_epoch", src.reader->epoch()},
      {"drops",
       {{"queue_full", static_cast<int64_t>(src.queue_full->Value())},
        {"rejected", static_cast<int64_t>(rejected)},
        {"alerts", static_cast<int64_t>(src.alerts_dropped->Value())}}},
  };
  auto stats = src.reader->Stats();
  if (stats.ok()) {
    for (const auto& [kind, k] : stats->outbox) {
      backlog[kind] = k.rows;
      evicted[kind] = k.evicted;
      dead_lettered[kind] = k.dead_lettered;
    }
    status["backlog_bytes"] = stats->outbox_bytes;
    status["db_bytes"] = stats->db_file_bytes;
    status["max_bytes"] = stats->max_bytes;
  } else {
    status["store_error"] = stats.error();
  }
  status["backlog"] = std::move(backlog);
  status["evicted"] = std::move(evicted);
  status["dead_lettered"] = std::move(dead_lettered);
  return status.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

const char* AgentVersion() { return EDGE_AGENT_VERSION; }

int RunAgent(const Config& config) {
  SystemClock clock;
  PrometheusMetrics metrics;
  metrics
      .Gauge("edge_agent_build_info", "Always 1; labels carry the agent version",
             {{"version", AgentVersion()}})
      .Set(1);
  metrics.Gauge("edge_agent_start_time_seconds", "Wall-clock start time of the agent process")
      .Set(static_cast<double>(clock.WallMs()) / 1000.0);

  // Policy: a bad file at startup is a configuration error, unless a stored console
  // policy takes precedence (decided once the store is open).
  rules::Policy policy;
  std::string local_policy_error;
  if (!config.policy_file.empty()) {
    auto text = ReadFile(config.policy_file);
    auto parsed = text.ok() ? rules::ParsePolicy(*text, config.policy_file)
                            : Result<rules::Policy>(text.status());
    if (parsed.ok()) {
      policy = std::move(*parsed);
    } else {
      local_policy_error = parsed.error();
    }
  }
  RegisterConsolePolicyMetrics(metrics);

  // Store: writer for the pipeline, reader for the uplink.
  StoreOptions store_options{config.store.path};
  store_options.max_bytes = config.store.max_bytes;
  store_options.readings_share = config.store.readings_share;
  store_options.retention_ms = config.store.retention_ms;
  store_options.max_pages = config.store.max_pages;
  OpenReport report;
  auto writer = StoreWriter::Open(store_options, &report);
  if (!writer.ok()) {
    spdlog::critical("store: {}", writer.error());
    return 2;
  }
  auto& recoveries = metrics.Counter("edge_agent_store_recoveries_total",
                                     "Corrupt databases moved aside and replaced at start");
  if (report.recovered) {
    recoveries.Inc();
    spdlog::error("store: database {} was unusable ({}); moved aside to {} and replaced",
                  config.store.path, report.reason, report.moved_aside_path);
  }
  auto reader = StoreReader::Open(store_options);
  if (!reader.ok()) {
    spdlog::critical("store: {}", reader.error());
    return 2;
  }
  spdlog::info("store {} open (epoch {}{})", config.store.path, (*writer)->epoch(),
               report.created ? ", new" : "");

  // Console policies (docs/policy.md, "Console policies"): with sync.policy_key, a stored
  // console policy that still verifies runs instead of the local file.
  std::unique_ptr<cloudsync::VerifyKey> policy_key;
  std::unique_ptr<ConsolePolicyState> console_state;
  std::optional<ConsolePolicyAtStart> console_start;
  if (!config.sync.policy_key.empty()) {
    auto key = cloudsync::LoadVerifyKey(config.sync.policy_key);
    if (!key.ok()) {
      spdlog::critical("sync.policy_key: {}", key.error());
      return 2;
    }
    policy_key = std::move(*key);
    console_state = StoreConsolePolicyState(**reader);
    console_start = LoadConsolePolicyAtStart(*console_state, *policy_key);
  }
  if (console_start) {
    spdlog::info(
        "running console policy {}@{} (applied at {} ms); the local policy file is not "
        "watched",
        console_start->stored.name, console_start->stored.version,
        console_start->stored.applied_ms);
    policy = std::move(console_start->policy);
  } else if (!local_policy_error.empty()) {
    spdlog::critical("policy: {}", local_policy_error);
    return 2;
  } else if (config.policy_file.empty()) {
    spdlog::warn("no policy file configured: readings are received but no rule runs");
  }
  const size_t rule_count = policy.rules.size();
  metrics.Gauge("edge_agent_policy_rules", "Rules in the active policy")
      .Set(static_cast<double>(rule_count));

  asio::io_context io(1);
  auto work = asio::make_work_guard(io);

  // Ingest queue: the MQTT callback thread pushes, the pipeline thread pops.
  IngestQueue queue(config.queue_capacity, static_cast<size_t>(config.queue_max_bytes));
  auto& queue_drops = metrics.Counter("edge_agent_messages_dropped_total",
                                      "MQTT messages dropped before processing, by reason",
                                      {{"reason", "queue_full"}});
  auto& queue_depth =
      metrics.Gauge("edge_agent_ingest_queue_depth", "MQTT messages waiting for the pipeline");
  metrics.Gauge("edge_agent_ingest_queue_capacity", "Capacity of the ingest queue")
      .Set(static_cast<double>(queue.capacity()));

  IngestOptions ingest_options;
  ingest_options.url = config.mqtt.url;
  ingest_options.client_id = MqttClientId(config);
  ingest_options.topics = config.mqtt.topics;
  ingest_options.qos = config.mqtt.qos;
  ingest_options.username = config.mqtt.username;
  ingest_options.ca_file = config.mqtt.ca_file;
  ingest_options.keepalive_ms = config.mqtt.keepalive_ms;
  ingest_options.read_pause_ms = config.mqtt.read_pause_ms;
  if (!config.mqtt.password_file.empty()) {
    auto pw = ReadFile(config.mqtt.password_file);
    if (!pw.ok()) {
      spdlog::critical("mqtt.password_file: {}", pw.error());
      return 2;
    }
    ingest_options.password = Trim(*pw);
  }
  // The native client skips (and counts) packets that cannot hold a payload of
  // max_payload_bytes: the longest topic (2 + 65535 bytes) and a packet id fit.
  ingest_options.max_packet_bytes = config.mqtt.max_payload_bytes + 65'539;
  // Set once the pipeline exists, before the network and ingest threads start.
  Pipeline* pipeline_ptr = nullptr;
  // A small batch is processed on the MQTT thread when the pipeline is idle
  // (Pipeline::TryProcessNow); the rest is queued for the pipeline thread.
  MessageSink ingest_sink = [&queue, &queue_drops, &pipeline_ptr](std::span<RawMessage> messages) {
    if (pipeline_ptr != nullptr && pipeline_ptr->TryProcessNow(messages)) return;
    const auto pushed = queue.PushBatch(messages);
    if (pushed.dropped_oldest > 0) queue_drops.Inc(static_cast<double>(pushed.dropped_oldest));
  };
  auto ingest =
      config.mqtt.client == "paho"
          ? CreatePahoIngest(io, ingest_options, std::move(ingest_sink), metrics, clock)
          : CreateNativeIngest(io, ingest_options, std::move(ingest_sink), metrics, clock);

  PolicyInfo policy_info{policy.version, rule_count};
  if (console_start) {
    policy_info.version =
        console_start->stored.name + "@" + std::to_string(console_start->stored.version);
  }

  // Uplink (optional: without a console the agent still detects and stores).
  StoreOutboxSource outbox(**reader, config.node_id, metrics);
  std::unique_ptr<cloudsync::Uplink> uplink;
  if (!config.console.url.empty()) {
    cloudsync::UplinkOptions u;
    u.console_url = config.console.url;
    u.node_id = config.node_id;
    u.token_file = config.console.token_file;
    u.ca_file = config.console.ca_file;
    u.batch_max_items = config.console.batch_max_items;
    u.timeout_ms = config.console.timeout_ms;
    u.backoff_initial_ms = config.console.backoff_initial_ms;
    u.backoff_max_ms = config.console.backoff_max_ms;
    u.linger_ms = config.console.linger_ms;
    u.status_interval_ms = config.sync.status_interval_ms;
    StatusSources status_sources;
    status_sources.reader = reader->get();
    status_sources.ingest = ingest.get();
    status_sources.clock = &clock;
    status_sources.policy = &policy_info;
    status_sources.labels = &config.labels;
    status_sources.started_ms = clock.WallMs();
    status_sources.started_mono_ms = clock.MonotonicMs();
    status_sources.queue_full = &queue_drops;
    status_sources.alerts_dropped = &metrics.Counter(
        "edge_agent_alerts_dropped_total",
        "Alert events dropped because they could not be committed and the in-memory backlog was "
        "full");
    for (RejectReason r :
         {RejectReason::kTooLarge, RejectReason::kEmpty, RejectReason::kNotJson,
          RejectReason::kNoNumbers, RejectReason::kNonFinite, RejectReason::kBadTimestamp,
          RejectReason::kTooDeep, RejectReason::kTooManyReadings, RejectReason::kTopicTooLong}) {
      status_sources.readings_rejected.push_back(
          &metrics.Counter("edge_agent_readings_rejected_total",
                           "MQTT messages rejected by the payload decoder, by reason",
                           {{"reason", std::string(ReasonLabel(r))}}));
    }
    u.status_provider = [src = std::move(status_sources)] { return BuildStatus(src); };
    if (Status s = cloudsync::ValidateUplinkOptions(u); !s) {
      spdlog::critical("console: {}", s.message());
      return 2;
    }
    uplink = cloudsync::CreateUplink(io, u, outbox, metrics, clock);
  } else {
    spdlog::warn("no console configured: alerts stay in the local outbox");
  }
  for (const std::string& w : ConfigWarnings(config)) spdlog::warn("{}", w);

  // HTTP endpoints.
  HttpServerOptions http_options;
  http_options.listen = config.http.listen;
  http_options.header_timeout_ms = config.http.header_timeout_ms;
  http_options.max_connections = config.http.max_connections;
  http_options.max_connections_per_client = config.http.max_connections_per_client;
  auto readings_gate = ReadingsGate(config.http.readings_token_file, metrics);
  if (!readings_gate.ok()) {
    spdlog::critical("http.readings_token_file: {}", readings_gate.error());
    return 2;
  }
  cloudsync::Uplink* uplink_ptr = uplink.get();
  Ingest* ingest_ptr = ingest.get();
  StoreReader& store_reader = **reader;
  StoreGauges store_gauges(metrics);
  auto server = StartHttpServer(
      io, http_options,
      [&metrics, &queue, &queue_depth, ingest_ptr, uplink_ptr, &store_reader, &store_gauges,
       &pipeline_ptr, gate = std::move(*readings_gate)](const HttpRequest& req) -> HttpResponse {
        const std::string_view method = req.method;
        const std::string_view target = req.target;
        const std::string_view path = target.substr(0, target.find('?'));
        if (method != "GET" && method != "HEAD") {
          return {405, "text/plain; charset=utf-8", "method not allowed\n"};
        }
        if (path == "/metrics") {
          queue_depth.Set(static_cast<double>(queue.size()));
          store_gauges.Refresh(store_reader);
          return {200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render()};
        }
        if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
        if (path == "/readyz") {
          std::string why;
          if (!ingest_ptr->Connected()) why += "mqtt: not connected\n";
          if (uplink_ptr != nullptr && !uplink_ptr->Authorized()) {
            why += "console: token rejected (401)\n";
          }
          if (pipeline_ptr != nullptr && !pipeline_ptr->store_writable()) {
            why += "store: refusing writes (disk full or I/O error)\n";
          }
          if (why.empty()) return {200, "text/plain; charset=utf-8", "ready\n"};
          return {503, "text/plain; charset=utf-8", why};
        }
        if (path == "/v1/readings") {
          if (auto refused = gate.Check(req)) return std::move(*refused);
          return ServeReadings(store_reader, target);
        }
        return {404, "text/plain; charset=utf-8", "not found\n"};
      },
      metrics);
  if (!server.ok()) {
    spdlog::critical("{}", server.error());
    return 2;
  }

  PipelineOptions pipeline_options;
  pipeline_options.node_id = config.node_id;
  pipeline_options.decode.max_payload_bytes = config.mqtt.max_payload_bytes;
  pipeline_options.commit_interval_ms = config.store.commit_interval_ms;
  pipeline_options.rollup_interval_ms = config.store.rollup_interval_ms;
  pipeline_options.max_sensors = config.max_sensors;
  pipeline_options.sensor_idle_ms = config.sensor_idle_ms;
  Pipeline pipeline(pipeline_options, queue, rules::Engine(std::move(policy)), **writer, metrics,
                    clock, [uplink_ptr] {
                      if (uplink_ptr != nullptr) uplink_ptr->Notify();
                    });
  pipeline_ptr = &pipeline;

  // Hot reload of the local policy file: polled on the network thread, swapped in by the
  // pipeline thread between batches.
  std::unique_ptr<PolicyWatcher> policy_watcher;
  if (!config.policy_file.empty() && !console_start) {
    policy_watcher = std::make_unique<PolicyWatcher>(io, config.policy_file, metrics,
                                                     [&pipeline, &policy_info](rules::Policy p) {
                                                       policy_info = {p.version, p.rules.size()};
                                                       pipeline.SetPolicy(std::move(p));
                                                     });
    policy_watcher->Start();
  }

  // The policy channel: signed console policies, judged on the network thread.
  std::unique_ptr<ConsolePolicyJudge> judge;
  std::unique_ptr<cloudsync::PolicyChannel> channel;
  if (policy_key) {
    std::optional<RunningConsolePolicy> running;
    if (console_start) {
      const StoredConsolePolicy& s = console_start->stored;
      running = RunningConsolePolicy{s.name, s.version, s.seq};
    }
    judge = std::make_unique<ConsolePolicyJudge>(
        *policy_key, *console_state, metrics, clock,
        [&pipeline, &policy_info, &policy_watcher](rules::Policy p,
                                                   const StoredConsolePolicy& stored) {
          policy_info = {stored.name + "@" + std::to_string(stored.version), p.rules.size()};
          pipeline.SetPolicy(std::move(p));
          if (policy_watcher) policy_watcher->Stop();
        },
        std::move(running));
    cloudsync::PolicyChannelOptions c;
    c.console_url = config.console.url;
    c.node_id = config.node_id;
    c.token_file = config.console.token_file;
    c.ca_file = config.console.ca_file;
    c.labels = config.labels;
    c.agent_version = AgentVersion();
    c.timeout_ms = config.console.timeout_ms;
    c.backoff_initial_ms = config.console.backoff_initial_ms;
    c.backoff_max_ms = config.console.backoff_max_ms;
    c.poll_interval_ms = config.sync.policy_poll_interval_ms;
    if (Status s = cloudsync::ValidatePolicyChannelOptions(c); !s) {
      spdlog::critical("policy channel: {}", s.message());
      return 2;
    }
    ConsolePolicyJudge* judge_ptr = judge.get();
    channel = cloudsync::CreatePolicyChannel(
        io, std::move(c),
        [judge_ptr](const cloudsync::PolicyDocument& d) { return judge_ptr->Judge(d); },
        [judge_ptr] { return judge_ptr->Applied(); }, metrics, clock);
  }

  // Termination signals are handled on the network thread; the main thread waits.
  std::promise<int> stop_signal;
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&stop_signal](const boost::system::error_code& ec, int sig) {
    stop_signal.set_value(ec ? 0 : sig);
  });

  std::thread network([&io] {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("network thread: unhandled exception: {}", e.what());
      }
    }
  });
  std::thread pipeline_thread([&pipeline] { pipeline.Run(); });

  ingest->Start();
  if (uplink) uplink->Start();
  if (channel) channel->Start();
  spdlog::info("edge-agent {} running: node {}, mqtt {}, {} rule(s), http {}:{}, console {}",
               AgentVersion(), config.node_id, config.mqtt.url, rule_count,
               config.http.listen.substr(0, config.http.listen.rfind(':')), (*server)->port(),
               config.console.url.empty() ? "none" : config.console.url);

  const int sig = stop_signal.get_future().get();
  const auto t0 = std::chrono::steady_clock::now();
  spdlog::info("signal {} received: draining", sig);

  ingest->Stop(kIngestStopMs);
  queue.Close();
  pipeline_thread.join();
  if (channel) {
    auto stopped = std::make_shared<std::promise<void>>();
    auto done = stopped->get_future();
    channel->Stop([stopped] { stopped->set_value(); });
    done.wait_for(std::chrono::milliseconds(kChannelStopMs));
  }
  if (uplink) {
    // Shared: the callback may run after we gave up waiting.
    auto stopped = std::make_shared<std::promise<void>>();
    auto done = stopped->get_future();
    uplink->Stop(kUplinkStopMs, [stopped] { stopped->set_value(); });
    done.wait_for(std::chrono::milliseconds(kUplinkStopMs + 500));
  }
  (*server)->Stop();
  work.reset();
  io.stop();
  network.join();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  spdlog::info("stopped after draining for {} ms", ms);
  return 0;
}

}  // namespace edge::agent
