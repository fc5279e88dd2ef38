#include "edge/cloudsync/batch_codec.h"

#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

namespace edge::cloudsync {

EncodedBatch EncodeBatchBody(std::string_view node_id, int64_t sent_ms,
                             const std::vector<OutboxItem>& items) {
  EncodedBatch out;
  nlohmann::json array = nlohmann::json::array();
  for (const OutboxItem& item : items) {
    // Non-throwing parse: a discarded value means the payload is not valid JSON.
    nlohmann::json payload = nlohmann::json::parse(item.payload_json, nullptr, false);
    if (payload.is_discarded()) {
      ++out.invalid_payloads;
      payload = item.payload_json;
    }
    array.push_back({{"id", item.id},
                     {"kind", item.kind},
                     {"created_ms", item.created_ms},
                     {"payload", std::move(payload)}});
  }
  nlohmann::json doc = {
      {"node", std::string(node_id)}, {"sent_ms", sent_ms}, {"items", std::move(array)}};
  // Replacing invalid UTF-8 keeps dump() from throwing on a bad id or node name.
  out.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
  nlohmann::json doc = {
      {"node", std::string(node_id)}, {"sent_ms", sent_ms}, {"status", std::move(status)}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool IsProtocolErrorReply(std::string_view body) {
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  const auto it = doc.find("error");
  return it != doc.end() && it->is_string();
}

}  // namespace edge::cloudsync
