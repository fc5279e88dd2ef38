#include "edge/cloudsync/batch_codec.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "edge/wire/fields.h"

namespace edge::cloudsync {

namespace {

// A JSON string literal of `text`; invalid UTF-8 is replaced, never thrown on.
void AppendJsonString(std::string& out, std::string_view text) {
  // Ids and kinds are printable ASCII: quoted as they are, without a JSON value's
  // allocations. Anything else goes through the library's escaping.
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out.append(text);
    out += '"';
    return;
  }
  out += nlohmann::json(std::string(text))
             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// `"key":`, after a comma unless the member opens its object.
void AppendKey(std::string& out, const char* key, bool first = false) {
  if (!first) out += ',';
  out += '"';
  out += key;
  out += "\":";
}

}  // namespace

EncodedBatch EncodeBatchBody(std::string_view node_id, int64_t sent_ms,
                             const std::vector<OutboxItem>& items) {
  // Built as text: each payload is validated by the SAX lexer (no DOM) and embedded as it
  // is stored, which is what makes draining a backlog cheap.
  EncodedBatch out;
  size_t reserve = 64 + node_id.size();
  for (const OutboxItem& item : items) reserve += item.payload_json.size() + item.id.size() + 64;
  std::string& body = out.body;
  body.reserve(reserve);
  body += '{';
  AppendKey(body, wire::kNode, /*first=*/true);
  AppendJsonString(body, node_id);
  AppendKey(body, wire::kSentMs);
  body += std::to_string(sent_ms);
  AppendKey(body, wire::kItems);
  body += '[';
  bool first = true;
  for (const OutboxItem& item : items) {
    if (!first) body += ',';
    first = false;
    body += '{';
    AppendKey(body, wire::item::kId, /*first=*/true);
    AppendJsonString(body, item.id);
    AppendKey(body, wire::item::kKind);
    AppendJsonString(body, item.kind);
    AppendKey(body, wire::item::kCreatedMs);
    body += std::to_string(item.created_ms);
    AppendKey(body, wire::item::kPayload);
    if (nlohmann::json::accept(item.payload_json)) {
      // Trim surrounding whitespace the lexer allowed, keeping the body compact.
      std::string_view p = item.payload_json;
      while (!p.empty() &&
             (p.front() == ' ' || p.front() == '\n' || p.front() == '\t' || p.front() == '\r')) {
        p.remove_prefix(1);
      }
      while (!p.empty() &&
             (p.back() == ' ' || p.back() == '\n' || p.back() == '\t' || p.back() == '\r')) {
        p.remove_suffix(1);
      }
      body.append(p);
    } else {
      ++out.invalid_payloads;
      AppendJsonString(body, item.payload_json);
    }
    body += '}';
  }
  body += "]}";
  return out;
}

Result<std::vector<std::string>> ParseAckResponse(std::string_view body) {
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) return Status::Error("ack reply is not valid JSON");
  if (!doc.is_object()) return Status::Error("ack reply is not a JSON object");
  const auto it = doc.find("acked");
  if (it == doc.end()) return Status::Error("ack reply has no 'acked' field");
  if (!it->is_array()) return Status::Error("ack reply 'acked' is not an array");
  std::vector<std::string> ids;
  ids.reserve(it->size());
  for (const nlohmann::json& id : *it) {
    if (!id.is_string()) return Status::Error("ack reply 'acked' holds a non-string");
    ids.push_back(id.get<std::string>());
  }
  return ids;
}

std::vector<int64_t> AckedSeqs(const std::vector<OutboxItem>& items,
                               const std::vector<std::string>& acked_ids) {
  const std::unordered_set<std::string_view> acked(acked_ids.begin(), acked_ids.end());
  std::unordered_set<int64_t> seen;
  std::vector<int64_t> seqs;
  for (const OutboxItem& item : items) {
    if (acked.contains(item.id) && seen.insert(item.seq).second) seqs.push_back(item.seq);
  }
  return seqs;
}

Result<std::string> EncodeStatusBody(std::string_view node_id, int64_t sent_ms,
                                     std::string_view status_json) {
  nlohmann::json status = nlohmann::json::parse(status_json, nullptr, false);
  if (status.is_discarded()) return Status::Error("status is not valid JSON");
  if (!status.is_object()) return Status::Error("status is not a JSON object");
  nlohmann::json doc = {{wire::kNode, std::string(node_id)},
                        {wire::kSentMs, sent_ms},
                        {wire::kStatus, std::move(status)}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool IsProtocolErrorReply(std::string_view body) {
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  const auto it = doc.find("error");
  return it != doc.end() && it->is_string();
}

}  // namespace edge::cloudsync
