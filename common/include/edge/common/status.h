#pragma once

// Expected failures as values. Input from the network or from files is parsed into a
// Result; a failed Result carries a code callers branch on and a human-readable message
// (for logs and people, never for branching), and never throws.

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace edge {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kError,            // a failure no caller needs to tell apart from others
    kNotFound,         // what was asked for does not exist
    kCorruption,       // stored data is damaged
    kIOError,          // the disk or the operating system failed
    kFull,             // out of space (a disk, a size bound)
    kInvalidArgument,  // the input is malformed or out of range
    kUnavailable,      // a peer or resource is not there now; trying later may work
  };

  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(Code::kError, std::move(message)); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  static Status Full(std::string m) { return Status(Code::kFull, std::move(m)); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  // A failure of `code` (not kOk) with `message`.
  static Status WithCode(Code code, std::string message) {
    assert(code != Code::kOk);
    return Status(code, std::move(message));
  }

  bool ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return ok(); }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsFull() const { return code_ == Code::kFull; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  const std::string& message() const { return message_; }
  // The same failure with `context` put before its message ("begin: " + message); an OK
  // status stays OK.
  Status Annotate(std::string_view context) const {
    if (ok()) return *this;
    return Status(code_, std::string(context) + message_);
  }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or a failed Status. Accessing value() of a failed Result is a
// programming error (asserted in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status error) : v_(std::move(error)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The error; for an OK result an OK Status.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  const std::string& error() const {
    static const std::string kEmpty;
    return ok() ? kEmpty : std::get<Status>(v_).message();
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace edge
