// weft::detail::atomic_ring — the lock-free buffer of a buffered channel.
//
// A bounded MPMC ring after Dmitry Vyukov's design, with crossbeam's encoding of "closed" as
// a mark bit in the tail index. Invariant: each slot carries a stamp; a slot at index i on lap
// L is free for a producer when stamp == L|i and holds a value for a consumer when
// stamp == (L|i) + 1. A producer reserves a slot by CAS on tail, writes, then publishes with a
// release store of the stamp; a consumer reserves by CAS on head, reads, then frees the slot
// for the next lap. Because close sets the mark bit in tail, a push either reserved its slot
// before close (and the value will be received) or sees the mark and fails: nothing is lost.
//
// Requires a nothrow move: a reserved slot must be filled. Channels of other types keep the
// locked ring_buffer.
#pragma once

#include "spin_mutex.hpp"

#include <atomic>
#include <bit>
#include <cstddef>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>

namespace weft::detail {

// What one attempt at a channel operation found: the ring's answer, and the locked flavor's
// too (channel_locked.hpp).
enum class attempt { done, not_ready, closed };

// A ring's two indices read one after the other: what select's double collect compares (see
// selector::confirmed_none_ready in select.hpp). Neither index ever takes a value twice.
struct ring_indices {
    std::size_t head = 0;
    std::size_t tail = 0;
    bool operator==(const ring_indices&) const = default;
};

template <class T>
class atomic_ring {
    static_assert(std::is_nothrow_move_constructible_v<T>);

public:
    // The largest capacity whose index, lap and mark bit fit in one std::size_t.
    static constexpr std::size_t max_capacity() noexcept {
        return std::numeric_limits<std::size_t>::max() / 8;
    }

    explicit atomic_ring(std::size_t capacity)
        : capacity_(checked(capacity)), mark_bit_(std::bit_ceil(capacity + 1)),
          one_lap_(mark_bit_ * 2), slots_(capacity > 0 ? new slot[capacity] : nullptr) {
        // relaxed: the ring is not shared until the channel's constructor has returned.
        for (std::size_t i = 0; i < capacity_; ++i)
            slots_[i].stamp.store(i, std::memory_order_relaxed);
    }
    atomic_ring(const atomic_ring&) = delete;
    atomic_ring& operator=(const atomic_ring&) = delete;
    ~atomic_ring() {
        if (capacity_ == 0)
            return; // no slots to drain
        std::optional<T> drop;
        while (try_pop(drop) == attempt::done)
            drop.reset();
    }

    std::size_t capacity() const noexcept { return capacity_; }

    // Moves `value` into a free slot; not_ready when full, closed when closed (value kept).
    attempt try_push(T& value) noexcept {
        backoff wait;
        // relaxed: a hint; the slot's stamp (acquire) and the CAS decide.
        std::size_t tail = tail_.load(std::memory_order_relaxed);
        for (;;) {
            if (tail & mark_bit_)
                return attempt::closed;
            const std::size_t index = tail & (mark_bit_ - 1);
            const std::size_t lap = tail & ~(one_lap_ - 1);
            const std::size_t next = index + 1 < capacity_ ? tail + 1 : lap + one_lap_;
            slot& s = slots_[index];
            // acquire: pairs with the consumer's release that freed this slot, so our write
            // cannot overtake its read of the old value.
            const std::size_t stamp = s.stamp.load(std::memory_order_acquire);
            if (stamp == tail) {
                // seq_cst: not needed by the ring itself (RMWs on tail_ are totally ordered with
                // close()'s fetch_or whatever their order); the channel's waiter handshake pairs
                // its fences with this write, and seq_cst keeps that obvious. On failure,
                // reload (relaxed: a hint again).
                if (tail_.compare_exchange_weak(tail, next, std::memory_order_seq_cst,
                                                std::memory_order_relaxed)) {
                    // No T lives here yet: construct on the raw storage (launder needs one).
                    std::construct_at(reinterpret_cast<T*>(s.storage), std::move(value));
                    // release: publishes the value to the consumer's acquire of the stamp.
                    s.stamp.store(tail + 1, std::memory_order_release);
                    return attempt::done;
                }
                wait.snooze();
            } else if (stamp + one_lap_ == tail + 1) {
                // The slot still holds last lap's value: full, unless a consumer just moved on.
                std::atomic_thread_fence(std::memory_order_seq_cst);
                // relaxed: ordered by the fence above.
                if (head_.load(std::memory_order_relaxed) + one_lap_ == tail)
                    return attempt::not_ready;
                wait.snooze();
                tail = tail_.load(std::memory_order_relaxed);
            } else {
                // Another producer reserved this slot and is mid-write; wait for it.
                wait.snooze();
                tail = tail_.load(std::memory_order_relaxed);
            }
        }
    }

    // Moves the oldest value into `out`; not_ready when empty, closed when closed and drained.
    attempt try_pop(std::optional<T>& out) noexcept {
        backoff wait;
        // relaxed: a hint; the slot's stamp (acquire) and the CAS decide.
        std::size_t head = head_.load(std::memory_order_relaxed);
        for (;;) {
            const std::size_t index = head & (mark_bit_ - 1);
            const std::size_t lap = head & ~(one_lap_ - 1);
            slot& s = slots_[index];
            // acquire: pairs with the producer's release that published the value.
            const std::size_t stamp = s.stamp.load(std::memory_order_acquire);
            if (stamp == head + 1) {
                const std::size_t next = index + 1 < capacity_ ? head + 1 : lap + one_lap_;
                // seq_cst: as for tail_ in try_push (the waiter handshake); failure reloads.
                if (head_.compare_exchange_weak(head, next, std::memory_order_seq_cst,
                                                std::memory_order_relaxed)) {
                    out.emplace(std::move(*s.value()));
                    std::destroy_at(s.value());
                    // release: hands the free slot to the producer of the next lap.
                    s.stamp.store(head + one_lap_, std::memory_order_release);
                    return attempt::done;
                }
                wait.snooze();
            } else if (stamp == head) {
                // Nothing here yet: empty, unless a producer just reserved the slot.
                std::atomic_thread_fence(std::memory_order_seq_cst);
                // relaxed: ordered by the fence above.
                const std::size_t tail = tail_.load(std::memory_order_relaxed);
                if ((tail & ~mark_bit_) == head)
                    return tail & mark_bit_ ? attempt::closed : attempt::not_ready;
                wait.snooze();
                head = head_.load(std::memory_order_relaxed);
            } else {
                // A consumer of the previous lap is mid-read, or a producer mid-write.
                wait.snooze();
                head = head_.load(std::memory_order_relaxed);
            }
        }
    }

    // Marks the ring closed: later pushes fail; values already pushed can still be popped.
    // False if it was closed already.
    bool close() noexcept {
        // seq_cst: ordered against every push's tail CAS, so each push is before or after it.
        return (tail_.fetch_or(mark_bit_, std::memory_order_seq_cst) & mark_bit_) == 0;
    }

    // Non-consuming checks for the waiter handshake (called after a seq_cst fence): true if a
    // pop would not find the ring empty-and-open / a push would not find it full-and-open.
    bool pop_ready() const noexcept {
        // seq_cst loads: read after the caller's fence, totally ordered with the CASes.
        const std::size_t tail = tail_.load(std::memory_order_seq_cst);
        return (tail & mark_bit_) || (tail & ~mark_bit_) != head_.load(std::memory_order_seq_cst);
    }
    bool push_ready() const noexcept {
        const std::size_t tail = tail_.load(std::memory_order_seq_cst); // seq_cst: as above
        return (tail & mark_bit_) ||
               head_.load(std::memory_order_seq_cst) + one_lap_ != (tail & ~mark_bit_);
    }

    // The indices, for a double collect. Both change only by seq_cst RMWs (the CASes and
    // close()'s fetch_or) and only upwards, so the same value read twice means no push, pop or
    // close happened in between. seq_cst loads: they take their place in that total order.
    ring_indices indices() const noexcept {
        return {head_.load(std::memory_order_seq_cst), tail_.load(std::memory_order_seq_cst)};
    }
    // pop_ready() / push_ready() as of the instant `at` was read.
    bool pop_ready(ring_indices at) const noexcept {
        return (at.tail & mark_bit_) || (at.tail & ~mark_bit_) != at.head;
    }
    bool push_ready(ring_indices at) const noexcept {
        return (at.tail & mark_bit_) || at.head + one_lap_ != (at.tail & ~mark_bit_);
    }

    // Values buffered right now; a snapshot.
    std::size_t size() const noexcept {
        for (;;) {
            // seq_cst: a consistent pair is one where tail did not move while we read head.
            const std::size_t tail = tail_.load(std::memory_order_seq_cst);
            const std::size_t head = head_.load(std::memory_order_seq_cst);
            if (tail_.load(std::memory_order_seq_cst) != tail)
                continue;
            const std::size_t hix = head & (mark_bit_ - 1);
            const std::size_t tix = tail & (mark_bit_ - 1);
            if (hix < tix)
                return tix - hix;
            if (hix > tix)
                return capacity_ - hix + tix;
            return (tail & ~mark_bit_) == head ? 0 : capacity_;
        }
    }

private:
    static std::size_t checked(std::size_t capacity) {
        if (capacity > max_capacity())
            throw std::length_error("weft: channel capacity too large");
        return capacity;
    }

    struct slot {
        std::atomic<std::size_t> stamp;
        alignas(T) unsigned char storage[sizeof(T)];
        T* value() noexcept { return std::launder(reinterpret_cast<T*>(storage)); }
    };

    // Producers and consumers each get their own cache line for their index.
    alignas(64) std::atomic<std::size_t> head_{0};
    alignas(64) std::atomic<std::size_t> tail_{0};
    alignas(64) const std::size_t capacity_;
    const std::size_t mark_bit_;
    const std::size_t one_lap_;
    std::unique_ptr<slot[]> slots_;
};

} // namespace weft::detail
