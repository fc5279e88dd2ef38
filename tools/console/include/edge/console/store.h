#pragma once

// The console's durable store. Stored items are never changed or deleted by the console;
// a node's status is replaced by each newer report.
//
// Not thread-safe: one owner (the console's event-loop thread) calls it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edge/common/status.h"
#include "edge/console/batch.h"

namespace edge::console {

struct StoreOutcome {
  int64_t accepted = 0;    // items stored by this call
  int64_t duplicates = 0;  // items whose id was already held (also repeats inside the batch)
  std::vector<std::string> acked;       // every distinct id of the batch, in batch order
  std::vector<size_t> new_alert_items;  // indexes into Batch::items of newly stored alerts
  int64_t new_rollups = 0;              // rollups stored by this call
  // Set when storing the batch's new items would take the node past its storage quota
  // (StoreOptions::node_quota_bytes); nothing was stored then and the other fields are empty.
  bool over_quota = false;
  int64_t node_bytes = 0;  // bytes held for the node after this call (see StoreOptions)
};

// The filters every list query takes (GET /v1/alerts, /v1/rollups; one reader of the
// query string fills them).
struct ListQuery {
  std::optional<std::string> node;
  std::optional<int64_t> since_ms;  // the kind's own time (see below) >= since_ms
  int64_t limit = 1000;
};

// What every stored item has, whatever its kind.
struct StoredItem {
  std::string id;
  int64_t received_ms = 0;
  std::string node;
};

struct AlertQuery : ListQuery {};  // since_ms: ts_ms

struct StoredAlert : StoredItem {
  AlertFields fields;
  std::string payload_json;
};

struct RollupQuery : ListQuery {  // since_ms: start_ms
  std::optional<std::string> sensor;
};

struct StoredRollup : StoredItem {
  RollupFields fields;
};

struct NodeActivity {
  std::string node;
  std::optional<int64_t> last_seen_ms;  // last accepted batch or status; nullopt if never
  int64_t alerts = 0;                   // alert events held for the node
  std::optional<int64_t> status_ms;     // when the latest status arrived (console clock)
  std::string status_json;              // the latest status object; empty if none
};

class ConsoleStore {
 public:
  virtual ~ConsoleStore() = default;

  // Stores the batch's items in one transaction, skipping ids already held, and records
  // `received_ms` as the node's last_seen_ms. On failure nothing is stored: the caller must
  // not acknowledge anything.
  virtual Result<StoreOutcome> StoreBatch(const Batch& batch, int64_t received_ms) = 0;

  // Alerts matching `query`, oldest first (by ts_ms, then id).
  virtual Result<std::vector<StoredAlert>> Alerts(const AlertQuery& query) = 0;

  // The `limit` alerts with the greatest ts_ms, newest first.
  virtual Result<std::vector<StoredAlert>> LatestAlerts(int64_t limit) = 0;

  // Rollups matching `query`, oldest first (by start_ms, then id).
  virtual Result<std::vector<StoredRollup>> Rollups(const RollupQuery& query) = 0;

  // Replaces the node's latest status with `status_json` (a JSON object) and records
  // `received_ms` as its status_ms and last_seen_ms. Durable when it returns OK.
  virtual Status StoreStatus(const std::string& node, int64_t received_ms,
                             const std::string& status_json) = 0;

  // Every node that has sent a batch or a status or has alerts, sorted by node.
  virtual Result<std::vector<NodeActivity>> Activity() = 0;
};

struct StoreOptions {
  // Per-node storage quota: the bytes of every item held for a node (its id, kind and
  // payload JSON as sent, summed over the node's alerts, rollups and other items) may not
  // exceed this. A batch whose new items would take the node past it is not stored at all
  // (StoreOutcome::over_quota); a batch of only duplicates is still acknowledged. 0: no quota.
  int64_t node_quota_bytes = 0;
};

// The bytes an item counts against its node's quota.
int64_t QuotaBytes(const BatchItem& item);

// Opens (creating if needed) an SQLite database at `path` in WAL mode with
// synchronous=FULL, so that a committed batch survives power loss before it is acked.
Result<std::unique_ptr<ConsoleStore>> OpenSqliteConsoleStore(const std::string& path,
                                                             StoreOptions options = {});

}  // namespace edge::console
