#pragma once

// A bounded multi-producer, single-consumer queue between the MQTT callback thread and the
// pipeline thread.
//
// Bounded twice: by count (`capacity` items) and by bytes (`max_bytes`, the sum of
// Bytes{}(item) over queued items; with the default ZeroBytes only the count binds). When
// a push would pass either bound, Push() drops the OLDEST elements until both hold (one item
// larger than max_bytes alone is still queued, as the only one) and reports them, so that
// ingest never blocks the MQTT client and the newest readings win; the caller counts the
// drops.
// PushBatch() is a run of Push() calls under one lock with at most one wake-up.
//
// Spent items: the consumer may hand back a batch it is done with (Recycle); PushBatch()
// then leaves them in the producer's emptied slots, so that their buffers (string capacity,
// say) are reused rather than freed on one thread and allocated again on the other. At most
// one batch is kept.
// Thread-safe. Close() wakes the consumer; after Close() pushes are refused and PopBatch()
// returns what is left, then nothing.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

namespace edge::agent {

// The weight of an item that only the count bounds.
struct ZeroBytes {
  template <typename T>
  size_t operator()(const T& /*item*/) const {
    return 0;
  }
};

template <typename T, typename Bytes = ZeroBytes>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity, size_t max_bytes = SIZE_MAX)
      : capacity_(capacity == 0 ? 1 : capacity), max_bytes_(max_bytes) {}

  enum class PushResult { kOk, kDroppedOldest, kClosed };

  PushResult Push(T&& item) {
    const PushBatchResult r = PushBatch(std::span<T>(&item, 1));
    if (r.closed) return PushResult::kClosed;
    return r.dropped_oldest > 0 ? PushResult::kDroppedOldest : PushResult::kOk;
  }

  struct PushBatchResult {
    size_t dropped_oldest = 0;  // items dropped to make room, as Push() one by one would
    bool closed = false;        // the queue is closed: nothing was pushed
  };

  // Pushes every item of `items` in order (moving from them) as that many Push() calls
  // would: when they do not all fit, the oldest queued items go first, then the batch's own
  // oldest. One lock and at most one wake-up for the whole batch. Pushed items are replaced
  // by spent ones while there are any (else left moved-from).
  PushBatchResult PushBatch(std::span<T> items) {
    PushBatchResult result;
    if (items.empty()) return result;
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (closed_) {
        result.closed = true;
        return result;
      }
      // Items the count bound would drop at once are skipped without being queued.
      const size_t total = items_.size() + items.size();
      if (total > capacity_) {
        const size_t over = total - capacity_;
        const size_t from_queue = std::min(over, items_.size());
        for (size_t i = 0; i < from_queue; ++i) bytes_ -= Bytes{}(items_[i]);
        items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(from_queue));
        items = items.subspan(over - from_queue);
        result.dropped_oldest = over;
      }
      for (T& item : items) {
        bytes_ += Bytes{}(item);
        items_.push_back(std::move(item));
        while (bytes_ > max_bytes_ && items_.size() > 1) {
          bytes_ -= Bytes{}(items_.front());
          items_.pop_front();
          ++result.dropped_oldest;
        }
        if (!spares_.empty()) {
          item = std::move(spares_.back());
          spares_.pop_back();
        }
      }
      wake = waiting_;
      waiting_ = false;  // one wake-up is enough: the consumer takes everything there is
    }
    // Signal only a consumer that is asleep: under load it is busy with its last batch and
    // finds these items when it comes back, so a flood costs no futex call per message.
    if (wake) cv_.notify_one();
    return result;
  }

  // Moves up to `max` items into `out` (cleared first). Waits up to `timeout` for the first
  // item. Returns false once the queue is closed and empty.
  bool PopBatch(std::vector<T>& out, size_t max, std::chrono::milliseconds timeout) {
    out.clear();
    std::unique_lock lock(mu_);
    WaitLocked(lock, timeout);
    while (!items_.empty() && out.size() < max) {
      bytes_ -= Bytes{}(items_.front());
      out.push_back(std::move(items_.front()));
      items_.pop_front();
    }

    return !(closed_ && out.empty());
  }

  // Consumer: waits up to `timeout` for an item (or Close()) without taking any.
  void WaitForItems(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    WaitLocked(lock, timeout);
  }

  // Consumer: keeps `spent` (its items no longer needed) for PushBatch() to hand out when no
  // spent batch is kept already; `spent` is left empty either way.
  void Recycle(std::vector<T>& spent) {
    {
      std::lock_guard lock(mu_);
      if (spares_.empty()) spares_.swap(spent);
    }
    spent.clear();
  }

  // Ends the consumer's current or next wait (WaitForItems, PopBatch) once, as an item
  // would; for a consumer whose deadline moved earlier. Thread-safe.
  void Wake() {
    std::lock_guard lock(mu_);
    woken_ = true;
    if (waiting_) cv_.notify_one();
  }

  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  size_t capacity() const { return capacity_; }
  size_t max_bytes() const { return max_bytes_; }
  // Bytes{} of the queued items.
  size_t bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  // With mu_ held: waits up to `timeout` (none when 0) until an item or Close() comes.
  void WaitLocked(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds timeout) {
    if (!closed_ && items_.empty() && !woken_ && timeout.count() > 0) {
      waiting_ = true;
      cv_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty() || woken_; });
      waiting_ = false;
    }
    woken_ = false;
  }

  const size_t capacity_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;    // guarded by mu_
  size_t bytes_ = 0;       // guarded by mu_: Bytes{} of items_
  std::vector<T> spares_;  // guarded by mu_: spent items, taken from the back
  bool closed_ = false;    // guarded by mu_
  bool waiting_ = false;   // guarded by mu_: the consumer sleeps in PopBatch
  bool woken_ = false;     // guarded by mu_: Wake() came, the next wait ends at once
};

}  // namespace edge::agent
