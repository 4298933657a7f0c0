// weft::detail::timer_queue — a scheduler's own timers (Go's per-P timer heaps): the sleeps and
// deadlines of its tasks, fired by its workers instead of the process's timer thread.
//
// Who fires them (scheduler.hpp): the idle worker blocked in epoll_wait uses the earliest
// deadline as its timeout and fires what is due when it returns; a busy worker fires what is due
// on its 61-task beat. Fired timers wake their tasks onto the firing worker's own queues, so a
// burst of expiries costs no injection-queue lock and no cross-thread wake-up per task (the old
// path: timer thread -> injection queue -> futex, which made 100k sleeps wake 60-200 ms late).
//
// Invariants:
//  1. A timer_entry lives in its owner's frame (a deadline_claim). `mutex_` guards the heap and
//     each queued entry's `index_`; an entry is in the heap exactly while its state is queued.
//  2. run_due() takes due entries out under the lock (state firing), calls them outside it, and
//     then stores done; remove() of an entry that is firing waits for done, so the call never
//     touches an entry whose owner has moved on (the same contract as timer_service's
//     cancel_and_wait and cancel_source's remove).
//  3. `earliest_ns_` is the heap's top deadline (or "none"), written under the lock and read
//     without it as a hint: a stale value only makes a worker look once more or later, and a new
//     earliest deadline is reported by add() so the caller can wake the poller.
#pragma once

#include "spin_mutex.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace weft::detail {

class timer_entry {
public:
    using clock = std::chrono::steady_clock;

    timer_entry(clock::time_point when, void (*fire)(timer_entry&) noexcept) noexcept
        : when_(when), fire_(fire) {}
    timer_entry(const timer_entry&) = delete;
    timer_entry& operator=(const timer_entry&) = delete;

    clock::time_point when() const noexcept { return when_; }

private:
    friend class timer_queue;
    static constexpr int k_idle = 0, k_queued = 1, k_firing = 2, k_done = 3;
    static constexpr std::uint32_t k_no_index = std::numeric_limits<std::uint32_t>::max();

    clock::time_point when_;
    void (*fire_)(timer_entry&) noexcept;
    std::uint64_t sequence_ = 0;       // ties in deadline fire in the order they were added
    std::uint32_t index_ = k_no_index; // in the heap; under the queue's mutex
    std::atomic<int> state_{k_idle};
};

class timer_queue {
public:
    using clock = std::chrono::steady_clock;

    timer_queue() = default;
    timer_queue(const timer_queue&) = delete;
    timer_queue& operator=(const timer_queue&) = delete;

    // Queues `e`. True when it is now the earliest deadline (the caller wakes the poller, whose
    // timeout may be longer).
    bool add(timer_entry& e) {
        std::lock_guard lock(mutex_);
        e.sequence_ = next_sequence_++;
        // relaxed: the state is read under the lock, or after an acquire in remove().
        e.state_.store(timer_entry::k_queued, std::memory_order_relaxed);
        e.index_ = static_cast<std::uint32_t>(heap_.size());
        heap_.push_back(&e);
        sift_up(e.index_);
        publish_earliest();
        return heap_.front() == &e;
    }

    // Takes `e` out if it has not fired; if it is firing right now, waits until its call has
    // returned. After this the queue never touches `e`.
    void remove(timer_entry& e) noexcept {
        {
            std::lock_guard lock(mutex_);
            if (e.state_.load(std::memory_order_relaxed) == timer_entry::k_queued) {
                erase(e.index_); // relaxed above: the state changes only under the lock
                e.state_.store(timer_entry::k_done, std::memory_order_relaxed);
                publish_earliest();
                return;
            }
        }
        // acquire: pairs with run_due's release store of done, after the call.
        while (e.state_.load(std::memory_order_acquire) == timer_entry::k_firing)
            std::this_thread::yield();
    }

    // Fires every entry due at `now`, outside the lock, in deadline order within each batch.
    // Returns how many fired.
    std::size_t run_due(clock::time_point now) {
        if (!due(now))
            return 0;
        std::size_t fired = 0;
        timer_entry* batch[64];
        for (;;) {
            std::size_t n = 0;
            {
                std::lock_guard lock(mutex_);
                while (n < 64 && !heap_.empty() && heap_.front()->when_ <= now) {
                    timer_entry* e = heap_.front();
                    erase(0);
                    // relaxed: remove() reads it under the lock; its wait reads done (acquire).
                    e->state_.store(timer_entry::k_firing, std::memory_order_relaxed);
                    batch[n++] = e;
                }
                publish_earliest();
            }
            for (std::size_t i = 0; i < n; ++i) {
                timer_entry* e = batch[i];
                e->fire_(*e);
                // release: the call's effects happen before remove() returns; last touch.
                e->state_.store(timer_entry::k_done, std::memory_order_release);
            }
            fired += n;
            if (n < 64)
                return fired;
        }
    }

    // Whether something is due at `now` (a hint, see invariant 3).
    bool due(clock::time_point now) const noexcept {
        // relaxed: a hint.
        return earliest_ns_.load(std::memory_order_relaxed) <= ns_of(now);
    }

    // The earliest deadline, if any (a hint).
    std::optional<clock::time_point> earliest() const noexcept {
        // relaxed: a hint.
        const std::int64_t ns = earliest_ns_.load(std::memory_order_relaxed);
        if (ns == k_none)
            return std::nullopt;
        return clock::time_point(std::chrono::nanoseconds(ns));
    }

    bool empty() const noexcept { return !earliest().has_value(); }

private:
    static constexpr std::int64_t k_none = std::numeric_limits<std::int64_t>::max();

    static std::int64_t ns_of(clock::time_point t) noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    }

    static bool before(const timer_entry* a, const timer_entry* b) noexcept {
        return a->when_ != b->when_ ? a->when_ < b->when_ : a->sequence_ < b->sequence_;
    }

    // Under mutex_.
    void publish_earliest() noexcept {
        // relaxed: a hint (invariant 3).
        earliest_ns_.store(heap_.empty() ? k_none : ns_of(heap_.front()->when_),
                           std::memory_order_relaxed);
    }

    void place(std::size_t i, timer_entry* e) noexcept {
        heap_[i] = e;
        e->index_ = static_cast<std::uint32_t>(i);
    }

    void sift_up(std::size_t i) noexcept {
        timer_entry* e = heap_[i];
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!before(e, heap_[parent]))
                break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, e);
    }

    void sift_down(std::size_t i) noexcept {
        timer_entry* e = heap_[i];
        const std::size_t n = heap_.size();
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= n)
                break;
            if (child + 1 < n && before(heap_[child + 1], heap_[child]))
                ++child;
            if (!before(heap_[child], e))
                break;
            place(i, heap_[child]);
            i = child;
        }
        place(i, e);
    }

    // Removes the entry at heap position i.
    void erase(std::size_t i) noexcept {
        timer_entry* gone = heap_[i];
        gone->index_ = timer_entry::k_no_index;
        timer_entry* last = heap_.back();
        heap_.pop_back();
        if (i == heap_.size())
            return;
        place(i, last);
        if (i > 0 && before(last, heap_[(i - 1) / 2]))
            sift_up(i);
        else
            sift_down(i);
    }

    spin_mutex mutex_;
    std::vector<timer_entry*> heap_;
    std::uint64_t next_sequence_ = 0;
    std::atomic<std::int64_t> earliest_ns_{k_none};
};

} // namespace weft::detail
