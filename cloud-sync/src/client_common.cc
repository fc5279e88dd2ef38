#include "client_common.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "edge/common/files.h"
#include "edge/common/strings.h"

namespace edge::cloudsync::internal {
namespace {

constexpr size_t kMaxTokenFileBytes = 64 << 10;
constexpr size_t kLogSnippetBytes = 200;

}  // namespace

Result<std::string> ReadTokenFile(const std::string& path) {
  Result<std::string> text = ReadFile(path, kMaxTokenFileBytes);
  if (!text.ok()) {
    if (text.status().code() == Status::Code::kFull) {
      return Status::Error("token file '" + path + "' is larger than 64 KiB");
    }
    return Status::WithCode(text.status().code(), "token file '" + path + "': " + text.error());
  }
  std::string token(Trim(*text));
  if (token.empty()) return Status::Error("token file '" + path + "' is empty");
  if (std::any_of(token.begin(), token.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    return Status::Error("token file '" + path + "' holds control characters or several lines");
  }
  return token;
}

std::optional<ConsoleUrl> ParseUrlOrLog(const std::string& text, std::string_view who) {
  auto url = ParseConsoleUrl(text);
  if (url.ok()) return std::move(url.value());
  spdlog::error("{}: {}", who, url.error());
  return std::nullopt;
}

void LogException(std::string_view who, std::string_view what, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{}: {}: {}", who, what, ex.what());
  } catch (...) {
    spdlog::error("{}: {}: unknown exception", who, what);
  }
}

void RunStopCallbacks(std::vector<std::function<void()>>& callbacks, std::string_view who) {
  std::vector<std::function<void()>> running;
  running.swap(callbacks);
  for (auto& cb : running) {
    try {
      cb();
    } catch (...) {
      LogException(who, "stop callback threw", std::current_exception());
    }
  }
}

std::string Snippet(std::string_view body) { return PrintableExcerpt(body, kLogSnippetBytes); }

std::chrono::milliseconds Remaining(SteadyTime deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

Result<ConsoleUrl> CheckConsoleLink(const std::string& console_url, const TlsFiles& tls) {
  auto url = ParseConsoleUrl(console_url);
  if (!url.ok()) return url.status();
  if (url->tls) {
    if (auto ctx = MakeTlsContext(tls); !ctx.ok()) return ctx.status();
  }
  return url;
}

}  // namespace edge::cloudsync::internal
