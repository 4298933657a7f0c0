// weft::channel<T> — Go's channels for C++.
//
// A channel is a cheap, copyable handle to shared state; copies talk to the same channel. A
// default-constructed channel is nil: sends and receives on it block forever and select never
// picks it. channel<T>(n) buffers n values; channel<T>(0) is a rendezvous where a send
// completes only when a receiver takes the value, handed over directly with no buffer hop.
//
// Values are never lost: a send on a closed channel reports closure and leaves the value with
// the caller, and values sent before close() are still received. Threads and (later) tasks
// wait in the same queues, so they can talk over one channel.
//
// Two paths inside. A buffered channel of a type with a nothrow move keeps its values in a
// lock-free ring; the channel lock then guards only the wait queues and is taken only when
// somebody waits. Unbuffered channels, and types whose move may throw, use Go's design: one
// short lock around a ring buffer and direct hand-off to parked waiters.
#pragma once

#include "blocking_report.hpp"
#include "detail/atomic_ring.hpp"
#include "detail/deadline.hpp"
#include "detail/ring_buffer.hpp"
#include "detail/spin_mutex.hpp"
#include "detail/task_park.hpp"
#include "detail/waiter.hpp"
#include "task.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace weft {

// The outcome of a non-blocking or deadline-bounded channel operation.
enum class status {
    ok,        // the value was sent or received
    closed,    // the channel is closed (and, for a receive, drained)
    not_ready, // try_*: the operation would have blocked
    timeout,   // *_for / *_until: the deadline passed first
};

// Misuse of a channel that is a bug in the caller: closing twice, closing a nil channel.
class channel_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// A received value, or why there is none. Reads like std::optional<T>.
template <class T>
class recv_result {
public:
    recv_result(weft::status s) noexcept : status_(s) {}
    recv_result(T&& value) : value_(std::move(value)), status_(weft::status::ok) {}

    weft::status status() const noexcept { return status_; }
    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return value_.has_value(); }

    T& operator*() & noexcept { return *value_; }
    T&& operator*() && noexcept { return std::move(*value_); }
    T* operator->() noexcept { return &*value_; }
    // Throws std::bad_optional_access when there is no value.
    T& value() & { return value_.value(); }
    T&& value() && { return std::move(value_.value()); }

private:
    std::optional<T> value_;
    weft::status status_;
};

template <class T>
class channel;
template <class T>
class sender;
template <class T>
class receiver;

namespace detail {

struct no_deadline {};
using steady_time = std::chrono::steady_clock::time_point;

struct no_ring {
    explicit no_ring(std::size_t) noexcept {}
};

// Shared by every handle of one channel. A task waiting on the channel holds a reference too
// (shared_from_this), as a blocked goroutine keeps its channel alive in Go: its handles may
// all be gone before the task is woken or destroyed.
template <class T>
class channel_state : public std::enable_shared_from_this<channel_state<T>> {
    static constexpr bool k_ring_capable = std::is_nothrow_move_constructible_v<T>;
    using ring_type = std::conditional_t<k_ring_capable, atomic_ring<T>, no_ring>;

public:
    explicit channel_state(std::size_t capacity)
        : lock_free_(k_ring_capable && capacity > 0), buffer_(lock_free_ ? 0 : capacity),
          ring_(lock_free_ ? capacity : 0) {}

    spin_mutex& mutex() noexcept { return mutex_; }

    // True when this channel's buffer is the lock-free ring: operations are then tried
    // without the lock (try_*_fast) and a waiter is woken to retry rather than handed a value.
    bool lock_free() const noexcept { return lock_free_; }

    // --- lock-free path (lock_free() only; the caller need not hold the lock) ----------------

    attempt try_send_fast(T& value) noexcept {
        if constexpr (k_ring_capable)
            return ring_.try_push(value);
        return attempt::not_ready;
    }
    attempt try_recv_fast(std::optional<T>& out) noexcept {
        if constexpr (k_ring_capable)
            return ring_.try_pop(out);
        return attempt::not_ready;
    }
    // After a value went in (receivers) or a slot came free (senders): wake one waiter on the
    // other side to retry. The fence pairs with the one a waiter issues between linking itself
    // and re-checking the ring: either we see its link, or it sees our change.
    void notify_receivers() { notify_one(recvq_); }
    void notify_senders() { notify_one(sendq_); }
    // Whether a retry could make progress (not empty / not full, or closed); non-consuming.
    bool recv_ready() const noexcept {
        if constexpr (k_ring_capable)
            return ring_.pop_ready();
        return false;
    }
    bool send_ready() const noexcept {
        if constexpr (k_ring_capable)
            return ring_.push_ready();
        return false;
    }
    // The ring's indices, and the two checks above as of when they were read: a non-blocking
    // select's consistent "nothing ready" (select.hpp).
    ring_indices indices() const noexcept {
        if constexpr (k_ring_capable)
            return ring_.indices();
        return {};
    }
    bool recv_ready(ring_indices at) const noexcept {
        if constexpr (k_ring_capable)
            return ring_.pop_ready(at);
        return false;
    }
    bool send_ready(ring_indices at) const noexcept {
        if constexpr (k_ring_capable)
            return ring_.push_ready(at);
        return false;
    }

    // --- operations with mutex() held -------------------------------------------------------

    // Sends `value` if a receiver waits or the buffer has room; moves from it only then.
    attempt try_send_locked(T& value, deferred_wake& wake) {
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

    // Receives into `out` from a waiting sender or the buffer; attempt::closed once closed
    // and drained.
    attempt try_recv_locked(std::optional<T>& out, deferred_wake& wake) {
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

    void enqueue_send(waiter& w) noexcept { sendq_.push_back(&w); }
    void enqueue_recv(waiter& w) noexcept { recvq_.push_back(&w); }
    // Takes `w` out of its queue unless a claimant already did.
    static void unlink(waiter& w) noexcept {
        if (w.queue)
            w.queue->remove(&w);
    }

    // --- one step of a task's operation (see detail/task_park.hpp) --------------------------

    // Sends, or links `w` to wait (parked). Moves from `value` only when it is sent.
    park_step step_send(T& value, waiter& w) {
        return step(
            w, &value, [&] { return try_send_fast(value); }, [&] { return send_ready(); },
            [&](deferred_wake& wake) { return try_send_locked(value, wake); }, sendq_, recvq_);
    }

    // Receives into `out`, or links `w` to wait (parked).
    park_step step_recv(std::optional<T>& out, waiter& w) {
        return step(
            w, &out, [&] { return try_recv_fast(out); }, [&] { return recv_ready(); },
            [&](deferred_wake& wake) { return try_recv_locked(out, wake); }, recvq_, sendq_);
    }

    // Takes a waiting task's waiter out of its queue (its frame is being destroyed).
    void cancel(waiter& w) noexcept {
        std::lock_guard lock(mutex_);
        unlink(w);
    }

    // --- operations that lock ---------------------------------------------------------------

    void close() {
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        if (closed_)
            throw channel_error("weft: close of closed channel");
        closed_ = true;
        if (lock_free_) {
            if constexpr (k_ring_capable)
                ring_.close();
            // Everyone retries and finds the ring closed (receivers still drain it first).
            while (waiter* w = recvq_.claim_first())
                wake.add(w, wait_outcome::retry);
            while (waiter* w = sendq_.claim_first())
                wake.add(w, wait_outcome::retry);
            return;
        }
        // Receivers wait only on an empty buffer, so there is nothing left for them.
        while (waiter* w = recvq_.claim_first())
            wake.add(w, wait_outcome::closed);
        while (waiter* w = sendq_.claim_first())
            wake.add(w, wait_outcome::closed);
    }

    std::size_t size() {
        if constexpr (k_ring_capable)
            if (lock_free_)
                return ring_.size();
        std::lock_guard lock(mutex_);
        return buffer_.size();
    }
    std::size_t capacity() const noexcept {
        if constexpr (k_ring_capable)
            if (lock_free_)
                return ring_.capacity();
        return buffer_.capacity();
    }

    status try_send(T& value) {
        if (lock_free_) {
            const attempt a = try_send_fast(value);
            if (a == attempt::done)
                notify_receivers();
            return to_status(a);
        }
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        return to_status(try_send_locked(value, wake));
    }

    status try_recv(std::optional<T>& out) {
        if (lock_free_) {
            const attempt a = try_recv_fast(out);
            if (a == attempt::done)
                notify_senders();
            return to_status(a);
        }
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        return to_status(try_recv_locked(out, wake));
    }

    // Blocks until sent, closed, or `deadline` (no_deadline: never).
    template <class Deadline>
    status send(T& value, const Deadline& deadline, const blocking_site& site) {
        if (lock_free_)
            return block_fast(
                site, deadline, [&] { return try_send_fast(value); }, [&] { return send_ready(); },
                sendq_, recvq_);
        return block_on(
            site, deadline, &value,
            [&](deferred_wake& wake) { return try_send_locked(value, wake); },
            &channel_state::enqueue_send);
    }

    template <class Deadline>
    status recv(std::optional<T>& out, const Deadline& deadline, const blocking_site& site) {
        if (lock_free_)
            return block_fast(
                site, deadline, [&] { return try_recv_fast(out); }, [&] { return recv_ready(); },
                recvq_, sendq_);
        return block_on(
            site, deadline, &out, [&](deferred_wake& wake) { return try_recv_locked(out, wake); },
            &channel_state::enqueue_recv);
    }

private:
    // One attempt of a task's operation on either path; `slot` is what a locked-path peer
    // hands over through (the value to send, or the optional to receive into).
    template <class TryFast, class Ready, class TryLocked>
    park_step step(waiter& w, void* slot, TryFast try_fast, Ready ready, TryLocked try_locked,
                   wait_queue& mine, wait_queue& theirs) {
        attempt a = attempt::not_ready;
        if (lock_free_) {
            a = try_fast();
            if (a == attempt::done)
                notify_one(theirs);
            if (a == attempt::not_ready)
                return link_and_recheck(w, mine, ready);
        } else {
            deferred_wake wake;
            std::lock_guard lock(mutex_);
            a = try_locked(wake);
            if (a == attempt::not_ready) {
                w.value = slot;
                mine.push_back(&w);
                return park_step::parked;
            }
        }
        return a == attempt::done ? park_step::done : park_step::closed;
    }

    // Lock-free path, waiter side of the handshake (threads in block_fast, tasks in step):
    // link, fence, look again; if a retry could succeed now, take the waiter back (again)
    // rather than sleep past the change.
    template <class Ready>
    park_step link_and_recheck(waiter& w, wait_queue& mine, Ready ready) {
        {
            std::lock_guard lock(mutex_);
            mine.push_back(&w);
        }
        // seq_cst: pairs with the fence in notify_one (see notify_receivers).
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (ready() && w.ctx->try_claim(0)) {
            std::lock_guard lock(mutex_);
            unlink(w);
            return park_step::again;
        }
        return park_step::parked;
    }

    void notify_one(wait_queue& queue) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        // relaxed: ordered by the fence above (see notify_receivers).
        if (queue.length.load(std::memory_order_relaxed) == 0)
            return;
        deferred_wake wake;
        std::lock_guard lock(mutex_);
        if (waiter* w = queue.claim_first())
            wake.add(w, wait_outcome::retry);
    }

    // The lock-free path's blocking loop: try; spin a little; link a waiter, fence, re-check
    // (a change we raced with is then seen either by us or by the notifier); sleep; retry.
    template <class Deadline, class Try, class Ready>
    status block_fast(const blocking_site& site, const Deadline& deadline, Try try_fast,
                      Ready ready, wait_queue& mine, wait_queue& theirs) {
        backoff spin;
        for (int round = 0;; ++round) {
            const attempt a = try_fast();
            if (a == attempt::done) {
                notify_one(theirs);
                return status::ok;
            }
            if (a == attempt::closed)
                return status::closed;
            // A woken waiter retries once; if it keeps losing to newcomers the deadline
            // still holds.
            if constexpr (!std::is_same_v<Deadline, no_deadline>)
                if (round > 0 && Deadline::clock::now() >= deadline)
                    return status::timeout;
            if (round < 8) { // a peer is often a few hundred nanoseconds away
                spin.snooze();
                continue;
            }
            if (round == 8)
                note_blocking(site); // about to park: say so once, if this is a worker
            wait_context ctx(thread_parker::current());
            waiter w;
            w.ctx = &ctx;
            if (link_and_recheck(w, mine, ready) == park_step::again)
                continue;
            if constexpr (std::is_same_v<Deadline, no_deadline>) {
                ctx.wait();
            } else if (!ctx.wait_until(deadline)) {
                std::lock_guard lock(mutex_);
                unlink(w);
                return status::timeout;
            }
            // Woken by a notifier or close(), already unlinked: retry.
        }
    }

    static status to_status(attempt a) noexcept {
        switch (a) {
        case attempt::done:
            return status::ok;
        case attempt::closed:
            return status::closed;
        default:
            return status::not_ready;
        }
    }

    template <class Deadline, class Try>
    status block_on(const blocking_site& site, const Deadline& deadline, void* value,
                    Try try_locked, void (channel_state::*enqueue)(waiter&)) {
        for (;;) {
            wait_context ctx(thread_parker::current());
            waiter w;
            w.value = value;
            w.ctx = &ctx;
            {
                deferred_wake wake;
                std::lock_guard lock(mutex_);
                attempt a = try_locked(wake);
                if (a != attempt::not_ready)
                    return to_status(a);
                (this->*enqueue)(w);
            }
            note_blocking(site); // outside the lock: the handler may do anything
            if constexpr (std::is_same_v<Deadline, no_deadline>) {
                ctx.wait();
            } else if (!ctx.wait_until(deadline)) {
                std::lock_guard lock(mutex_);
                unlink(w);
                return status::timeout;
            }
            switch (w.outcome) {
            case wait_outcome::completed:
                return status::ok;
            case wait_outcome::closed:
                return status::closed;
            default:
                continue; // retry: the peer's hand-off threw
            }
        }
    }

    spin_mutex mutex_;
    bool closed_ = false; // guarded by mutex_; the ring also carries its own closed mark
    const bool lock_free_;
    ring_buffer<T> buffer_; // locked path only
    ring_type ring_;        // lock-free path only
    // Locked path: receivers wait only while the buffer is empty, senders only while it is
    // full (try_*_locked rely on it). Lock-free path: waiters sleep until told to retry.
    wait_queue recvq_;
    wait_queue sendq_;
};

// Blocks the calling thread for ever (an operation on a nil channel), or until `deadline`.
template <class Deadline>
status wait_on_nil(const Deadline& deadline, const blocking_site& site) {
    note_blocking(site);
    wait_context ctx(thread_parker::current());
    if constexpr (std::is_same_v<Deadline, no_deadline>) {
        for (;;)
            ctx.wait(); // nobody can claim it; a spurious wake-up sleeps again
    } else {
        while (ctx.wait_until(deadline)) {
        }
        return status::timeout;
    }
}

// Lets select reach a handle's state without making it public API.
struct channel_access {
    // A handle to a state made elsewhere: after()'s, whose deleter cancels its timer.
    template <class T>
    static channel<T> adopt(std::shared_ptr<channel_state<T>> state) noexcept {
        channel<T> c;
        c.state_ = std::move(state);
        return c;
    }
    template <class T>
    static channel_state<T>* state(const channel<T>& c) noexcept {
        return c.state_.get();
    }
    template <class T>
    static channel_state<T>* state(const sender<T>& s) noexcept {
        return state(s.channel_);
    }
    template <class T>
    static channel_state<T>* state(const receiver<T>& r) noexcept {
        return state(r.channel_);
    }
};

inline status step_status(park_step step) noexcept {
    switch (step) {
    case park_step::done:
        return status::ok;
    case park_step::closed:
        return status::closed;
    case park_step::timed_out:
        return status::timeout;
    default:
        return status::not_ready; // again: the caller retries
    }
}

template <class T>
park_step step_send_of(channel_state<T>& state, waiter& w, void* value) {
    return state.step_send(*static_cast<T*>(value), w);
}
template <class T>
park_step step_recv_of(channel_state<T>& state, waiter& w, void* out) {
    return state.step_recv(*static_cast<std::optional<T>*>(out), w);
}

// A task's wait on a nil channel: for ever, or until `deadline`.
inline task<void> wait_on_nil_async(blocked_on what, std::optional<steady_time> deadline) {
    task_wakeup wakeup(what);
    std::optional<deadline_claim> timer;
    if (deadline)
        timer.emplace(wakeup.context(), *deadline);
    co_await wakeup; // without a deadline nobody signals: the task waits until destroyed
}

// A task's send, until sent, closed, or `deadline` (nullopt: none). Moves from `value` only
// when it is sent. Result is bool (sent) or status.
template <class Result, class T>
task<Result> async_send_impl(channel_state<T>* state, T& value,
                             std::optional<steady_time> deadline) {
    const auto keep_alive = state ? state->shared_from_this() : nullptr;
    status s = status::timeout;
    if (!state) {
        co_await wait_on_nil_async(blocked_on::channel_send, deadline);
    } else {
        for (park_step step = park_step::again; step == park_step::again;) {
            task_park<channel_state<T>> park(*state, &step_send_of<T>, &value,
                                             blocked_on::channel_send,
                                             deadline ? &*deadline : nullptr);
            step = co_await park;
            s = step_status(step);
        }
    }
    if constexpr (std::is_same_v<Result, bool>)
        co_return s == status::ok;
    else
        co_return s;
}

// A task's receive, until a value arrives, the channel is closed and drained, or `deadline`
// (nullopt: none). Result is std::optional<T> or recv_result<T>.
template <class Result, class T>
task<Result> async_recv_impl(channel_state<T>* state, std::optional<steady_time> deadline) {
    const auto keep_alive = state ? state->shared_from_this() : nullptr;
    std::optional<T> out;
    status s = status::timeout;
    if (!state) {
        co_await wait_on_nil_async(blocked_on::channel_receive, deadline);
    } else {
        for (park_step step = park_step::again; step == park_step::again;) {
            out.reset(); // a retry starts empty
            task_park<channel_state<T>> park(*state, &step_recv_of<T>, &out,
                                             blocked_on::channel_receive,
                                             deadline ? &*deadline : nullptr);
            step = co_await park;
            s = step_status(step);
        }
    }
    if constexpr (std::is_same_v<Result, std::optional<T>>)
        co_return std::move(out); // empty unless ok
    else
        co_return s == status::ok ? Result(std::move(*out)) : Result(s);
}

// The awaiters behind async_send() and async_recv(). Most operations need no coroutine frame
// of their own. On an unbuffered channel of a type whose move cannot throw, a wake-up always
// means done or closed, so one inline task_park does the whole wait. Elsewhere one attempt is
// made without waiting, and only if it finds nothing does the awaiter fall back to a task
// that loops (a lock-free channel wakes its waiters to retry).
template <class T>
bool waits_inline(const channel_state<T>& state) noexcept {
    return !state.lock_free() && std::is_nothrow_move_constructible_v<T>;
}

template <class T>
class send_awaiter {
public:
    send_awaiter(channel_state<T>* state, T& value) noexcept : state_(state), value_(&value) {}
    send_awaiter(channel_state<T>* state, const T& value)
        : state_(state), copy_(value), value_(&*copy_) {}
    send_awaiter(const send_awaiter&) = delete;
    send_awaiter& operator=(const send_awaiter&) = delete;

    bool await_ready() {
        if (!state_)
            return false; // a nil channel: the task below waits for ever
        if (waits_inline(*state_)) {
            park_.emplace(*state_, &step_send_of<T>, value_, blocked_on::channel_send);
            if (park_->await_ready())
                return true;
            keep_alive_ = state_->shared_from_this(); // while parked
            return false;
        }
        sent_ = state_->try_send(*value_);
        return sent_ != status::not_ready;
    }
    // False (go on without a transfer) when the wait or the fallback task is already over.
    bool await_suspend(std::coroutine_handle<> h) {
        if (park_)
            return park_->await_suspend(h);
        slow_ = async_send_impl<status>(state_, *value_, std::nullopt);
        return start_inline(slow_, slow_join_, h);
    }
    // True once sent; false if the channel is closed (the value is then left untouched).
    bool await_resume() {
        if (park_)
            return park_->await_resume() == park_step::done;
        if (slow_)
            return take_result(slow_) == status::ok;
        return sent_ == status::ok;
    }

private:
    channel_state<T>* state_;
    std::optional<T> copy_; // async_send(const T&) sends a copy
    T* value_;
    status sent_ = status::not_ready;
    std::shared_ptr<channel_state<T>> keep_alive_; // outlives park_, which unlinks from it
    std::optional<task_park<channel_state<T>>> park_;
    task<status> slow_;
    join_counter slow_join_{1}; // slow_'s awaiter state
};

template <class T>
class recv_awaiter {
public:
    explicit recv_awaiter(channel_state<T>* state) noexcept : state_(state) {}
    recv_awaiter(const recv_awaiter&) = delete;
    recv_awaiter& operator=(const recv_awaiter&) = delete;

    bool await_ready() {
        if (!state_)
            return false; // a nil channel: the task below waits for ever
        if (waits_inline(*state_)) {
            park_.emplace(*state_, &step_recv_of<T>, &out_, blocked_on::channel_receive);
            if (park_->await_ready())
                return true;
            keep_alive_ = state_->shared_from_this(); // while parked
            return false;
        }
        return state_->try_recv(out_) != status::not_ready;
    }
    // False (go on without a transfer) when the wait or the fallback task is already over.
    bool await_suspend(std::coroutine_handle<> h) {
        if (park_)
            return park_->await_suspend(h);
        slow_ = async_recv_impl<std::optional<T>>(state_, std::nullopt);
        return start_inline(slow_, slow_join_, h);
    }
    // A value, or nullopt once the channel is closed and drained.
    std::optional<T> await_resume() {
        if (park_)
            park_->await_resume(); // done (out_ holds the value) or closed (it is empty)
        else if (slow_)
            return take_result(slow_);
        return std::move(out_);
    }

private:
    channel_state<T>* state_;
    std::optional<T> out_;
    std::shared_ptr<channel_state<T>> keep_alive_; // outlives park_, which unlinks from it
    std::optional<task_park<channel_state<T>>> park_;
    task<std::optional<T>> slow_;
    join_counter slow_join_{1}; // slow_'s awaiter state
};

} // namespace detail

template <class T>
class channel {
public:
    using value_type = T;

    // A nil channel.
    channel() noexcept = default;
    // A channel buffering up to `capacity` values; 0 makes it a rendezvous.
    explicit channel(std::size_t capacity)
        : state_(std::make_shared<detail::channel_state<T>>(capacity)) {}

    // Blocks until the value is taken (or buffered). Returns false if the channel is closed,
    // leaving `value` unmoved.
    bool send(T&& value, weft::source_location loc = weft::source_location::current()) {
        return send_until_impl(value, detail::no_deadline{}, send_site(loc)) == status::ok;
    }
    bool send(const T& value, weft::source_location loc = weft::source_location::current()) {
        T copy(value);
        return send(std::move(copy), loc);
    }

    // Never blocks: ok, not_ready (full, or no receiver for a rendezvous) or closed. Moves
    // from `value` only on ok.
    status try_send(T&& value) { return state_ ? state_->try_send(value) : status::not_ready; }
    status try_send(const T& value) {
        T copy(value);
        return try_send(std::move(copy));
    }

    // Blocks at most until the deadline: ok, closed or timeout. Moves from `value` only on ok.
    template <class Rep, class Period>
    status send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return send_until(std::move(value), detail::deadline_after(timeout));
    }
    template <class Clock, class Duration>
    status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline) {
        return send_until_impl(value, deadline, {k_send_until, "co_await ch.async_send_for(v, d)"});
    }

    // Blocks until a value arrives; nullopt once the channel is closed and drained.
    std::optional<T> recv(weft::source_location loc = weft::source_location::current()) {
        std::optional<T> out;
        const detail::blocking_site site("weft::channel::recv", "co_await ch.async_recv()", loc);
        if (!state_)
            detail::wait_on_nil(detail::no_deadline{}, site);
        else
            state_->recv(out, detail::no_deadline{}, site);
        return out;
    }

    // Never blocks: a value, or status not_ready / closed (closed means closed and drained).
    recv_result<T> try_recv() {
        if (!state_)
            return status::not_ready;
        std::optional<T> out;
        status s = state_->try_recv(out);
        return s == status::ok ? recv_result<T>(std::move(*out)) : recv_result<T>(s);
    }

    // Blocks at most until the deadline: a value, or status closed / timeout.
    template <class Rep, class Period>
    recv_result<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
        return recv_until(detail::deadline_after(timeout));
    }
    template <class Clock, class Duration>
    recv_result<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) {
        const detail::blocking_site site(k_recv_until, "co_await ch.async_recv_for(d)");
        if (!state_)
            return detail::wait_on_nil(deadline, site);
        std::optional<T> out;
        status s = state_->recv(out, deadline, site);
        return s == status::ok ? recv_result<T>(std::move(*out)) : recv_result<T>(s);
    }

    // In a task: `co_await ch.async_send(v)` sends like send() but suspends the task, not its
    // worker thread, while it waits. True once sent; false if closed, leaving `value` unmoved.
    // Returns an awaitable to co_await at once (it refers to `value`), not a task.
    detail::send_awaiter<T> async_send(T&& value) { return {state_.get(), value}; }
    detail::send_awaiter<T> async_send(const T& value) { return {state_.get(), value}; }

    // In a task: send_for / send_until that suspend the task. ok, closed or timeout; moves
    // from `value` only on ok. Await the returned task at once: it refers to `value`.
    template <class Rep, class Period>
    task<status> async_send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return async_send_until(std::move(value), detail::deadline_after(timeout));
    }
    task<status> async_send_until(T&& value, std::chrono::steady_clock::time_point deadline) {
        return detail::async_send_impl<status>(state_.get(), value, deadline);
    }

    // In a task: `co_await ch.async_recv()` receives like recv() but suspends the task, not
    // its worker thread. A value, or nullopt once the channel is closed and drained. Returns an
    // awaitable to co_await at once, not a task.
    detail::recv_awaiter<T> async_recv() { return detail::recv_awaiter<T>(state_.get()); }

    // In a task: recv_for / recv_until that suspend the task. A value, or status closed /
    // timeout.
    template <class Rep, class Period>
    task<recv_result<T>> async_recv_for(std::chrono::duration<Rep, Period> timeout) {
        return async_recv_until(detail::deadline_after(timeout));
    }
    task<recv_result<T>> async_recv_until(std::chrono::steady_clock::time_point deadline) {
        return detail::async_recv_impl<recv_result<T>>(state_.get(), deadline);
    }

    // Closes the channel and wakes every blocked sender and receiver. Buffered values can
    // still be received. Throws channel_error on a closed or nil channel.
    void close() {
        if (!state_)
            throw channel_error("weft: close of nil channel");
        state_->close();
    }

    // Buffered values right now (Go's len); a snapshot that may be stale at once.
    std::size_t size() const { return state_ ? state_->size() : 0; }
    // Buffer capacity (Go's cap); 0 for a rendezvous or nil channel.
    std::size_t capacity() const noexcept { return state_ ? state_->capacity() : 0; }

    // False for a nil channel.
    explicit operator bool() const noexcept { return state_ != nullptr; }
    // Channels compare equal when they are handles to the same channel.
    friend bool operator==(const channel& a, const channel& b) noexcept {
        return a.state_ == b.state_;
    }

    // `for (auto& v : ch)` receives until the channel is closed and drained.
    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;

        iterator() = default;
        explicit iterator(channel* ch) : channel_(ch) { ++*this; }
        T& operator*() noexcept { return *current_; }
        iterator& operator++() {
            current_ = channel_->recv();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return !it.current_;
        }

    private:
        channel* channel_ = nullptr;
        std::optional<T> current_;
    };
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() noexcept { return {}; }

private:
    friend struct detail::channel_access;

    template <class Deadline>
    status send_until_impl(T& value, const Deadline& deadline, const detail::blocking_site& site) {
        if (!state_)
            return detail::wait_on_nil(deadline, site);
        return state_->send(value, deadline, site);
    }
    static detail::blocking_site send_site(const weft::source_location& loc) noexcept {
        return {"weft::channel::send", "co_await ch.async_send(v)", loc};
    }
    // The deadline forms take no source_location: each reports once, wherever it is called.
    static constexpr const char* k_recv_until = "weft::channel::recv_for/recv_until";
    static constexpr const char* k_send_until = "weft::channel::send_for/send_until";

    std::shared_ptr<detail::channel_state<T>> state_;
};

// The send half of a channel (Go's chan<- T): send, close, no receive.
template <class T>
class sender {
public:
    using value_type = T;

    sender() noexcept = default;
    sender(channel<T> ch) noexcept : channel_(std::move(ch)) {}

    bool send(T&& value, weft::source_location loc = weft::source_location::current()) {
        return channel_.send(std::move(value), loc);
    }
    bool send(const T& value, weft::source_location loc = weft::source_location::current()) {
        return channel_.send(value, loc);
    }
    status try_send(T&& value) { return channel_.try_send(std::move(value)); }
    status try_send(const T& value) { return channel_.try_send(value); }
    template <class Rep, class Period>
    status send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return channel_.send_for(std::move(value), timeout);
    }
    template <class Clock, class Duration>
    status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline) {
        return channel_.send_until(std::move(value), deadline);
    }
    detail::send_awaiter<T> async_send(T&& value) { return channel_.async_send(std::move(value)); }
    detail::send_awaiter<T> async_send(const T& value) { return channel_.async_send(value); }
    template <class Rep, class Period>
    task<status> async_send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
        return channel_.async_send_for(std::move(value), timeout);
    }
    task<status> async_send_until(T&& value, std::chrono::steady_clock::time_point deadline) {
        return channel_.async_send_until(std::move(value), deadline);
    }
    void close() { channel_.close(); }
    std::size_t size() const { return channel_.size(); }
    std::size_t capacity() const noexcept { return channel_.capacity(); }
    explicit operator bool() const noexcept { return static_cast<bool>(channel_); }
    friend bool operator==(const sender& a, const sender& b) noexcept {
        return a.channel_ == b.channel_;
    }

private:
    friend struct detail::channel_access;
    channel<T> channel_;
};

// The receive half of a channel (Go's <-chan T): receive and range, no send, no close.
template <class T>
class receiver {
public:
    using value_type = T;
    using iterator = typename channel<T>::iterator;

    receiver() noexcept = default;
    receiver(channel<T> ch) noexcept : channel_(std::move(ch)) {}

    std::optional<T> recv(weft::source_location loc = weft::source_location::current()) {
        return channel_.recv(loc);
    }
    detail::recv_awaiter<T> async_recv() { return channel_.async_recv(); }
    template <class Rep, class Period>
    task<recv_result<T>> async_recv_for(std::chrono::duration<Rep, Period> timeout) {
        return channel_.async_recv_for(timeout);
    }
    task<recv_result<T>> async_recv_until(std::chrono::steady_clock::time_point deadline) {
        return channel_.async_recv_until(deadline);
    }
    recv_result<T> try_recv() { return channel_.try_recv(); }
    template <class Rep, class Period>
    recv_result<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
        return channel_.recv_for(timeout);
    }
    template <class Clock, class Duration>
    recv_result<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) {
        return channel_.recv_until(deadline);
    }
    std::size_t size() const { return channel_.size(); }
    std::size_t capacity() const noexcept { return channel_.capacity(); }
    explicit operator bool() const noexcept { return static_cast<bool>(channel_); }
    friend bool operator==(const receiver& a, const receiver& b) noexcept {
        return a.channel_ == b.channel_;
    }
    iterator begin() { return channel_.begin(); }
    std::default_sentinel_t end() noexcept { return {}; }

private:
    friend struct detail::channel_access;
    channel<T> channel_;
};

} // namespace weft
