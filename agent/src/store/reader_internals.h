#pragma once

// SqliteStoreReader, the StoreReader (store.h) that StoreReader::Open returns; its methods are
// in reader.cc, outbox.cc and console_policy.cc. Internal to the store; used by the
// reader's thread only.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/agent/store.h"

namespace edge::agent {

class SqliteStoreReader final : public StoreReader {
 public:
  // Takes `db`, an open connection (closed by the destructor).
  SqliteStoreReader(sqlite3* db, std::string epoch, StoreOptions options);
  ~SqliteStoreReader() override;

  const std::string& epoch() const override { return epoch_; }
  Result<std::vector<OutboxRow>> Fetch(size_t max_items, size_t max_bytes) override;
  Result<int64_t> Delete(const std::vector<int64_t>& seqs) override;
  Result<int64_t> DeadLetter(const std::vector<int64_t>& seqs, std::string_view reason) override;
  Result<int64_t> OutboxCount() override;
  Result<std::vector<StoredReading>> Readings(std::string_view sensor, int64_t since_ms,
                                              int64_t until_ms, size_t limit) override;
  Result<std::vector<std::string>> Sensors() override;
  Result<StoreStats> Stats() override;
  Result<std::optional<StoredConsolePolicy>> LoadConsolePolicy() override;
  Status SaveConsolePolicy(const StoredConsolePolicy& policy) override;

 private:
  sqlite3* db_;
  std::string epoch_;
  StoreOptions options_;
};

}  // namespace edge::agent
