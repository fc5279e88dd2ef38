#pragma once

// Writing a JSON object out again compactly from the events of a streaming parse: the
// payload of a batch item (batch.cc). Private to the console's batch parser.
//
// The result is the same JSON value as sent: members in the order sent, numbers as sent,
// no whitespace, strings escaped only where JSON requires it (as nlohmann's dump() escapes
// them). Where the object's text in the body is already that (the agent sends it so), the
// writer copies it from the body in one piece instead of token by token: it only checks,
// token by token, that the body holds each token where the previous one ended.

#include <cstddef>
#include <string>
#include <string_view>

namespace edge::console {

// Appends `s` as a JSON string, escaped as nlohmann's dump() escapes it.
void AppendQuoted(std::string_view s, std::string* out);

class CompactWriter {
 public:
  // `body` is the whole text being parsed and must outlive the writer. Keys and strings
  // handed over as slices of it, between their quotes, are recognised by their address.
  explicit CompactWriter(std::string_view body) : body_(body) {}

  // The body address of the '{' that follows `key` directly (`"key":{`), or null when `key`
  // is not a slice of the body or the object does not follow at once.
  const char* ObjectAfterKey(std::string_view key) const;

  // Starts an object (its '{' already read) whose compact text goes to `out`, replacing
  // what it held. `open` is the object's '{' in the body (ObjectAfterKey), or null.
  void Begin(std::string* out, const char* open);

  // True between Begin and the Close that ends the object.
  bool writing() const { return out_ != nullptr; }

  // The events inside the object, in document order; only while writing(). Strings and
  // keys are decoded; `literal` is a number as sent, true, false or null. While copying, the
  // common case (the token is in the body where expected) is checked inline.
  void Open(char bracket) {  // '{' or '['
    ++depth_;
    if (const char* at = TokenStart(); at != nullptr && at != BodyEnd() && *at == bracket) {
      Advance(at + 1, /*fresh=*/true);
      return;
    }
    WriteOpen(bracket);
  }
  void Close(char bracket) {  // '}' or ']'; the last one ends the object
    if (copying_ && depth_ > 1 && next_ != BodyEnd() && *next_ == bracket) {
      --depth_;
      Advance(next_ + 1, /*fresh=*/false);
      return;
    }
    WriteClose(bracket);
  }
  void Key(std::string_view key) {  // copied with its quotes and the colon after it
    if (const char* at = TokenStart(); QuotedAt(at, key, 2) && key.data()[key.size() + 1] == ':') {
      Advance(key.data() + key.size() + 2, /*fresh=*/true);
      return;
    }
    WriteKey(key);
  }
  void String(std::string_view text) {
    if (const char* at = TokenStart(); QuotedAt(at, text, 1)) {
      Advance(text.data() + text.size() + 1, /*fresh=*/false);
      return;
    }
    WriteString(text);
  }
  void Literal(std::string_view literal) {
    if (const char* at = TokenStart(); at != nullptr && at == literal.data() &&
                                       static_cast<size_t>(BodyEnd() - at) >= literal.size()) {
      Advance(at + literal.size(), /*fresh=*/false);
      return;
    }
    WriteLiteral(literal);
  }

 private:
  const char* BodyEnd() const { return body_.data() + body_.size(); }
  // Copying: where the next token must start in the body (after the previous one, and after
  // a comma unless it comes first in its container or after a key). Null when not copying
  // or the body holds no comma there.
  const char* TokenStart() const {
    if (!copying_) return nullptr;
    if (fresh_) return next_;
    return next_ != BodyEnd() && *next_ == ',' ? next_ + 1 : nullptr;
  }
  // Whether `text` is the slice of the body between the quote at `at` and its closing
  // quote, with `tail` characters (the closing quote included) in the body after it.
  bool QuotedAt(const char* at, std::string_view text, size_t tail) const {
    return at != nullptr && at + 1 == text.data() && at != BodyEnd() && *at == '"' &&
           static_cast<size_t>(BodyEnd() - text.data()) >= text.size() + tail &&
           text.data()[text.size()] == '"';
  }
  void Advance(const char* next, bool fresh) {
    next_ = next;
    fresh_ = fresh;
  }
  // The events where the token is not where expected, or when no longer copying.
  void WriteOpen(char bracket);
  void WriteClose(char bracket);
  void WriteKey(std::string_view key);
  void WriteString(std::string_view text);
  void WriteLiteral(std::string_view literal);
  // Leaves copying mode: the object so far is copied from the body; writing goes on token
  // by token.
  void StopCopying();
  void Separate();
  // A key or string: a slice of the body between quotes is copied with its quotes; any
  // other is escaped again.
  void AppendString(std::string_view text);
  bool IsBodyString(std::string_view text) const;

  std::string_view body_;
  std::string* out_ = nullptr;   // while writing(): where the object goes
  size_t depth_ = 0;             // open objects and arrays, the object itself included
  bool fresh_ = true;            // the next token comes first in its container or after a key
  bool copying_ = false;         // the object's text in the body is so far its compact form
  const char* start_ = nullptr;  // copying: the object's '{' in the body
  const char* next_ = nullptr;   // copying: where the next token (or its comma) must start
};

}  // namespace edge::console
