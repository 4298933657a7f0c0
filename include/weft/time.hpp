// weft timers — Go's time.After, time.Timer and time.Ticker on channels.
//
// Every timer runs on one shared timer thread (detail::timer_service), not a thread each. A
// timer's channel has capacity 1 and the timer only ever try_sends on it, so a slow reader
// never stalls the timer thread: a ticker drops ticks that nobody took, as Go's does.
#pragma once

#include "channel.hpp"
#include "detail/timer_service.hpp"

#include <chrono>
#include <memory>
#include <mutex>

namespace weft {

using time_point = std::chrono::steady_clock::time_point;

// A receiver that yields the current time once, `delay` from now (Go's time.After). The
// channel is never closed. For a timer you can stop, use weft::timer.
template <class Rep, class Period>
receiver<time_point> after(std::chrono::duration<Rep, Period> delay) {
    channel<time_point> ch(1);
    detail::timer_service::instance().schedule(
        std::chrono::steady_clock::now() +
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay),
        [ch]() mutable { ch.try_send(std::chrono::steady_clock::now()); });
    return ch;
}

namespace detail {

// State shared by a timer or ticker handle and its pending callback. `mutex` makes stop()
// final: once stop() returns, no callback sends again.
struct timer_state {
    std::mutex mutex;
    channel<time_point> ch{1};
    timer_service::timer_id id = 0;
    std::uint64_t generation = 0; // bumped by stop/reset so a stale callback does nothing
    bool active = false;
    std::chrono::steady_clock::duration period{}; // tickers only

    // Drops a value that fired before a stop/reset, so the reader never sees a stale one.
    void drain() { (void)ch.try_recv(); }
};

} // namespace detail

// A one-shot timer (Go's time.Timer): its channel yields the time once when it fires.
// Stopped when destroyed.
class timer {
public:
    template <class Rep, class Period>
    explicit timer(std::chrono::duration<Rep, Period> delay)
        : state_(std::make_shared<detail::timer_state>()) {
        std::lock_guard lock(state_->mutex);
        arm(delay);
    }
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    timer(timer&&) noexcept = default;
    // Stops the timer being overwritten, so it cannot keep firing unseen.
    timer& operator=(timer&& other) noexcept {
        if (this != &other) {
            if (state_)
                stop();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    ~timer() {
        if (state_)
            stop();
    }

    receiver<time_point> channel() const { return state_->ch; }

    // Prevents the timer from firing. True if it was pending; false if it had fired or was
    // stopped. Afterwards the channel holds no stale value.
    bool stop() {
        std::lock_guard lock(state_->mutex);
        const bool was_active = disarm();
        state_->drain();
        return was_active;
    }

    // Re-arms the timer to fire `delay` from now, discarding any stale value. True if it
    // was pending.
    template <class Rep, class Period>
    bool reset(std::chrono::duration<Rep, Period> delay) {
        std::lock_guard lock(state_->mutex);
        const bool was_active = disarm();
        state_->drain();
        arm(delay);
        return was_active;
    }

private:
    template <class Rep, class Period>
    void arm(std::chrono::duration<Rep, Period> delay) {
        state_->active = true;
        const std::uint64_t generation = ++state_->generation;
        state_->id = detail::timer_service::instance().schedule(
            std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay),
            [state = state_, generation] {
                std::lock_guard lock(state->mutex);
                if (!state->active || state->generation != generation)
                    return;
                state->active = false;
                state->ch.try_send(std::chrono::steady_clock::now());
            });
    }

    bool disarm() {
        const bool was_active = state_->active;
        state_->active = false;
        ++state_->generation;
        detail::timer_service::instance().cancel(state_->id);
        return was_active;
    }

    std::shared_ptr<detail::timer_state> state_;
};

// Delivers the time every `period` on its channel (Go's time.Ticker) until stopped or
// destroyed. Ticks that the reader has not taken are dropped, never queued.
class ticker {
public:
    template <class Rep, class Period>
    explicit ticker(std::chrono::duration<Rep, Period> period)
        : state_(std::make_shared<detail::timer_state>()) {
        std::lock_guard lock(state_->mutex);
        start(std::chrono::duration_cast<std::chrono::steady_clock::duration>(period));
    }
    ticker(const ticker&) = delete;
    ticker& operator=(const ticker&) = delete;
    ticker(ticker&&) noexcept = default;
    // Stops the ticker being overwritten, so it cannot keep firing unseen.
    ticker& operator=(ticker&& other) noexcept {
        if (this != &other) {
            if (state_)
                stop();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    ~ticker() {
        if (state_)
            stop();
    }

    receiver<time_point> channel() const { return state_->ch; }

    // Stops the ticks. Once stop() returns no further tick is sent and none is left waiting.
    void stop() {
        std::lock_guard lock(state_->mutex);
        state_->active = false;
        ++state_->generation;
        detail::timer_service::instance().cancel(state_->id);
        state_->drain();
    }

    // Restarts the ticker with a new period, counted from now.
    template <class Rep, class Period>
    void reset(std::chrono::duration<Rep, Period> period) {
        std::lock_guard lock(state_->mutex);
        ++state_->generation;
        detail::timer_service::instance().cancel(state_->id);
        start(std::chrono::duration_cast<std::chrono::steady_clock::duration>(period));
    }

private:
    // With state_->mutex held.
    void start(std::chrono::steady_clock::duration period) {
        if (period <= std::chrono::steady_clock::duration::zero())
            throw std::invalid_argument("weft: non-positive ticker period");
        state_->period = period;
        state_->active = true;
        schedule(state_, std::chrono::steady_clock::now() + period, state_->generation);
    }

    static void schedule(const std::shared_ptr<detail::timer_state>& state, time_point when,
                         std::uint64_t generation) {
        state->id = detail::timer_service::instance().schedule(
            when, [state, when, generation] { tick(state, when, generation); });
    }

    static void tick(const std::shared_ptr<detail::timer_state>& state, time_point due,
                     std::uint64_t generation) {
        std::lock_guard lock(state->mutex);
        if (!state->active || state->generation != generation)
            return;
        const time_point now = std::chrono::steady_clock::now();
        state->ch.try_send(now); // full: the reader is behind; drop this tick
        // Keep the phase; after a long stall skip the missed ticks instead of bursting.
        time_point next = due + state->period;
        if (next <= now)
            next = now + state->period;
        schedule(state, next, generation);
    }

    std::shared_ptr<detail::timer_state> state_;
};

// In a task: suspends it until `deadline` (steady clock) without holding its worker; the shared
// timer thread wakes it. No channel is involved.
inline task<void> sleep_until(time_point deadline) {
    detail::task_wakeup wakeup(blocked_on::timer);
    detail::deadline_claim timer(wakeup.context(), deadline);
    co_await wakeup;
}

// In a task: `co_await weft::sleep_for(d)` suspends the task for `d` (a plain thread uses
// std::this_thread::sleep_for).
template <class Rep, class Period>
task<void> sleep_for(std::chrono::duration<Rep, Period> d) {
    return sleep_until(std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(d));
}

} // namespace weft
