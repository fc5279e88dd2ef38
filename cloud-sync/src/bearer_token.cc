#include "bearer_token.h"

#include <spdlog/spdlog.h>

#include "client_common.h"

namespace edge::cloudsync::internal {
namespace {

constexpr int64_t kTokenRefreshMs = 60'000;

}  // namespace

void BearerToken::Refresh(bool force) {
  const int64_t now = clock_.MonotonicMs();
  if (!force && read_ && now - read_ms_ < kTokenRefreshMs) return;
  read_ = true;
  read_ms_ = now;
  auto token = ReadTokenFile(path_);
  if (!token.ok()) {
    spdlog::error("{}: {}; keeping the previous token", who_, token.error());
    return;
  }
  token_ = std::move(token.value());
}

}  // namespace edge::cloudsync::internal
