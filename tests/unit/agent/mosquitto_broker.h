#pragma once
// A private mosquitto for the native client's tests, started and stopped for real on a port
// chosen at run time, and publishing through mosquitto_pub.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "../wait_for.h"
#include "test_util.h"

extern char** environ;

namespace edge::agent::testbroker {

using Ms = std::chrono::milliseconds;

inline std::string FindProgram(const std::vector<std::string>& candidates) {
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

inline const std::string& MosquittoBin() {
  static const std::string bin = FindProgram({"/usr/sbin/mosquitto", "/usr/bin/mosquitto"});
  return bin;
}

inline const std::string& MosquittoPubBin() {
  static const std::string bin = FindProgram({"/usr/bin/mosquitto_pub"});
  return bin;
}

inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline bool PortOpen(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Polls `done` until it holds or `timeout` (10 s unless given) passes.
inline bool WaitFor(const std::function<bool()>& done, Ms timeout = Ms(10'000)) {
  return edge::testutil::PollUntil(done, timeout);
}

// Runs a program with stdout and stderr appended to `log`; returns its pid.
inline pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

inline int RunProgram(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = Spawn(argv, log);
  if (pid < 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A private mosquitto on 127.0.0.1, started and killed for real.
class Broker {
 public:
  // Without "persistence true" in `extra_config` sessions live only as long as the process.
  // The in-flight window is unlimited unless `extra_config` sets max_inflight_messages.
  Broker(const testing::TempDir& dir, std::vector<std::string> extra_config = {})
      : port_(FreePort()), dir_(dir) {
    conf_ = dir.File("mosquitto-" + std::to_string(port_) + ".conf");
    std::ofstream f(conf_);
    auto set = [&](const std::string& key) {
      for (const std::string& line : extra_config) {
        if (line.starts_with(key + " ")) return false;
      }
      return true;
    };
    f << "listener " << port_ << " 127.0.0.1\n"
      << "allow_anonymous true\nlog_dest stderr\nmax_queued_messages 0\n";
    if (set("persistence")) f << "persistence false\n";
    if (set("max_inflight_messages")) f << "max_inflight_messages 0\n";
    if (geteuid() == 0) f << "user root\n";
    for (const std::string& line : extra_config) f << line << "\n";
  }
  ~Broker() { Kill(); }

  bool Start() {
    pid_ = Spawn({MosquittoBin(), "-c", conf_}, dir_.File("mosquitto.log"));
    return pid_ > 0 && WaitFor([this] { return PortOpen(port_); });
  }
  void Kill() { Signal(SIGKILL); }
  // SIGTERM: a broker with persistence saves its sessions before it exits.
  void Stop() { Signal(SIGTERM); }
  int port() const { return port_; }

 private:
  void Signal(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port_;
  const testing::TempDir& dir_;
  std::string conf_;
  pid_t pid_ = -1;
};

// Publishes each line of `lines` as one message (mosquitto_pub -l).
inline bool PublishLines(int port, const std::string& topic, int qos,
                         const std::vector<std::string>& lines, const testing::TempDir& dir) {
  const std::string input = dir.File("lines.txt");
  std::ofstream(input) << [&] {
    std::string all;
    for (const std::string& l : lines) all += l + "\n";
    return all;
  }();
  const std::string cmd = MosquittoPubBin() + " -h 127.0.0.1 -p " + std::to_string(port) + " -q " +
                          std::to_string(qos) + " -t '" + topic + "' -l < " + input;
  return std::system(cmd.c_str()) == 0;
}

inline std::vector<std::string> Numbered(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

}  // namespace edge::agent::testbroker
