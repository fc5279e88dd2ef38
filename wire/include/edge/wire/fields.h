#pragma once

// Field names of the upload wire format (docs/protocol.md, "Upload a batch" and "Status
// heartbeat"). The agent and cloud-sync write these names and the console reads them: a
// change here is a protocol change and needs docs/protocol.md updated with it.

namespace edge::wire {

// The envelope of POST /v1/batches and POST /v1/status.
inline constexpr char kNode[] = "node";
inline constexpr char kSentMs[] = "sent_ms";
inline constexpr char kItems[] = "items";    // batches: the array of items
inline constexpr char kStatus[] = "status";  // status heartbeats: the status object

// One item of a batch.
namespace item {
inline constexpr char kId[] = "id";
inline constexpr char kKind[] = "kind";
inline constexpr char kCreatedMs[] = "created_ms";
inline constexpr char kPayload[] = "payload";
}  // namespace item

// Item kinds whose payloads the console reads.
inline constexpr char kAlertKind[] = "alert";
inline constexpr char kRollupKind[] = "rollup";

// An alert payload. "node", where present, must equal the batch's.
namespace alert {
inline constexpr char kRule[] = "rule";
inline constexpr char kSensor[] = "sensor";
inline constexpr char kSeverity[] = "severity";
inline constexpr char kState[] = "state";  // "firing" or "resolved"
inline constexpr char kValue[] = "value";
inline constexpr char kTsMs[] = "ts_ms";
inline constexpr char kStartedMs[] = "started_ms";
inline constexpr char kContext[] = "context";  // [[ts_ms, value], ...], firing only
}  // namespace alert

// A rollup payload: one sensor's readings over [start_ms, end_ms).
namespace rollup {
inline constexpr char kSensor[] = "sensor";
inline constexpr char kStartMs[] = "start_ms";
inline constexpr char kEndMs[] = "end_ms";
inline constexpr char kCount[] = "count";
inline constexpr char kMin[] = "min";
inline constexpr char kMax[] = "max";
inline constexpr char kMean[] = "mean";
inline constexpr char kLast[] = "last";
}  // namespace rollup

}  // namespace edge::wire
