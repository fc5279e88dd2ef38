#include "batch_compact.h"

#include <cstring>
#include <functional>

namespace edge::console {
namespace {

// Room for a typical payload written token by token, so that it seldom grows the string.
constexpr size_t kWriteReserve = 512;

}  // namespace

void AppendQuoted(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr std::string_view kShort = "\"\\\b\f\n\r\t";  // escaped as \ and a letter
  static constexpr std::string_view kLetter = "\"\\bfnrt";
  const auto plain = [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c != '"' && c != '\\';
  };
  out->push_back('"');
  size_t i = 0;
  while (true) {
    size_t run = i;
    while (run < s.size() && plain(s[run])) ++run;
    out->append(s.data() + i, run - i);
    if (run == s.size()) break;
    const char ch = s[run];
    i = run + 1;
    out->push_back('\\');
    if (const size_t k = kShort.find(ch); k != std::string_view::npos) {
      out->push_back(kLetter[k]);
    } else {
      out->append("u00");
      out->push_back(kHex[static_cast<unsigned char>(ch) >> 4]);
      out->push_back(kHex[ch & 0xF]);
    }
  }
  out->push_back('"');
}

const char* CompactWriter::ObjectAfterKey(std::string_view key) const {
  if (!IsBodyString(key)) return nullptr;
  const char* close = key.data() + key.size();  // the key's closing quote
  if (body_.data() + body_.size() - close < 3 || close[1] != ':' || close[2] != '{') {
    return nullptr;
  }
  return close + 2;
}

void CompactWriter::Begin(std::string* out, const char* open) {
  out_ = out;
  depth_ = 1;
  fresh_ = true;
  copying_ = open != nullptr;
  if (copying_) {
    start_ = open;
    next_ = open + 1;
  } else {
    out_->clear();
    out_->reserve(kWriteReserve);
    out_->push_back('{');
  }
}

void CompactWriter::WriteOpen(char bracket) {
  StopCopying();
  Separate();
  out_->push_back(bracket);
  fresh_ = true;
}

void CompactWriter::WriteClose(char bracket) {
  if (copying_ && next_ != BodyEnd() && *next_ == bracket) {
    ++next_;
  } else {
    StopCopying();
    out_->push_back(bracket);
  }
  fresh_ = false;
  if (--depth_ > 0) return;
  if (copying_) out_->assign(start_, static_cast<size_t>(next_ - start_));
  copying_ = false;
  out_ = nullptr;
}

void CompactWriter::WriteKey(std::string_view key) {
  StopCopying();
  Separate();
  AppendString(key);
  out_->push_back(':');
  fresh_ = true;
}

void CompactWriter::WriteString(std::string_view text) {
  StopCopying();
  Separate();
  AppendString(text);
  fresh_ = false;
}

void CompactWriter::WriteLiteral(std::string_view literal) {
  // true, false, null or a number put together from parts: compared with the body.
  if (const char* at = TokenStart(); at != nullptr &&
                                     static_cast<size_t>(BodyEnd() - at) >= literal.size() &&
                                     std::memcmp(at, literal.data(), literal.size()) == 0) {
    Advance(at + literal.size(), /*fresh=*/false);
    return;
  }
  StopCopying();
  Separate();
  out_->append(literal);
  fresh_ = false;
}

void CompactWriter::StopCopying() {
  if (!copying_) return;
  copying_ = false;
  out_->clear();
  out_->reserve(kWriteReserve);
  out_->assign(start_, static_cast<size_t>(next_ - start_));
}

void CompactWriter::Separate() {
  if (!fresh_) out_->push_back(',');
}

void CompactWriter::AppendString(std::string_view text) {
  if (IsBodyString(text)) {
    out_->append(text.data() - 1, text.size() + 2);
  } else {
    AppendQuoted(text, out_);
  }
}

bool CompactWriter::IsBodyString(std::string_view text) const {
  const std::less<const char*> before;
  const char* open = text.data() - 1;
  const char* close = text.data() + text.size();
  return !before(open, body_.data()) && before(close, body_.data() + body_.size()) &&
         *open == '"' && *close == '"';
}

}  // namespace edge::console
