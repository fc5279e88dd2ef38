#include "edge/agent/decoder.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>

#include "edge/common/strings.h"
namespace edge::agent {
namespace {

using nlohmann::json;

// 9999-12-31T23:59:59.999Z; anything later is not a time a sensor meant to send.
constexpr int64_t kMaxTimestampMs = 253'402'300'799'999;
// Numeric timestamps below this are epoch seconds (1e11 s is the year 5138; 1e11 ms is
// March 1973), at or above it epoch milliseconds.
constexpr double kSecondsLimit = 1e11;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The words that switches, contacts and binary sensors publish for their two states
// (ESPHome and Tasmota `ON`/`OFF`, Home Assistant `on`/`off`, door sensors `open`/`closed`),
// in any case: 1 for the first of each pair, 0 for the second (docs/payloads.md).
std::optional<double> StateWordValue(std::string_view word) {
  static constexpr struct {
    std::string_view word;
    double value;
  } kWords[] = {{"on", 1}, {"off", 0}, {"true", 1}, {"false", 0}, {"open", 1}, {"closed", 0}};
  if (word.size() < 2 || word.size() > 6) return std::nullopt;
  for (const auto& w : kWords) {
    if (IEquals(word, w.word)) return w.value;
  }
  return std::nullopt;
}

bool IsTimestampKey(std::string_view key) {
  return IEquals(key, "ts") || IEquals(key, "timestamp") || IEquals(key, "time");
}

// from_chars reports both overflow and underflow as out of range without a value. Decide
// which one it was from the text: the decimal exponent of the first significant digit
// plus the written exponent is positive only for huge magnitudes. `s` is text that
// from_chars consumed completely.
bool OutOfRangeIsOverflow(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  int64_t magnitude = 0;
  bool significant = false;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    if (significant || s[i] != '0') {
      if (significant) ++magnitude;
      significant = true;
    }
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      if (significant) continue;
      --magnitude;
      if (s[i] != '0') significant = true;
    }
  }
  int64_t exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool negative = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      if (exponent < 1'000'000'000) exponent = exponent * 10 + (s[i] - '0');
    }
    if (negative) exponent = -exponent;
  }
  return magnitude + exponent > 0;
}

enum class NumberText { kNotNumber, kFinite, kNonFinite };

// Reads the whole of `s` as a decimal number (an optional leading '+' is allowed).
NumberText ParseNumberText(std::string_view s, double& value) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (s.empty() || !(IsDigit(s.front()) || s.front() == '.')) return NumberText::kNotNumber;
  }
  const char* end = s.data() + s.size();
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), end, v, std::chars_format::general);
  if (ptr != end) return NumberText::kNotNumber;
  if (ec == std::errc::result_out_of_range) {
    if (OutOfRangeIsOverflow(s)) return NumberText::kNonFinite;
    value = (!s.empty() && s.front() == '-') ? -0.0 : 0.0;
    return NumberText::kFinite;
  }
  if (ec != std::errc()) return NumberText::kNotNumber;
  if (!std::isfinite(v)) return NumberText::kNonFinite;
  value = v;
  return NumberText::kFinite;
}

// Epoch seconds (< 1e11) or milliseconds, fractions allowed.
std::optional<int64_t> TimestampFromNumber(double v) {
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  const double ms = v < kSecondsLimit ? v * 1000.0 : v;
  if (ms > static_cast<double>(kMaxTimestampMs)) return std::nullopt;
  return static_cast<int64_t>(std::llround(ms));
}

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int64_t DaysInMonth(int64_t y, int64_t m) {
  constexpr int64_t kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at `s[i]`, advancing `i`.
bool Digits(std::string_view s, size_t& i, size_t n, int64_t& out) {
  if (s.size() - i < n) return false;
  int64_t v = 0;
  for (size_t k = 0; k < n; ++k, ++i) {
    if (!IsDigit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// YYYY-MM-DD(T| )HH:MM[:SS[(.|,)fraction]][Z|(+|-)HH[[:]MM]]; no zone means UTC.
std::optional<int64_t> ParseIso8601(std::string_view s) {
  size_t i = 0;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!Digits(s, i, 4, year) || i >= s.size() || s[i++] != '-') return std::nullopt;
  if (!Digits(s, i, 2, month) || i >= s.size() || s[i++] != '-') return std::nullopt;
  if (!Digits(s, i, 2, day) || i >= s.size()) return std::nullopt;
  const char sep = s[i++];
  if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
  if (!Digits(s, i, 2, hour) || i >= s.size() || s[i++] != ':') return std::nullopt;
  if (!Digits(s, i, 2, minute)) return std::nullopt;
  if (i < s.size() && s[i] == ':') {
    ++i;
    if (!Digits(s, i, 2, second)) return std::nullopt;
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      ++i;
      const size_t start = i;
      int64_t scale = 100;
      for (; i < s.size() && IsDigit(s[i]); ++i) {
        millis += (s[i] - '0') * scale;  // digits past milliseconds are truncated
        scale /= 10;
      }
      if (i == start) return std::nullopt;
    }
  }
  int64_t offset_minutes = 0;
  if (i < s.size()) {
    const char zone = s[i++];
    if (zone == 'Z' || zone == 'z') {
      if (i != s.size()) return std::nullopt;
    } else if (zone == '+' || zone == '-') {
      int64_t oh = 0, om = 0;
      if (!Digits(s, i, 2, oh)) return std::nullopt;
      if (i < s.size() && s[i] == ':') ++i;
      if (i < s.size() && !Digits(s, i, 2, om)) return std::nullopt;
      if (i != s.size() || oh > 23 || om > 59) return std::nullopt;
      offset_minutes = (oh * 60 + om) * (zone == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }
  const int64_t seconds = DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                          second - offset_minutes * 60;
  const int64_t ms = seconds * 1000 + millis;
  if (ms < 0 || ms > kMaxTimestampMs) return std::nullopt;
  return ms;
}

std::optional<int64_t> TimestampFromString(std::string_view s) {
  s = Trim(s);
  double v = 0;
  if (ParseNumberText(s, v) == NumberText::kFinite) return TimestampFromNumber(v);
  return ParseIso8601(s);
}

// SAX handler for nlohmann::json::sax_parse. It appends readings to `out` as leaves
// arrive and keeps one path string that grows and shrinks with the nesting, so a reading
// costs one string copy. Returning false from any event stops the parse; `reject_` then
// says why.
class ReadingCollector {
 public:
  ReadingCollector(std::string_view topic, const DecodeOptions& options,
                   std::vector<rules::Reading>& out)
      : topic_(topic), options_(options), out_(out), start_(out.size()) {
    path_.reserve(topic.size() + 64);
    path_.assign(topic);
    max_depth_ = options.max_depth < 0 ? 0 : static_cast<size_t>(options.max_depth);
  }
  ReadingCollector(const ReadingCollector&) = delete;
  ReadingCollector& operator=(const ReadingCollector&) = delete;

  std::optional<RejectReason> reject() const { return reject_; }
  std::optional<int64_t> timestamp() const { return timestamp_; }

  bool null() {
    BeginValue();
    pending_timestamp_ = false;  // `"ts": null` counts as no timestamp
    pending_value_ = false;
    return true;
  }

  bool boolean(bool v) {
    BeginValue();
    if (pending_timestamp_) return Reject(RejectReason::kBadTimestamp);
    return Emit(v ? 1.0 : 0.0);
  }

  bool number_integer(json::number_integer_t v) { return Number(static_cast<double>(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Number(static_cast<double>(v)); }
  bool number_float(json::number_float_t v, const json::string_t& /*text*/) { return Number(v); }

  bool string(json::string_t& v) {
    BeginValue();
    if (pending_timestamp_) {
      pending_timestamp_ = false;
      pending_value_ = false;
      return SetTimestamp(TimestampFromString(v));
    }
    if (const std::optional<double> state = StateWordValue(v)) return Emit(*state);
    pending_value_ = false;
    return true;  // other strings carry no reading
  }

  bool binary(json::binary_t& /*v*/) { return true; }  // not produced by text JSON

  bool start_object(std::size_t /*elements*/) { return StartContainer(false); }
  bool end_object() { return EndContainer(); }
  bool start_array(std::size_t /*elements*/) { return StartContainer(true); }
  bool end_array() { return EndContainer(); }

  bool key(json::string_t& k) {
    path_.resize(frames_[depth_ - 1].path_len);
    path_ += '/';
    path_ += k;
    if (depth_ == 1) {
      pending_timestamp_ = IsTimestampKey(k);
      pending_value_ = k == "value";
    }
    return true;
  }

  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) {
    // 406 is nlohmann's "number overflow" (a literal such as 1e999).
    return Reject(ex.id == 406 ? RejectReason::kNonFinite : RejectReason::kNotJson);
  }

 private:
  struct Frame {
    bool is_array;
    size_t path_len;  // length of path_ naming this container
    size_t next_index;
  };

  bool Reject(RejectReason reason) {
    if (!reject_) reject_ = reason;
    return false;
  }

  // Positions path_ on the next element when inside an array; keys do it for objects.
  void BeginValue() {
    if (depth_ == 0 || !frames_[depth_ - 1].is_array) return;
    Frame& frame = frames_[depth_ - 1];
    char segment[24] = {'/'};
    const auto result = std::to_chars(segment + 1, segment + sizeof(segment), frame.next_index);
    path_.replace(frame.path_len, std::string::npos, segment,
                  static_cast<size_t>(result.ptr - segment));
    ++frame.next_index;
  }

  bool Number(double v) {
    BeginValue();
    if (pending_timestamp_) {
      pending_timestamp_ = false;
      return SetTimestamp(TimestampFromNumber(v));
    }
    return Emit(v);
  }

  bool Emit(double v) {
    if (out_.size() - start_ >= options_.max_readings) {
      return Reject(RejectReason::kTooManyReadings);
    }
    const bool as_topic = pending_value_;
    pending_value_ = false;
    out_.push_back(rules::Reading{as_topic ? std::string(topic_) : path_, 0, v});
    return true;
  }

  bool SetTimestamp(std::optional<int64_t> ts) {
    if (!ts) return Reject(RejectReason::kBadTimestamp);
    if (!timestamp_) timestamp_ = ts;  // the first timestamp key wins
    return true;
  }

  bool StartContainer(bool is_array) {
    BeginValue();
    if (pending_timestamp_) return Reject(RejectReason::kBadTimestamp);
    pending_value_ = false;
    if (depth_ >= max_depth_) return Reject(RejectReason::kTooDeep);
    if (depth_ == frames_capacity_) GrowFrames();
    frames_[depth_++] = Frame{is_array, path_.size(), 0};
    return true;
  }

  bool EndContainer() {
    --depth_;
    return true;
  }

  // Only when DecodeOptions::max_depth allows deeper nesting than inline_frames_ holds.
  void GrowFrames() {
    if (frames_ == inline_frames_.data()) {
      deep_frames_.assign(inline_frames_.begin(), inline_frames_.end());
    }
    deep_frames_.resize(deep_frames_.size() * 2);
    frames_ = deep_frames_.data();
    frames_capacity_ = deep_frames_.size();
  }

  std::string_view topic_;
  const DecodeOptions& options_;
  std::vector<rules::Reading>& out_;
  size_t start_;
  size_t max_depth_;
  std::string path_;  // topic + "/" + the JSON path of the current value
  // The open containers, frames_[0, depth_). They live in inline_frames_, which saves an
  // allocation per message, and move to deep_frames_ only for deeper nesting.
  std::array<Frame, 16> inline_frames_;
  std::vector<Frame> deep_frames_;
  Frame* frames_ = inline_frames_.data();
  size_t frames_capacity_ = inline_frames_.size();
  size_t depth_ = 0;
  bool pending_timestamp_ = false;  // the next value belongs to a top-level timestamp key
  bool pending_value_ = false;      // the next value belongs to the top-level `value` key
  std::optional<int64_t> timestamp_;
  std::optional<RejectReason> reject_;
};

// The full decode of JSON text (trimmed, not empty) with the SAX handler above.
std::optional<RejectReason> DecodeJson(std::string_view topic, std::string_view text,
                                       int64_t receive_ts_ms, const DecodeOptions& options,
                                       std::vector<rules::Reading>& out) {
  const size_t start = out.size();
  ReadingCollector collector(topic, options, out);
  bool parsed = false;
  try {
    parsed = json::sax_parse(text.data(), text.data() + text.size(), &collector,
                             json::input_format_t::json, /*strict=*/true);
  } catch (...) {
    // The handler never throws; only allocation failure can get here. Treat the
    // message as unreadable rather than let it take the pipeline down.
    parsed = false;
  }
  if (!parsed) {
    out.resize(start, rules::Reading{});
    return collector.reject().value_or(RejectReason::kNotJson);
  }
  if (out.size() == start) return RejectReason::kNoNumbers;
  const int64_t ts = collector.timestamp().value_or(receive_ts_ms);
  for (size_t i = start; i < out.size(); ++i) out[i].ts_ms = ts;
  return std::nullopt;
}

// JSON's insignificant whitespace; narrower than IsAsciiSpace.
bool IsJsonSpace(char c) {
  return static_cast<unsigned char>(c) <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r');
}

const char* SkipJsonSpace(const char* p, const char* end) {
  while (p != end && IsJsonSpace(*p)) ++p;
  return p;
}

// Bytes the flat-object scanner takes inside a key as they are: printable ASCII except
// the quote and the backslash. Anything else (escapes, UTF-8, control characters) goes to
// the parser, which validates it.
constexpr std::array<bool, 256> kPlainKeyByte = [] {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 0x7f; ++c) table[static_cast<size_t>(c)] = c != '"' && c != '\\';
  return table;
}();

const char* SkipDigits(const char* p, const char* end) {
  while (p != end && IsDigit(*p)) ++p;
  return p;
}

// Moves `p` past one JSON number (strict grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`)
// and says whether it was an integer (no fraction, no exponent). Returns false, `p`
// unspecified, if there is none at `p`.
bool SkipJsonNumber(const char*& p, const char* end, bool& integer) {
  if (p != end && *p == '-') ++p;
  if (p == end) return false;
  if (*p == '0') {
    ++p;
  } else if (*p >= '1' && *p <= '9') {
    p = SkipDigits(p + 1, end);
  } else {
    return false;
  }
  integer = true;
  if (p != end && *p == '.') {
    integer = false;
    if (++p == end || !IsDigit(*p)) return false;
    p = SkipDigits(p, end);
  }
  if (p != end && (*p == 'e' || *p == 'E')) {
    integer = false;
    if (++p != end && (*p == '+' || *p == '-')) ++p;
    if (p == end || !IsDigit(*p)) return false;
    p = SkipDigits(p, end);
  }
  return true;
}

// The value of a JSON number that SkipJsonNumber accepted, as the SAX path would give it:
// nlohmann hands integers over as int64/uint64 and the rest from strtod, all correctly
// rounded like from_chars, except that the integer `-0` arrives as +0. Returns false for
// a value from_chars reports out of range (1e999, 1e-999); the parser path decides those.
bool JsonNumberValue(std::string_view text, bool integer, double& value) {
  const char* const end = text.data() + text.size();
  double v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), end, v, std::chars_format::general);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) return false;
  value = (integer && v == 0) ? 0.0 : v;
  return true;
}

// The most common JSON payload, `{"value":21.37,"ts":1764166980123}`: a flat object whose
// members are all plain-ASCII keys without escapes and number values. Decodes it without
// the JSON parser and returns true, or returns false with `out` untouched for anything
// else, including every payload the parser path would reject, so that path decides.
bool DecodeFlatNumberObject(std::string_view topic, std::string_view text, int64_t receive_ts_ms,
                            const DecodeOptions& options, std::vector<rules::Reading>& out) {
  // Trivial, so that the array below costs nothing until used.
  struct Member {
    const char* key;
    const char* key_end;
    const char* number;
    const char* number_end;
    bool integer;

    std::string_view Key() const { return {key, static_cast<size_t>(key_end - key)}; }
    std::string_view Number() const { return {number, static_cast<size_t>(number_end - number)}; }
  };
  // Larger payloads are rarely this shape, and their readings outweigh parsing.
  constexpr size_t kMaxBytes = 256;
  constexpr size_t kMaxMembers = 16;
  std::array<Member, kMaxMembers> members;
  size_t count = 0;

  // Syntax first, so that other payloads cost a scan and no number conversion.
  if (options.max_depth < 1 || text.size() < 2 || text.size() > kMaxBytes || text.front() != '{' ||
      text.back() != '}') {
    return false;
  }
  // A number ends in a digit; a last value that does not (a string, true, a nested
  // object) sends the payload to the parser before anything else is scanned.
  size_t last = text.size() - 2;
  while (last > 0 && IsJsonSpace(text[last])) --last;
  if (!IsDigit(text[last])) return false;
  const char* p = text.data() + 1;
  const char* const end = text.data() + text.size();
  p = SkipJsonSpace(p, end);
  while (true) {
    if (p == end || *p != '"' || count == kMaxMembers) return false;
    // The key's bytes are checked only once every value has turned out a number.
    const char* const key_begin = ++p;
    p = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (p == nullptr) return false;
    Member& member = members[count++];
    member.key = key_begin;
    member.key_end = p;
    p = SkipJsonSpace(p + 1, end);
    if (p == end || *p != ':') return false;
    p = SkipJsonSpace(p + 1, end);
    const char* const number_begin = p;
    if (!SkipJsonNumber(p, end, member.integer)) return false;
    member.number = number_begin;
    member.number_end = p;
    p = SkipJsonSpace(p, end);
    if (p == end) return false;
    if (*p == '}') break;
    if (*p != ',') return false;
    p = SkipJsonSpace(p + 1, end);
  }
  if (p + 1 != end) return false;

  // Then the meaning, as ReadingCollector gives it to a depth-1 object.
  std::array<double, kMaxMembers> values;
  std::array<bool, kMaxMembers> is_timestamp;
  size_t readings = 0;
  std::optional<int64_t> timestamp;
  for (size_t i = 0; i < count; ++i) {
    for (const char c : members[i].Key()) {
      if (!kPlainKeyByte[static_cast<unsigned char>(c)]) return false;
    }
    if (!JsonNumberValue(members[i].Number(), members[i].integer, values[i])) return false;
    is_timestamp[i] = IsTimestampKey(members[i].Key());
    if (is_timestamp[i]) {
      const std::optional<int64_t> ts = TimestampFromNumber(values[i]);
      if (!ts) return false;
      if (!timestamp) timestamp = ts;  // the first timestamp key wins
    } else {
      ++readings;
    }
  }
  if (readings == 0 || readings > options.max_readings) return false;

  const int64_t ts_ms = timestamp.value_or(receive_ts_ms);
  for (size_t i = 0; i < count; ++i) {
    if (is_timestamp[i]) continue;
    const std::string_view key = members[i].Key();
    std::string sensor;
    if (key == "value") {
      sensor.assign(topic);
    } else {
      sensor.reserve(topic.size() + 1 + key.size());
      sensor.append(topic).append(1, '/').append(key);
    }
    out.push_back(rules::Reading{std::move(sensor), ts_ms, values[i]});
  }
  return true;
}

std::optional<RejectReason> DecodeReadings(std::string_view topic, std::string_view payload,
                                           int64_t receive_ts_ms, const DecodeOptions& options,
                                           std::vector<rules::Reading>& out, bool flat_fast_path) {
  if (topic.size() > options.max_sensor_id_bytes) return RejectReason::kTopicTooLong;
  if (payload.size() > options.max_payload_bytes) return RejectReason::kTooLarge;
  const std::string_view text = Trim(payload);
  if (text.empty()) return RejectReason::kEmpty;

  // Plain number text and flat objects of numbers are the most common payloads; they skip
  // the JSON parser entirely.
  const char first = text.front();
  if (first == '{') {
    if (flat_fast_path) {
      const size_t start = out.size();
      try {
        if (DecodeFlatNumberObject(topic, text, receive_ts_ms, options, out)) {
          return std::nullopt;
        }
      } catch (...) {
        // Only allocation failure gets here; the full path below decides.
        out.resize(start, rules::Reading{});
      }
    }
  } else if (first != '[' && first != '"') {
    double value = 0;
    switch (ParseNumberText(text, value)) {
      case NumberText::kFinite:
        if (options.max_readings == 0) return RejectReason::kTooManyReadings;
        out.push_back(rules::Reading{std::string(topic), receive_ts_ms, value});
        return std::nullopt;
      case NumberText::kNonFinite:
        return RejectReason::kNonFinite;
      case NumberText::kNotNumber:
        if (const std::optional<double> state = StateWordValue(text)) {
          if (options.max_readings == 0) return RejectReason::kTooManyReadings;
          out.push_back(rules::Reading{std::string(topic), receive_ts_ms, *state});
          return std::nullopt;
        }
        break;  // maybe `null`, else the parser reports not_json
    }
  }
  return DecodeJson(topic, text, receive_ts_ms, options, out);
}

// DecodeReadings, then the length of the sensor ids that paths made: the console refuses
// longer ones, and an alert on one would be dead-lettered.
std::optional<RejectReason> Decode(std::string_view topic, std::string_view payload,
                                   int64_t receive_ts_ms, const DecodeOptions& options,
                                   std::vector<rules::Reading>& out, bool flat_fast_path) {
  const size_t start = out.size();
  std::optional<RejectReason> reject =
      DecodeReadings(topic, payload, receive_ts_ms, options, out, flat_fast_path);
  if (reject) return reject;
  for (size_t i = start; i < out.size(); ++i) {
    if (out[i].sensor.size() > options.max_sensor_id_bytes) {
      out.resize(start);
      return RejectReason::kTopicTooLong;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view ReasonLabel(RejectReason reason) {
  switch (reason) {
    case RejectReason::kTooLarge:
      return "too_large";
    case RejectReason::kEmpty:
      return "empty";
    case RejectReason::kNotJson:
      return "not_json";
    case RejectReason::kNoNumbers:
      return "no_numbers";
    case RejectReason::kNonFinite:
      return "non_finite";
    case RejectReason::kBadTimestamp:
      return "bad_timestamp";
    case RejectReason::kTooDeep:
      return "too_deep";
    case RejectReason::kTooManyReadings:
      return "too_many_readings";
    case RejectReason::kTopicTooLong:
      return "topic_too_long";
  }
  return "unknown";
}

std::optional<RejectReason> DecodePayload(std::string_view topic, std::string_view payload,
                                          int64_t receive_ts_ms, const DecodeOptions& options,
                                          std::vector<rules::Reading>& out) {
  return Decode(topic, payload, receive_ts_ms, options, out, /*flat_fast_path=*/true);
}

namespace internal {

std::optional<RejectReason> DecodePayloadWithParser(std::string_view topic,
                                                    std::string_view payload, int64_t receive_ts_ms,
                                                    const DecodeOptions& options,
                                                    std::vector<rules::Reading>& out) {
  return Decode(topic, payload, receive_ts_ms, options, out, /*flat_fast_path=*/false);
}

}  // namespace internal

std::optional<int64_t> ParseTimestamp(std::string_view text) { return TimestampFromString(text); }

}  // namespace edge::agent
