#include "edge/agent/policy_watcher.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <utility>

namespace edge::agent {
namespace {

// The whole file, or nothing if it cannot be read or is far too large to be a policy (the
// parser then rejects the first kMaxPolicyBytes + 1 bytes with a clear message).
std::optional<std::string> ReadAll(const std::string& path, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  text.resize(rules::kMaxPolicyBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    *why = "read error";
    return std::nullopt;
  }
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

}  // namespace

struct PolicyWatcher::Impl {
  Impl(boost::asio::io_context& io, std::string p, Metrics& metrics,
       std::function<void(rules::Policy)> a, int64_t interval)
      : timer(io),
        path(std::move(p)),
        apply(std::move(a)),
        interval_ms(interval),
        rejected(metrics.Counter("edge_agent_policy_reloads_total",
                                 "Local policy file reloads, by result (applied or rejected)",
                                 {{"result", "rejected"}})) {}

  void Schedule() {
    timer.expires_after(std::chrono::milliseconds(interval_ms));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped) return;  // cancelled: shutting down, or a console policy took over
      try {
        Poll();
      } catch (const std::exception& e) {
        spdlog::error("policy reload: unexpected error: {}", e.what());
      }
      Schedule();
    });
  }

  Outcome Poll() {
    std::string why;
    std::optional<std::string> text = ReadAll(path, &why);
    if (!text) {
      if (!unreadable_logged) {
        spdlog::warn("policy {}: cannot read ({}); the running policy stays", path, why);
        unreadable_logged = true;
      }
      return Outcome::kUnreadable;
    }
    unreadable_logged = false;
    if (*text == last_text) return Outcome::kUnchanged;
    last_text = std::move(*text);
    auto parsed = rules::ParsePolicy(last_text, path);
    if (!parsed.ok()) {
      rejected.Inc();
      spdlog::error("policy reload rejected, the running policy stays: {}", parsed.error());
      return Outcome::kRejected;
    }
    spdlog::info("policy {} changed: version '{}', {} rule(s), {} filter(s); applying", path,
                 parsed->version, parsed->rules.size(), parsed->filters.size());
    apply(std::move(*parsed));
    return Outcome::kApplied;
  }

  boost::asio::steady_timer timer;
  std::string path;
  std::function<void(rules::Policy)> apply;
  int64_t interval_ms;
  CounterHandle& rejected;
  std::string last_text;  // content last judged, applied or rejected
  bool unreadable_logged = false;
  bool stopped = false;
};

PolicyWatcher::PolicyWatcher(boost::asio::io_context& io, std::string path, Metrics& metrics,
                             std::function<void(rules::Policy)> apply, int64_t interval_ms)
    : impl_(std::make_unique<Impl>(io, std::move(path), metrics, std::move(apply), interval_ms)) {
  std::string why;
  if (auto text = ReadAll(impl_->path, &why)) impl_->last_text = std::move(*text);
}

PolicyWatcher::~PolicyWatcher() = default;

void PolicyWatcher::Start() { impl_->Schedule(); }

void PolicyWatcher::Stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

PolicyWatcher::Outcome PolicyWatcher::PollOnce() { return impl_->Poll(); }

}  // namespace edge::agent
