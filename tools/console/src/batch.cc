#include "edge/console/batch.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/src.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "batch_compact.h"
#include "edge/wire/fields.h"

namespace edge::console {
namespace {

using nlohmann::json;

// nlohmann's parser is iterative, but dump() and comparisons recurse: bound the nesting so a
// hostile body cannot exhaust the stack. Also tells a too-deep body from a malformed one
// after the batch handler below stopped the parse.
bool NestingWithin(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

// --- Reading the body --------------------------------------------------------------------
//
// The body goes through Boost.JSON's streaming parser (boost::json::basic_parser) without
// building a tree. Around it, the input is held to what nlohmann::json::parse (the parser
// the console used before) accepts: a leading UTF-8 BOM is skipped, a NUL byte ends the
// input, a number that overflows a double is rejected. The handler records only the members
// the protocol checks, numbers as their literal text (converted only where a field is
// read); like a DOM, it keeps the last of repeated keys. Each payload object is written out
// again compactly as it streams past (CompactWriter, batch_compact.h). The checks then run
// on those records in a fixed order, so each malformed body gets one answer.

enum class Type : uint8_t { kMissing, kNull, kBool, kString, kNumber, kArray, kObject };

// One recorded member: its type and, for strings, the decoded text; for numbers, the literal.
struct Value {
  Type type = Type::kMissing;
  std::string text;
};

struct RawPayload {
  Value self;
  std::string compact;                                  // the object written out again
  Value node, rule, sensor, severity, state, ts_ms;     // alert
  Value start_ms, end_ms, count, min, max, mean, last;  // rollup (and sensor, node)
};

struct RawItem {
  Value self;  // the members below are read only when self is an object
  Value id, kind, created_ms;
  RawPayload payload;
};

struct RawBatch {
  Value self;
  Value node, sent_ms, items;
  std::vector<RawItem> elements;  // of `items` when it is an array
};

// Records a batch from the parse events, in document order.
class BatchRecorder {
 public:
  // `body` is the text being parsed (see CompactWriter).
  BatchRecorder(RawBatch* out, std::string_view body) : out_(out), writer_(body) {
    frames_.reserve(kMaxJsonDepth);
  }

  // A string (decoded), number (literal), true, false or null.
  void Scalar(Type type, std::string_view text) {
    if (Value* target = Target(); target != nullptr) {
      target->type = type;
      target->text.assign(text);
    }
    if (!writer_.writing()) return;
    if (type == Type::kString) {
      writer_.String(text);
    } else {
      writer_.Literal(text);
    }
  }

  void Open(Type type) {
    Value* target = Target();
    Context context = Context::kOther;
    if (target != nullptr) {
      target->type = type;
      if (target == &out_->self && type == Type::kObject) {
        context = Context::kTop;
      } else if (target == &out_->items && type == Type::kArray) {
        out_->elements.clear();
        context = Context::kItems;
      } else if (type == Type::kObject && frames_.back().context == Context::kItems) {
        context = Context::kItem;
      } else if (type == Type::kObject && frames_.back().context == Context::kItem &&
                 target == &out_->elements.back().payload.self) {
        context = Context::kPayload;
        writer_.Begin(&out_->elements.back().payload.compact, payload_open_);
      }
    }
    if (context != Context::kPayload && writer_.writing()) {
      writer_.Open(type == Type::kObject ? '{' : '[');
    }
    frames_.push_back(Frame{context, nullptr});
  }

  void Close(char bracket) {
    if (writer_.writing()) writer_.Close(bracket);
    frames_.pop_back();
  }

  void Key(std::string_view k) {
    Frame& frame = frames_.back();
    if (writer_.writing()) writer_.Key(k);
    frame.slot = nullptr;
    switch (frame.context) {
      case Context::kTop:
        frame.slot = Field(kTopFields, out_, k);
        break;
      case Context::kItem: {
        RawItem& item = out_->elements.back();
        if (k == kPayloadKey) {
          // A repeated key: the last one counts.
          if (item.payload.self.type != Type::kMissing) item.payload = RawPayload();
          frame.slot = &item.payload.self;
          payload_open_ = writer_.ObjectAfterKey(k);
        } else {
          frame.slot = Field(kItemFields, &item, k);
        }
        break;
      }
      case Context::kPayload:
        frame.slot = PayloadField(&out_->elements.back().payload, k);
        break;
      default:
        break;
    }
  }

 private:
  // What the object or array being read is, for where its members go.
  enum class Context : uint8_t { kTop, kItems, kItem, kPayload, kOther };

  struct Frame {
    Context context;
    Value* slot = nullptr;  // objects: where the current member's value goes (null: nowhere)
  };

  // The members recorded, by name (std::string_view: compared by size first).
  template <typename T>
  using Fields = std::pair<std::string_view, Value T::*>;
  static constexpr std::string_view kPayloadKey = wire::item::kPayload;
  static constexpr Fields<RawBatch> kTopFields[] = {
      {wire::kNode, &RawBatch::node},
      {wire::kSentMs, &RawBatch::sent_ms},
      {wire::kItems, &RawBatch::items},
  };
  static constexpr Fields<RawItem> kItemFields[] = {
      {wire::item::kId, &RawItem::id},
      {wire::item::kKind, &RawItem::kind},
      {wire::item::kCreatedMs, &RawItem::created_ms},
  };

  // Payload members, the most keys of a batch: told apart by length first. Each name's
  // length is checked against its case label here, so renaming a field in wire/ cannot
  // silently drop it.
  static constexpr bool LengthIs(std::string_view name, size_t n) { return name.size() == n; }
  static Value* PayloadField(RawPayload* p, std::string_view key) {
    namespace alert = wire::alert;
    namespace rollup = wire::rollup;
    static_assert(LengthIs(rollup::kMin, 3) && LengthIs(rollup::kMax, 3));
    static_assert(LengthIs(wire::kNode, 4) && LengthIs(alert::kRule, 4) &&
                  LengthIs(rollup::kMean, 4) && LengthIs(rollup::kLast, 4));
    static_assert(LengthIs(alert::kState, 5) && LengthIs(alert::kTsMs, 5) &&
                  LengthIs(rollup::kCount, 5));
    static_assert(LengthIs(alert::kSensor, 6) && LengthIs(rollup::kEndMs, 6));
    static_assert(LengthIs(alert::kSeverity, 8) && LengthIs(rollup::kStartMs, 8));
    switch (key.size()) {
      case 3:
        if (key == rollup::kMin) return &p->min;
        return key == rollup::kMax ? &p->max : nullptr;
      case 4:
        if (key == wire::kNode) return &p->node;
        if (key == alert::kRule) return &p->rule;
        if (key == rollup::kMean) return &p->mean;
        return key == rollup::kLast ? &p->last : nullptr;
      case 5:
        if (key == alert::kState) return &p->state;
        if (key == alert::kTsMs) return &p->ts_ms;
        return key == rollup::kCount ? &p->count : nullptr;
      case 6:
        if (key == alert::kSensor) return &p->sensor;
        return key == rollup::kEndMs ? &p->end_ms : nullptr;
      case 8:
        if (key == alert::kSeverity) return &p->severity;
        return key == rollup::kStartMs ? &p->start_ms : nullptr;
      default:
        return nullptr;
    }
  }

  template <typename T, size_t N>
  static Value* Field(const Fields<T> (&fields)[N], T* record, std::string_view key) {
    for (const auto& [name, field] : fields) {
      if (key == name) return &(record->*field);
    }
    return nullptr;
  }

  // Where the value that starts now goes (null: nowhere), adding an item in the item array.
  Value* Target() {
    if (frames_.empty()) return &out_->self;
    Frame& frame = frames_.back();
    if (frame.context == Context::kItems) return &out_->elements.emplace_back().self;
    return frame.context == Context::kOther ? nullptr : frame.slot;
  }

  RawBatch* out_;
  CompactWriter writer_;                // while inside a payload: writes it out compactly
  std::vector<Frame> frames_;           // the open objects and arrays, outermost first
  const char* payload_open_ = nullptr;  // the last "payload" key's object in the body, if any
};

// The handler boost::json::basic_parser calls. Strings, keys and numbers may arrive in
// parts; the parts are joined before the recorder sees them.
class BoostHandler {
 public:
  using error_code = boost::system::error_code;
  using string_view = boost::json::string_view;
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  BoostHandler(RawBatch* out, std::string_view body) : recorder_(out, body) {}

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) { return Open(Type::kObject); }
  bool on_object_end(std::size_t, error_code&) { return Close('}'); }
  bool on_array_begin(error_code&) { return Open(Type::kArray); }
  bool on_array_end(std::size_t, error_code&) { return Close(']'); }
  bool on_key_part(string_view s, std::size_t, error_code&) { return Part(s); }
  bool on_key(string_view s, std::size_t, error_code&) {
    recorder_.Key(Joined(s));
    part_.clear();
    parted_ = false;
    return true;
  }
  bool on_string_part(string_view s, std::size_t, error_code&) { return Part(s); }
  bool on_string(string_view s, std::size_t, error_code&) { return Scalar(Type::kString, s); }
  bool on_number_part(string_view s, error_code&) { return Part(s); }
  bool on_int64(int64_t, string_view s, error_code&) { return Scalar(Type::kNumber, s); }
  bool on_uint64(uint64_t, string_view s, error_code&) { return Scalar(Type::kNumber, s); }
  bool on_double(double v, string_view s, error_code& ec) {
    // nlohmann's parser rejects a literal that overflows a double (such as 1e999).
    if (!std::isfinite(v)) {
      ec = boost::json::error::exponent_overflow;
      return false;
    }
    return Scalar(Type::kNumber, s);
  }
  bool on_bool(bool v, error_code&) { return Scalar(Type::kBool, v ? "true" : "false"); }
  bool on_null(error_code&) { return Scalar(Type::kNull, "null"); }
  bool on_comment_part(string_view, error_code&) { return true; }  // comments are refused
  bool on_comment(string_view, error_code&) { return true; }

 private:
  std::string_view Joined(string_view last) {
    if (!parted_) return std::string_view(last.data(), last.size());
    part_.append(last.data(), last.size());
    return part_;
  }
  bool Part(string_view s) {
    parted_ = true;
    part_.append(s.data(), s.size());
    return true;
  }
  bool Scalar(Type type, string_view last) {
    recorder_.Scalar(type, Joined(last));
    part_.clear();
    parted_ = false;
    return true;
  }
  bool Open(Type type) {
    recorder_.Open(type);
    return true;
  }
  bool Close(char bracket) {
    recorder_.Close(bracket);
    return true;
  }

  BatchRecorder recorder_;
  bool parted_ = false;  // part_ holds the parts so far (a body slice is then not the whole)
  std::string part_;     // the parts so far of the string, key or number being read
};

// True when `text` is one JSON value as nlohmann::json::parse accepts it; `out` then holds
// what the recorder kept. Fails, too, for nesting deeper than kMaxJsonDepth.
bool ParseWhole(std::string_view text, RawBatch* out) {
  // A typical item takes a few hundred bytes of body: room for one per 512 bytes spares most
  // regrowth and stays within a small multiple of the body's size.
  out->elements.reserve(text.size() / 512);
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::json::basic_parser<BoostHandler> parser(options, out, text);
  boost::system::error_code ec;
  const size_t used = parser.write_some(false, text.data(), text.size(), ec);
  return !ec && used == text.size();
}

bool ReadBody(std::string_view text, RawBatch* out) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (ParseWhole(text, out)) return true;
  // nlohmann's lexer takes a NUL byte for the end of the input (a NUL is never valid JSON,
  // so only a body that failed can hold one).
  const size_t nul = text.find('\0');
  if (nul == std::string_view::npos) return false;
  *out = RawBatch();
  return ParseWhole(text.substr(0, nul), out);
}

// Where a field sits, for error messages ("items[3]: alert payload: ..."); the text is built
// only when there is an error to report.
struct Where {
  size_t item = std::numeric_limits<size_t>::max();  // max: a member of the body itself
  const char* payload = nullptr;                     // "alert" or "rollup" inside a payload

  std::string operator+(std::string_view rest) const {
    std::string out;
    if (item != std::numeric_limits<size_t>::max()) {
      out = "items[" + std::to_string(item) + "]: ";
      if (payload != nullptr) out += std::string(payload) + " payload: ";
    }
    out += rest;
    return out;
  }
};

std::string Quoted(const char* key) { return std::string("'") + key + "'"; }

Status Missing(const Where& where, const char* key) {
  return Status::Error(where + ("missing field " + Quoted(key)));
}

Status FieldError(const Where& where, const char* key, std::string_view what) {
  return Status::Error(where + ("field " + Quoted(key) + " " + std::string(what)));
}

// "items[3].payload: field 'sensor' is too long: 2000 bytes, the console accepts at most 1024".
Status TooLong(const Where& where, const char* key, size_t size, size_t max_bytes) {
  return FieldError(where, key,
                    "is too long: " + std::to_string(size) +
                        " bytes, the console accepts at most " + std::to_string(max_bytes));
}

// The field must be a non-empty string of at most `max_bytes` bytes (after unescaping). The
// text moves to `out`.
Status ReadString(Value& raw, const char* key, const Where& where, size_t max_bytes,
                  std::string* out) {
  if (raw.type == Type::kMissing) return Missing(where, key);
  if (raw.type != Type::kString) return FieldError(where, key, "must be a string");
  if (raw.text.empty()) return FieldError(where, key, "must not be empty");
  if (raw.text.size() > max_bytes) return TooLong(where, key, raw.text.size(), max_bytes);
  *out = std::move(raw.text);
  return Status::Ok();
}

// A JSON number literal without a fraction or exponent.
bool IsIntegerLiteral(std::string_view literal) {
  return std::none_of(literal.begin(), literal.end(),
                      [](char c) { return c == '.' || c == 'e' || c == 'E'; });
}

// The field must be an integer that fits int64_t. As in nlohmann's DOM, a literal with a
// fraction or exponent, or an integer beyond uint64_t (or below int64_t) is a float and not
// an integer; one between int64_t's maximum and uint64_t's is out of range.
Status ReadInt64(const Value& raw, const char* key, const Where& where, int64_t* out) {
  if (raw.type == Type::kMissing) return Missing(where, key);
  const auto not_integer = [&] { return FieldError(where, key, "must be an integer"); };
  if (raw.type != Type::kNumber) return not_integer();
  const std::string_view text = raw.text;
  if (!IsIntegerLiteral(text)) return not_integer();
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (text.front() == '-') {
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || ptr != last) return not_integer();
    *out = v;
    return Status::Ok();
  }
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec != std::errc() || ptr != last) return not_integer();
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return FieldError(where, key, "is out of range");
  }
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

// The field must be a finite JSON number (integer or float). A literal that overflows (such
// as 1e999) already failed the parse, as it failed nlohmann's parser; the check stays.
Status ReadDouble(const Value& raw, const char* key, const Where& where, double* out) {
  if (raw.type == Type::kMissing) return Missing(where, key);
  if (raw.type != Type::kNumber) return FieldError(where, key, "must be a number");
  const char* first = raw.text.data();
  const char* last = first + raw.text.size();
  if (IsIntegerLiteral(raw.text)) {
    // An integer literal the DOM held as an integer converts from it (so "-0" is 0.0).
    if (raw.text.front() == '-') {
      int64_t i = 0;
      if (const auto r = std::from_chars(first, last, i); r.ec == std::errc() && r.ptr == last) {
        *out = static_cast<double>(i);
        return Status::Ok();
      }
    } else {
      uint64_t u = 0;
      if (const auto r = std::from_chars(first, last, u); r.ec == std::errc() && r.ptr == last) {
        *out = static_cast<double>(u);
        return Status::Ok();
      }
    }
  }
  double v = 0;
  const auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec == std::errc::result_out_of_range) {
    // from_chars leaves `v` alone on overflow and underflow; strtod gives what the DOM held
    // (infinity, or zero or a subnormal).
    const std::string copy(raw.text);
    v = std::strtod(copy.c_str(), nullptr);
  } else if (ec != std::errc() || ptr != last) {
    return FieldError(where, key, "must be a number");
  }
  if (!std::isfinite(v)) return FieldError(where, key, "is out of range");
  *out = v;
  return Status::Ok();
}

// An optional "node" member of a payload must equal the batch's node.
Status CheckPayloadNode(const Value& raw, const std::string& node, const Where& where) {
  if (raw.type == Type::kMissing) return Status::Ok();
  if (raw.type != Type::kString || raw.text != node) {
    return FieldError(where, wire::kNode, "must equal the batch's node");
  }
  return Status::Ok();
}

Status ReadAlert(RawPayload& p, const std::string& node, Where where, AlertFields* out) {
  where.payload = wire::kAlertKind;
  if (Status s = ReadString(p.rule, wire::alert::kRule, where, kMaxNameBytes, &out->rule); !s)
    return s;
  if (Status s = ReadString(p.sensor, wire::alert::kSensor, where, kMaxNameBytes, &out->sensor); !s)
    return s;
  if (Status s =
          ReadString(p.severity, wire::alert::kSeverity, where, kMaxNameBytes, &out->severity);
      !s) {
    return s;
  }
  if (Status s = ReadString(p.state, wire::alert::kState, where, kMaxNameBytes, &out->state); !s)
    return s;
  if (out->state != "firing" && out->state != "resolved") {
    return FieldError(where, wire::alert::kState, "must be \"firing\" or \"resolved\"");
  }
  if (Status s = ReadInt64(p.ts_ms, wire::alert::kTsMs, where, &out->ts_ms); !s) return s;
  return CheckPayloadNode(p.node, node, where);
}

Status ReadRollup(RawPayload& p, const std::string& node, Where where, RollupFields* out) {
  where.payload = wire::kRollupKind;
  if (Status s = ReadString(p.sensor, wire::rollup::kSensor, where, kMaxNameBytes, &out->sensor);
      !s)
    return s;
  if (Status s = ReadInt64(p.start_ms, wire::rollup::kStartMs, where, &out->start_ms); !s) return s;
  if (Status s = ReadInt64(p.end_ms, wire::rollup::kEndMs, where, &out->end_ms); !s) return s;
  if (out->end_ms < out->start_ms) {
    return FieldError(where, wire::rollup::kEndMs, "must not be less than 'start_ms'");
  }
  if (Status s = ReadInt64(p.count, wire::rollup::kCount, where, &out->count); !s) return s;
  if (out->count < 0) return FieldError(where, wire::rollup::kCount, "must not be negative");
  if (Status s = ReadDouble(p.min, wire::rollup::kMin, where, &out->min); !s) return s;
  if (Status s = ReadDouble(p.max, wire::rollup::kMax, where, &out->max); !s) return s;
  if (Status s = ReadDouble(p.mean, wire::rollup::kMean, where, &out->mean); !s) return s;
  if (Status s = ReadDouble(p.last, wire::rollup::kLast, where, &out->last); !s) return s;
  return CheckPayloadNode(p.node, node, where);
}

Status ReadItem(RawItem& raw, const std::string& node, size_t index, BatchItem* out) {
  Where where;
  where.item = index;
  if (raw.self.type != Type::kObject) return Status::Error(where + "must be an object");
  if (Status s = ReadString(raw.id, wire::item::kId, where, kMaxIdBytes, &out->id); !s) return s;
  // Ids are "NODE:EPOCH:SEQ"; holding every node to its own prefix keeps one node from
  // claiming (and so suppressing, through dedupe) ids of another.
  if (out->id.size() <= node.size() + 1 || out->id.compare(0, node.size(), node) != 0 ||
      out->id[node.size()] != ':') {
    return FieldError(where, wire::item::kId, "must start with \"" + node + ":\"");
  }
  if (Status s = ReadString(raw.kind, wire::item::kKind, where, kMaxNameBytes, &out->kind); !s)
    return s;
  if (Status s = ReadInt64(raw.created_ms, wire::item::kCreatedMs, where, &out->created_ms); !s)
    return s;
  RawPayload& payload = raw.payload;
  if (payload.self.type == Type::kMissing) return Missing(where, wire::item::kPayload);
  if (payload.self.type != Type::kObject)
    return FieldError(where, wire::item::kPayload, "must be an object");
  if (out->kind == wire::kAlertKind) {
    AlertFields fields;
    if (Status s = ReadAlert(payload, node, where, &fields); !s) return s;
    out->alert = std::move(fields);
  } else if (out->kind == wire::kRollupKind) {
    RollupFields fields;
    if (Status s = ReadRollup(payload, node, where, &fields); !s) return s;
    out->rollup = std::move(fields);
  }
  out->payload_json = std::move(payload.compact);
  return Status::Ok();
}

// The DOM helpers below serve ParseStatusReport, whose status object is small and rare.

// The field must be an integer that fits int64_t (JSON floats are rejected).
Status GetInt64(const json& object, const char* key, const std::string& where, int64_t* out) {
  const auto it = object.find(key);
  if (it == object.end()) return Status::Error(where + "missing field '" + key + "'");
  if (it->is_number_unsigned()) {
    const auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::Error(where + "field '" + key + "' is out of range");
    }
    *out = static_cast<int64_t>(v);
    return Status::Ok();
  }
  if (!it->is_number_integer()) {
    return Status::Error(where + "field '" + key + "' must be an integer");
  }
  *out = it->get<int64_t>();
  return Status::Ok();
}

// The field must be a non-empty string of at most `max_bytes` bytes.
Status GetString(const json& object, const char* key, const std::string& where, size_t max_bytes,
                 std::string* out) {
  const auto it = object.find(key);
  if (it == object.end()) return Status::Error(where + "missing field '" + key + "'");
  if (!it->is_string()) return Status::Error(where + "field '" + key + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return Status::Error(where + "field '" + key + "' must not be empty");
  if (s.size() > max_bytes) {
    return Status::Error(where + "field '" + key + "' is too long: " + std::to_string(s.size()) +
                         " bytes, the console accepts at most " + std::to_string(max_bytes));
  }
  *out = s;
  return Status::Ok();
}

}  // namespace

Result<Batch> ParseBatch(std::string_view text) {
  try {
    RawBatch raw;
    if (!ReadBody(text, &raw)) {
      // Too deep a body is reported as such even where it is also malformed.
      if (!NestingWithin(text, kMaxJsonDepth)) {
        return Status::Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
      }
      return Status::Error("malformed JSON");
    }
    if (raw.self.type != Type::kObject) return Status::Error("body must be a JSON object");
    Batch batch;
    const Where top;
    if (Status s = ReadString(raw.node, wire::kNode, top, kMaxNameBytes, &batch.node); !s) return s;
    if (Status s = ReadInt64(raw.sent_ms, wire::kSentMs, top, &batch.sent_ms); !s) return s;
    if (raw.items.type == Type::kMissing) return Missing(top, wire::kItems);
    if (raw.items.type != Type::kArray) return FieldError(top, wire::kItems, "must be an array");
    batch.items.resize(raw.elements.size());
    for (size_t i = 0; i < raw.elements.size(); ++i) {
      if (Status s = ReadItem(raw.elements[i], batch.node, i, &batch.items[i]); !s) return s;
    }
    return batch;
  } catch (const std::exception& e) {
    // Only allocation failure can get here.
    return Status::Error(std::string("invalid batch: ") + e.what());
  }
}

Result<StatusReport> ParseStatusReport(std::string_view text) {
  try {
    if (!NestingWithin(text, kMaxJsonDepth)) {
      return Status::Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
    }
    const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Status::Error("malformed JSON");
    if (!doc.is_object()) return Status::Error("body must be a JSON object");
    StatusReport report;
    if (Status s = GetString(doc, wire::kNode, "", kMaxNameBytes, &report.node); !s) return s;
    if (Status s = GetInt64(doc, wire::kSentMs, "", &report.sent_ms); !s) return s;
    const auto status = doc.find(wire::kStatus);
    if (status == doc.end()) return Status::Error("missing field 'status'");
    if (!status->is_object()) return Status::Error("field 'status' must be an object");
    report.status_json = status->dump(-1, ' ', false, json::error_handler_t::strict);
    return report;
  } catch (const std::exception& e) {
    return Status::Error(std::string("invalid status report: ") + e.what());
  }
}

}  // namespace edge::console
