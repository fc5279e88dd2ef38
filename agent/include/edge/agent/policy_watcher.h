#pragma once

// Hot reload of the local policy file. The watcher polls the file on the network thread
// (an Asio timer, about once a second) and compares its content with the last content it
// judged; polling content rather than waiting for inotify events keeps it right across
// every way a file gets replaced: editors that write in place or rename over it, and
// Kubernetes ConfigMap volumes, which swap a `..data` symlink to a new directory.
//
// A changed file is parsed and validated in full (rules::ParsePolicy). A valid policy is
// handed to `apply` (the pipeline swaps it in between batches, and counts it as applied);
// an invalid one leaves the running policy in place, is logged with its file:line:column
// error and counted in edge_agent_policy_reloads_total{result="rejected"} once per
// distinct content. A file that cannot be read (missing for a moment during a swap) is
// logged once and changes nothing.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "edge/common/metrics.h"
#include "edge/rules/policy.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace edge::agent {

class PolicyWatcher {
 public:
  enum class Outcome { kUnchanged, kApplied, kRejected, kUnreadable };

  // `apply` runs on the network thread and must not block. The file's current content is
  // taken as the running policy's.
  PolicyWatcher(boost::asio::io_context& io, std::string path, Metrics& metrics,
                std::function<void(rules::Policy)> apply, int64_t interval_ms = 1000);
  ~PolicyWatcher();
  PolicyWatcher(const PolicyWatcher&) = delete;
  PolicyWatcher& operator=(const PolicyWatcher&) = delete;

  // Starts the polling timer. Destroy the watcher only after the io_context stopped.
  void Start();

  // Stops polling for good (a console policy took over). Call on the io_context's thread.
  void Stop();

  // One poll, now, on the calling thread (the timer calls this; tests call it directly).
  Outcome PollOnce();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::agent
