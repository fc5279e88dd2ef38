#pragma once

// Compression of request bodies over zlib. Pure; thread-safe.
//
// Two encodings:
// - gzip (RFC 1952), `Content-Encoding: gzip`;
// - zlib (RFC 1950) with a preset dictionary, `Content-Encoding: edge-zdict`. The
//   dictionary holds the JSON that every batch and status body repeats (keys, kinds,
//   states, the leading digits of millisecond timestamps), so a batch of one alert, which
//   gzip can barely shrink, compresses against it from its first byte. The zlib header
//   names the dictionary by its Adler-32: a decoder with another dictionary refuses the
//   body instead of producing garbage. docs/protocol.md, "Compression".

#include <cstddef>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::cloudsync {

inline constexpr std::string_view kDictEncoding = "edge-zdict";

// The preset dictionary of `edge-zdict`. Changing one byte changes its Adler-32, and every
// console must then know the new one: append a new dictionary, never edit this one. zlib
// finds matches best near the end, so the most frequent strings come last.
inline constexpr std::string_view kWireDictionary =
    R"({"node":"","sent_ms":1764,"status":{"agent_version":"0.1.0","policy_version":"",)"
    R"("policy_rules":0,"started_ms":1764,"uptime_s":0,"mqtt_connected":true,)"
    R"("store_epoch":"","db_bytes":0,"max_bytes":268435456,"backlog_bytes":0,)"
    R"("backlog":{"alert":0,"rollup":0,"status":0},"evicted":{"alert":0,"rollup":0,"status":0},)"
    R"("dead_lettered":{"alert":0,"rollup":0,"status":0},)"
    R"("drops":{"queue_full":0,"rejected":0,"alerts":0},"labels":{}}})"
    R"({"node":"","sent_ms":1764,"items":[{"id":"","kind":"rollup","created_ms":1764,)"
    R"("payload":{"sensor":"","start_ms":1764,"end_ms":1764,"count":60,"min":,"max":,)"
    R"("mean":,"last":}},{"id":"","kind":"rollup","created_ms":1764,"payload":{"sensor":")"
    R"(sensors/","start_ms":1764,"end_ms":1764,"count":60,"min":0.,"max":0.,"mean":0.,)"
    R"("last":0.}}]})"
    R"({"node":"","sent_ms":1764,"items":[{"id":"","kind":"alert","created_ms":1764,)"
    R"("payload":{"rule":"","sensor":"","severity":"info","state":"resolved","value":,)"
    R"("ts_ms":1764,"started_ms":1764}},{"id":"","kind":"alert","created_ms":1764,)"
    R"("payload":{"rule":"","sensor":"","severity":"warning","state":"firing","value":,)"
    R"("ts_ms":1764,"started_ms":1764,"context":[[1764,],[1764,]]}},)"
    R"({"id":"","kind":"alert","created_ms":1764,"payload":{"rule":"","sensor":"sensors/",)"
    R"("severity":"critical","state":"firing","value":0.,"ts_ms":1764,"started_ms":1764,)"
    R"("context":[[1764,0.],[1764,0.],[1764,0.]]}}]})";

// level: 0 (store) .. 9 (best); -1 is zlib's default (6).
Result<std::string> GzipCompress(std::string_view data, int level = -1);

// Fails on corrupt or truncated input, trailing garbage, or output above max_output bytes
// (a bound against decompression bombs; `*too_large` is then set when given).
Result<std::string> GzipDecompress(std::string_view data, size_t max_output,
                                   bool* too_large = nullptr);

// `edge-zdict`: zlib format with kWireDictionary preset. Same contract as the gzip pair;
// a stream that names another dictionary, or none, is refused.
Result<std::string> DictCompress(std::string_view data, int level = -1);
Result<std::string> DictDecompress(std::string_view data, size_t max_output,
                                   bool* too_large = nullptr);

}  // namespace edge::cloudsync
