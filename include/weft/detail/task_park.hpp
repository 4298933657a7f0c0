// weft::detail::task_wakeup and task_park — how a coroutine task waits in wait queues (a
// channel's, a select's, a wait_group's, an actor mailbox's).
//
// task_wakeup is a wait_context whose claimant, instead of unparking a thread, reschedules
// the suspended task on its scheduler (its task_host, see task_host.hpp). One race needs care:
// once a waiter is linked and the lock released, a claimant may signal before await_suspend
// has returned. `phase_` settles it: whichever of await_suspend's end and the signal comes
// second resumes the task (the signal by scheduling it, await_suspend by returning false), so
// the task never runs on two threads at once and nothing touches the frame after it may have
// resumed.
//
// task_park runs one operation (a channel's, a wait_group's, a mailbox's) step by step with one
// waiter. If the frame is destroyed while the task waits (its scheduler shut down), its
// destructor takes the waiter out of its owner's queue, so the queue never points into freed
// memory.
#pragma once

#include "task_core.hpp"
#include "task_host.hpp"
#include "wait_limit.hpp"
#include "waiter.hpp"

#include <atomic>
#include <chrono>
#include <coroutine>
#include <optional>

namespace weft::detail {

// The waiting half of a task's wait: `co_await wakeup` suspends until some claimant signals
// context(), or returns at once if that already happened.
class task_wakeup {
public:
    explicit task_wakeup(blocked_on what) noexcept : what_(what) {
        ctx_.resume = &signal;
        ctx_.resume_arg = this;
    }
    task_wakeup(const task_wakeup&) = delete;
    task_wakeup& operator=(const task_wakeup&) = delete;
    ~task_wakeup() {
        if (counted_) // destroyed mid-wait
            host_->count_blocked(what_, -1);
    }

    wait_context& context() noexcept { return ctx_; }

    // Makes the context claimable again, before each new round of linking waiters.
    void reset() noexcept {
        // relaxed: not yet published; the lock release that links a waiter publishes it.
        ctx_.selected.store(wait_context::k_waiting, std::memory_order_relaxed);
        phase_.store(k_suspending, std::memory_order_relaxed); // relaxed: as `selected`
    }

    // Whether the claimant's signal has come (or the owner claimed the context itself and
    // no signal will come: then the caller must not await).
    bool signalled() const noexcept {
        // acquire: pairs with the signal's exchange.
        return phase_.load(std::memory_order_acquire) == k_signalled;
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        handle_ = h;
        host_ = &current_host();
        counted_ = host_->count_blocked(what_, +1);
        // acq_rel: the release publishes handle_/host_ to a signal that comes later; the
        // acquire sees the claimant's writes (outcome, value) if it came first.
        if (phase_.exchange(k_suspended, std::memory_order_acq_rel) != k_signalled)
            return true;
        uncount();
        return false;
    }
    void await_resume() noexcept { uncount(); }

private:
    static constexpr int k_suspending = 0;
    static constexpr int k_suspended = 1;
    static constexpr int k_signalled = 2;

    void uncount() noexcept {
        if (counted_) {
            host_->count_blocked(what_, -1);
            counted_ = false;
        }
    }

    // The claimant's signal (wait_context::resume). Reads what it needs before the call that
    // hands the task to another thread.
    static void signal(wait_context& ctx) noexcept {
        auto* self = static_cast<task_wakeup*>(ctx.resume_arg);
        // acq_rel: the release publishes the claimant's writes to the resumed task; the acquire
        // sees handle_/host_ when await_suspend finished first.
        if (self->phase_.exchange(k_signalled, std::memory_order_acq_rel) == k_suspended)
            self->host_->schedule_woken(self->handle_);
    }

    wait_context ctx_;
    std::atomic<int> phase_{k_suspending};
    std::coroutine_handle<> handle_;
    task_host* host_ = nullptr;
    blocked_on what_;
    bool counted_ = false; // in the host's count of blocked tasks (deadlock report)
};

// A task's wait that only its limits end (a sleep, a rate limiter's token, a nil channel):
// timed_out when the deadline claimed it, cancelled when the context did. With no limit nobody
// signals, and the task waits until its frame is destroyed. `limit` must outlive the wait: pass
// a named local, never a braced temporary — g++ 12 destroys a non-trivial temporary in a
// co_await expression twice (here: a cancel_ref's shared_ptr released twice, a use-after-free).
inline task<park_step> wait_for_limits(blocked_on what, const wait_limit& limit) {
    task_wakeup wakeup(what);
    limit_claims claims(wakeup.context(), limit);
    co_await wakeup;
    claims.disarm(); // from here on nothing claims
    // acquire: pairs with the winning claim's acq_rel CAS (the signal ordered it anyway).
    co_return limit_outcome(wakeup.context().selected.load(std::memory_order_acquire))
        .value_or(park_step::timed_out);
}

template <class Owner>
class task_park {
public:
    // `step(owner, waiter, arg)` makes one attempt and links the waiter when it must wait;
    // `owner` (a channel state, a wait_group) also unlinks it with `cancel(waiter&)` if the
    // frame dies first or a limit ends the wait. A null limit waits for ever.
    task_park(Owner& owner, park_step (*step)(Owner&, waiter&, void*), void* arg, blocked_on what,
              const wait_limit* limit = nullptr) noexcept
        : owner_(owner), step_(step), arg_(arg),
          limit_(limit && limit->limited() ? limit : nullptr), wakeup_(what) {}
    task_park(const task_park&) = delete;
    task_park& operator=(const task_park&) = delete;
    ~task_park() {
        // Parked still only if the frame is destroyed mid-wait (its scheduler shut down). Disarm
        // the limits first, then leave the queue unless a claimant already took us out.
        if (result_ == park_step::parked) {
            claims_.reset();
            owner_.cancel(waiter_);
        }
    }

    // Runs step after step until the operation completed, was refused, or parked. The result
    // is in outcome().
    bool await_ready() {
        for (;;) {
            wakeup_.reset();
            waiter_ = waiter{};
            waiter_.ctx = &wakeup_.context();
            result_ = step_(owner_, waiter_, arg_);
            if (result_ == park_step::parked && limit_)
                claims_.emplace(wakeup_.context(), *limit_);
            if (result_ != park_step::again)
                return result_ != park_step::parked;
        }
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return wakeup_.await_suspend(h); }
    // What happened: done or closed (finished), timed_out or cancelled (a limit ended the wait),
    // or again (woken to retry).
    park_step await_resume() noexcept {
        if (result_ == park_step::parked) {
            wakeup_.await_resume();
            claims_.reset();
            result_ = woken_outcome();
        }
        return result_;
    }

private:
    park_step woken_outcome() noexcept {
        // acquire: as in the signal; the claimant (peer, close or a limit) is done with us.
        if (const auto limit =
                limit_outcome(wakeup_.context().selected.load(std::memory_order_acquire))) {
            owner_.cancel(waiter_); // the limit claimed us but cannot unlink us
            return *limit;
        }
        return after_wake(waiter_.outcome);
    }

    Owner& owner_;
    park_step (*step_)(Owner&, waiter&, void*);
    void* arg_;
    const wait_limit* limit_; // null: none
    task_wakeup wakeup_;
    std::optional<limit_claims> claims_; // only while parked with a limit
    waiter waiter_;
    park_step result_ = park_step::again;
};

} // namespace weft::detail
