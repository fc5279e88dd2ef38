#pragma once

// Owning pointers to objects of C libraries (OpenSSL, SQLite, ...), which each come with
// their own release function. Header-only; names no library, so any module may include it.

#include <memory>

namespace edge {

// A deleter that calls `Free` (e.g. EVP_PKEY_free, sqlite3_finalize) on the pointer; what
// `Free` returns is ignored. std::unique_ptr never calls it with nullptr.
template <auto Free>
struct FreeWith {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

// A std::unique_ptr that releases its object with `Free`: `CPtr<BIO, BIO_free>`.
template <typename T, auto Free>
using CPtr = std::unique_ptr<T, FreeWith<Free>>;

}  // namespace edge
