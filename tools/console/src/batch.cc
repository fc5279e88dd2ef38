#include "edge/console/batch.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>

namespace edge::console {
namespace {

using nlohmann::json;

// nlohmann's parser is iterative, but dump() and comparisons recurse, and so does the batch
// scanner below: bound the nesting so a hostile body cannot exhaust the stack.
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

// --- The batch scanner -------------------------------------------------------------------
//
// A batch used to be parsed into an nlohmann DOM, checked, and each payload dumped again:
// most of the console's CPU per item. The scanner below makes one pass over the body
// without building a tree. It accepts exactly the texts nlohmann::json::parse accepts: RFC
// 8259, strings checked for UTF-8 and escapes (lone surrogates rejected), a leading UTF-8
// BOM skipped, the input allowed to end at a NUL byte after the value, a number that
// overflows a double rejected. Like the DOM, it keeps the last of repeated keys. It records
// only the members the protocol checks, as slices of the body; numbers are converted only
// where a field is read. The checks then run on those records in the order the DOM version
// ran them, so each malformed body gets the same answer as before.

enum class Type : uint8_t { kMissing, kNull, kBool, kString, kNumber, kArray, kObject };

struct Raw {
  Type type = Type::kMissing;
  bool escaped = false;   // kString: the text holds backslash escapes
  std::string_view text;  // kString: between the quotes; otherwise the whole value
};

struct RawPayload {
  Raw self;
  bool compact = false;                               // no whitespace outside strings in self.text
  Raw node, rule, sensor, severity, state, ts_ms;     // alert
  Raw start_ms, end_ms, count, min, max, mean, last;  // rollup (and sensor, node)
};

struct RawItem {
  Type type = Type::kMissing;  // the members below are read only for kObject
  Raw id, kind, created_ms;
  RawPayload payload;
};

struct RawBatch {
  Type type = Type::kMissing;
  Raw node, sent_ms, items;
  std::vector<RawItem> elements;  // of `items` when it is an array
};

// Bytes that may appear unescaped in a string and end no multi-byte sequence check.
constexpr bool IsPlain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  // True when the whole text is one JSON value; `out` then describes it.
  bool Document(RawBatch* out) {
    if (end_ - p_ >= 3 && p_[0] == '\xEF' && p_[1] == '\xBB' && p_[2] == '\xBF') p_ += 3;
    SkipSpace();
    if (Peek() == '{') {
      out->type = Type::kObject;
      if (!Object(1, [&](std::string_view key, int depth) { return TopMember(key, depth, out); })) {
        return false;
      }
    } else {
      Raw value;
      if (!Value(&value, 1)) return false;
      out->type = value.type;
    }
    SkipSpace();
    // nlohmann's lexer takes a NUL byte for the end of the input.
    return p_ == end_ || *p_ == '\0';
  }

 private:
  // Deeper nesting fails the scan; ParseBatch then tells it from malformed JSON.
  static constexpr int kMaxDepth = static_cast<int>(kMaxJsonDepth);

  char Peek() const { return p_ != end_ ? *p_ : '\0'; }

  void SkipSpace() {
    const char* start = p_;
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    if (p_ != start) ++space_runs_;
  }

  void Record(Raw* out, Type type, const char* start) const {
    if (out == nullptr) return;
    out->type = type;
    out->escaped = false;
    out->text = std::string_view(start, static_cast<size_t>(p_ - start));
  }

  // `on_member(key, depth)` parses the member's value, which starts at p_.
  template <typename OnMember>
  bool Object(int depth, OnMember&& on_member) {
    if (depth > kMaxDepth) return false;
    ++p_;  // '{'
    SkipSpace();
    if (Peek() == '}') {
      ++p_;
      return true;
    }
    while (true) {
      if (Peek() != '"') return false;
      std::string_view key;
      bool escaped = false;
      if (!String(&key, &escaped)) return false;
      if (escaped) {
        key_buffer_.clear();
        Unescape(key, &key_buffer_);
        key = key_buffer_;
      }
      SkipSpace();
      if (Peek() != ':') return false;
      ++p_;
      SkipSpace();
      if (!on_member(key, depth)) return false;
      SkipSpace();
      if (p_ == end_) return false;
      const char c = *p_++;
      if (c == '}') return true;
      if (c != ',') return false;
      SkipSpace();
    }
  }

  template <typename OnElement>
  bool Array(int depth, OnElement&& on_element) {
    if (depth > kMaxDepth) return false;
    ++p_;  // '['
    SkipSpace();
    if (Peek() == ']') {
      ++p_;
      return true;
    }
    while (true) {
      if (!on_element(depth)) return false;
      SkipSpace();
      if (p_ == end_) return false;
      const char c = *p_++;
      if (c == ']') return true;
      if (c != ',') return false;
      SkipSpace();
    }
  }

  // Any value; `out` (may be null) receives its type and text.
  bool Value(Raw* out, int depth) {
    const char* start = p_;
    switch (Peek()) {
      case '{':
        if (!Object(depth + 1, [this](std::string_view, int d) { return Value(nullptr, d); })) {
          return false;
        }
        Record(out, Type::kObject, start);
        return true;
      case '[':
        if (!Array(depth + 1, [this](int d) { return Value(nullptr, d); })) return false;
        Record(out, Type::kArray, start);
        return true;
      case '"': {
        std::string_view text;
        bool escaped = false;
        if (!String(&text, &escaped)) return false;
        if (out != nullptr) {
          out->type = Type::kString;
          out->escaped = escaped;
          out->text = text;
        }
        return true;
      }
      case 't':
        if (!Literal("true")) return false;
        Record(out, Type::kBool, start);
        return true;
      case 'f':
        if (!Literal("false")) return false;
        Record(out, Type::kBool, start);
        return true;
      case 'n':
        if (!Literal("null")) return false;
        Record(out, Type::kNull, start);
        return true;
      default:
        if (!Number()) return false;
        Record(out, Type::kNumber, start);
        return true;
    }
  }

  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and (as nlohmann's parser requires) not
  // so large that it overflows a double to infinity.
  bool Number() {
    const char* start = p_;
    if (Peek() == '-') ++p_;
    // The value is 0.D x 10^exp10, D starting with its first non-zero digit.
    int64_t exp10 = 0;
    bool zero = true;
    if (Peek() == '0') {
      ++p_;
    } else if (IsDigit(Peek())) {
      const char* digits = p_;
      while (IsDigit(Peek())) ++p_;
      exp10 = p_ - digits;
      zero = false;
    } else {
      return false;
    }
    if (Peek() == '.') {
      ++p_;
      if (!IsDigit(Peek())) return false;
      const char* digits = p_;
      while (IsDigit(Peek())) ++p_;
      if (zero) {
        for (const char* d = digits; d != p_; ++d) {
          if (*d != '0') {
            exp10 = -(d - digits);
            zero = false;
            break;
          }
        }
      }
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++p_;
      bool negative = false;
      if (Peek() == '+' || Peek() == '-') negative = *p_++ == '-';
      if (!IsDigit(Peek())) return false;
      int64_t e = 0;
      for (; IsDigit(Peek()); ++p_) e = std::min<int64_t>(e * 10 + (*p_ - '0'), 1'000'000'000);
      exp10 += negative ? -e : e;
    }
    // DBL_MAX is about 0.18 x 10^309: below 10^308 a value is finite, from 10^309 it is not.
    if (zero || exp10 <= 308) return true;
    if (exp10 >= 310) return false;
    const std::string literal(start, static_cast<size_t>(p_ - start));
    return std::isfinite(std::strtod(literal.c_str(), nullptr));
  }

  // At '"': the text between the quotes, checked as nlohmann's lexer checks it.
  bool String(std::string_view* text, bool* escaped) {
    const char* start = ++p_;
    while (true) {
      while (p_ != end_ && IsPlain(static_cast<unsigned char>(*p_))) ++p_;
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c == '\\') {
        *escaped = true;
        if (!Escape()) return false;
      } else if (c < 0x20) {
        return false;
      } else if (!Utf8Sequence()) {
        return false;
      }
    }
    *text = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }

  // Four hex digits after "\u"; -1 if they are not.
  int CodeUnit() {
    if (end_ - p_ < 4) return -1;
    int value = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = HexValue(p_[i]);
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    p_ += 4;
    return value;
  }

  bool Escape() {
    ++p_;  // '\\'
    if (p_ == end_) return false;
    const char c = *p_++;
    switch (c) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        return true;
      case 'u': {
        const int unit = CodeUnit();
        if (unit < 0) return false;
        if (unit >= 0xDC00 && unit <= 0xDFFF) return false;
        if (unit >= 0xD800 && unit <= 0xDBFF) {
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          const int low = CodeUnit();
          return low >= 0xDC00 && low <= 0xDFFF;
        }
        return true;
      }
      default:
        return false;
    }
  }

  // A well-formed UTF-8 sequence of two to four bytes (RFC 3629, table 3-7 of Unicode).
  bool Utf8Sequence() {
    const auto lead = static_cast<unsigned char>(*p_);
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    int continuation;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation = 1;
    } else if (lead == 0xE0) {
      continuation = 2;
      lo = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
      continuation = 2;
    } else if (lead == 0xED) {
      continuation = 2;
      hi = 0x9F;
    } else if (lead == 0xF0) {
      continuation = 3;
      lo = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      continuation = 3;
    } else if (lead == 0xF4) {
      continuation = 3;
      hi = 0x8F;
    } else {
      return false;
    }
    ++p_;
    for (int i = 0; i < continuation; ++i) {
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c < lo || c > hi) return false;
      lo = 0x80;
      hi = 0xBF;
      ++p_;
    }
    return true;
  }

  bool TopMember(std::string_view key, int depth, RawBatch* out) {
    if (key == "node") return Value(&out->node, depth);
    if (key == "sent_ms") return Value(&out->sent_ms, depth);
    if (key == "items") {
      out->elements.clear();
      if (Peek() != '[') return Value(&out->items, depth);
      const char* start = p_;
      if (!Array(depth + 1, [&](int d) {
            out->elements.emplace_back();
            return Item(&out->elements.back(), d);
          })) {
        return false;
      }
      Record(&out->items, Type::kArray, start);
      return true;
    }
    return Value(nullptr, depth);
  }

  bool Item(RawItem* item, int depth) {
    if (Peek() != '{') {
      Raw value;
      if (!Value(&value, depth)) return false;
      item->type = value.type;
      return true;
    }
    item->type = Type::kObject;
    return Object(depth + 1, [&](std::string_view key, int d) {
      if (key == "id") return Value(&item->id, d);
      if (key == "kind") return Value(&item->kind, d);
      if (key == "created_ms") return Value(&item->created_ms, d);
      if (key == "payload") return Payload(&item->payload, d);
      return Value(nullptr, d);
    });
  }

  bool Payload(RawPayload* payload, int depth) {
    *payload = RawPayload();
    if (Peek() != '{') return Value(&payload->self, depth);
    const char* start = p_;
    const int64_t space_runs = space_runs_;
    if (!Object(depth + 1, [&](std::string_view key, int d) {
          return Value(PayloadField(payload, key), d);
        })) {
      return false;
    }
    Record(&payload->self, Type::kObject, start);
    payload->compact = space_runs_ == space_runs;
    return true;
  }

  static Raw* PayloadField(RawPayload* p, std::string_view key) {
    if (key == "node") return &p->node;
    if (key == "rule") return &p->rule;
    if (key == "sensor") return &p->sensor;
    if (key == "severity") return &p->severity;
    if (key == "state") return &p->state;
    if (key == "ts_ms") return &p->ts_ms;
    if (key == "start_ms") return &p->start_ms;
    if (key == "end_ms") return &p->end_ms;
    if (key == "count") return &p->count;
    if (key == "min") return &p->min;
    if (key == "max") return &p->max;
    if (key == "mean") return &p->mean;
    if (key == "last") return &p->last;
    return nullptr;
  }

 public:
  // Decodes the escapes of string text the scanner accepted, appending to `out`.
  static void Unescape(std::string_view text, std::string* out) {
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      const char e = text[++i];
      switch (e) {
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          const auto unit = [&](size_t at) {
            uint32_t v = 0;
            for (size_t k = 0; k < 4; ++k)
              v = v * 16 + static_cast<uint32_t>(HexValue(text[at + k]));
            return v;
          };
          uint32_t cp = unit(i + 1);
          i += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (unit(i + 3) - 0xDC00);
            i += 6;
          }
          AppendUtf8(cp, out);
          break;
        }
        default:  // '"', '\\' and '/' stand for themselves
          out->push_back(e);
      }
    }
  }

 private:
  static void AppendUtf8(uint32_t cp, std::string* out) {
    const auto byte = [](uint32_t v) { return static_cast<char>(static_cast<unsigned char>(v)); };
    if (cp < 0x80) {
      out->push_back(byte(cp));
    } else if (cp < 0x800) {
      out->push_back(byte(0xC0 | (cp >> 6)));
      out->push_back(byte(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(byte(0xE0 | (cp >> 12)));
      out->push_back(byte(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(byte(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(byte(0xF0 | (cp >> 18)));
      out->push_back(byte(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(byte(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(byte(0x80 | (cp & 0x3F)));
    }
  }

  const char* p_;
  const char* end_;
  std::string key_buffer_;  // a key with escapes, decoded; valid until the next such key
  int64_t space_runs_ = 0;  // stretches of whitespace skipped so far
};

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

// The field must be a non-empty string of at most `max_bytes` bytes (after unescaping).
Status ReadString(const Raw& raw, const char* key, const Where& where, size_t max_bytes,
                  std::string* out) {
  if (raw.type == Type::kMissing) return Missing(where, key);
  if (raw.type != Type::kString) return FieldError(where, key, "must be a string");
  out->clear();
  if (raw.escaped) {
    Scanner::Unescape(raw.text, out);
  } else {
    out->assign(raw.text);
  }
  if (out->empty()) return FieldError(where, key, "must not be empty");
  if (out->size() > max_bytes) return TooLong(where, key, out->size(), max_bytes);
  return Status::Ok();
}

// The field must be an integer that fits int64_t. As in nlohmann's DOM, a literal with a
// fraction or exponent, or an integer beyond uint64_t (or below int64_t) is a float and not
// an integer; one between int64_t's maximum and uint64_t's is out of range.
Status ReadInt64(const Raw& raw, const char* key, const Where& where, int64_t* out) {
  if (raw.type == Type::kMissing) return Missing(where, key);
  const auto not_integer = [&] { return FieldError(where, key, "must be an integer"); };
  if (raw.type != Type::kNumber) return not_integer();
  const std::string_view text = raw.text;
  if (text.find_first_of(".eE") != std::string_view::npos) return not_integer();
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
// as 1e999) already failed the scan, as it failed nlohmann's parser; the check stays.
Status ReadDouble(const Raw& raw, const char* key, const Where& where, double* out) {
  if (raw.type == Type::kMissing) return Missing(where, key);
  if (raw.type != Type::kNumber) return FieldError(where, key, "must be a number");
  const char* first = raw.text.data();
  const char* last = first + raw.text.size();
  if (raw.text.find_first_of(".eE") == std::string_view::npos) {
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
Status CheckPayloadNode(const Raw& raw, const std::string& node, const Where& where) {
  if (raw.type == Type::kMissing) return Status::Ok();
  bool equal = false;
  if (raw.type == Type::kString) {
    if (raw.escaped) {
      std::string decoded;
      Scanner::Unescape(raw.text, &decoded);
      equal = decoded == node;
    } else {
      equal = raw.text == node;
    }
  }
  if (!equal) return FieldError(where, "node", "must equal the batch's node");
  return Status::Ok();
}

Status ReadAlert(const RawPayload& p, const std::string& node, Where where, AlertFields* out) {
  where.payload = "alert";
  if (Status s = ReadString(p.rule, "rule", where, kMaxNameBytes, &out->rule); !s) return s;
  if (Status s = ReadString(p.sensor, "sensor", where, kMaxNameBytes, &out->sensor); !s) return s;
  if (Status s = ReadString(p.severity, "severity", where, kMaxNameBytes, &out->severity); !s) {
    return s;
  }
  if (Status s = ReadString(p.state, "state", where, kMaxNameBytes, &out->state); !s) return s;
  if (out->state != "firing" && out->state != "resolved") {
    return FieldError(where, "state", "must be \"firing\" or \"resolved\"");
  }
  if (Status s = ReadInt64(p.ts_ms, "ts_ms", where, &out->ts_ms); !s) return s;
  return CheckPayloadNode(p.node, node, where);
}

Status ReadRollup(const RawPayload& p, const std::string& node, Where where, RollupFields* out) {
  where.payload = "rollup";
  if (Status s = ReadString(p.sensor, "sensor", where, kMaxNameBytes, &out->sensor); !s) return s;
  if (Status s = ReadInt64(p.start_ms, "start_ms", where, &out->start_ms); !s) return s;
  if (Status s = ReadInt64(p.end_ms, "end_ms", where, &out->end_ms); !s) return s;
  if (out->end_ms < out->start_ms) {
    return FieldError(where, "end_ms", "must not be less than 'start_ms'");
  }
  if (Status s = ReadInt64(p.count, "count", where, &out->count); !s) return s;
  if (out->count < 0) return FieldError(where, "count", "must not be negative");
  if (Status s = ReadDouble(p.min, "min", where, &out->min); !s) return s;
  if (Status s = ReadDouble(p.max, "max", where, &out->max); !s) return s;
  if (Status s = ReadDouble(p.mean, "mean", where, &out->mean); !s) return s;
  if (Status s = ReadDouble(p.last, "last", where, &out->last); !s) return s;
  return CheckPayloadNode(p.node, node, where);
}

// The payload's text without whitespace outside strings.
void AppendCompact(std::string_view text, std::string* out) {
  out->reserve(out->size() + text.size());
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
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else if (c == '"') {
      in_string = true;
    }
    out->push_back(c);
  }
}

Status ReadItem(const RawItem& raw, const std::string& node, size_t index, BatchItem* out) {
  Where where;
  where.item = index;
  if (raw.type != Type::kObject) return Status::Error(where + "must be an object");
  if (Status s = ReadString(raw.id, "id", where, kMaxIdBytes, &out->id); !s) return s;
  // Ids are "NODE:EPOCH:SEQ"; holding every node to its own prefix keeps one node from
  // claiming (and so suppressing, through dedupe) ids of another.
  if (out->id.size() <= node.size() + 1 || out->id.compare(0, node.size(), node) != 0 ||
      out->id[node.size()] != ':') {
    return FieldError(where, "id", "must start with \"" + node + ":\"");
  }
  if (Status s = ReadString(raw.kind, "kind", where, kMaxNameBytes, &out->kind); !s) return s;
  if (Status s = ReadInt64(raw.created_ms, "created_ms", where, &out->created_ms); !s) return s;
  const RawPayload& payload = raw.payload;
  if (payload.self.type == Type::kMissing) return Missing(where, "payload");
  if (payload.self.type != Type::kObject) return FieldError(where, "payload", "must be an object");
  if (out->kind == "alert") {
    AlertFields fields;
    if (Status s = ReadAlert(payload, node, where, &fields); !s) return s;
    out->alert = std::move(fields);
  } else if (out->kind == "rollup") {
    RollupFields fields;
    if (Status s = ReadRollup(payload, node, where, &fields); !s) return s;
    out->rollup = std::move(fields);
  }
  if (payload.compact) {
    out->payload_json.assign(payload.self.text);
  } else {
    AppendCompact(payload.self.text, &out->payload_json);
  }
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
    if (!Scanner(text).Document(&raw)) {
      // Too deep a body is reported as such even where it is also malformed, as before the
      // scan; a body the scan accepts is within the depth limit.
      if (!NestingWithin(text, kMaxJsonDepth)) {
        return Status::Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
      }
      return Status::Error("malformed JSON");
    }
    if (raw.type != Type::kObject) return Status::Error("body must be a JSON object");
    Batch batch;
    const Where top;
    if (Status s = ReadString(raw.node, "node", top, kMaxNameBytes, &batch.node); !s) return s;
    if (Status s = ReadInt64(raw.sent_ms, "sent_ms", top, &batch.sent_ms); !s) return s;
    if (raw.items.type == Type::kMissing) return Missing(top, "items");
    if (raw.items.type != Type::kArray) return FieldError(top, "items", "must be an array");
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
    if (Status s = GetString(doc, "node", "", kMaxNameBytes, &report.node); !s) return s;
    if (Status s = GetInt64(doc, "sent_ms", "", &report.sent_ms); !s) return s;
    const auto status = doc.find("status");
    if (status == doc.end()) return Status::Error("missing field 'status'");
    if (!status->is_object()) return Status::Error("field 'status' must be an object");
    report.status_json = status->dump(-1, ' ', false, json::error_handler_t::strict);
    return report;
  } catch (const std::exception& e) {
    return Status::Error(std::string("invalid status report: ") + e.what());
  }
}

}  // namespace edge::console
