#include "edge/agent/runtime.h"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <thread>

#include "edge/agent/bounded_queue.h"
#include "edge/agent/console_policy.h"
#include "edge/agent/decoder.h"
#include "edge/agent/http_server.h"
#include "edge/agent/ingest.h"
#include "edge/agent/modbus.h"
#include "edge/agent/pipeline.h"
#include "edge/agent/policy_watcher.h"
#include "edge/agent/prometheus_metrics.h"
#include "edge/agent/store.h"
#include "edge/agent/store_api.h"
#include "edge/cloudsync/policy_channel.h"
#include "edge/cloudsync/policy_message.h"
#include "edge/cloudsync/uplink.h"
#include "edge/common/files.h"
#include "edge/common/strings.h"
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

// The console link settings the uplink and the policy channel share: where, who, and the
// TLS files.
template <typename Options>
void SetConsoleLink(const Config& config, Options& o) {
  o.console_url = config.console.url;
  o.node_id = config.node_id;
  o.token_file = config.console.token_file;
  o.ca_file = config.console.ca_file;
  o.cert_file = config.console.cert_file;
  o.key_file = config.console.key_file;
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
    token = std::string(edge::Trim(*text));
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

// The parts one run owns, declared in the order RunAgent makes them, so that they are
// destroyed in reverse: threads and channels first, the store, metrics and clock last.
// Each step below fills in its part; a step that fails returns a Status whose message is
// the critical log line, and RunAgent exits 2.
struct Run {
  explicit Run(const Config& c) : config(c) {}

  const Config& config;
  SystemClock clock;
  PrometheusMetrics metrics;

  // Policy: the local file's, or the reason it was refused (decided once the store is open).
  rules::Policy policy;
  std::string local_policy_error;
  size_t rule_count = 0;

  std::unique_ptr<StoreWriter> writer;  // the pipeline's connection
  std::unique_ptr<StoreReader> reader;  // the network thread's connection

  std::unique_ptr<cloudsync::VerifyKey> policy_key;
  std::unique_ptr<ConsolePolicyState> console_state;
  std::optional<ConsolePolicyAtStart> console_start;

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);

  // The MQTT callback thread pushes, the pipeline thread pops.
  IngestQueue queue{config.queue_capacity, static_cast<size_t>(config.queue_max_bytes)};
  CounterHandle* queue_drops = nullptr;
  GaugeHandle* queue_depth = nullptr;
  std::unique_ptr<Ingest> ingest;
  std::unique_ptr<ModbusPoller> modbus;  // null without modbus devices

  PolicyInfo policy_info;
  std::unique_ptr<StoreOutboxSource> outbox;
  std::unique_ptr<cloudsync::Uplink> uplink;  // null without a console

  std::unique_ptr<StoreGauges> store_gauges;
  std::unique_ptr<HttpServer> server;

  // Set before the network and ingest threads start; read by them.
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<PolicyWatcher> policy_watcher;
  std::unique_ptr<ConsolePolicyJudge> judge;
  std::unique_ptr<cloudsync::PolicyChannel> channel;

  std::promise<int> stop_signal;
  std::optional<asio::signal_set> signals;
  std::thread network;
  std::thread pipeline_thread;
};

void RegisterBuildMetrics(Run& run) {
  run.metrics
      .Gauge("edge_agent_build_info", "Always 1; labels carry the agent version",
             {{"version", AgentVersion()}})
      .Set(1);
  run.metrics.Gauge("edge_agent_start_time_seconds", "Wall-clock start time of the agent process")
      .Set(static_cast<double>(run.clock.WallMs()) / 1000.0);
}

// A bad file at startup is a configuration error, unless a stored console policy takes
// precedence (ChoosePolicy).
void LoadLocalPolicy(Run& run) {
  const std::string& file = run.config.policy_file;
  if (!file.empty()) {
    auto text = ReadTextFile(file, kNoFileSizeLimit);
    auto parsed =
        text.ok() ? rules::ParsePolicy(*text, file) : Result<rules::Policy>(text.status());
    if (parsed.ok()) {
      run.policy = std::move(*parsed);
    } else {
      run.local_policy_error = parsed.error();
    }
  }
  RegisterConsolePolicyMetrics(run.metrics);
}

// Writer for the pipeline, reader for the uplink.
Status OpenStore(Run& run) {
  const auto& store = run.config.store;
  StoreOptions store_options{store.path};
  store_options.max_bytes = store.max_bytes;
  store_options.readings_share = store.readings_share;
  store_options.retention_ms = store.retention_ms;
  store_options.max_pages = store.max_pages;
  store_options.clock = &run.clock;
  OpenReport report;
  auto writer = StoreWriter::Open(store_options, &report);
  if (!writer.ok()) return writer.status().Annotate("store: ");
  run.writer = std::move(*writer);
  auto& recoveries = run.metrics.Counter("edge_agent_store_recoveries_total",
                                         "Corrupt databases moved aside and replaced at start");
  if (report.recovered) {
    recoveries.Inc();
    spdlog::error("store: database {} was unusable ({}); moved aside to {} and replaced",
                  store.path, report.reason, report.moved_aside_path);
  }
  auto reader = StoreReader::Open(store_options);
  if (!reader.ok()) return reader.status().Annotate("store: ");
  run.reader = std::move(*reader);
  spdlog::info("store {} open (epoch {}{})", store.path, run.writer->epoch(),
               report.created ? ", new" : "");
  return Status::Ok();
}

// Console policies (docs/policy.md, "Console policies"): with sync.policy_key, a stored
// console policy that still verifies runs instead of the local file.
Status ChoosePolicy(Run& run) {
  if (!run.config.sync.policy_key.empty()) {
    auto key = cloudsync::LoadVerifyKey(run.config.sync.policy_key);
    if (!key.ok()) return Status::Error("sync.policy_key: " + key.error());
    run.policy_key = std::move(*key);
    run.console_state = StoreConsolePolicyState(*run.reader);
    run.console_start = LoadConsolePolicyAtStart(*run.console_state, *run.policy_key);
  }
  if (run.console_start) {
    const StoredConsolePolicy& s = run.console_start->stored;
    spdlog::info(
        "running console policy {}@{} (applied at {} ms); the local policy file is not "
        "watched",
        s.name, s.version, s.applied_ms);
    run.policy = std::move(run.console_start->policy);
  } else if (!run.local_policy_error.empty()) {
    return Status::Error("policy: " + run.local_policy_error);
  } else if (run.config.policy_file.empty()) {
    spdlog::warn("no policy file configured: readings are received but no rule runs");
  }
  run.rule_count = run.policy.rules.size();
  run.metrics.Gauge("edge_agent_policy_rules", "Rules in the active policy")
      .Set(static_cast<double>(run.rule_count));
  return Status::Ok();
}

// The MQTT client (mqtt.client) and the ingest queue it feeds. Not started yet.
Status MakeIngest(Run& run) {
  const auto& mqtt = run.config.mqtt;
  run.queue_drops = &run.metrics.Counter("edge_agent_messages_dropped_total",
                                         "MQTT messages dropped before processing, by reason",
                                         {{"reason", "queue_full"}});
  run.queue_depth =
      &run.metrics.Gauge("edge_agent_ingest_queue_depth", "MQTT messages waiting for the pipeline");
  run.metrics.Gauge("edge_agent_ingest_queue_capacity", "Capacity of the ingest queue")
      .Set(static_cast<double>(run.queue.capacity()));

  IngestOptions ingest_options;
  ingest_options.url = mqtt.url;
  ingest_options.client_id = MqttClientId(run.config);
  ingest_options.topics = mqtt.topics;
  ingest_options.qos = mqtt.qos;
  ingest_options.username = mqtt.username;
  ingest_options.ca_file = mqtt.ca_file;
  ingest_options.cert_file = mqtt.cert_file;
  ingest_options.key_file = mqtt.key_file;
  ingest_options.keepalive_ms = mqtt.keepalive_ms;
  ingest_options.read_pause_ms = mqtt.read_pause_ms;
  ingest_options.clean_session = mqtt.clean_session;
  ingest_options.backoff_max_ms = mqtt.backoff_max_ms;
  ingest_options.ack_after_commit = mqtt.AckAfterCommit();
  if (ingest_options.ack_after_commit) {
    // The messages of the last readings commit: the broker sends them again if a crash
    // came before their acknowledgements.
    auto delivered = run.writer->LoadDelivered();
    if (!delivered.ok()) return delivered.status().Annotate("store: ");
    ingest_options.delivered = std::move(*delivered);
    ingest_options.request_commit = [&pipeline = run.pipeline] {
      if (pipeline != nullptr) pipeline->RequestCommit();
    };
    // A message the queue dropped would be acknowledged with the next one committed: the
    // client stops reading at half the queue's bounds instead (a read adds at most 64 KiB).
    ingest_options.has_room = [&queue = run.queue] {
      return queue.size() < queue.capacity() / 2 && queue.bytes() < queue.max_bytes() / 2;
    };
  }
  if (!mqtt.username_file.empty()) {
    auto user = ReadTextFile(mqtt.username_file, kNoFileSizeLimit);
    if (!user.ok()) return Status::Error("mqtt.username_file: " + user.error());
    ingest_options.username = std::string(edge::Trim(*user));
  }
  if (!mqtt.password_file.empty()) {
    auto pw = ReadTextFile(mqtt.password_file, kNoFileSizeLimit);
    if (!pw.ok()) return Status::Error("mqtt.password_file: " + pw.error());
    ingest_options.password = std::string(edge::Trim(*pw));
  }
  // The native client skips (and counts) packets that cannot hold a payload of
  // max_payload_bytes: the longest topic (2 + 65535 bytes) and a packet id fit.
  ingest_options.max_packet_bytes = mqtt.max_payload_bytes + 65'539;
  // A small batch is processed on the MQTT thread when the pipeline is idle
  // (Pipeline::TryProcessNow); the rest is queued for the pipeline thread.
  MessageSink ingest_sink = [&pipeline = run.pipeline, &queue = run.queue,
                             &queue_drops = *run.queue_drops](std::span<RawMessage> messages) {
    if (pipeline != nullptr && pipeline->TryProcessNow(messages)) return;
    const auto pushed = queue.PushBatch(messages);
    if (pushed.dropped_oldest > 0) queue_drops.Inc(static_cast<double>(pushed.dropped_oldest));
  };
  auto create = mqtt.client == "paho" ? &CreatePahoIngest : &CreateNativeIngest;
  run.ingest = create(run.io, ingest_options, std::move(ingest_sink), run.metrics, run.clock);
  return Status::Ok();
}

// What the status heartbeat reports; everything it reads outlives the uplink.
StatusSources MakeStatusSources(Run& run) {
  StatusSources src;
  src.reader = run.reader.get();
  src.ingest = run.ingest.get();
  src.clock = &run.clock;
  src.policy = &run.policy_info;
  src.labels = &run.config.labels;
  src.started_ms = run.clock.WallMs();
  src.started_mono_ms = run.clock.MonotonicMs();
  src.queue_full = run.queue_drops;
  src.alerts_dropped = &run.metrics.Counter(
      "edge_agent_alerts_dropped_total",
      "Alert events dropped because they could not be committed and the in-memory backlog was "
      "full");
  for (RejectReason r : kAllRejectReasons) {
    src.readings_rejected.push_back(
        &run.metrics.Counter("edge_agent_readings_rejected_total", kReadingsRejectedHelp,
                             {{"reason", std::string(ReasonLabel(r))}}));
  }
  return src;
}

// The uplink and its status heartbeat (optional: without a console the agent still
// detects and stores). Not started yet.
Status MakeUplink(Run& run) {
  run.policy_info = {run.policy.version, run.rule_count};
  if (run.console_start) {
    const StoredConsolePolicy& s = run.console_start->stored;
    run.policy_info.version = s.name + "@" + std::to_string(s.version);
  }
  const Config& config = run.config;
  run.outbox = std::make_unique<StoreOutboxSource>(*run.reader, config.node_id, run.metrics);
  if (config.console.url.empty()) {
    spdlog::warn("no console configured: alerts stay in the local outbox");
    return Status::Ok();
  }
  cloudsync::UplinkOptions u;
  SetConsoleLink(config, u);
  u.batch_max_items = config.console.batch_max_items;
  u.timeout_ms = config.console.timeout_ms;
  u.backoff_initial_ms = config.console.backoff_initial_ms;
  u.backoff_max_ms = config.console.backoff_max_ms;
  u.linger_ms = config.console.linger_ms;
  u.status_interval_ms = config.sync.status_interval_ms;
  u.status_provider = [src = MakeStatusSources(run)] { return BuildStatus(src); };
  if (Status s = cloudsync::ValidateUplinkOptions(u); !s) {
    return Status::Error("console: " + s.message());
  }
  run.uplink = cloudsync::CreateUplink(run.io, u, *run.outbox, run.metrics, run.clock);
  return Status::Ok();
}

// GET /metrics /healthz /readyz /v1/readings, served on the network thread.
HttpHandler MakeHttpHandler(Run& run, TokenOrLoopbackGate gate) {
  return [&metrics = run.metrics, &queue = run.queue, &queue_depth = *run.queue_depth,
          ingest = run.ingest.get(), uplink = run.uplink.get(), &store_reader = *run.reader,
          &store_gauges = *run.store_gauges, &pipeline = run.pipeline,
          gate = std::move(gate)](const HttpRequest& req) -> HttpResponse {
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
      if (!ingest->Connected()) why += "mqtt: not connected\n";
      if (uplink != nullptr && !uplink->Authorized()) {
        why += "console: token rejected (401)\n";
      }
      if (pipeline != nullptr && !pipeline->store_writable()) {
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
  };
}

// The HTTP endpoints: listening once this returns, served once the network thread runs.
Status StartHttp(Run& run) {
  const auto& http = run.config.http;
  HttpServerOptions http_options;
  http_options.listen = http.listen;
  http_options.header_timeout_ms = http.header_timeout_ms;
  http_options.max_connections = http.max_connections;
  http_options.max_connections_per_client = http.max_connections_per_client;
  auto readings_gate = ReadingsGate(http.readings_token_file, run.metrics);
  if (!readings_gate.ok()) {
    return Status::Error("http.readings_token_file: " + readings_gate.error());
  }
  run.store_gauges = std::make_unique<StoreGauges>(run.metrics);
  auto server = StartHttpServer(run.io, http_options,
                                MakeHttpHandler(run, std::move(*readings_gate)), run.metrics);
  if (!server.ok()) return server.status();
  run.server = std::move(*server);
  return Status::Ok();
}

void MakePipeline(Run& run) {
  const Config& config = run.config;
  PipelineOptions pipeline_options;
  pipeline_options.node_id = config.node_id;
  pipeline_options.decode.max_payload_bytes = config.mqtt.max_payload_bytes;
  pipeline_options.sparkplug.max_nodes = config.sparkplug_max_nodes;
  pipeline_options.sparkplug.max_metrics_per_node = config.sparkplug_max_metrics;
  pipeline_options.sparkplug.idle_after_ms = config.sensor_idle_ms;
  pipeline_options.sparkplug.max_sensor_id_bytes = pipeline_options.decode.max_sensor_id_bytes;
  pipeline_options.commit_interval_ms = config.store.commit_interval_ms;
  pipeline_options.alert_commit_window_ms = config.store.alert_commit_window_ms;
  pipeline_options.rollup_interval_ms = config.store.rollup_interval_ms;
  pipeline_options.max_sensors = config.max_sensors;
  pipeline_options.sensor_idle_ms = config.sensor_idle_ms;
  run.pipeline = std::make_unique<Pipeline>(
      pipeline_options, run.queue, rules::Engine(std::move(run.policy)), *run.writer, run.metrics,
      run.clock,
      [uplink = run.uplink.get()] {
        if (uplink != nullptr) uplink->Notify();
      },
      // Only when messages are acknowledged after commit: the pipeline then couples readings
      // to their alerts' commits and keeps readings a failed commit could not store.
      config.mqtt.AckAfterCommit()
          ? std::function<void(uint64_t)>(
                [ingest = run.ingest.get()](uint64_t seq) { ingest->Acknowledge(seq); })
          : nullptr);
}

// Hot reload of the local policy file: polled on the network thread, swapped in by the
// pipeline thread between batches. Not while a console policy runs.
void StartPolicyWatcher(Run& run) {
  if (run.config.policy_file.empty() || run.console_start) return;
  run.policy_watcher = std::make_unique<PolicyWatcher>(
      run.io, run.config.policy_file, run.metrics,
      [&pipeline = *run.pipeline, &policy_info = run.policy_info](rules::Policy p) {
        policy_info = {p.version, p.rules.size()};
        pipeline.SetPolicy(std::move(p));
      });
  run.policy_watcher->Start();
}

// The policy channel: signed console policies, judged on the network thread. Only with
// sync.policy_key. Not started yet.
Status MakePolicyChannel(Run& run) {
  if (!run.policy_key) return Status::Ok();
  const Config& config = run.config;
  std::optional<RunningConsolePolicy> running;
  if (run.console_start) {
    const StoredConsolePolicy& s = run.console_start->stored;
    running = RunningConsolePolicy{s.name, s.version, s.seq};
  }
  run.judge = std::make_unique<ConsolePolicyJudge>(
      *run.policy_key, *run.console_state, run.metrics, run.clock,
      [&pipeline = *run.pipeline, &policy_info = run.policy_info,
       &policy_watcher = run.policy_watcher](rules::Policy p, const StoredConsolePolicy& stored) {
        policy_info = {stored.name + "@" + std::to_string(stored.version), p.rules.size()};
        pipeline.SetPolicy(std::move(p));
        if (policy_watcher) policy_watcher->Stop();
      },
      std::move(running));
  cloudsync::PolicyChannelOptions c;
  SetConsoleLink(config, c);
  c.labels = config.labels;
  c.agent_version = AgentVersion();
  c.timeout_ms = config.console.timeout_ms;
  c.backoff_initial_ms = config.console.backoff_initial_ms;
  c.backoff_max_ms = config.console.backoff_max_ms;
  c.poll_interval_ms = config.sync.policy_poll_interval_ms;
  if (Status s = cloudsync::ValidatePolicyChannelOptions(c); !s) {
    return Status::Error("policy channel: " + s.message());
  }
  ConsolePolicyJudge* judge = run.judge.get();
  run.channel = cloudsync::CreatePolicyChannel(
      run.io, std::move(c), [judge](const cloudsync::PolicyDocument& d) { return judge->Judge(d); },
      [judge] { return judge->Applied(); }, run.metrics, run.clock);
  return Status::Ok();
}

// Starts the network and pipeline threads, then ingest, uplink and policy channel.
// Termination signals are handled on the network thread.
void Start(Run& run) {
  run.signals.emplace(run.io, SIGTERM, SIGINT);
  run.signals->async_wait(
      [&stop_signal = run.stop_signal](const boost::system::error_code& ec, int sig) {
        stop_signal.set_value(ec ? 0 : sig);
      });
  run.network = std::thread([&io = run.io] {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("network thread: unhandled exception: {}", e.what());
      }
    }
  });
  run.pipeline_thread = std::thread([&pipeline = *run.pipeline] { pipeline.Run(); });

  run.ingest->Start();
  if (run.modbus) run.modbus->Start();
  if (run.uplink) run.uplink->Start();
  if (run.channel) run.channel->Start();
  const Config& config = run.config;
  spdlog::info("edge-agent {} running: node {}, mqtt {}, {} rule(s), http {}:{}, console {}",
               AgentVersion(), config.node_id, config.mqtt.url, run.rule_count,
               config.http.listen.substr(0, config.http.listen.rfind(':')), run.server->port(),
               config.console.url.empty() ? "none" : config.console.url);
}

// The main thread waits here; returns the signal number.
int WaitForSignal(Run& run) { return run.stop_signal.get_future().get(); }

// Waits for `stop` to call its callback, at most `timeout_ms`. The promise is shared: the
// callback may run after we gave up waiting.
template <typename StopFn>
void StopAndWait(StopFn stop, int64_t timeout_ms) {
  auto stopped = std::make_shared<std::promise<void>>();
  auto done = stopped->get_future();
  stop([stopped] { stopped->set_value(); });
  done.wait_for(std::chrono::milliseconds(timeout_ms));
}

// docs/architecture.md, "Shutdown": ingest disconnects, the pipeline drains the closed queue
// and commits, the policy channel and the uplink get a last bounded attempt, the HTTP server
// closes, then the network thread.
void Drain(Run& run) {
  run.ingest->Stop(kIngestStopMs);
  // Modbus threads start no new request; one under way may still end in a push, which the
  // closed queue refuses: the pipeline's last commit does not wait for a slow device.
  if (run.modbus) run.modbus->RequestStop();
  run.queue.Close();
  run.pipeline_thread.join();
  if (run.modbus) run.modbus->Stop();
  if (run.channel) {
    StopAndWait([&run](auto done) { run.channel->Stop(std::move(done)); }, kChannelStopMs);
  }
  if (run.uplink) {
    StopAndWait([&run](auto done) { run.uplink->Stop(kUplinkStopMs, std::move(done)); },
                kUplinkStopMs + 500);
  }
  run.server->Stop();
  run.work.reset();
  run.io.stop();
  run.network.join();
}

}  // namespace

const char* AgentVersion() { return EDGE_AGENT_VERSION; }

int RunAgent(const Config& config) {
  Run run(config);
  RegisterBuildMetrics(run);
  LoadLocalPolicy(run);
  auto startup = [&run]() -> Status {
    if (Status s = OpenStore(run); !s) return s;
    if (Status s = ChoosePolicy(run); !s) return s;
    if (Status s = MakeIngest(run); !s) return s;
    if (!run.config.modbus.empty()) {
      run.modbus =
          std::make_unique<ModbusPoller>(run.config.modbus, run.queue, run.metrics, run.clock);
    }
    if (Status s = MakeUplink(run); !s) return s;
    for (const std::string& w : ConfigWarnings(run.config)) spdlog::warn("{}", w);
    if (Status s = StartHttp(run); !s) return s;
    MakePipeline(run);
    StartPolicyWatcher(run);
    return MakePolicyChannel(run);
  };
  if (Status s = startup(); !s) {
    spdlog::critical("{}", s.message());
    return 2;
  }
  Start(run);

  const int sig = WaitForSignal(run);
  const auto t0 = std::chrono::steady_clock::now();
  spdlog::info("signal {} received: draining", sig);
  Drain(run);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  spdlog::info("stopped after draining for {} ms", ms);
  return 0;
}

}  // namespace edge::agent
