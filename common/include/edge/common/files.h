#pragma once

// Reading a whole small file into memory, bounded.

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "edge/common/status.h"

namespace edge {

// For ReadFile's `max_bytes` when the caller sets no bound (a local file the operator named).
inline constexpr size_t kNoFileSizeLimit = static_cast<size_t>(-1);

// The contents of the file at `path`, at most `max_bytes` long. Failure messages leave out the
// path, so that callers word their own: "cannot open: <strerror>" (kNotFound when the file does
// not exist, else kIOError), "cannot read: <strerror>" (kIOError; a directory fails here) and
// "larger than N bytes" (kFull).
inline Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    const int err = errno;
    return Status::WithCode(err == ENOENT ? Status::Code::kNotFound : Status::Code::kIOError,
                            std::string("cannot open: ") + std::strerror(err));
  }
  std::string out;
  char buffer[16384];
  while (true) {
    const size_t n = std::fread(buffer, 1, sizeof(buffer), file.get());
    if (n > max_bytes - out.size()) {
      return Status::Full("larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buffer, n);
    if (n < sizeof(buffer)) {
      if (std::ferror(file.get())) {
        return Status::IOError(std::string("cannot read: ") +
                               (errno != 0 ? std::strerror(errno) : "I/O error"));
      }
      return out;
    }
  }
}

}  // namespace edge
