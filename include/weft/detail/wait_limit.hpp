// weft::detail wait limits — what may end a wait before its operation completes: a deadline,
// a weft::context's cancellation (its cancel_source, cancel_source.hpp), or both.
//
// Each limit is one more claimant of the waiter's wait_context (waiter.hpp): the deadline claims
// it as k_timed_out, a cancellation as k_cancelled. Claims are exclusive, so a wait ends exactly
// one way: a peer that lost the claim hands nothing over (a cancelled receive consumes nothing,
// a cancelled send leaves its value with the caller), and a limit that lost the claim changes
// nothing. Whoever claimed for a limit cannot unlink the waiter (it holds no owner lock); the
// owner does that after it wakes, as for a timeout.
//
// Limits are armed only while the owner sleeps and disarmed before it returns: destroying a
// claim waits for a callback that is running right now (timer_queue::remove,
// cancel_source::remove), so no claimant ever touches a context whose owner moved on.
#pragma once

#include "cancel_source.hpp"
#include "task_host.hpp"
#include "timer_queue.hpp"
#include "waiter.hpp"

#include <chrono>
#include <optional>
#include <type_traits>

namespace weft::detail {

using steady_time = std::chrono::steady_clock::time_point;

// What one step of an operation did (a task's step, see task_park.hpp, or a thread's wait).
enum class park_step {
    done,      // completed without waiting
    closed,    // the channel is closed (and drained, for a receive)
    parked,    // the waiter is linked; wait for a signal
    again,     // try again at once (the waiter is not linked)
    timed_out, // the deadline passed first (the waiter is unlinked)
    cancelled, // the stop token was triggered first (the waiter is unlinked)
};

// What a woken waiter's outcome means for its operation: done, closed, or again (retry).
inline park_step after_wake(wait_outcome outcome) noexcept {
    switch (outcome) {
    case wait_outcome::completed:
        return park_step::done;
    case wait_outcome::closed:
        return park_step::closed;
    default:
        return park_step::again;
    }
}

// A task's deadline: claims `ctx` for a timeout (wait_context::k_timed_out) at `deadline` and
// signals it, from a worker of the task's scheduler (its timer_queue), unless somebody else
// claimed it first; at once, on this thread, if the deadline has passed. Destroying it takes the
// timer out or waits for its call if a worker is running it right now, so the call never
// outlives `ctx`.
class deadline_claim {
public:
    deadline_claim(wait_context& ctx, steady_time deadline) : entry_(ctx, deadline) {
        if (deadline <= std::chrono::steady_clock::now()) {
            fire(entry_); // due already: claim now, as the timer would at once
            return;
        }
        host_ = &current_host();
        host_->add_timer(entry_);
    }
    deadline_claim(const deadline_claim&) = delete;
    deadline_claim& operator=(const deadline_claim&) = delete;
    ~deadline_claim() {
        if (host_)
            host_->remove_timer(entry_);
    }

private:
    struct claim_entry : timer_entry {
        claim_entry(wait_context& c, steady_time when) noexcept
            : timer_entry(when, &deadline_claim::fire), ctx(&c) {}
        wait_context* ctx;
    };
    static void fire(timer_entry& e) noexcept {
        wait_context* ctx = static_cast<claim_entry&>(e).ctx;
        if (ctx->try_claim(wait_context::k_timed_out))
            ctx->signal(); // last touch of the context
    }

    claim_entry entry_;
    task_host* host_ = nullptr; // whose queue holds the timer; null if it fired at once
};

// "Wait for ever": the Deadline argument of operations that have no limit.
struct no_deadline {};

// A deadline (none: for ever) and a context's cancellation (none when !stop_possible(), as for
// background()).
struct wait_limit {
    std::optional<steady_time> deadline;
    cancel_ref stop;

    bool limited() const noexcept { return deadline.has_value() || stop.stop_possible(); }
};

// Claims `ctx` as k_cancelled and signals it when the context behind `stop` is cancelled,
// unless somebody else claimed it first; at once, on this thread, if it was cancelled already.
// Destroying it unlinks the watch, or waits for its callback if the canceller is running it
// right now (cancel_source.hpp). `stop` (the wait's limit) must outlive it.
class cancel_claim {
public:
    cancel_claim(wait_context& ctx, const cancel_ref& stop) noexcept
        : watch_(ctx), source_(stop.get()) {
        if (!source_->add(watch_)) {
            source_ = nullptr;
            watch_.fn(watch_); // cancelled before we could link: claim now
        }
    }
    cancel_claim(const cancel_claim&) = delete;
    cancel_claim& operator=(const cancel_claim&) = delete;
    ~cancel_claim() {
        if (source_)
            source_->remove(watch_);
    }

private:
    struct claim_watch : cancel_watch {
        explicit claim_watch(wait_context& c) noexcept : cancel_watch(&claim), ctx(&c) {}
        wait_context* ctx;
    };
    static void claim(cancel_watch& w) noexcept {
        wait_context* ctx = static_cast<claim_watch&>(w).ctx;
        if (ctx->try_claim(wait_context::k_cancelled))
            ctx->signal(); // last touch: the owner may return at once
    }

    claim_watch watch_;
    cancel_source* source_; // null once nothing is linked
};

// The claimants a limit arms for one sleep of a task (a thread sleeps with its own deadline,
// see sleep_limited). Declare it after the waiter's context and destroy it before reading the
// outcome: the destructor is the point after which no limit can claim.
class limit_claims {
public:
    limit_claims(wait_context& ctx, const wait_limit& limit) {
        if (limit.deadline)
            timer_.emplace(ctx, *limit.deadline);
        if (limit.stop.stop_possible())
            stop_.emplace(ctx, limit.stop);
    }
    void disarm() noexcept {
        timer_.reset();
        stop_.reset();
    }

private:
    std::optional<deadline_claim> timer_;
    std::optional<cancel_claim> stop_;
};

// What a claimed context's `selected` says about a limit: timed_out, cancelled, or nullopt when
// the wait was not ended by a limit.
inline std::optional<park_step> limit_outcome(int selected) noexcept {
    if (selected == wait_context::k_timed_out)
        return park_step::timed_out;
    if (selected == wait_context::k_cancelled)
        return park_step::cancelled;
    return std::nullopt;
}

// Whether a limit has passed already (checked between the rounds of a retrying wait, which may
// keep losing to newcomers): timed_out, cancelled, or nullopt.
inline std::optional<park_step> limit_passed(no_deadline) noexcept {
    return std::nullopt;
}
template <class Clock, class Duration>
std::optional<park_step> limit_passed(const std::chrono::time_point<Clock, Duration>& d) {
    return Clock::now() >= d ? std::optional(park_step::timed_out) : std::nullopt;
}
inline std::optional<park_step> limit_passed(const wait_limit& limit) {
    if (limit.stop.stop_requested())
        return park_step::cancelled;
    if (limit.deadline && std::chrono::steady_clock::now() >= *limit.deadline)
        return park_step::timed_out;
    return std::nullopt;
}

// A thread owner's sleep on `ctx` (its parker's) until a claimant signals (parked: look at
// the waiter's outcome) or a limit claims it (timed_out / cancelled: the waiter is still linked
// and the caller unlinks it).
inline park_step sleep_limited(wait_context& ctx, no_deadline) noexcept {
    ctx.wait();
    return park_step::parked;
}
template <class Clock, class Duration>
park_step sleep_limited(wait_context& ctx, const std::chrono::time_point<Clock, Duration>& d) {
    return ctx.wait_until(d) ? park_step::parked : park_step::timed_out;
}
inline park_step sleep_limited(wait_context& ctx, const wait_limit& limit) {
    std::optional<cancel_claim> stop;
    if (limit.stop.stop_possible())
        stop.emplace(ctx, limit.stop);
    if (!limit.deadline) {
        ctx.wait();
    } else if (!ctx.wait_until(*limit.deadline)) {
        return park_step::timed_out;
    }
    stop.reset(); // from here on nothing else claims
    // acquire: pairs with the claim's acq_rel CAS (the signal ordered it anyway).
    return limit_outcome(ctx.selected.load(std::memory_order_acquire)).value_or(park_step::parked);
}

} // namespace weft::detail
