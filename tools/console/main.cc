// edge-console: wiring only. See docs/protocol.md for the API it serves.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "edge/common/clock.h"
#include "edge/console/api.h"
#include "edge/console/log.h"
#include "edge/console/server.h"
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

int Main(int argc, char** argv) {
  CLI::App app{"edge-console: reference central console for edge-agent nodes"};
  std::string listen = "127.0.0.1:8080";
  std::string db_path;
  std::string tokens_path;
  std::string log_level = "info";
  std::string port_file;
  app.add_option("--listen", listen, "ADDR:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--db", db_path, "SQLite database file (created if missing)")->required();
  app.add_option("--tokens", tokens_path, "token file: 'NODE TOKEN' per line")->required();
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  app.set_version_flag("--version", std::string("edge-console ") + EDGE_CONSOLE_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitConfig;
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

  auto store = edge::console::OpenSqliteConsoleStore(db_path);
  if (!store) {
    std::cerr << "edge-console: " << store.error() << "\n";
    log->Write(edge::console::LogLevel::kError, "cannot open database", {{"error", store.error()}});
    return kExitRuntime;
  }

  edge::SystemClock clock;
  edge::console::ConsoleApi api(*tokens, **store, clock, *log);
  edge::console::ServerOptions options;
  options.listen = *listen_address;
  options.handle_signals = true;
  auto server = edge::console::CreateServer(options, api, *log);
  if (!server) {
    std::cerr << "edge-console: " << server.error() << "\n";
    log->Write(edge::console::LogLevel::kError, "cannot listen", {{"error", server.error()}});
    return kExitRuntime;
  }
  const uint16_t port = (*server)->port();
  const std::string host = listen_address->host.find(':') != std::string::npos
                               ? "[" + listen_address->host + "]"
                               : listen_address->host;
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    std::cerr << "edge-console: cannot write port file " << port_file << "\n";
    return kExitRuntime;
  }
  log->Write(edge::console::LogLevel::kInfo, "listening on " + host + ":" + std::to_string(port),
             {{"addr", listen_address->host},
              {"port", int64_t{port}},
              {"db", db_path},
              {"nodes", static_cast<int64_t>(tokens->Nodes().size())}});

  (*server)->Run();
  server.value().reset();
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
