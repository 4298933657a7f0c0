// weft::detail::locked_channel<T> — the locked flavor of channel<T>: unbuffered channels, and
// buffered ones of a T whose move may throw. Go's design (runtime/chan.go): one short lock, a
// ring buffer, and direct hand-off to parked waiters.
//
// Invariants:
//   - Receivers wait only while the buffer is empty, senders only while it is full (for an
//     unbuffered channel: always). So at least one of recvq_ and sendq_ is empty, except when one
//     select waits on an unbuffered channel in both directions.
//   - A value goes directly to a waiter when one waits: a sender that finds a waiting receiver
//     emplaces into the receiver's std::optional; a receiver that finds a waiting sender takes
//     its value (unbuffered), or takes the buffer's oldest and moves the sender's value into
//     the freed tail (buffered: FIFO is kept). Only the claimant touches the waiter's value, and
//     it records the outcome before it signals.
//   - Once closed_ is set no send succeeds; receivers drain the buffer, then see closed. close()
//     wakes every waiter with wait_outcome::closed (waiting receivers found the buffer empty,
//     waiting senders keep their value).
//   - A hand-off whose move throws wakes the peer with wait_outcome::retry, its value intact;
//     the exception goes to the caller whose operation threw.
//
// Locks: mutex_ guards everything below it: closed_, buffer_, recvq_ and sendq_. Each operation
// takes it once, briefly; waiters are signalled after it is released (deferred_wake).
#pragma once

#include "channel_flavor.hpp"
#include "ring_buffer.hpp"
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
class locked_channel {
public:
    explicit locked_channel(std::size_t capacity) : buffer_(capacity) {}
    locked_channel(const locked_channel&) = delete;
    locked_channel& operator=(const locked_channel&) = delete;

    std::size_t capacity() const noexcept { return buffer_.capacity(); }
    std::size_t size() {
        std::lock_guard lock(mutex_);
        return buffer_.size();
    }
    // A wake-up hands the value over or reports closed; only a throwing move asks for a retry.
    static constexpr bool wake_finishes() noexcept {
        return std::is_nothrow_move_constructible_v<T>;
    }
    static constexpr bool lock_free() noexcept { return false; }
    spin_mutex& mutex() noexcept { return mutex_; }

    bool close() {
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        if (closed_)
            return false;
        closed_ = true;
        // Receivers wait only on an empty buffer, so there is nothing left for them.
        while (waiter* w = recvq_.claim_first())
            wake.add(w, wait_outcome::closed);
        while (waiter* w = sendq_.claim_first())
            wake.add(w, wait_outcome::closed);
        return true;
    }

    template <class Dir, class Slot>
    attempt try_now(Dir dir, Slot& slot) {
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        return try_held(dir, slot, wake);
    }

    // A thread's operation: try under the lock, else link and sleep until a peer hands the
    // value over (done), close() (closed) or a throwing hand-off (retry: go round).
    template <class Dir, class Slot, class Deadline, class AboutToPark>
    park_step wait(Dir dir, Slot& slot, const Deadline& deadline, AboutToPark about_to_park) {
        for (;;) {
            wait_context ctx(thread_parker::current());
            waiter w;
            w.ctx = &ctx;
            if (const park_step s = step(dir, slot, w); s != park_step::parked)
                return s;
            about_to_park(); // outside the lock: a blocking report's handler may do anything
            if (const park_step s = sleep_limited(ctx, deadline); s != park_step::parked) {
                cancel(w); // a limit claimed us: nothing was handed over
                return s;
            }
            if (const park_step s = after_wake(w.outcome); s != park_step::again)
                return s;
        }
    }

    // One step of a task's operation: done or closed, or the waiter linked (parked).
    template <class Dir, class Slot>
    park_step step(Dir dir, Slot& slot, waiter& w) {
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        const attempt a = try_held(dir, slot, wake);
        if (a == attempt::not_ready) {
            enqueue(dir, slot, w);
            return park_step::parked;
        }
        return a == attempt::done ? park_step::done : park_step::closed;
    }

    void cancel(waiter& w) noexcept {
        std::lock_guard lock(mutex_);
        unlink(w);
    }

    // --- with mutex_ held (also select's interface, see channel_flavor.hpp) -------------------

    // Sends `value` if a receiver waits or the buffer has room; moves from it only then.
    attempt try_held(sending, T& value, deferred_wake& wake) {
        if (closed_)
            return attempt::closed;
        if (waiter* receiver = recvq_.claim_first()) {
            // A receiver waits, so the buffer is empty: hand the value over directly.
            auto* slot = static_cast<std::optional<T>*>(receiver->value);
            try {
                slot->emplace(std::move(value));
            } catch (...) {
                // The receiver is claimed but got nothing: it runs its operation again.
                wake.add(receiver, wait_outcome::retry);
                throw;
            }
            wake.add(receiver, wait_outcome::completed);
            return attempt::done;
        }
        if (!buffer_.full()) {
            buffer_.push_back(std::move(value));
            return attempt::done;
        }
        return attempt::not_ready;
    }

    // Receives into `out` from a waiting sender or the buffer; closed once closed and drained.
    attempt try_held(receiving, std::optional<T>& out, deferred_wake& wake) {
        if (waiter* sender = sendq_.claim_first()) {
            T& source = *static_cast<T*>(sender->value);
            if (buffer_.capacity() == 0) {
                try {
                    out.emplace(std::move(source));
                } catch (...) {
                    wake.add(sender, wait_outcome::retry);
                    throw;
                }
                wake.add(sender, wait_outcome::completed);
                return attempt::done;
            }
            // A sender waits, so the buffer is full: take the oldest value and let the sender
            // refill the tail, keeping FIFO order.
            try {
                out.emplace(std::move(buffer_.front()));
            } catch (...) {
                wake.add(sender, wait_outcome::retry);
                throw;
            }
            buffer_.pop_front();
            try {
                buffer_.push_back(std::move(source));
                wake.add(sender, wait_outcome::completed);
            } catch (...) {
                // We have our value; the sender's is intact and it retries into the free slot
                // in its own thread, where the exception will reach it.
                wake.add(sender, wait_outcome::retry);
            }
            return attempt::done;
        }
        if (!buffer_.empty()) {
            out.emplace(std::move(buffer_.front()));
            buffer_.pop_front();
            return attempt::done;
        }
        return closed_ ? attempt::closed : attempt::not_ready;
    }

    // Links `w`, which a peer hands over through: the value to send, or the optional to
    // receive into.
    template <class Dir, class Slot>
    void enqueue(Dir dir, Slot& slot, waiter& w) noexcept {
        w.value = &slot;
        waiters(dir).push_back(&w);
    }

    // Nothing changes here without mutex_: nothing to wake after the locks, nothing to look at
    // again.
    template <class Dir>
    void after_success(Dir) noexcept {}
    template <class Dir>
    bool ready(Dir) const noexcept {
        return false;
    }
    ring_indices indices() const noexcept { return {}; }
    template <class Dir>
    bool ready_at(Dir, ring_indices) const noexcept {
        return false;
    }

private:
    wait_queue& waiters(sending) noexcept { return sendq_; }
    wait_queue& waiters(receiving) noexcept { return recvq_; }

    spin_mutex mutex_;
    bool closed_ = false;
    ring_buffer<T> buffer_;
    wait_queue recvq_; // receivers: only while buffer_ is empty
    wait_queue sendq_; // senders: only while buffer_ is full
};

} // namespace weft::detail
