// weft::rate_limiter — a token bucket (Go's golang.org/x/time/rate): events happen at most at
// `limit` per second on average, in bursts of at most `burst`.
//
//   weft::rate_limiter lim(100, 10);                 // 100 events/s, bursts of 10
//   if (lim.allow()) handle(request);                // never waits
//   if (co_await lim.async_wait(ctx) == weft::status::ok) call_api();   // waits for a token
//
// The bucket holds up to `burst` tokens (it starts full) and gains `limit` tokens a second; an
// event takes one. Three ways to take a token:
//   allow()     takes one if there is one now, else says false.
//   reserve()   takes one now or in the future and says when (delay()); cancel() gives it back
//               if it has not been used yet (tokens reserved after it are not given back).
//   wait(ctx)   waits until the token's time, or returns cancelled without consuming it when
//               the context ends first, or at once when the context's deadline comes before
//               the token would (Go's Wait).
// An infinite limit (rate_limiter::inf) allows everything; a limit of 0 allows the tokens in the
// bucket and then nothing. A request of more than `burst` tokens (at a finite limit) can never
// be met: allow() is false, reserve() not ok, wait() returns not_ready at once.
//
// Time comes from a `now` function, steady_clock::now unless the constructor is given one (a
// fake clock in a test: set_limit, allow and reserve then follow it exactly; wait sleeps the
// computed delay in real time). Thread-safe.
#pragma once

#include "channel.hpp"
#include "context.hpp"
#include "detail/deadline.hpp"
#include "detail/spin_mutex.hpp"
#include "detail/task_park.hpp"
#include "detail/wait_limit.hpp"
#include "detail/waiter.hpp"
#include "task.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

namespace weft {

class rate_limiter {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;
    // The limit that allows every event.
    static constexpr double inf = std::numeric_limits<double>::infinity();

    // A token (or n) taken now or in the future: see reserve(). Move-only; must not outlive
    // its limiter.
    class reservation {
    public:
        reservation(reservation&& other) noexcept;
        reservation& operator=(reservation&& other) noexcept;
        reservation(const reservation&) = delete;
        reservation& operator=(const reservation&) = delete;

        // False if the tokens can never be had (more than burst, or a limit of 0).
        bool ok() const noexcept { return ok_; }
        // How long from now until the tokens may be used: zero if already; duration::max() if
        // not ok.
        duration delay() const;
        // When the tokens may be used (time_point::max() if not ok).
        time_point time_to_act() const noexcept { return act_; }
        // Gives the tokens back, as far as no later reservation has counted on them, unless
        // their time has passed (they count as used). A second cancel does nothing.
        void cancel();

    private:
        friend class rate_limiter;
        reservation(rate_limiter* owner, bool ok, std::int64_t n, time_point act,
                    double limit) noexcept
            : owner_(owner), ok_(ok), n_(n), act_(act), limit_(limit) {}

        rate_limiter* owner_;
        bool ok_;
        std::int64_t n_; // tokens taken; 0 once cancelled
        time_point act_; // when they may be used
        double limit_;   // the limit they were taken at
    };

    // `events_per_second` (>= 0, or inf) and `burst` (>= 0); `now` is the clock (none:
    // steady_clock::now). Throws std::invalid_argument on a negative or NaN limit or burst.
    rate_limiter(double events_per_second, std::int64_t burst,
                 std::function<time_point()> now = {});
    rate_limiter(const rate_limiter&) = delete;
    rate_limiter& operator=(const rate_limiter&) = delete;

    // Takes n tokens if the bucket has them now; never waits.
    bool allow(std::int64_t n = 1);
    // Takes n tokens now or in the future; the reservation says when (or that it never can).
    reservation reserve(std::int64_t n = 1);

    // Blocks the thread until n tokens may be used: ok; cancelled (the context ended first, or
    // its deadline comes before the tokens: nothing consumed); not_ready (never possible).
    status wait(const context& ctx, std::int64_t n = 1);
    // In a task: wait that suspends the task (on the timer thread), not its worker.
    task<status> async_wait(const context& ctx, std::int64_t n = 1);

    // Changes the rate or the bucket size from now on; tokens gained so far stay (up to the
    // new burst). Waits already reserved keep their time.
    void set_limit(double events_per_second);
    void set_burst(std::int64_t burst);

    double limit() const;
    std::int64_t burst() const;
    // Tokens in the bucket now (negative while reservations wait for future tokens).
    double tokens() const;
    // The limiter's clock.
    time_point now() const { return now_ ? now_() : clock::now(); }

private:
    // Takes n tokens at `t` if they are available within `max_wait` (the ok reservation), else
    // changes nothing (not ok; act_ is time_point::max() if they never will be).
    reservation reserve_at(time_point t, std::int64_t n, duration max_wait);
    void cancel_at(reservation& r, time_point t);
    // Ends a wait given its reservation: ok at once, the reason it failed, or nullopt (sleep
    // until r.time_to_act(), then ok).
    std::optional<status> settle(const reservation& r, time_point t) const;
    // How long to wait, at the latest, for a context's tokens: until its deadline.
    static duration max_wait_for(const std::optional<clock::time_point>& deadline);
    // async_wait's coroutine: takes the context's parts by value (it starts lazily).
    task<status> async_wait_impl(detail::cancel_ref stop, std::optional<clock::time_point> deadline,
                                 std::int64_t n);

    // --- with mutex_ held ---
    double tokens_at(time_point t) const noexcept;
    static double nanos_for(double tokens, double limit) noexcept;

    std::function<time_point()> now_;
    mutable detail::spin_mutex mutex_;
    // Guarded by mutex_: the bucket held tokens_ at last_; last_event_ is the latest time_to_act
    // handed out.
    double limit_;
    std::int64_t burst_;
    double tokens_;
    time_point last_;
    time_point last_event_;
};

// ---- implementation ------------------------------------------------------------------------

inline rate_limiter::rate_limiter(double events_per_second, std::int64_t burst,
                                  std::function<time_point()> now)
    : now_(std::move(now)), limit_(events_per_second), burst_(burst),
      tokens_(static_cast<double>(burst)) {
    if (!(events_per_second >= 0) || burst < 0)
        throw std::invalid_argument("weft: rate_limiter needs a limit >= 0 and a burst >= 0");
    last_ = last_event_ = this->now();
}

inline bool rate_limiter::allow(std::int64_t n) {
    return reserve_at(now(), n, duration::zero()).ok();
}

inline auto rate_limiter::reserve(std::int64_t n) -> reservation {
    return reserve_at(now(), n, duration::max());
}

inline std::optional<status> rate_limiter::settle(const reservation& r, time_point t) const {
    if (!r.ok())
        return r.time_to_act() == time_point::max() ? status::not_ready : status::cancelled;
    if (r.time_to_act() <= t)
        return status::ok;
    return std::nullopt;
}

inline auto rate_limiter::max_wait_for(const std::optional<clock::time_point>& deadline)
    -> duration {
    if (!deadline)
        return duration::max();
    return std::max(duration::zero(), *deadline - clock::now());
}

inline status rate_limiter::wait(const context& ctx, std::int64_t n) {
    const detail::cancel_ref stop = detail::cancellation_of(ctx);
    if (stop.stop_requested())
        return status::cancelled;
    const time_point t = now();
    reservation r = reserve_at(t, n, max_wait_for(ctx.deadline()));
    if (auto done = settle(r, t))
        return *done;
    // The token's time is a deadline claim on our context; the stop is the other claimant.
    detail::wait_context wc(detail::thread_parker::current());
    const detail::wait_limit limit{detail::deadline_after(r.time_to_act() - t), stop};
    if (detail::sleep_limited(wc, limit) == detail::park_step::cancelled) {
        cancel_at(r, now()); // the token was not used: give it back
        return status::cancelled;
    }
    return status::ok; // timed_out: the token's time has come (nothing else signals us)
}

inline task<status> rate_limiter::async_wait(const context& ctx, std::int64_t n) {
    return async_wait_impl(detail::cancellation_of(ctx), ctx.deadline(), n);
}

inline task<status> rate_limiter::async_wait_impl(detail::cancel_ref stop,
                                                  std::optional<clock::time_point> deadline,
                                                  std::int64_t n) {
    if (stop.stop_requested())
        co_return status::cancelled;
    const time_point t = now();
    reservation r = reserve_at(t, n, max_wait_for(deadline));
    if (auto done = settle(r, t))
        co_return *done;
    const detail::wait_limit limit{detail::deadline_after(r.time_to_act() - t), stop}; // named
    const detail::park_step ended =
        co_await detail::wait_for_limits(detail::blocked_on::timer, limit);
    if (ended == detail::park_step::cancelled) {
        cancel_at(r, now());
        co_return status::cancelled;
    }
    co_return status::ok;
}

inline void rate_limiter::set_limit(double events_per_second) {
    if (!(events_per_second >= 0))
        throw std::invalid_argument("weft: rate_limiter needs a limit >= 0");
    const time_point t = now();
    std::lock_guard lock(mutex_);
    tokens_ = tokens_at(t);
    last_ = std::max(last_, t);
    limit_ = events_per_second;
}

inline void rate_limiter::set_burst(std::int64_t burst) {
    if (burst < 0)
        throw std::invalid_argument("weft: rate_limiter needs a burst >= 0");
    const time_point t = now();
    std::lock_guard lock(mutex_);
    tokens_ = tokens_at(t);
    last_ = std::max(last_, t);
    burst_ = burst;
}

inline double rate_limiter::limit() const {
    std::lock_guard lock(mutex_);
    return limit_;
}

inline std::int64_t rate_limiter::burst() const {
    std::lock_guard lock(mutex_);
    return burst_;
}

inline double rate_limiter::tokens() const {
    const time_point t = now();
    std::lock_guard lock(mutex_);
    return tokens_at(t);
}

inline auto rate_limiter::reserve_at(time_point t, std::int64_t n, duration max_wait)
    -> reservation {
    std::lock_guard lock(mutex_);
    if (std::isinf(limit_))
        return reservation(this, true, n, t, limit_);
    const time_point never = time_point::max();
    if (n > burst_)
        return reservation(this, false, 0, never, limit_);
    const double left = tokens_at(t) - static_cast<double>(n);
    duration wait = duration::zero();
    if (left < 0) {
        const double nanos = nanos_for(-left, limit_);
        // No refill (limit 0), or a wait beyond what a duration holds: never.
        if (!(nanos < 1e18))
            return reservation(this, false, 0, never, limit_);
        // Rounded up: a token is never used before it exists.
        wait = std::chrono::duration_cast<duration>(
            std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(nanos))));
    }
    if (wait > max_wait)
        return reservation(this, false, 0, t + wait, limit_);
    // Only a granted reservation changes the bucket, so a run of refusals adds no rounding.
    tokens_ = left;
    last_ = std::max(last_, t);
    last_event_ = t + wait;
    return reservation(this, true, n, t + wait, limit_);
}

inline void rate_limiter::cancel_at(reservation& r, time_point t) {
    const std::int64_t n = std::exchange(r.n_, 0);
    std::lock_guard lock(mutex_);
    if (!r.ok_ || n == 0 || std::isinf(r.limit_) || r.act_ < t)
        return; // nothing taken, or already used
    // Tokens reserved after r (between its time and the latest one handed out) stay taken.
    const double later = r.limit_ * std::chrono::duration<double>(last_event_ - r.act_).count();
    const double restore = static_cast<double>(n) - later;
    if (restore <= 0)
        return;
    tokens_ = std::min(tokens_at(t) + restore, static_cast<double>(burst_));
    last_ = std::max(last_, t);
    if (r.act_ == last_event_ && r.limit_ > 0) {
        // r was the latest: the latest is now the one before it, if still in the future.
        const auto before = r.act_ - std::chrono::duration_cast<duration>(
                                         std::chrono::duration<double>(n / r.limit_));
        if (before >= t)
            last_event_ = before;
    }
}

inline double rate_limiter::tokens_at(time_point t) const noexcept {
    if (std::isinf(limit_))
        return static_cast<double>(burst_);
    // A clock that went back (or a t read before another caller's) adds nothing.
    const double nanos =
        t > last_ ? static_cast<double>(std::chrono::nanoseconds(t - last_).count()) : 0.0;
    // nanos * limit first: exact for whole numbers of tokens at round rates (100/s, 10 ms).
    return std::min(tokens_ + nanos * limit_ / 1e9, static_cast<double>(burst_));
}

inline double rate_limiter::nanos_for(double tokens, double limit) noexcept {
    return limit > 0 ? tokens * 1e9 / limit : std::numeric_limits<double>::infinity();
}

inline rate_limiter::reservation::reservation(reservation&& other) noexcept
    : owner_(other.owner_), ok_(other.ok_), n_(std::exchange(other.n_, 0)), act_(other.act_),
      limit_(other.limit_) {}

inline auto rate_limiter::reservation::operator=(reservation&& other) noexcept -> reservation& {
    owner_ = other.owner_;
    ok_ = other.ok_;
    n_ = std::exchange(other.n_, 0);
    act_ = other.act_;
    limit_ = other.limit_;
    return *this;
}

inline auto rate_limiter::reservation::delay() const -> duration {
    if (!ok_)
        return duration::max();
    return std::max(duration::zero(), act_ - owner_->now());
}

inline void rate_limiter::reservation::cancel() {
    owner_->cancel_at(*this, owner_->now());
}

} // namespace weft
