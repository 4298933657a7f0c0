// weft::detail::task_park — how a coroutine task waits in a wait queue (a channel's, a
// wait_group's).
//
// The task's wait_context and waiter live in this awaiter, inside the task's frame. Instead of
// unparking a thread, the claimant's signal reschedules the task on its scheduler. One race
// needs care: once the waiter is linked and the lock released, a claimant may signal before
// await_suspend has returned. `phase_` settles it: whichever of await_suspend's end and the
// signal comes second resumes the task (the signal by scheduling it, await_suspend by
// returning false), so the task never runs on two threads at once and nothing touches the
// frame after it may have resumed.
//
// If the frame is destroyed while the task waits (its scheduler shut down), the destructor
// takes the waiter out of its owner's queue, so the queue never points into freed memory.
#pragma once

#include "../scheduler.hpp"
#include "waiter.hpp"

#include <atomic>
#include <coroutine>

namespace weft::detail {

// What one step of a task's channel operation did.
enum class park_step {
    done,   // completed without waiting
    closed, // the channel is closed (and drained, for a receive)
    parked, // the waiter is linked; wait for a signal
    again,  // try again at once (the waiter is not linked)
};

template <class Owner>
class task_park {
public:
    // `step(owner, waiter, arg)` makes one attempt and links the waiter when it must wait;
    // `owner` (a channel state, a wait_group) also unlinks it with `cancel(waiter&)` if the
    // frame dies first.
    task_park(Owner& owner, park_step (*step)(Owner&, waiter&, void*), void* arg) noexcept
        : owner_(owner), step_(step), arg_(arg) {}
    task_park(const task_park&) = delete;
    task_park& operator=(const task_park&) = delete;
    ~task_park() {
        // Still linked only if the frame is destroyed mid-wait (its scheduler shut down): no
        // signal ever came. acquire: pairs with the signal's exchange; when it came, the
        // claimant already unlinked the waiter.
        if (result_ == park_step::parked && phase_.load(std::memory_order_acquire) != k_signalled)
            owner_.cancel(waiter_);
    }

    // Runs step after step until the operation completed, was refused, or parked. The result
    // is in outcome().
    bool await_ready() {
        for (;;) {
            reset();
            result_ = step_(owner_, waiter_, arg_);
            if (result_ != park_step::again)
                return result_ != park_step::parked;
        }
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        handle_ = h;
        scheduler_ = scheduler::current();
        if (!scheduler_)
            scheduler_ = &default_scheduler();
        // acq_rel: the release publishes handle_/scheduler_ to a signal that comes later; the
        // acquire sees the claimant's writes (outcome, value) if it came first.
        return phase_.exchange(k_suspended, std::memory_order_acq_rel) != k_signalled;
    }
    // What happened: done or closed (finished), or again (woken to retry).
    park_step await_resume() noexcept {
        if (result_ != park_step::parked)
            return result_;
        switch (waiter_.outcome) {
        case wait_outcome::completed:
            return park_step::done;
        case wait_outcome::closed:
            return park_step::closed;
        default:
            return park_step::again;
        }
    }

private:
    static constexpr int k_suspending = 0;
    static constexpr int k_suspended = 1;
    static constexpr int k_signalled = 2;

    void reset() noexcept {
        // relaxed: not yet published; the owner's lock release publishes it with the waiter.
        ctx_.selected.store(wait_context::k_waiting, std::memory_order_relaxed);
        ctx_.resume = &signal;
        ctx_.resume_arg = this;
        waiter_ = waiter{};
        waiter_.ctx = &ctx_;
        phase_.store(k_suspending, std::memory_order_relaxed); // relaxed: as `selected`
    }

    // The claimant's signal (wait_context::resume). Reads what it needs before the exchange
    // that may hand the task to another thread.
    static void signal(wait_context& ctx) noexcept {
        auto* self = static_cast<task_park*>(ctx.resume_arg);
        // acq_rel: the release publishes the claimant's writes to the resumed task; the acquire
        // sees handle_/scheduler_ when await_suspend finished first.
        if (self->phase_.exchange(k_signalled, std::memory_order_acq_rel) == k_suspended)
            self->scheduler_->schedule_woken(self->handle_);
    }

    Owner& owner_;
    park_step (*step_)(Owner&, waiter&, void*);
    void* arg_;
    wait_context ctx_;
    waiter waiter_;
    park_step result_ = park_step::again;
    std::atomic<int> phase_{k_suspending};
    std::coroutine_handle<> handle_;
    scheduler* scheduler_ = nullptr;
};

} // namespace weft::detail
