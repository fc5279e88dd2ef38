#include "edge/agent/mqtt_codec.h"

#include <algorithm>

namespace edge::agent::mqtt {
namespace {

constexpr size_t kMaxStringBytes = 65'535;
// Past this the parser gives its buffer back after a large packet instead of keeping it.
constexpr size_t kKeepPartialCapacity = 64 * 1024;

uint8_t FirstByte(PacketType type, uint8_t flags) {
  return static_cast<uint8_t>((static_cast<uint8_t>(type) << 4) | (flags & 0x0f));
}

void PutU16(uint16_t v, std::string& out) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void PutString(std::string_view s, std::string& out) {
  PutU16(static_cast<uint16_t>(s.size()), out);
  out.append(s);
}

uint16_t GetU16(std::string_view bytes, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(bytes[at]) << 8) |
                               static_cast<uint8_t>(bytes[at + 1]));
}

void EncodeIdOnly(PacketType type, uint16_t packet_id, std::string& out) {
  out.push_back(static_cast<char>(FirstByte(type, 0)));
  out.push_back(2);
  PutU16(packet_id, out);
}

std::string_view TypeName(unsigned type) {
  static constexpr std::string_view kNames[] = {
      "reserved(0)", "CONNECT",  "CONNACK",    "PUBLISH",     "PUBACK",      "PUBREC",
      "PUBREL",      "PUBCOMP",  "SUBSCRIBE",  "SUBACK",      "UNSUBSCRIBE", "UNSUBACK",
      "PINGREQ",     "PINGRESP", "DISCONNECT", "reserved(15)"};
  return type < 16 ? kNames[type] : "unknown";
}

}  // namespace

void EncodeRemainingLength(size_t value, std::string& out) {
  do {
    uint8_t digit = static_cast<uint8_t>(value % 128);
    value /= 128;
    if (value > 0) digit |= 0x80;
    out.push_back(static_cast<char>(digit));
  } while (value > 0);
}

Status EncodeConnect(const ConnectOptions& options, std::string& out) {
  if (options.client_id.size() > kMaxStringBytes || options.username.size() > kMaxStringBytes ||
      options.password.size() > kMaxStringBytes) {
    return Status::Error("CONNECT: a string is longer than 65535 bytes");
  }
  if (!options.password.empty() && options.username.empty()) {
    return Status::Error("CONNECT: a password needs a user name in MQTT 3.1.1");
  }
  uint8_t connect_flags = options.clean_session ? 0x02 : 0x00;
  size_t remaining = 10 + 2 + options.client_id.size();
  if (!options.username.empty()) {
    connect_flags |= 0x80;
    remaining += 2 + options.username.size();
  }
  if (!options.password.empty()) {
    connect_flags |= 0x40;
    remaining += 2 + options.password.size();
  }
  out.push_back(static_cast<char>(FirstByte(PacketType::kConnect, 0)));
  EncodeRemainingLength(remaining, out);
  PutString("MQTT", out);
  out.push_back(4);  // protocol level 3.1.1
  out.push_back(static_cast<char>(connect_flags));
  PutU16(options.keepalive_s, out);
  PutString(options.client_id, out);
  if (!options.username.empty()) PutString(options.username, out);
  if (!options.password.empty()) PutString(options.password, out);
  return Status::Ok();
}

Status EncodeSubscribe(uint16_t packet_id, std::span<const SubscribeFilter> filters,
                       std::string& out) {
  if (packet_id == 0) return Status::Error("SUBSCRIBE: packet id 0");
  if (filters.empty()) return Status::Error("SUBSCRIBE: no topic filter");
  size_t remaining = 2;
  for (const SubscribeFilter& f : filters) {
    if (f.filter.empty() || f.filter.size() > kMaxStringBytes) {
      return Status::Error("SUBSCRIBE: a topic filter must be 1 to 65535 bytes");
    }
    if (f.qos > 2) return Status::Error("SUBSCRIBE: qos above 2");
    remaining += 2 + f.filter.size() + 1;
  }
  if (remaining > kMaxRemainingLength) return Status::Error("SUBSCRIBE: packet too large");
  out.push_back(static_cast<char>(FirstByte(PacketType::kSubscribe, 0x02)));
  EncodeRemainingLength(remaining, out);
  PutU16(packet_id, out);
  for (const SubscribeFilter& f : filters) {
    PutString(f.filter, out);
    out.push_back(static_cast<char>(f.qos));
  }
  return Status::Ok();
}

void EncodePuback(uint16_t packet_id, std::string& out) {
  EncodeIdOnly(PacketType::kPuback, packet_id, out);
}

void EncodePubrec(uint16_t packet_id, std::string& out) {
  EncodeIdOnly(PacketType::kPubrec, packet_id, out);
}

void EncodePubcomp(uint16_t packet_id, std::string& out) {
  EncodeIdOnly(PacketType::kPubcomp, packet_id, out);
}

void EncodePingreq(std::string& out) {
  out.push_back(static_cast<char>(FirstByte(PacketType::kPingreq, 0)));
  out.push_back(0);
}

void EncodeDisconnect(std::string& out) {
  out.push_back(static_cast<char>(FirstByte(PacketType::kDisconnect, 0)));
  out.push_back(0);
}

std::string_view ConnackCodeText(uint8_t code) {
  switch (code) {
    case 0:
      return "accepted";
    case 1:
      return "unacceptable protocol version";
    case 2:
      return "identifier rejected";
    case 3:
      return "server unavailable";
    case 4:
      return "bad user name or password";
    case 5:
      return "not authorized";
    default:
      return "unknown return code";
  }
}

// ---- parser ----

MqttParser::MqttParser(size_t max_packet_bytes)
    : max_packet_bytes_(std::clamp<size_t>(max_packet_bytes, 2, kMaxRemainingLength)) {}

void MqttParser::Reset() {
  partial_.clear();
  if (partial_.capacity() > kKeepPartialCapacity) std::string().swap(partial_);
  release_partial_ = false;
  error_.clear();
  skipping_ = false;
  skip_reported_ = false;
  skip_pos_ = 0;
  skip_topic_length_ = 0;
}

MqttParser::HeaderStatus MqttParser::ReadHeader(std::string_view bytes, Header& header) {
  if (bytes.empty()) return HeaderStatus::kIncomplete;
  size_t value = 0;
  size_t multiplier = 1;
  for (size_t i = 1; i <= 4; ++i) {
    if (i >= bytes.size()) return HeaderStatus::kIncomplete;
    const auto digit = static_cast<uint8_t>(bytes[i]);
    value += (digit & 0x7f) * multiplier;
    if ((digit & 0x80) == 0) {
      header.first = static_cast<uint8_t>(bytes[0]);
      header.remaining = value;
      header.header_size = i + 1;
      return HeaderStatus::kComplete;
    }
    multiplier *= 128;
  }
  return HeaderStatus::kMalformed;  // a fifth length byte
}

ParseResult MqttParser::Fail(std::string message) {
  error_ = std::move(message);
  skipping_ = false;
  partial_.clear();
  ParseResult r;
  r.event = ParseEvent::kError;
  r.error = error_;
  return r;
}

Status MqttParser::CheckHeader(const Header& header) const {
  const unsigned type = header.first >> 4;
  const unsigned flags = header.first & 0x0f;
  const size_t n = header.remaining;
  auto exact = [&](size_t want) {
    if (n == want) return Status::Ok();
    return Status::Error(std::string(TypeName(type)) + " with remaining length " +
                         std::to_string(n) + " (expected " + std::to_string(want) + ")");
  };
  auto no_flags = [&](Status s) {
    if (!s.ok()) return s;
    if (flags != 0) {
      return Status::Error(std::string(TypeName(type)) + " with reserved flags " +
                           std::to_string(flags));
    }
    return Status::Ok();
  };
  switch (static_cast<PacketType>(type)) {
    case PacketType::kConnack:
      return no_flags(exact(2));
    case PacketType::kPublish:
      if (((flags >> 1) & 0x3) == 3) return Status::Error("PUBLISH with qos 3");
      if (n < 2) return Status::Error("PUBLISH shorter than its topic length");
      return Status::Ok();
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubcomp:
    case PacketType::kUnsuback:
      return no_flags(exact(2));
    case PacketType::kPubrel:
      if (flags != 0x2) return Status::Error("PUBREL with flags " + std::to_string(flags));
      return exact(2);
    case PacketType::kSuback:
      if (n < 3) return Status::Error("SUBACK without a result");
      return no_flags(Status::Ok());
    case PacketType::kPingresp:
      return no_flags(exact(0));
    default:
      return Status::Error("packet type " + std::string(TypeName(type)) +
                           " is never sent to a client");
  }
}

ParseResult MqttParser::Decode(const Header& header, std::string_view body) {
  ParseResult r;
  r.event = ParseEvent::kPacket;
  Packet& p = r.packet;
  p.type = static_cast<PacketType>(header.first >> 4);
  p.flags = header.first & 0x0f;
  switch (p.type) {
    case PacketType::kConnack: {
      const auto ack_flags = static_cast<uint8_t>(body[0]);
      if ((ack_flags & 0xfe) != 0) return Fail("CONNACK with reserved acknowledge flags");
      p.session_present = (ack_flags & 1) != 0;
      p.connack_code = static_cast<uint8_t>(body[1]);
      return r;
    }
    case PacketType::kPublish: {
      p.qos = (p.flags >> 1) & 0x3;
      p.dup = (p.flags & 0x8) != 0;
      p.retain = (p.flags & 0x1) != 0;
      const size_t topic_length = GetU16(body, 0);
      const size_t id_bytes = p.qos > 0 ? 2 : 0;
      if (2 + topic_length + id_bytes > body.size()) {
        return Fail("PUBLISH topic length " + std::to_string(topic_length) +
                    " overruns the packet (" + std::to_string(body.size()) + " bytes)");
      }
      p.topic = body.substr(2, topic_length);
      if (p.qos > 0) {
        p.packet_id = GetU16(body, 2 + topic_length);
        if (p.packet_id == 0) return Fail("PUBLISH with qos > 0 and packet id 0");
      }
      p.payload = body.substr(2 + topic_length + id_bytes);
      return r;
    }
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
    case PacketType::kUnsuback:
      p.packet_id = GetU16(body, 0);
      return r;
    case PacketType::kSuback:
      p.packet_id = GetU16(body, 0);
      p.suback_results = body.substr(2);
      for (char c : p.suback_results) {
        const auto v = static_cast<uint8_t>(c);
        if (v > 2 && v != kSubackFailure) {
          return Fail("SUBACK with invalid return code " + std::to_string(v));
        }
      }
      return r;
    default:  // PINGRESP; CheckHeader refused the rest
      return r;
  }
}

void MqttParser::StartSkip(const Header& header) {
  skipping_ = true;
  skip_reported_ = false;
  skip_header_ = header;
  skip_pos_ = 0;
  skip_topic_length_ = 0;
}

ParseResult MqttParser::ContinueSkip(std::string_view& input) {
  const bool publish = static_cast<PacketType>(skip_header_.first >> 4) == PacketType::kPublish;
  const uint8_t qos = (skip_header_.first >> 1) & 0x3;
  const size_t total = skip_header_.remaining;
  const size_t id_at = 2 + skip_topic_length_;  // meaningful once skip_pos_ >= 2
  while (true) {
    const bool meta_known = !publish || (skip_pos_ >= 2 && (qos == 0 || skip_pos_ >= id_at + 2));
    if (!skip_reported_ && meta_known) {
      skip_reported_ = true;
      ++skipped_packets_;
      ParseResult r;
      r.event = ParseEvent::kSkipped;
      r.packet.type = static_cast<PacketType>(skip_header_.first >> 4);
      r.packet.flags = skip_header_.first & 0x0f;
      if (publish) {
        r.packet.qos = qos;
        r.packet.dup = (r.packet.flags & 0x8) != 0;
        r.packet.retain = (r.packet.flags & 0x1) != 0;
        if (qos > 0) {
          r.packet.packet_id = static_cast<uint16_t>((skip_bytes_[2] << 8) | skip_bytes_[3]);
        }
      }
      if (skip_pos_ == total) skipping_ = false;
      return r;
    }
    if (skip_pos_ == total) {
      skipping_ = false;
      return ParseResult{};
    }
    if (input.empty()) return ParseResult{};
    if (publish && skip_pos_ < 2) {
      skip_bytes_[skip_pos_++] = static_cast<uint8_t>(input[0]);
      input.remove_prefix(1);
      if (skip_pos_ == 2) {
        skip_topic_length_ = static_cast<size_t>((skip_bytes_[0] << 8) | skip_bytes_[1]);
        if (2 + skip_topic_length_ + (qos > 0 ? 2 : 0) > total) {
          return Fail("PUBLISH topic length " + std::to_string(skip_topic_length_) +
                      " overruns the packet (" + std::to_string(total) + " bytes)");
        }
        return ContinueSkip(input);  // id_at changed
      }
      continue;
    }
    if (publish && qos > 0 && skip_pos_ >= id_at && skip_pos_ < id_at + 2) {
      skip_bytes_[2 + (skip_pos_ - id_at)] = static_cast<uint8_t>(input[0]);
      ++skip_pos_;
      input.remove_prefix(1);
      if (skip_pos_ == id_at + 2 && skip_bytes_[2] == 0 && skip_bytes_[3] == 0) {
        return Fail("PUBLISH with qos > 0 and packet id 0");
      }
      continue;
    }
    const size_t until = (publish && qos > 0 && skip_pos_ < id_at) ? id_at : total;
    const size_t n = std::min(input.size(), until - skip_pos_);
    input.remove_prefix(n);
    skip_pos_ += n;
  }
}

ParseResult MqttParser::Next(std::string_view& input) {
  if (!error_.empty()) {
    ParseResult r;
    r.event = ParseEvent::kError;
    r.error = error_;
    return r;
  }
  if (release_partial_) {
    release_partial_ = false;
    partial_.clear();
    if (partial_.capacity() > kKeepPartialCapacity) std::string().swap(partial_);
  }
  if (skipping_) {
    ParseResult r = ContinueSkip(input);
    if (r.event != ParseEvent::kNeedMore || skipping_) return r;
  }

  Header header;
  if (!partial_.empty()) {
    // Finish the fixed header a byte at a time (at most 4 more), then the body.
    HeaderStatus status = ReadHeader(partial_, header);
    while (status == HeaderStatus::kIncomplete && !input.empty()) {
      partial_.push_back(input[0]);
      input.remove_prefix(1);
      status = ReadHeader(partial_, header);
    }
    if (status == HeaderStatus::kIncomplete) return ParseResult{};
    if (status == HeaderStatus::kMalformed) return Fail("remaining length longer than 4 bytes");
    if (Status s = CheckHeader(header); !s.ok()) return Fail(s.message());
    if (header.remaining > max_packet_bytes_) {
      partial_.clear();
      StartSkip(header);
      ParseResult r = ContinueSkip(input);
      if (r.event != ParseEvent::kNeedMore || skipping_) return r;
      return Next(input);
    }
    const size_t total = header.header_size + header.remaining;
    const size_t take = std::min(total - partial_.size(), input.size());
    partial_.append(input.substr(0, take));
    input.remove_prefix(take);
    if (partial_.size() < total) return ParseResult{};
    release_partial_ = true;
    return Decode(header, std::string_view(partial_).substr(header.header_size));
  }

  if (input.empty()) return ParseResult{};
  const HeaderStatus status = ReadHeader(input, header);
  if (status == HeaderStatus::kIncomplete) {  // fewer than 5 bytes
    partial_.assign(input);
    input = {};
    return ParseResult{};
  }
  if (status == HeaderStatus::kMalformed) return Fail("remaining length longer than 4 bytes");
  if (Status s = CheckHeader(header); !s.ok()) return Fail(s.message());
  if (header.remaining > max_packet_bytes_) {
    input.remove_prefix(header.header_size);
    StartSkip(header);
    ParseResult r = ContinueSkip(input);
    if (r.event != ParseEvent::kNeedMore || skipping_) return r;
    return Next(input);
  }
  const size_t total = header.header_size + header.remaining;
  if (input.size() >= total) {
    const std::string_view body = input.substr(header.header_size, header.remaining);
    input.remove_prefix(total);
    return Decode(header, body);
  }
  partial_.reserve(total);
  partial_.assign(input);
  input = {};
  return ParseResult{};
}

}  // namespace edge::agent::mqtt
