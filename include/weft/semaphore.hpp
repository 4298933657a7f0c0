// weft::semaphore — a weighted semaphore (Go's golang.org/x/sync/semaphore): `size` permits,
// acquired and released n at a time, by threads and tasks waiting in one FIFO queue.
//
//   weft::semaphore sem(4);
//   if (co_await sem.async_acquire(ctx, 2) == weft::status::ok) { work(); sem.release(2); }
//
// Fair: a waiter is granted only when it is the first one still waiting, so a large request is
// not starved by small ones arriving after it (small ones wait behind it even when they would
// fit). When the first waiter gives up (its context is done), the waiters behind it that fit now
// are granted at once.
//
// A request larger than the size can never be granted. With a context that can be cancelled it
// waits for the context, outside the queue (it holds nobody up), and returns cancelled (Go's
// choice); with none (or background()) it would wait for ever, so it throws sync_error, as do a
// negative n and releasing more than is held.
#pragma once

#include "blocking_report.hpp"
#include "channel.hpp"
#include "context.hpp"
#include "detail/spin_mutex.hpp"
#include "detail/task_park.hpp"
#include "detail/wait_limit.hpp"
#include "detail/waiter.hpp"
#include "sync.hpp"

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

namespace weft {

class semaphore {
    class acquire_awaiter;
    template <class Result>
    class awaiter_of;

public:
    // `size` permits, all free. Throws sync_error if size is negative.
    explicit semaphore(std::int64_t size);
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    // Blocks the calling thread until `n` permits are granted (ok) or `ctx` is done first
    // (cancelled: nothing was acquired). A context done already returns cancelled even when the
    // permits are free (Go: the cancellation happened first).
    status acquire(const context& ctx, std::int64_t n = 1,
                   weft::source_location loc = weft::source_location::current());
    // Blocks until `n` permits are granted.
    void acquire(std::int64_t n = 1, weft::source_location loc = weft::source_location::current());

    // In a task: acquire that suspends the task, not its worker. `co_await` the result at once
    // (an awaitable, not a task): status ok / cancelled, or nothing for the form without ctx.
    awaiter_of<status> async_acquire(const context& ctx, std::int64_t n = 1);
    awaiter_of<void> async_acquire(std::int64_t n = 1);

    // Takes `n` permits if they are free and nobody waits; never blocks.
    bool try_acquire(std::int64_t n = 1);

    // Gives back `n` permits and grants waiters from the front while they fit. Throws
    // sync_error, changing nothing, if more are released than are held.
    void release(std::int64_t n = 1);

    std::int64_t size() const noexcept { return size_; }
    // Snapshots, for tests and metrics: permits held now, waiters in the queue now.
    std::int64_t held() const;
    std::size_t waiting() const;

private:
    friend class detail::task_park<semaphore>;
    static constexpr const char* k_instead = "co_await sem.async_acquire(...)";

    // One acquire: how many, and the token that may end its wait (null: none).
    struct request {
        std::int64_t n;
        const detail::cancel_ref* stop;
    };

    void check(std::int64_t n, bool can_stop) const;
    status acquire_impl(std::int64_t n, const detail::cancel_ref& stop,
                        const detail::blocking_site& site);
    // task_park's step: done (granted at once), cancelled (the context was done already), or
    // parked (the waiter linked; a request larger than the size parks unlinked).
    static detail::park_step step_acquire(semaphore& s, detail::waiter& w, void* arg);
    // Takes `w` out after a limit claimed it (or its task frame died), and grants the waiters
    // that fit now. A waiter granted before its frame died gives its permits back.
    void cancel(detail::waiter& w) noexcept;

    // --- with mutex_ held ---
    detail::waiter* first_live() const noexcept;
    void grant(detail::deferred_wake& wake) noexcept;

    const std::int64_t size_;
    mutable detail::spin_mutex mutex_;
    std::int64_t held_ = 0;      // permits granted and not released; guarded by mutex_
    detail::wait_queue waiters_; // each waiter's `value` is its request's n (std::int64_t)
};

// ---- implementation ------------------------------------------------------------------------

// A task's acquire: tries in await_ready (no suspension when the permits are free), else parks
// in the queue with the context's stop token as its limit.
class semaphore::acquire_awaiter {
public:
    acquire_awaiter(semaphore& s, std::int64_t n, detail::cancel_ref stop)
        : limit_{{}, std::move(stop)}, request_{n, &limit_.stop},
          park_(s, &semaphore::step_acquire, &request_, detail::blocked_on::sync, &limit_) {}
    acquire_awaiter(const acquire_awaiter&) = delete;
    acquire_awaiter& operator=(const acquire_awaiter&) = delete;

    bool await_ready() { return park_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return park_.await_suspend(h); }
    // done (granted) or cancelled; a grant is the only way out without a limit.
    detail::park_step step() noexcept { return park_.await_resume(); }

private:
    detail::wait_limit limit_;
    request request_;
    detail::task_park<semaphore> park_;
};

template <class Result>
class semaphore::awaiter_of : public acquire_awaiter {
public:
    using acquire_awaiter::acquire_awaiter;
    Result await_resume() noexcept {
        const detail::park_step s = step();
        if constexpr (!std::is_void_v<Result>)
            return s == detail::park_step::done ? status::ok : status::cancelled;
    }
};

inline semaphore::semaphore(std::int64_t size) : size_(size) {
    if (size < 0)
        throw sync_error("weft: semaphore of negative size " + std::to_string(size));
}

inline void semaphore::check(std::int64_t n, bool can_stop) const {
    if (n < 0)
        throw sync_error("weft: semaphore acquire of negative n " + std::to_string(n));
    if (n > size_ && !can_stop)
        throw sync_error("weft: semaphore acquire of " + std::to_string(n) +
                         " can never be granted (size " + std::to_string(size_) +
                         ") and no context can end the wait");
}

inline status semaphore::acquire(const context& ctx, std::int64_t n, weft::source_location loc) {
    const detail::cancel_ref stop = detail::cancellation_of(ctx);
    check(n, stop.stop_possible());
    return acquire_impl(n, stop, {"weft::semaphore::acquire(ctx, n)", k_instead, loc});
}

inline void semaphore::acquire(std::int64_t n, weft::source_location loc) {
    check(n, false);
    (void)acquire_impl(n, {}, {"weft::semaphore::acquire(n)", k_instead, loc});
}

inline auto semaphore::async_acquire(const context& ctx, std::int64_t n) -> awaiter_of<status> {
    detail::cancel_ref stop = detail::cancellation_of(ctx);
    check(n, stop.stop_possible());
    return awaiter_of<status>(*this, n, std::move(stop));
}

inline auto semaphore::async_acquire(std::int64_t n) -> awaiter_of<void> {
    check(n, false);
    return awaiter_of<void>(*this, n, {});
}

inline bool semaphore::try_acquire(std::int64_t n) {
    check(n, true);
    std::lock_guard lock(mutex_);
    if (first_live() != nullptr || size_ - held_ < n)
        return false;
    held_ += n;
    return true;
}

inline void semaphore::release(std::int64_t n) {
    detail::deferred_wake wake; // signals after the unlock
    std::lock_guard lock(mutex_);
    if (n < 0 || n > held_)
        throw sync_error("weft: semaphore release of " + std::to_string(n) + " with " +
                         std::to_string(held_) + " held");
    held_ -= n;
    grant(wake);
}

inline std::int64_t semaphore::held() const {
    std::lock_guard lock(mutex_);
    return held_;
}

inline std::size_t semaphore::waiting() const {
    std::lock_guard lock(mutex_);
    // relaxed: written under mutex_, which we hold.
    return waiters_.length.load(std::memory_order_relaxed);
}

inline status semaphore::acquire_impl(std::int64_t n, const detail::cancel_ref& stop,
                                      const detail::blocking_site& site) {
    detail::wait_context ctx(detail::thread_parker::current());
    detail::waiter w;
    w.ctx = &ctx;
    request req{n, &stop};
    const detail::park_step first = step_acquire(*this, w, &req);
    if (first != detail::park_step::parked)
        return first == detail::park_step::done ? status::ok : status::cancelled;
    detail::note_blocking(site); // outside the lock: the handler may do anything
    if (detail::sleep_limited(ctx, detail::wait_limit{{}, stop}) != detail::park_step::parked) {
        cancel(w); // the stop claimed us: nothing was granted
        return status::cancelled;
    }
    return status::ok; // only a grant signals without a limit's claim
}

inline detail::park_step semaphore::step_acquire(semaphore& s, detail::waiter& w, void* arg) {
    auto& req = *static_cast<request*>(arg);
    // Go's order: a context done before we look is a cancellation, even if the permits are free.
    if (req.stop && req.stop->stop_requested())
        return detail::park_step::cancelled;
    std::lock_guard lock(s.mutex_);
    if (req.n > s.size_)
        return detail::park_step::parked; // only the limit (checked in check()) ends this wait
    if (s.first_live() == nullptr && s.size_ - s.held_ >= req.n) {
        s.held_ += req.n;
        return detail::park_step::done;
    }
    w.value = &req.n;
    s.waiters_.push_back(&w);
    return detail::park_step::parked;
}

inline void semaphore::cancel(detail::waiter& w) noexcept {
    detail::deferred_wake wake;
    std::lock_guard lock(mutex_);
    if (w.queue) {
        waiters_.remove(&w);
    } else if (w.outcome == detail::wait_outcome::completed) {
        // Granted (outcome written under this lock), but the task's frame died before it
        // could use the permits: give them back.
        held_ -= *static_cast<const std::int64_t*>(w.value);
    }
    // If `w` was first, the ones behind it may fit now (Go's notifyWaiters on cancel).
    grant(wake);
}

inline detail::waiter* semaphore::first_live() const noexcept {
    for (detail::waiter* w = waiters_.head; w; w = w->next) {
        // relaxed: a hint. A claim only ever moves away from k_waiting; seeing it late makes us
        // treat a cancelled waiter as live (the caller waits behind it), and its owner's
        // cancel() then grants again under this lock.
        if (w->ctx->selected.load(std::memory_order_relaxed) == detail::wait_context::k_waiting)
            return w;
    }
    return nullptr;
}

inline void semaphore::grant(detail::deferred_wake& wake) noexcept {
    for (detail::waiter* w = waiters_.head; w;) {
        detail::waiter* next = w->next;
        // relaxed: see first_live(); a waiter a limit claimed is skipped (its owner unlinks it).
        if (w->ctx->selected.load(std::memory_order_relaxed) != detail::wait_context::k_waiting) {
            w = next;
            continue;
        }
        const std::int64_t n = *static_cast<const std::int64_t*>(w->value);
        if (size_ - held_ < n)
            return; // FIFO: nobody passes the first live waiter
        // A failed claim means a limit won just now: skip it like the claimed ones above.
        if (w->ctx->try_claim(w->case_index)) {
            waiters_.remove(w);
            held_ += n;
            wake.add(w, detail::wait_outcome::completed);
        }
        w = next;
    }
}

} // namespace weft
