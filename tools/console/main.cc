// edge-console: wiring only. See docs/protocol.md for the API it serves.

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "edge/cloudsync/policy_message.h"
#include "edge/common/clock.h"
#include "edge/common/files.h"
#include "edge/common/url.h"
#include "edge/console/api.h"
#include "edge/console/auth_throttle.h"
#include "edge/console/client.h"
#include "edge/console/log.h"
#include "edge/console/policy_api.h"
#include "edge/console/policy_service.h"
#include "edge/console/policy_store.h"
#include "edge/console/server.h"
#include "edge/console/server_metrics.h"
#include "edge/console/store.h"
#include "edge/console/tokens.h"

namespace {

constexpr int kExitConfig = 2;
constexpr int kExitRuntime = 1;

// Written to a temporary name and renamed, so a reader never sees a partial port number.
bool WritePortFile(const std::string& path, uint16_t port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

using json = nlohmann::json;

constexpr const char* kDefaultUrl = "http://127.0.0.1:8080";
constexpr std::chrono::milliseconds kClientTimeout{10'000};

// The admin token from --token-file: a file holding the token alone, or a console token
// file with an `admin` entry.
edge::Result<std::string> ReadAdminToken(const std::string& path) {
  const edge::Result<std::string> read = edge::ReadFile(path, edge::kNoFileSizeLimit);
  if (!read.ok()) return edge::Status::Error(path + ": cannot read");
  const std::string& text = *read;
  if (auto table = edge::console::TokenTable::Parse(text, path); table && table->has_admin()) {
    std::istringstream lines(text);
    std::string node;
    std::string token;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      if (fields >> node >> token && node == "admin") return token;
    }
  }
  std::string token = text;
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) {
    token.erase(0, 1);
  }
  if (token.empty() || token.find_first_of(" \t\r\n") != std::string::npos) {
    return edge::Status::Error(path + ": expected one token (or a token file with an admin entry)");
  }
  return token;
}

struct PolicyCli {
  std::string url = kDefaultUrl;
  std::string token_file;
  std::string file;
  std::string name;
  std::string selector = "all";
  std::string canary;
  int64_t canary_wait_s = 60;
  bool skip_validation = false;
  int64_t to = 0;
};

std::string Text(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// Calls the console; prints "edge-console: WHAT: HTTP STATUS: ERROR" and returns nullopt on
// anything but `expected`.
std::optional<json> CallConsole(const PolicyCli& cli, const std::string& what, const char* method,
                                const std::string& path, const std::string& body, int expected) {
  const auto base = edge::console::ParseBaseUrl(cli.url);
  if (!base) {
    std::cerr << "edge-console: --url: " << base.error() << "\n";
    return std::nullopt;
  }
  const auto token = ReadAdminToken(cli.token_file);
  if (!token) {
    std::cerr << "edge-console: --token-file: " << token.error() << "\n";
    return std::nullopt;
  }
  const auto reply = edge::console::HttpCall(*base, method, path, *token, body, kClientTimeout);
  if (!reply) {
    std::cerr << "edge-console: " << what << ": " << reply.error() << "\n";
    return std::nullopt;
  }
  json parsed = json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
  if (reply->status != expected) {
    std::string message = reply->body;
    if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
      message = parsed["error"].get<std::string>();
    }
    std::cerr << "edge-console: " << what << ": HTTP " << reply->status << ": " << message << "\n";
    return std::nullopt;
  }
  if (parsed.is_discarded()) {
    std::cerr << "edge-console: " << what << ": the console's reply is not JSON\n";
    return std::nullopt;
  }
  return parsed;
}

void PrintCreated(const json& reply) {
  std::cout << "policy " << Text(reply, "name") << " version " << Text(reply, "version")
            << " created (rollout: " << Text(reply, "rollout") << ")\n";
  std::string targets;
  if (reply.contains("targets") && reply["targets"].is_array()) {
    for (const auto& t : reply["targets"]) {
      if (!t.is_string()) continue;
      if (!targets.empty()) targets += ", ";
      targets += t.get<std::string>();
    }
  }
  std::cout << "released to: " << (targets.empty() ? "(no known node yet)" : targets) << "\n";
  std::cout << "signature: " << Text(reply, "signature") << "\n";
}

int PolicyPush(const PolicyCli& cli) {
  const edge::Result<std::string> body = edge::ReadFile(cli.file, edge::kNoFileSizeLimit);
  if (!body.ok()) {
    std::cerr << "edge-console: " << cli.file << ": cannot read\n";
    return kExitRuntime;
  }
  json request{{"body", *body},
               {"selector", cli.selector},
               {"canary_wait_s", cli.canary_wait_s},
               {"skip_validation", cli.skip_validation}};
  if (!cli.canary.empty()) request["canary"] = cli.canary;
  const auto reply = CallConsole(cli, "policy push", "PUT", "/v1/policies/" + cli.name,
                                 request.dump(-1, ' ', false, json::error_handler_t::replace), 201);
  if (!reply) return kExitRuntime;
  PrintCreated(*reply);
  return 0;
}

int PolicyRollback(const PolicyCli& cli) {
  const auto reply =
      CallConsole(cli, "policy rollback", "POST", "/v1/policies/" + cli.name + "/rollback",
                  json{{"to", cli.to}}.dump(), 201);
  if (!reply) return kExitRuntime;
  PrintCreated(*reply);
  return 0;
}

int PolicyList(const PolicyCli& cli) {
  const auto reply = CallConsole(cli, "policy list", "GET", "/v1/policies", "", 200);
  if (!reply) return kExitRuntime;
  if (!reply->is_array() || reply->empty()) {
    std::cout << "no policies\n";
    return 0;
  }
  std::printf("%-24s %8s %-9s %-30s %s\n", "NAME", "VERSION", "ROLLOUT", "SELECTOR", "CANARY");
  for (const json& p : *reply) {
    std::printf("%-24s %8s %-9s %-30s %s\n", Text(p, "name").c_str(), Text(p, "version").c_str(),
                Text(p, "rollout").c_str(), Text(p, "selector").c_str(), Text(p, "canary").c_str());
  }
  return 0;
}

int PolicyStatus(const PolicyCli& cli) {
  const auto reply = CallConsole(cli, "policy status", "GET", "/v1/policies/" + cli.name, "", 200);
  if (!reply) return kExitRuntime;
  std::cout << "policy " << Text(*reply, "name") << "\n\nversions (newest first):\n";
  std::printf("  %8s %-9s %-30s %-20s %s\n", "VERSION", "ROLLOUT", "SELECTOR", "CANARY",
              "CREATED_MS");
  if (reply->contains("versions") && (*reply)["versions"].is_array()) {
    for (const json& v : (*reply)["versions"]) {
      std::printf("  %8s %-9s %-30s %-20s %s\n", Text(v, "version").c_str(),
                  Text(v, "rollout").c_str(), Text(v, "selector").c_str(),
                  Text(v, "canary").c_str(), Text(v, "created_ms").c_str());
    }
  }
  std::cout << "\nnodes:\n";
  std::printf("  %-20s %-9s %-8s %-7s %-8s %s\n", "NODE", "CONNECTED", "RELEASED", "APPLIED",
              "STATE", "REASON");
  if (reply->contains("nodes") && (*reply)["nodes"].is_array()) {
    for (const json& n : (*reply)["nodes"]) {
      const bool connected =
          n.contains("connected") && n["connected"].is_boolean() && n["connected"].get<bool>();
      std::string reason = Text(n, "reason");
      const std::string detail = Text(n, "detail");
      if (!detail.empty() && detail != "-") reason += ": " + detail;
      std::printf("  %-20s %-9s %-8s %-7s %-8s %s\n", Text(n, "node").c_str(),
                  connected ? "yes" : "no", Text(n, "released_version").c_str(),
                  Text(n, "applied_version").c_str(), Text(n, "state").c_str(),
                  reason.empty() ? "-" : reason.c_str());
    }
  }
  return 0;
}

// An integer option within [min, max], its default shown in --help.
template <typename T>
void AddBounded(CLI::App& app, const std::string& name, T& value, const std::string& help, T min,
                T max) {
  app.add_option(name, value, help)->capture_default_str()->check(CLI::Range(min, max));
}

// A duration option given as a whole number of `Unit`s within [min, max]; the default shown
// in --help is `value`'s.
template <typename Unit, typename Duration>
void AddDuration(CLI::App& app, const std::string& name, Duration& value, const std::string& help,
                 int64_t min, int64_t max) {
  app.add_option_function<int64_t>(
         name, [&value](int64_t count) { value = Unit(count); }, help)
      ->default_str(std::to_string(std::chrono::duration_cast<Unit>(value).count()))
      ->check(CLI::Range(min, max));
}

// The serving limits of docs/configuration.md ("edge-console"): each option sets the
// ServerOptions or StoreOptions field it names, whose default is the option's default.
void AddLimitOptions(CLI::App& app, edge::console::ServerOptions& server,
                     edge::console::StoreOptions& store) {
  AddDuration<std::chrono::milliseconds>(
      app, "--header-timeout-ms", server.header_timeout,
      "close a connection whose request headers are not complete in this time", 100, 600'000);
  AddBounded(app, "--max-connections", server.max_connections,
             "request connections (policy channels not counted); more are closed at once",
             size_t{1}, size_t{100'000});
  AddBounded(app, "--max-connections-per-address", server.max_connections_per_address,
             "request connections from one client address (IPv6: one /64)", size_t{1},
             size_t{100'000});
  AddBounded(app, "--max-channels", server.max_channels,
             "open policy channels (one per node); more upgrades get 503", size_t{1},
             size_t{1'000'000});
  app.add_option("--auth-failure-limit", server.auth_throttle.max_failures,
                 "failed authentications from one address within the window before it gets "
                 "429 (0: no throttling)")
      ->capture_default_str();
  AddDuration<std::chrono::seconds>(app, "--auth-failure-window-s", server.auth_throttle.window,
                                    "the failed-authentication window, seconds", 1, 86'400);
  // Parsed once, here: a value that is not an address or network is refused at startup.
  app.add_option_function<std::vector<std::string>>(
      "--trusted-proxy",
      [&server](const std::vector<std::string>& values) {
        for (const std::string& value : values) {
          auto range = edge::console::ParseIpRange(value);
          if (!range) {
            throw CLI::ValidationError("--trusted-proxy",
                                       "must be an IP address or network (ADDR/BITS): " + value);
          }
          server.trusted_proxies.push_back(*range);
        }
      },
      "address or network (CIDR) of a reverse proxy in front of the console "
      "(repeatable): not held to --max-connections-per-address; failed "
      "authentication through it counts for the last X-Forwarded-For address");
  app.add_option("--node-quota-bytes", store.node_quota_bytes,
                 "bytes of stored items per node; new items beyond get 429 (0: no quota)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
}

// Every connection is a descriptor: lifts the soft limit to the hard one and warns if the
// connection limits could still run out of descriptors (accept then fails and backs off).
void RaiseDescriptorLimit(const edge::console::ServerOptions& limits, edge::console::Log& log) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  const rlim_t needed = limits.max_connections + limits.max_channels + 64;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
    log.Write(
        edge::console::LogLevel::kWarn, "descriptor limit below --max-connections + --max-channels",
        {{"nofile", static_cast<int64_t>(rl.rlim_cur)}, {"needed", static_cast<int64_t>(needed)}});
  }
}

int Keygen(const std::string& private_path, const std::string& public_path) {
  if (edge::Status s = edge::cloudsync::GenerateKeyPair(private_path, public_path); !s) {
    std::cerr << "edge-console: keygen: " << s.message() << "\n";
    return kExitRuntime;
  }
  std::cout << "wrote private key " << private_path << " (mode 0600, for --signing-key) and "
            << "public key " << public_path << " (for the agents' sync.policy_key)\n";
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "edge-console: reference central console for edge-agent nodes.\n"
      "Without a subcommand it serves (--db and --tokens are required then)."};
  std::string listen = "127.0.0.1:8080";
  std::string db_path;
  std::string tokens_path;
  std::string log_level = "info";
  std::string port_file;
  std::string signing_key_path;
  bool trust_hello_labels = false;
  app.add_option("--listen", listen, "ADDR:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--db", db_path, "SQLite database file (created if missing); required to serve");
  app.add_option("--tokens", tokens_path,
                 "token file: 'NODE TOKEN [LABELS]' per line; required to serve");
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  app.add_option("--signing-key", signing_key_path,
                 "Ed25519 private key (PEM) that signs policy versions; without it policy "
                 "pushes and rollbacks answer 503");
  app.add_flag("--trust-hello-labels", trust_hello_labels,
               "take the labels nodes claim in their policy-channel hello as they are, instead "
               "of only those their token entry binds (insecure: a node could claim another "
               "site's labels and receive its policies)");
  edge::console::ServerOptions server_options;
  server_options.handle_signals = true;
  edge::console::StoreOptions store_options;
  store_options.node_quota_bytes = int64_t{1} << 30;  // the console's default; the store has none
  AddLimitOptions(app, server_options, store_options);
  app.set_version_flag("--version", std::string("edge-console ") + EDGE_CONSOLE_VERSION);

  std::string private_path;
  std::string public_path;
  CLI::App* keygen =
      app.add_subcommand("keygen", "write a new Ed25519 key pair for policy signing");
  keygen->add_option("--private", private_path, "private key file to create (PKCS#8 PEM)")
      ->required();
  keygen->add_option("--public", public_path, "public key file to create (SPKI PEM)")->required();

  PolicyCli cli;
  CLI::App* policy = app.add_subcommand("policy", "manage policies on a running console");
  policy->require_subcommand(1);
  policy->fallthrough();
  policy->add_option("--url", cli.url, "the console's base URL")->capture_default_str();
  policy
      ->add_option("--token-file", cli.token_file,
                   "file with the admin token (or the console's token file)")
      ->required();
  CLI::App* push = policy->add_subcommand("push", "create the next version of a policy");
  push->add_option("FILE", cli.file, "policy file (YAML or JSON)")->required();
  push->add_option("--name", cli.name, "policy name ([A-Za-z0-9_.-]{1,64})")->required();
  push->add_option("--selector", cli.selector, "nodes it is for")->capture_default_str();
  push->add_option("--canary", cli.canary, "release first to the nodes matching this too");
  push->add_option("--canary-wait", cli.canary_wait_s,
                   "seconds after creation before the canary can be promoted")
      ->capture_default_str();
  push->add_flag("--skip-validation", cli.skip_validation,
                 "do not check the body with this console's policy parser");
  CLI::App* status = policy->add_subcommand("status", "versions and per-node state of a policy");
  status->add_option("NAME", cli.name, "policy name")->required();
  CLI::App* list = policy->add_subcommand("list", "every policy with its latest version");
  CLI::App* rollback =
      policy->add_subcommand("rollback", "create a new version with the body of an older one");
  rollback->add_option("NAME", cli.name, "policy name")->required();
  rollback->add_option("--to", cli.to, "the version whose body to restore")->required();

  for (CLI::App* command : {push, status, list, rollback}) {
    command->footer("Also: --url URL (default " + std::string(kDefaultUrl) +
                    ") and --token-file FILE (required), before or after the command.");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitConfig;
  }
  if (keygen->parsed()) return Keygen(private_path, public_path);
  if (push->parsed()) return PolicyPush(cli);
  if (status->parsed()) return PolicyStatus(cli);
  if (list->parsed()) return PolicyList(cli);
  if (rollback->parsed()) return PolicyRollback(cli);
  if (db_path.empty() || tokens_path.empty()) {
    std::cerr << "edge-console: --db and --tokens are required to serve (see --help)\n";
    return kExitConfig;
  }

  edge::console::LogLevel level;
  if (!edge::console::ParseLogLevel(log_level, &level)) {
    std::cerr << "edge-console: --log-level must be debug, info, warn or error\n";
    return kExitConfig;
  }
  const auto listen_address = edge::console::ParseListenAddress(listen);
  if (!listen_address) {
    std::cerr << "edge-console: --listen: " << listen_address.error() << "\n";
    return kExitConfig;
  }
  const auto log = edge::console::MakeJsonStdoutLog(level);

  auto tokens = edge::console::TokenTable::Load(tokens_path);
  if (!tokens) {
    std::cerr << "edge-console: " << tokens.error() << "\n";
    log->Write(edge::console::LogLevel::kError, "bad token file", {{"error", tokens.error()}});
    return kExitConfig;
  }
  if (!tokens->has_admin()) {
    log->Write(edge::console::LogLevel::kWarn, "token file has no admin entry",
               {{"file", tokens_path}});
  }
  for (const std::string& node : tokens->NodesWithShortTokens()) {
    log->Write(edge::console::LogLevel::kWarn, "token shorter than 16 characters",
               {{"node", node}});
  }
  if (trust_hello_labels) {
    log->Write(edge::console::LogLevel::kWarn,
               "--trust-hello-labels: nodes choose their own labels, and so which policies "
               "they receive",
               {});
  } else {
    int64_t unbound = 0;
    for (const std::string& node : tokens->Nodes()) {
      if (tokens->LabelBindingOf(node) == nullptr) ++unbound;
    }
    if (unbound > 0) {
      log->Write(edge::console::LogLevel::kInfo,
                 "nodes without labels in the token file have no labels: only selector 'all' "
                 "matches them",
                 {{"nodes", unbound}});
    }
  }

  RaiseDescriptorLimit(server_options, *log);
  auto store = edge::console::OpenSqliteConsoleStore(db_path, store_options);
  if (!store) {
    std::cerr << "edge-console: " << store.error() << "\n";
    log->Write(edge::console::LogLevel::kError, "cannot open database", {{"error", store.error()}});
    return kExitRuntime;
  }

  std::unique_ptr<edge::cloudsync::SigningKey> signing_key;
  if (!signing_key_path.empty()) {
    auto key = edge::cloudsync::LoadSigningKey(signing_key_path);
    if (!key) {
      std::cerr << "edge-console: --signing-key: " << key.error() << "\n";
      return kExitConfig;
    }
    signing_key = std::move(*key);
  } else {
    log->Write(edge::console::LogLevel::kWarn,
               "no --signing-key: policy pushes and rollbacks answer 503");
  }
  auto policy_store = edge::console::OpenSqlitePolicyStore(db_path);
  if (!policy_store) {
    std::cerr << "edge-console: " << policy_store.error() << "\n";
    return kExitRuntime;
  }

  edge::SystemClock clock;
  edge::console::PolicyService policies(**policy_store, clock, *log, signing_key.get());
  if (edge::Status s = policies.Load(); !s) {
    std::cerr << "edge-console: " << s.message() << "\n";
    return kExitRuntime;
  }
  edge::console::PolicyApi policy_api(*tokens, policies, *log, trust_hello_labels);
  edge::console::ServerMetrics server_metrics;
  edge::console::ConsoleApi api(*tokens, **store, clock, *log, {}, &policy_api, &server_metrics);
  server_options.listen = *listen_address;
  auto server =
      edge::console::CreateServer(server_options, api, *log, &policy_api, &server_metrics);
  if (!server) {
    std::cerr << "edge-console: " << server.error() << "\n";
    log->Write(edge::console::LogLevel::kError, "cannot listen", {{"error", server.error()}});
    return kExitRuntime;
  }
  const uint16_t port = (*server)->port();
  edge::Url listening;
  listening.host = listen_address->host;
  listening.port = port;
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    std::cerr << "edge-console: cannot write port file " << port_file << "\n";
    return kExitRuntime;
  }
  log->Write(edge::console::LogLevel::kInfo, "listening on " + listening.HostPort(),
             {{"addr", listen_address->host},
              {"port", int64_t{port}},
              {"db", db_path},
              {"nodes", static_cast<int64_t>(tokens->Nodes().size())}});

  (*server)->Run();
  server.value().reset();
  policy_store.value().reset();
  store.value().reset();
  log->Write(edge::console::LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "edge-console: fatal: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "edge-console: fatal: unknown exception\n";
  }
  return kExitRuntime;
}
