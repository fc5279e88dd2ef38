#pragma once

// The node's bearer token as a console client holds it: read from the token file
// (ReadTokenFile's rules) at most once a minute, and again at once after a 401. A file
// that cannot be read keeps the previous token. Private to cloud-sync/src.
//
// Threading: not thread-safe; each client uses its own on its io_context thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "edge/common/clock.h"

namespace edge::cloudsync::internal {

class BearerToken {
 public:
  // `who` prefixes log lines ("uplink"); the Clock must outlive this object.
  BearerToken(std::string path, std::string_view who, Clock& clock)
      : path_(std::move(path)), who_(who), clock_(clock) {}

  // Reads the file when the token is older than a minute, or always when `force`.
  void Refresh(bool force);

  // "Bearer <token>", or "" while no token was ever read.
  std::string Authorization() const { return token_.empty() ? std::string() : "Bearer " + token_; }

 private:
  const std::string path_;
  const std::string who_;
  Clock& clock_;
  std::string token_;
  bool read_ = false;
  int64_t read_ms_ = 0;  // monotonic time of the last read
};

}  // namespace edge::cloudsync::internal
