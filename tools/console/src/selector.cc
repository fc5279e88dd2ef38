#include "edge/console/selector.h"

#include <algorithm>
#include <cstddef>
#include <string>

namespace edge::console {
namespace {

constexpr size_t kMaxLabelBytes = 63;
constexpr size_t kMaxSelectorBytes = 4096;

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-' || c == '/';
}

bool IsValueChar(char c) { return IsKeyChar(c) && c != '/'; }

// A cursor over the selector text; positions in errors are 1-based columns.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  void SkipSpaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  bool Consume(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }
  std::string_view Take(bool (*pred)(char)) {
    const size_t start = pos_;
    while (pos_ < text_.size() && pred(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  size_t pos() const { return pos_; }
  void set_pos(size_t pos) { pos_ = pos; }

  Status Error(const std::string& what) const {
    return Status::Error("selector column " + std::to_string(pos_ + 1) + ": " + what);
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

Result<std::string> ReadKey(Scanner& s) {
  s.SkipSpaces();
  const std::string_view key = s.Take(IsKeyChar);
  if (key.empty()) {
    return s.AtEnd() ? s.Error("expected a label key")
                     : s.Error(std::string("unexpected '") + s.Peek() + "', expected a key");
  }
  if (key.size() > kMaxLabelBytes) return s.Error("label key longer than 63 characters");
  return std::string(key);
}

Result<std::string> ReadValue(Scanner& s) {
  s.SkipSpaces();
  const std::string_view value = s.Take(IsValueChar);
  if (value.size() > kMaxLabelBytes) return s.Error("label value longer than 63 characters");
  return std::string(value);
}

// "(a, b, c)" after `in` / `notin`.
Result<std::vector<std::string>> ReadSet(Scanner& s) {
  s.SkipSpaces();
  if (!s.Consume("(")) return s.Error("expected '(' after in/notin");
  std::vector<std::string> values;
  for (;;) {
    auto value = ReadValue(s);
    if (!value) return value.status();
    if (value->empty()) return s.Error("expected a value in the set");
    values.push_back(std::move(*value));
    s.SkipSpaces();
    if (s.Consume(")")) break;
    if (!s.Consume(",")) {
      return s.AtEnd() ? s.Error("missing ')'") : s.Error("expected ',' or ')' in the set");
    }
  }
  return values;
}

// A word operator ("in", "notin") must be followed by a space or '('.
bool ConsumeWord(Scanner& s, std::string_view word) {
  const size_t start = s.pos();
  if (!s.Consume(word)) return false;
  if (s.Peek() == ' ' || s.Peek() == '\t' || s.Peek() == '(') return true;
  s.set_pos(start);
  return false;
}

Result<Selector::Requirement> ReadRequirement(Scanner& s) {
  Selector::Requirement r;
  s.SkipSpaces();
  if (s.Consume("!")) {
    auto key = ReadKey(s);
    if (!key) return key.status();
    r.key = std::move(*key);
    r.op = Selector::Op::kNotExists;
    return r;
  }
  auto key = ReadKey(s);
  if (!key) return key.status();
  r.key = std::move(*key);
  s.SkipSpaces();
  if (s.AtEnd() || s.Peek() == ',') {
    r.op = Selector::Op::kExists;
    return r;
  }
  if (s.Consume("!=")) {
    r.op = Selector::Op::kNotEquals;
  } else if (s.Consume("==") || s.Consume("=")) {
    r.op = Selector::Op::kEquals;
  } else if (ConsumeWord(s, "notin")) {
    r.op = Selector::Op::kNotIn;
  } else if (ConsumeWord(s, "in")) {
    r.op = Selector::Op::kIn;
  } else {
    return s.Error("expected =, !=, in, notin, ',' or the end after key \"" + r.key + "\"");
  }
  if (r.op == Selector::Op::kIn || r.op == Selector::Op::kNotIn) {
    auto values = ReadSet(s);
    if (!values) return values.status();
    r.values = std::move(*values);
  } else {
    auto value = ReadValue(s);
    if (!value) return value.status();
    r.values.push_back(std::move(*value));
  }
  return r;
}

std::string Join(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    if (!out.empty()) out += ",";
    out += v;
  }
  return out;
}

}  // namespace

Result<Selector> Selector::Parse(std::string_view text) {
  if (text.size() > kMaxSelectorBytes) return Status::Error("selector longer than 4096 bytes");
  Scanner s(text);
  s.SkipSpaces();
  if (s.AtEnd()) return Status::Error("selector is empty (use \"all\" for every node)");
  {
    const size_t start = s.pos();
    if (s.Consume("all")) {
      s.SkipSpaces();
      if (s.AtEnd()) return Selector();
    }
    s.set_pos(start);
  }
  Selector selector;
  for (;;) {
    auto r = ReadRequirement(s);
    if (!r) return r.status();
    selector.requirements_.push_back(std::move(*r));
    s.SkipSpaces();
    if (s.AtEnd()) break;
    if (!s.Consume(",")) return s.Error(std::string("unexpected '") + s.Peek() + "'");
    s.SkipSpaces();
    if (s.AtEnd()) return s.Error("expected a requirement after ','");
  }
  for (const Requirement& r : selector.requirements_) {
    if (r.key == "all" && r.op == Op::kExists) {
      return Status::Error("selector: \"all\" cannot be combined with other requirements");
    }
  }
  return selector;
}

bool Selector::Matches(const Labels& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(), [&](const Requirement& r) {
    const auto it = labels.find(r.key);
    const bool has = it != labels.end();
    const auto in_values = [&] {
      return has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    };
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        return in_values();
      case Op::kNotEquals:
      case Op::kNotIn:
        return !in_values();
      case Op::kExists:
        return has;
      case Op::kNotExists:
        return !has;
    }
    return false;
  });
}

std::string Selector::ToString() const {
  if (requirements_.empty()) return "all";
  std::string out;
  for (const Requirement& r : requirements_) {
    if (!out.empty()) out += ",";
    switch (r.op) {
      case Op::kEquals:
        out += r.key + "=" + r.values.front();
        break;
      case Op::kNotEquals:
        out += r.key + "!=" + r.values.front();
        break;
      case Op::kIn:
        out += r.key + " in (" + Join(r.values) + ")";
        break;
      case Op::kNotIn:
        out += r.key + " notin (" + Join(r.values) + ")";
        break;
      case Op::kExists:
        out += r.key;
        break;
      case Op::kNotExists:
        out += "!" + r.key;
        break;
    }
  }
  return out;
}

}  // namespace edge::console
