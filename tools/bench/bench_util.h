#pragma once

// Helpers shared by the benchmarks in tools/bench.

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace edge::bench {

// A fresh private directory under the system temp dir, removed with its contents on
// destruction (a database file per benchmark run).
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "edge-bench-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of `name` in the directory.
  std::string File(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

}  // namespace edge::bench
