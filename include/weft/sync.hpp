// weft::wait_group — Go's sync.WaitGroup: wait until a counter of outstanding work drops to 0.
#pragma once

#include "blocking_report.hpp"
#include "channel.hpp"
#include "detail/context_fwd.hpp"
#include "detail/deadline.hpp"
#include "detail/spin_mutex.hpp"
#include "detail/task_park.hpp"
#include "detail/wait_limit.hpp"
#include "detail/waiter.hpp"
#include "task.hpp"

#include <chrono>
#include <concepts>
#include <cstdint>
#include <mutex>
#include <stdexcept>

namespace weft {

// Misuse of a synchronization object that is a bug in the caller.
class sync_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

class wait_group {
public:
    wait_group() = default;
    wait_group(const wait_group&) = delete;
    wait_group& operator=(const wait_group&) = delete;

    // Adds `delta` (may be negative) to the counter; at zero every waiter wakes. Throws
    // sync_error, leaving the counter unchanged, if it would go negative.
    void add(std::int64_t delta = 1) {
        detail::deferred_wake wake;
        std::lock_guard lock(mutex_);
        if (count_ + delta < 0)
            throw sync_error("weft: negative wait_group counter");
        count_ += delta;
        if (count_ == 0)
            while (detail::waiter* w = waiters_.claim_first())
                wake.add(w, detail::wait_outcome::completed);
    }

    // One unit of work finished: add(-1).
    void done() { add(-1); }

    // Blocks until the counter is zero.
    void wait(weft::source_location loc = weft::source_location::current()) {
        (void)wait_until_impl<false>({}, {"weft::wait_group::wait", k_instead, loc});
    }

    // Blocks until the counter is zero or the deadline passes; true if it reached zero.
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(detail::deadline_after(timeout));
    }
    template <class Clock, class Duration>
    bool wait_until(std::chrono::time_point<Clock, Duration> deadline) {
        return wait_until_impl<true>(deadline,
                                     {"weft::wait_group::wait_for/wait_until", k_instead});
    }

    // Blocks until the counter is zero (status::ok) or `ctx` is done (status::cancelled). A
    // counter at zero is ok at once, even if ctx is done. (A template only so that this header
    // needs no definition of weft::context: Context is always weft::context.)
    template <std::same_as<context> Context>
    status wait(const Context& ctx) {
        return wait_limited(detail::wait_limit{{}, detail::cancellation_of(ctx)});
    }

    // In a task: `co_await wg.async_wait()` suspends the task (not its worker) until the
    // counter is zero.
    task<void> async_wait() {
        for (;;) {
            detail::task_park<wait_group> park(*this, &step_wait, nullptr, blocked_on::wait_group);
            if (co_await park != detail::park_step::again)
                co_return;
        }
    }

    // In a task: async_wait() that also ends when `ctx` is done: status::ok when the counter
    // reached zero, status::cancelled (and the task no longer waits) when ctx was done first.
    template <std::same_as<context> Context>
    task<status> async_wait(const Context& ctx) {
        return async_wait_limited(detail::wait_limit{{}, detail::cancellation_of(ctx)});
    }

    // The counter right now; a snapshot.
    std::int64_t count() const {
        std::lock_guard lock(mutex_);
        return count_;
    }

private:
    static constexpr const char* k_instead = "co_await wg.async_wait()";
    friend class detail::task_park<wait_group>;

    // task_park's step: done at zero, else link the waiter (parked).
    static detail::park_step step_wait(wait_group& wg, detail::waiter& w, void*) {
        std::lock_guard lock(wg.mutex_);
        if (wg.count_ == 0)
            return detail::park_step::done;
        wg.waiters_.push_back(&w);
        return detail::park_step::parked;
    }
    // task_park's clean-up when a waiting task's frame is destroyed.
    void cancel(detail::waiter& w) noexcept {
        std::lock_guard lock(mutex_);
        detail::unlink(w);
    }

    template <bool HasDeadline, class Deadline = std::chrono::steady_clock::time_point>
    bool wait_until_impl(const Deadline& deadline, const detail::blocking_site& site) {
        detail::wait_context ctx(detail::thread_parker::current());
        detail::waiter w;
        w.ctx = &ctx;
        {
            std::lock_guard lock(mutex_);
            if (count_ == 0)
                return true;
            waiters_.push_back(&w);
        }
        detail::note_blocking(site); // outside the lock: the handler may do anything
        if constexpr (!HasDeadline) {
            ctx.wait();
        } else if (!ctx.wait_until(deadline)) {
            cancel(w);
            return false;
        }
        return true;
    }

    // wait(ctx)'s: like wait_until_impl, with a stop claim instead of a deadline.
    status wait_limited(const detail::wait_limit& limit) {
        detail::wait_context ctx(detail::thread_parker::current());
        detail::waiter w;
        w.ctx = &ctx;
        {
            std::lock_guard lock(mutex_);
            if (count_ == 0)
                return status::ok;
            waiters_.push_back(&w);
        }
        detail::note_blocking({"weft::wait_group::wait(ctx)", "co_await wg.async_wait(ctx)"});
        if (detail::sleep_limited(ctx, limit) == detail::park_step::parked)
            return status::ok; // add() claimed us: the counter reached zero
        cancel(w);             // the stop claimed us but cannot unlink us
        return status::cancelled;
    }

    // async_wait(ctx)'s: the limit lives in the frame, as long as the waits that use it.
    task<status> async_wait_limited(detail::wait_limit limit) {
        for (;;) {
            detail::task_park<wait_group> park(*this, &step_wait, nullptr, blocked_on::wait_group,
                                               &limit);
            switch (co_await park) {
            case detail::park_step::done:
                co_return status::ok;
            case detail::park_step::cancelled:
                co_return status::cancelled;
            default:
                break; // again
            }
        }
    }

    mutable detail::spin_mutex mutex_;
    std::int64_t count_ = 0;
    detail::wait_queue waiters_;
};

} // namespace weft
