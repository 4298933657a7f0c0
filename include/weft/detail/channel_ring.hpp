// weft::detail::ring_channel<T> — the lock-free flavor of channel<T>: buffered channels of a T
// whose move cannot throw (crossbeam's array flavor).
//
// Values live only in the atomic_ring (atomic_ring.hpp): a send pushes, a receive pops, and
// neither takes a lock. Nothing is handed to a waiter; a waiter is only told to look again.
//
// Invariants:
//   - A value is in the ring or still with its sender, never in flight through a waiter, so
//     neither a close nor a lost wake-up race can lose one.
//   - A waiter in sendq_ (recvq_) found the ring full (empty) and open when it last looked.
//   - Nobody sleeps past a change it could use: the retry handshake (waiter.hpp). After each
//     push, pop or close the changer fences and wakes one waiter of the other side if any is
//     linked; a waiter links, fences and looks at the ring again before it sleeps.
//   - close() marks the ring closed (the tail's mark bit) and wakes every waiter to retry: a
//     sender then finds it closed with its value intact, a receiver drains what is left first.
//
// Locks: mutex_ guards recvq_, sendq_ (the waiters' links) and the close transition, nothing
// else; it is taken only when somebody waits, is woken, or closes. The ring has its own atomics.
#pragma once

#include "atomic_ring.hpp"
#include "channel_flavor.hpp"
#include "spin_mutex.hpp"
#include "task_park.hpp"
#include "wait_limit.hpp"
#include "waiter.hpp"

#include <cstddef>
#include <mutex>
#include <optional>
#include <type_traits>

namespace weft::detail {

template <class T>
class ring_channel {
public:
    explicit ring_channel(std::size_t capacity) : ring_(capacity) {}
    ring_channel(const ring_channel&) = delete;
    ring_channel& operator=(const ring_channel&) = delete;

    std::size_t capacity() const noexcept { return ring_.capacity(); }
    std::size_t size() const noexcept { return ring_.size(); }
    // A woken waiter only retries: it is never done or closed by the wake-up itself.
    static constexpr bool wake_finishes() noexcept { return false; }
    static constexpr bool lock_free() noexcept { return true; }
    spin_mutex& mutex() noexcept { return mutex_; }

    bool close() {
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        if (!ring_.close())
            return false;
        // Everyone retries and finds the ring closed (receivers still drain it first).
        while (waiter* w = recvq_.claim_first())
            wake.add(w, wait_outcome::retry);
        while (waiter* w = sendq_.claim_first())
            wake.add(w, wait_outcome::retry);
        return true;
    }

    // Never blocks: a push (pop), then a wake-up for one waiter of the other side.
    template <class Dir, class Slot>
    attempt try_now(Dir dir, Slot& slot) {
        const attempt a = try_ring(dir, slot);
        if (a == attempt::done)
            after_success(dir);
        return a;
    }

    // A thread's operation: try; spin a little; link a waiter, fence, re-check (a change we
    // raced with is then seen either by us or by the waker); sleep; retry.
    template <class Dir, class Slot, class Deadline, class AboutToPark>
    park_step wait(Dir dir, Slot& slot, const Deadline& deadline, AboutToPark about_to_park) {
        backoff spin;
        for (int round = 0;; ++round) {
            const attempt a = try_now(dir, slot);
            if (a != attempt::not_ready)
                return a == attempt::done ? park_step::done : park_step::closed;
            // A woken waiter retries once; if it keeps losing to newcomers its limit still
            // holds.
            if (round > 0)
                if (const auto passed = limit_passed(deadline))
                    return *passed;
            if (round < 8) { // a peer is often a few hundred nanoseconds away
                spin.snooze();
                continue;
            }
            if (round == 8)
                about_to_park(); // once
            wait_context ctx(thread_parker::current());
            waiter w;
            w.ctx = &ctx;
            if (!link_unless_ready(waiters(dir), mutex_, w, [&] { return ready(dir); }))
                continue;
            if (const park_step s = sleep_limited(ctx, deadline); s != park_step::parked) {
                cancel(w);
                return s;
            }
            // Woken by a waker or close(), already unlinked: retry.
        }
    }

    // One step of a task's operation: done or closed, or the waiter linked (parked), or again
    // when the ring changed while it was being linked.
    template <class Dir, class Slot>
    park_step step(Dir dir, Slot& slot, waiter& w) {
        const attempt a = try_now(dir, slot);
        if (a != attempt::not_ready)
            return a == attempt::done ? park_step::done : park_step::closed;
        return link_unless_ready(waiters(dir), mutex_, w, [&] { return ready(dir); })
                   ? park_step::parked
                   : park_step::again;
    }

    void cancel(waiter& w) noexcept {
        std::lock_guard lock(mutex_);
        unlink(w);
    }

    // --- select (see channel_flavor.hpp) ------------------------------------------------------

    // The ring needs no lock; the wake-up waits for after_success(), when select has let go of
    // the locks (a waker takes mutex_).
    template <class Dir, class Slot>
    attempt try_held(Dir dir, Slot& slot, deferred_wake&) noexcept {
        return try_ring(dir, slot);
    }
    template <class Dir, class Slot>
    void enqueue(Dir dir, Slot&, waiter& w) noexcept {
        waiters(dir).push_back(&w);
    }
    template <class Dir>
    void after_success(Dir dir) {
        wake_one_to_retry(peers(dir), mutex_);
    }
    // Non-consuming, after a seq_cst fence: not full (not empty), or closed.
    bool ready(sending) const noexcept { return ring_.push_ready(); }
    bool ready(receiving) const noexcept { return ring_.pop_ready(); }
    ring_indices indices() const noexcept { return ring_.indices(); }
    bool ready_at(sending, ring_indices at) const noexcept { return ring_.push_ready(at); }
    bool ready_at(receiving, ring_indices at) const noexcept { return ring_.pop_ready(at); }

private:
    attempt try_ring(sending, T& value) noexcept { return ring_.try_push(value); }
    attempt try_ring(receiving, std::optional<T>& out) noexcept { return ring_.try_pop(out); }
    // Where an operation in direction Dir waits, and whom its success may let in.
    wait_queue& waiters(sending) noexcept { return sendq_; }
    wait_queue& waiters(receiving) noexcept { return recvq_; }
    wait_queue& peers(sending) noexcept { return recvq_; }
    wait_queue& peers(receiving) noexcept { return sendq_; }

    spin_mutex mutex_;
    atomic_ring<T> ring_;
    wait_queue recvq_; // receivers that found the ring empty
    wait_queue sendq_; // senders that found it full
};

} // namespace weft::detail
