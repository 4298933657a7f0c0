// weft::detail::work_deque — one scheduler worker's queue of runnable tasks.
//
// A bounded Chase-Lev deque ("Dynamic Circular Work-Stealing Deque", 2005) with the orderings
// of Lê, Pop, Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
// Models" (PPoPP 2013). The owning worker pushes and pops at the bottom (LIFO: the task it just
// made is hot in its cache); any thread steals from the top (FIFO: the oldest task, likely the
// root of more work). Fixed capacity: when full, push fails and the scheduler overflows to its
// injection queue, as Tokio's local queue does.
//
// Invariant: the tasks are at indices [top_, bottom_), index i in slot i & mask_. Only the
// owner writes bottom_; top_ only grows, and only by a CAS from i to i + 1, which is how a
// thief, or the owner popping the last task, takes the task at i: whoever moves top_ off i
// owns it. Outside pop, 0 <= bottom_ - top_ <= capacity. Indices grow without bound and wrap
// modulo 2^64; only their difference, read as signed, means anything.
//
// Two handshakes carry it:
//  - Publication. Every owner store to bottom_ is a release and a thief's load of it an
//    acquire, so a thief that sees index i in range sees the slot and everything the owner
//    wrote before pushing it (the task's fields). Lê et al. use a release fence before a
//    relaxed store; we use release stores instead because ThreadSanitizer does not model
//    fences, and make pop's stores release too because since C++20 a later relaxed store no
//    longer continues a release sequence.
//  - The last task. pop stores bottom_, then a seq_cst fence, then loads top_; steal loads
//    top_, then a seq_cst fence, then loads bottom_. Either the owner sees a thief's move of
//    top_ or the thief sees the owner's smaller bottom_, never neither; when both still reach
//    for the same (last) task, the CAS on top_ picks one.
//
// T is a pointer-like handle copied in and out of std::atomic<T> slots: a thief's speculative
// read of a slot the owner is overwriting is then a stale value whose CAS fails, not a data
// race. The deque does not own what the handles point to.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

namespace weft::detail {

// What a steal found.
enum class steal_status {
    stolen,    // `value` is ours
    empty,     // nothing to take
    lost_race, // another thief or the owner took the task we reached for; a retry may succeed
};

template <class T>
struct steal_result {
    steal_status status = steal_status::empty;
    T value{}; // meaningful only when status == stolen

    explicit operator bool() const noexcept { return status == steal_status::stolen; }
};

template <class T>
class work_deque {
    static_assert(std::is_trivially_copyable_v<T>, "work_deque holds trivially copyable handles");
    static_assert(std::atomic<T>::is_always_lock_free,
                  "work_deque slots must be lock-free atomics");

public:
    // Room for the signed difference of two indices with a bit to spare.
    static constexpr std::size_t max_capacity() noexcept {
        return std::size_t{1} << (std::numeric_limits<std::size_t>::digits - 2);
    }

    // Capacity is rounded up to a power of two (0 becomes 1) so an index maps to its slot with
    // a mask. Throws std::length_error above max_capacity().
    explicit work_deque(std::size_t capacity = 256)
        : capacity_(rounded(capacity)), mask_(capacity_ - 1),
          slots_(std::make_unique<std::atomic<T>[]>(capacity_)) {}
    work_deque(const work_deque&) = delete;
    work_deque& operator=(const work_deque&) = delete;

    std::size_t capacity() const noexcept { return capacity_; }

    // Owner only. Adds `v` at the bottom; false when full (possibly just after a steal freed a
    // slot, which is harmless: the caller overflows elsewhere).
    bool push(T v) noexcept {
        // relaxed: only the owner writes bottom_.
        const std::size_t b = bottom_.load(std::memory_order_relaxed);
        // acquire: pairs with the seq_cst CAS that moved top_ here, so the taker's read of a
        // slot happens before our overwrite of it below and cannot see the new value.
        const std::size_t t = top_.load(std::memory_order_acquire);
        if (b - t >= capacity_)
            return false;
        // relaxed: published by the release store of bottom_ just below.
        slots_[b & mask_].store(v, std::memory_order_relaxed);
        // release: publishes the slot, and what the owner wrote to the task before pushing it,
        // to the acquire load of bottom_ in steal.
        bottom_.store(b + 1, std::memory_order_release);
        return true;
    }

    // Owner only. Takes the newest task; nullopt when empty, or when a thief took the last
    // task first.
    std::optional<T> pop() noexcept {
        // relaxed: only the owner writes bottom_.
        const std::size_t b = bottom_.load(std::memory_order_relaxed) - 1;
        // release: every store to bottom_ is (see the invariant); thieves now stop short of b.
        bottom_.store(b, std::memory_order_release);
        // seq_cst: pairs with the fence in steal; our store above and a thief's CAS on top_
        // cannot both go unseen by the other side.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        // relaxed: ordered after our store of bottom_ by the fence.
        std::size_t t = top_.load(std::memory_order_relaxed);
        const auto others = static_cast<std::ptrdiff_t>(b - t); // tasks above the one at b
        if (others < 0) {
            // Empty (top_ == old bottom_): put bottom_ back. release: as every bottom_ store.
            bottom_.store(b + 1, std::memory_order_release);
            return std::nullopt;
        }
        // relaxed: the owner wrote this slot itself.
        const T v = slots_[b & mask_].load(std::memory_order_relaxed);
        if (others > 0)
            return v; // thieves stop at b - 1 at the latest: no race for b
        // The last task: a thief that read bottom_ before our store may be reaching for it.
        // seq_cst: the same total order as the thieves' CASes on top_; the failure load is
        // relaxed because we then read nothing a thief wrote.
        const bool won = top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                                      std::memory_order_relaxed);
        // Empty either way: top_ is now b + 1. release: as every bottom_ store.
        bottom_.store(b + 1, std::memory_order_release);
        if (!won)
            return std::nullopt;
        return v;
    }

    // Any thread. Takes the oldest task; `empty` when there is none, `lost_race` when another
    // thief or the owner took it between our reads and our CAS.
    steal_result<T> steal() noexcept {
        // acquire: pairs with the seq_cst CAS that moved top_ to t, so the bottom_ we read below
        // is no older than the one that taker saw.
        std::size_t t = top_.load(std::memory_order_acquire);
        // seq_cst: pairs with the fence in pop (the last-task handshake in the invariant).
        std::atomic_thread_fence(std::memory_order_seq_cst);
        // acquire: pairs with the owner's release stores of bottom_; makes slot t and the task
        // it points to visible.
        const std::size_t b = bottom_.load(std::memory_order_acquire);
        if (static_cast<std::ptrdiff_t>(b - t) <= 0)
            return {steal_status::empty, T{}};
        // relaxed: made visible by the acquire of bottom_. If the owner has since reused the
        // slot, top_ has moved past t and the CAS below fails, discarding this read.
        const T v = slots_[t & mask_].load(std::memory_order_relaxed);
        // seq_cst: claims index t in the one total order shared with other thieves and the
        // owner's last-task CAS; its release half is what push's acquire of top_ pairs with.
        // Failure: relaxed, we return without reading anything else.
        if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                          std::memory_order_relaxed))
            return {steal_status::lost_race, T{}};
        return {steal_status::stolen, v};
    }

    // Tasks queued, as of some recent moment; exact only when no other thread is active.
    std::size_t size_hint() const noexcept {
        // relaxed: an estimate for scheduling heuristics (which victim to try), never a claim.
        const std::size_t b = bottom_.load(std::memory_order_relaxed);
        const std::size_t t = top_.load(std::memory_order_relaxed);
        const auto n = static_cast<std::ptrdiff_t>(b - t);
        if (n <= 0)
            return 0; // mid-pop, or a stale bottom_
        return static_cast<std::size_t>(n) < capacity_ ? static_cast<std::size_t>(n) : capacity_;
    }

private:
    static std::size_t rounded(std::size_t capacity) {
        if (capacity > max_capacity())
            throw std::length_error("weft: work_deque capacity too large");
        return std::bit_ceil(capacity);
    }

    // Thieves CAS top_ and the owner stores bottom_: a cache line each.
    alignas(64) std::atomic<std::size_t> top_{0};
    alignas(64) std::atomic<std::size_t> bottom_{0};
    alignas(64) const std::size_t capacity_;
    const std::size_t mask_;
    std::unique_ptr<std::atomic<T>[]> slots_;
};

} // namespace weft::detail
