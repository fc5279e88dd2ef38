// The console API's uploads: POST /v1/batches (ingest of a node's batch, the ack reply) and
// POST /v1/status, with their body decoding.

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api_request.h"
#include "edge/cloudsync/gzip.h"
#include "edge/common/strings.h"
#include "edge/console/api.h"
#include "edge/console/batch.h"
#include "edge/console/codec.h"

namespace edge::console {
namespace {

// More new alerts than this in one batch (a backlog) are logged as one summary line.
constexpr size_t kMaxAlertLinesPerBatch = 16;

using nlohmann::json;

// `text` as a JSON string literal, the bytes nlohmann's dump() writes for it.
void AppendJsonString(std::string& out, std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      // Only ids of an accepted batch get here, which are valid UTF-8; anything else is left
      // to nlohmann's replacement of invalid sequences.
      out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04x", static_cast<unsigned>(c));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// The 200 reply to a stored batch, written directly (it lists every id of the batch):
// {"accepted":N,"acked":[...],"duplicates":M}, as json::dump() wrote it.
HttpResponse AckResponse(const StoreOutcome& outcome) {
  HttpResponse r;
  std::string& body = r.body;
  size_t size = 64;
  for (const std::string& id : outcome.acked) size += id.size() + 3;
  body.reserve(size);
  body += "{\"accepted\":";
  body += std::to_string(outcome.accepted);
  body += ",\"acked\":[";
  for (size_t i = 0; i < outcome.acked.size(); ++i) {
    if (i > 0) body += ',';
    AppendJsonString(body, outcome.acked[i]);
  }
  body += "],\"duplicates\":";
  body += std::to_string(outcome.duplicates);
  body += '}';
  return r;
}

}  // namespace

template <typename T>
std::variant<ConsoleApi::Upload<T>, HttpResponse> ConsoleApi::ReadUpload(
    const HttpRequest& request, std::string_view forbidden, const char* rejected,
    Result<T> (*parse)(std::string_view)) {
  auto auth = Authorize(tokens_, request, /*admin=*/false, forbidden);
  if (auto* refusal = std::get_if<HttpResponse>(&auth)) return std::move(*refusal);
  Principal& principal = std::get<Principal>(auth);

  std::string decoded;
  const std::string* body = nullptr;
  if (auto error = DecodeBody(request, &decoded, &body)) return *error;
  Result<T> parsed = parse(*body);
  if (!parsed) {
    log_.Write(LogLevel::kWarn, rejected,
               {{"node", principal.node}, {"status", int64_t{400}}, {"error", parsed.error()}});
    return ErrorResponse(400, parsed.error());
  }
  return Upload<T>{std::move(principal), std::move(*parsed)};
}

HttpResponse ConsoleApi::PostBatches(const HttpRequest& request) {
  auto upload = ReadUpload(request, "batches need a node token", "batch rejected", &ParseBatch);
  if (auto* refusal = std::get_if<HttpResponse>(&upload)) return std::move(*refusal);
  const auto& [principal, batch] = std::get<Upload<Batch>>(upload);
  if (batch.node != principal.node) {
    log_.Write(LogLevel::kWarn, "batch rejected",
               {{"node", principal.node}, {"status", int64_t{403}}, {"batch_node", batch.node}});
    return ErrorResponse(403, "batch node differs from the token's node");
  }

  Result<StoreOutcome> outcome = store_.StoreBatch(batch, clock_.WallMs());
  if (!outcome) return StoreUnavailable("storing batch failed", outcome.error(), batch.node);
  if (outcome->over_quota) {
    // 429 with Retry-After: the agent keeps the rows and retries after the delay; a 413 or
    // 400 would make it shrink the batch and dead-letter rows that are not at fault.
    log_.Write(LogLevel::kWarn, "batch refused: node storage quota reached",
               {{"node", batch.node}, {"stored_bytes", outcome->node_bytes}});
    HttpResponse r = ErrorResponse(429, "node storage quota reached, retry later");
    r.headers.emplace_back("Retry-After", std::to_string(options_.quota_retry_after_s));
    return r;
  }
  // Live alerts get a line each; a backlog being drained gets one summary line (its
  // alerts still go to the debug log), so logging never dominates a drain.
  const bool live = outcome->new_alert_items.size() <= kMaxAlertLinesPerBatch;
  if (!live) {
    log_.Write(
        LogLevel::kInfo, "alerts stored",
        {{"node", batch.node}, {"alerts", static_cast<int64_t>(outcome->new_alert_items.size())}});
  }
  const LogLevel alert_level = live ? LogLevel::kInfo : LogLevel::kDebug;
  if (log_.Enabled(alert_level)) {
    for (size_t index : outcome->new_alert_items) {
      const BatchItem& item = batch.items[index];
      log_.Write(alert_level, "alert stored",
                 {{"node", batch.node},
                  {"rule", item.alert->rule},
                  {"sensor", item.alert->sensor},
                  {"severity", item.alert->severity},
                  {"state", item.alert->state},
                  {"ts_ms", item.alert->ts_ms},
                  {"id", item.id}});
    }
  }
  log_.Write(
      LogLevel::kDebug, "batch stored",
      {{"node", batch.node}, {"accepted", outcome->accepted}, {"duplicates", outcome->duplicates}});
  const int64_t new_alerts = static_cast<int64_t>(outcome->new_alert_items.size());
  items_["alert|stored"] += new_alerts;
  items_["rollup|stored"] += outcome->new_rollups;
  items_["other|stored"] += outcome->accepted - new_alerts - outcome->new_rollups;
  items_["all|duplicate"] += outcome->duplicates;
  return AckResponse(*outcome);
}

std::optional<HttpResponse> ConsoleApi::DecodeBody(const HttpRequest& request, std::string* decoded,
                                                   const std::string** body) const {
  *body = &request.body;
  const std::string_view encoding = TrimBlanks(request.content_encoding);
  if (IEquals(encoding, "gzip")) {
    Gunzipped g = Gunzip(request.body, options_.max_decompressed_body_bytes);
    if (g.code == GunzipCode::kTooLarge) return ErrorResponse(413, g.error);
    if (g.code != GunzipCode::kOk) return ErrorResponse(400, g.error);
    *decoded = std::move(g.data);
    *body = decoded;
  } else if (IEquals(encoding, cloudsync::kDictEncoding)) {
    bool too_large = false;
    auto plain =
        cloudsync::DictDecompress(request.body, options_.max_decompressed_body_bytes, &too_large);
    if (!plain.ok()) return ErrorResponse(too_large ? 413 : 400, plain.error());
    *decoded = std::move(plain.value());
    *body = decoded;
  } else if (!encoding.empty() && !IEquals(encoding, "identity")) {
    return ErrorResponse(415, "unsupported Content-Encoding (use gzip, edge-zdict or none)");
  }
  if ((*body)->size() > options_.max_decompressed_body_bytes) {
    return ErrorResponse(413, "body too large");
  }
  return std::nullopt;
}

HttpResponse ConsoleApi::PostStatus(const HttpRequest& request) {
  auto upload = ReadUpload(request, "status reports need a node token", "status rejected",
                           &ParseStatusReport);
  if (auto* refusal = std::get_if<HttpResponse>(&upload)) return std::move(*refusal);
  const auto& [principal, report] = std::get<Upload<StatusReport>>(upload);
  if (report.status_json.size() > kMaxStatusBytes) {
    return ErrorResponse(413,
                         "status object larger than " + std::to_string(kMaxStatusBytes) + " bytes");
  }
  if (report.node != principal.node) {
    log_.Write(LogLevel::kWarn, "status rejected",
               {{"node", principal.node}, {"status", int64_t{403}}, {"report_node", report.node}});
    return ErrorResponse(403, "status node differs from the token's node");
  }
  const int64_t now = clock_.WallMs();
  if (Status s = store_.StoreStatus(report.node, now, report.status_json); !s) {
    return StoreUnavailable("storing status failed", s.message(), report.node);
  }
  log_.Write(LogLevel::kDebug, "status stored", {{"node", report.node}});
  return JsonResponse(200, json{{"stored", true}, {"received_ms", now}});
}

}  // namespace edge::console
