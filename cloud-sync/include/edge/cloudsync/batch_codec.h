#pragma once

// Wire format of POST /v1/batches and POST /v1/status (docs/protocol.md): the request body
// encoders and the parsers of the replies. Pure; never throws on any input.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edge/cloudsync/uplink.h"
#include "edge/common/status.h"

namespace edge::cloudsync {

struct EncodedBatch {
  std::string body;  // UTF-8 JSON; invalid UTF-8 in strings is replaced with U+FFFD
  // Items whose payload_json was not valid JSON; they are embedded as a JSON string so
  // that one bad row cannot make the whole batch malformed.
  size_t invalid_payloads = 0;
};

// {"node":..,"sent_ms":..,"items":[{"id","kind","created_ms","payload"}]}, payload embedded
// as a JSON value.
EncodedBatch EncodeBatchBody(std::string_view node_id, int64_t sent_ms,
                             const std::vector<OutboxItem>& items);

// Parses a 200 reply {"acked":["id",...],...}. The reply must be an object whose "acked"
// is an array of strings; anything else is an error (the batch is then retried).
Result<std::vector<std::string>> ParseAckResponse(std::string_view body);

// Sequence numbers of the items whose ids are in acked_ids, in item order. Unknown ids are
// ignored; an id listed twice yields its seq once.
std::vector<int64_t> AckedSeqs(const std::vector<OutboxItem>& items,
                               const std::vector<std::string>& acked_ids);

// {"node":..,"sent_ms":..,"status":{..}} with status_json embedded as a JSON value. An
// error when status_json is not a JSON object.
Result<std::string> EncodeStatusBody(std::string_view node_id, int64_t sent_ms,
                                     std::string_view status_json);

// True when an error reply has the protocol's shape, a JSON object with a string "error":
// the console itself judged the request (not a proxy or load balancer in front of it).
bool IsProtocolErrorReply(std::string_view body);

}  // namespace edge::cloudsync
