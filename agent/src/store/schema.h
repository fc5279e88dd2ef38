#pragma once

// The store's schema: creating and upgrading it, and opening connections configured for it
// (WAL, busy timeout, page bound). Internal to the store.

#include <sqlite3.h>

#include <string>

#include "edge/agent/store.h"
#include "edge/common/status.h"

namespace edge::agent::store_impl {

// The logical cost of an outbox or dead-letter row, as SQL: its payload and kind bytes plus
// kOutboxRowOverhead (48); the schema's triggers and the eviction code use the same
// expression.
#define EDGE_ROW_COST(r) \
  "(length(CAST(" r ".payload AS BLOB)) + length(CAST(" r ".kind AS BLOB)) + 48)"
static_assert(kOutboxRowOverhead == 48);

inline constexpr const char* kSelectEvictable =
    "SELECT seq, kind, " EDGE_ROW_COST("outbox") " FROM outbox WHERE priority = ? ORDER BY seq";

inline constexpr const char* kSelectDeadLetterOldest =
    "SELECT seq, " EDGE_ROW_COST("dead_letter") " FROM dead_letter ORDER BY dead_ms, seq";

// Opens a connection to options.path and configures it (busy timeout, WAL, synchronous=FULL,
// checkpoint thresholds, max_page_count). `create`: the file may be created.
Result<sqlite3*> OpenConnection(const StoreOptions& options, bool create);

// Opens and fully initializes the writer's connection (quick_check, schema created or
// upgraded in one transaction) and returns it with the store epoch; any failure here means
// the file is unusable as our database.
Result<sqlite3*> OpenAndInit(const StoreOptions& options, std::string* epoch);

}  // namespace edge::agent::store_impl
