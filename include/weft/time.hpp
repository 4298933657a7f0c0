// weft timers — Go's time.After, time.Timer, time.Ticker and time.AfterFunc, and sleeps for tasks.
//
//   weft::select(weft::on_recv(results, use), weft::on_recv(weft::after(1s), give_up));
//   weft::timer t(500ms);      t.channel().recv();      t.reset(1s);     t.stop();
//   weft::ticker tick(100ms);  for (;;) { tick.channel().recv(); poll(); }
//   weft::callback_timer c = weft::after_func(2s, [&] { done.try_send(true); });
//   co_await weft::sleep_for(10ms);                       // in a task: the worker runs others
//   if (co_await weft::sleep_for(ctx, 1s) == weft::status::cancelled) co_return; // ctx done
//
// Every timer runs on one shared timer thread (detail::timer_service), not a thread each. A
// timer's channel has capacity 1 and the timer only ever try_sends on it, so a slow reader
// never stalls the timer thread: a ticker drops ticks that nobody took, as Go's does.
//
// The semantics are Go 1.23's: stop() and reset() take back a value that fired but was not
// received, so no stale value is ever seen after them, and they return true whenever they
// stopped the timer before its value was received. Durations too large for the clock mean
// "never" (they saturate, as Go's do), zero or negative ones "at once".
#pragma once

#include "blocking_report.hpp"
#include "channel.hpp"
#include "detail/context_fwd.hpp"
#include "detail/deadline.hpp"
#include "detail/task_park.hpp"
#include "detail/timer_service.hpp"
#include "detail/wait_limit.hpp"
#include "task.hpp"

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace weft {

using time_point = std::chrono::steady_clock::time_point;

// The steady-clock time `d` from now, saturating as every weft deadline does: a duration too
// large for the clock gives time_point::max() (never), zero or a negative one gives now.
template <class Rep, class Period>
time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
    return detail::deadline_after(d);
}

namespace detail {
struct timer_state;
inline channel<time_point> after_channel(time_point when);
} // namespace detail

// A receiver that yields the current time once, `delay` from now (Go's time.After). The
// channel is never closed. Dropping every copy of the receiver cancels the timer. For a timer
// you can stop, use weft::timer.
template <class Rep, class Period>
receiver<time_point> after(std::chrono::duration<Rep, Period> delay) {
    return detail::after_channel(detail::deadline_after(delay));
}

// A one-shot timer (Go's time.Timer): its channel yields the time once when it fires.
// Stopped when destroyed. Methods of a moved-from timer throw std::logic_error.
class timer {
public:
    template <class Rep, class Period>
    explicit timer(std::chrono::duration<Rep, Period> delay);
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    timer(timer&&) noexcept = default;
    // Stops the timer being overwritten, so it cannot keep firing unseen.
    timer& operator=(timer&& other) noexcept;
    ~timer();

    receiver<time_point> channel() const;

    // Stops the timer (Go 1.23's Stop). True if this call stopped it before its value was
    // received: it was pending, or it had fired and the value, still in the channel, is taken
    // back. False if the value had been received or the timer was already stopped. Afterwards
    // the channel holds nothing, so `if (!t.stop()) t.channel().recv();` never waits for ever.
    bool stop();

    // Re-arms the timer to fire `delay` from now, taking back a value not yet received.
    // Returns what stop() would have.
    template <class Rep, class Period>
    bool reset(std::chrono::duration<Rep, Period> delay);

private:
    void arm(std::chrono::steady_clock::duration delay); // with the state's mutex held
    detail::timer_state& live(const char* what) const;

    std::shared_ptr<detail::timer_state> state_;
};

// Delivers the time every `period` on its channel (Go's time.Ticker) until stopped or
// destroyed. Ticks that the reader has not taken are dropped, never queued. Methods of a
// moved-from ticker throw std::logic_error.
class ticker {
public:
    // A non-positive period throws std::invalid_argument; a huge one never ticks.
    template <class Rep, class Period>
    explicit ticker(std::chrono::duration<Rep, Period> period);
    ticker(const ticker&) = delete;
    ticker& operator=(const ticker&) = delete;
    ticker(ticker&&) noexcept = default;
    // Stops the ticker being overwritten, so it cannot keep firing unseen.
    ticker& operator=(ticker&& other) noexcept;
    ~ticker();

    receiver<time_point> channel() const;

    // Stops the ticks. Once stop() returns no further tick is sent and none is left waiting.
    void stop();

    // Restarts the ticker with a new period, counted from now; a tick not yet received is
    // taken back. A non-positive period throws std::invalid_argument and changes nothing.
    template <class Rep, class Period>
    void reset(std::chrono::duration<Rep, Period> period);

private:
    template <class Rep, class Period>
    static std::chrono::steady_clock::duration checked(std::chrono::duration<Rep, Period> period);
    detail::timer_state& live(const char* what) const;
    void start(std::chrono::steady_clock::duration period); // with the state's mutex held

    std::shared_ptr<detail::timer_state> state_;
};

// A call that after_func scheduled on the timer thread. Stopped when destroyed; move-only. A
// default-constructed one holds no call.
class callback_timer {
public:
    callback_timer() noexcept = default;
    callback_timer(callback_timer&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
    callback_timer& operator=(callback_timer&& other) noexcept;
    // Stops the call, and if it is running right now, waits until it has returned (unless this
    // runs inside the call itself), so what the call refers to may be destroyed afterwards.
    ~callback_timer() { release(); }

    // Go's Timer.Stop for AfterFunc: true if this prevented the call; false if it has run, is
    // running now (stop() does not wait for it) or was stopped before.
    bool stop();

private:
    template <class Rep, class Period, class Fn>
    friend callback_timer after_func(std::chrono::duration<Rep, Period> delay, Fn fn);
    explicit callback_timer(detail::timer_service::timer_id id) noexcept : id_(id) {}
    void release() noexcept;

    detail::timer_service::timer_id id_ = 0; // 0: no call
};

// Go's time.AfterFunc: calls `fn()` once `delay` has passed, unless the returned
// callback_timer is stopped or destroyed first. fn runs on weft's timer thread, which serves
// every timer of the process: it must be quick and must not block (complete a promise,
// try_send, spawn a task for real work). An exception it throws is printed to stderr.
template <class Rep, class Period, class Fn>
[[nodiscard]] callback_timer after_func(std::chrono::duration<Rep, Period> delay, Fn fn);

// In a task: suspends it until `deadline` (steady clock) without holding its worker; the shared
// timer thread wakes it. No channel is involved.
inline task<void> sleep_until(time_point deadline) {
    detail::task_wakeup wakeup(blocked_on::timer);
    detail::deadline_claim timer(wakeup.context(), deadline);
    co_await wakeup;
}

// In a task: `co_await weft::sleep_for(d)` suspends the task for `d` (a plain thread uses
// std::this_thread::sleep_for). A huge d sleeps for ever.
template <class Rep, class Period>
task<void> sleep_for(std::chrono::duration<Rep, Period> d) {
    return sleep_until(detail::deadline_after(d));
}

// In a task: sleeps until `deadline` unless `ctx` is done first. status::ok after the full
// sleep, status::cancelled as soon as ctx is done (the timer is cancelled then). A deadline
// that has passed is ok at once, even if ctx is done. (A template only so that this header
// needs no definition of weft::context: Context is always weft::context.)
template <std::same_as<context> Context>
task<status> sleep_until(const Context& ctx, time_point deadline);

// In a task: `co_await weft::sleep_for(ctx, d)`: sleep_for(d) that ends early, with
// status::cancelled, when `ctx` is done; status::ok after the full sleep.
template <class Rep, class Period>
task<status> sleep_for(const context& ctx, std::chrono::duration<Rep, Period> d) {
    return sleep_until(ctx, detail::deadline_after(d));
}

// Blocking forms for plain threads, named after std::this_thread's.
namespace this_thread {

// Blocks the calling thread until `deadline`, or until `ctx` is done: status::ok after the full
// sleep, status::cancelled as soon as ctx is done. A deadline that has passed is ok at once.
template <std::same_as<context> Context>
status sleep_until(const Context& ctx, time_point deadline);

// Blocks the calling thread for `d`, or until `ctx` is done: ok or cancelled, as sleep_until.
template <class Rep, class Period>
status sleep_for(const context& ctx, std::chrono::duration<Rep, Period> d) {
    return this_thread::sleep_until(ctx, detail::deadline_after(d));
}

} // namespace this_thread

// ---- implementation ------------------------------------------------------------------------

// A sleep is a wait that only its limits end: the deadline claims the context as k_timed_out
// (the full sleep, ok), the context's stop as k_cancelled. Exactly one of them wins.
template <std::same_as<context> Context>
task<status> sleep_until(const Context& ctx, time_point deadline) {
    if (deadline <= std::chrono::steady_clock::now())
        co_return status::ok; // completes at once, done context or not
    if (detail::cancelled_of(ctx))
        co_return status::cancelled;
    const detail::wait_limit limit{deadline, detail::cancellation_of(ctx)}; // named: see there
    const detail::park_step ended = co_await detail::wait_for_limits(blocked_on::timer, limit);
    co_return ended == detail::park_step::cancelled ? status::cancelled : status::ok;
}

template <std::same_as<context> Context>
status this_thread::sleep_until(const Context& ctx, time_point deadline) {
    if (deadline <= std::chrono::steady_clock::now())
        return status::ok;
    if (detail::cancelled_of(ctx))
        return status::cancelled;
    detail::note_blocking(
        {"weft::this_thread::sleep_for/sleep_until", "co_await weft::sleep_for(ctx, d)"});
    detail::wait_context wait(detail::thread_parker::current());
    // Nobody else knows this context: only the deadline (timed_out, the full sleep) or the
    // stop (cancelled) ends the sleep, so parked (a signal from nowhere) cannot happen.
    const detail::park_step step =
        detail::sleep_limited(wait, detail::wait_limit{deadline, detail::cancellation_of(ctx)});
    return step == detail::park_step::cancelled ? status::cancelled : status::ok;
}

namespace detail {

// State shared by a timer or ticker handle and its pending callback. `mutex` makes stop()
// final: once stop() returns, no callback sends again.
struct timer_state {
    std::mutex mutex;
    weft::channel<time_point> ch{1};
    timer_service::timer_id id = 0;
    std::uint64_t generation = 0; // bumped by stop/reset so a stale callback does nothing
    bool active = false;
    std::chrono::steady_clock::duration period{}; // tickers only

    // With `mutex` held, for stop() and reset() of both: the pending callback will not send,
    // and a value that fired but was not received is taken back, so the reader never sees a
    // stale one. True if it was pending or a value was taken back (Go 1.23's Stop).
    bool halt() {
        const bool was_pending = active;
        active = false;
        ++generation;
        timer_service::instance().cancel(id);
        const bool took_back = ch.try_recv().has_value();
        return was_pending || took_back;
    }
};

// The state of a timer or ticker handle; a moved-from handle's use is a bug, said plainly.
inline timer_state& live_state(const std::shared_ptr<timer_state>& state, const char* what,
                               const char* type) {
    if (!state)
        throw std::logic_error(std::string("weft: ") + what + " on a moved-from " + type);
    return *state;
}

// after()'s channel. The pending callback holds it only weakly, and the deleter of its state
// cancels the timer: once every receiver is gone the timer and its memory are freed at once.
inline channel<time_point> after_channel(time_point when) {
    struct cancel_timer {
        timer_service::timer_id id = 0;
        void operator()(channel_state<time_point>* state) const noexcept {
            try {
                timer_service::instance().cancel(id); // false if it ran: nothing to do
            } catch (...) {
                // Could not take the service's lock: the entry stays until due, and is harmless.
            }
            delete state;
        }
    };
    std::shared_ptr<channel_state<time_point>> state(new channel_state<time_point>(1),
                                                     cancel_timer{});
    const timer_service::timer_id id = timer_service::instance().schedule(
        when, [weak = std::weak_ptr<channel_state<time_point>>(state)] {
            if (std::shared_ptr<channel_state<time_point>> alive = weak.lock()) {
                time_point now = std::chrono::steady_clock::now();
                (void)alive->try_now(sending{}, now);
            }
        });
    // We hold `state`, so its deleter cannot run before it knows the id.
    std::get_deleter<cancel_timer>(state)->id = id;
    return channel_access::adopt(std::move(state));
}

} // namespace detail

// --- timer ---

template <class Rep, class Period>
timer::timer(std::chrono::duration<Rep, Period> delay)
    : state_(std::make_shared<detail::timer_state>()) {
    std::lock_guard lock(state_->mutex);
    arm(detail::saturating_ticks(delay));
}

inline timer& timer::operator=(timer&& other) noexcept {
    if (this != &other) {
        if (state_)
            stop();
        state_ = std::move(other.state_);
    }
    return *this;
}

inline timer::~timer() {
    if (state_)
        stop();
}

inline receiver<time_point> timer::channel() const {
    return live("channel()").ch;
}

inline bool timer::stop() {
    detail::timer_state& s = live("stop()");
    std::lock_guard lock(s.mutex);
    return s.halt();
}

template <class Rep, class Period>
bool timer::reset(std::chrono::duration<Rep, Period> delay) {
    detail::timer_state& s = live("reset()");
    std::lock_guard lock(s.mutex);
    const bool stopped = s.halt();
    arm(detail::saturating_ticks(delay));
    return stopped;
}

inline void timer::arm(std::chrono::steady_clock::duration delay) {
    state_->active = true;
    const std::uint64_t generation = ++state_->generation;
    state_->id = detail::timer_service::instance().schedule(
        detail::saturating_add(std::chrono::steady_clock::now(), delay),
        [state = state_, generation] {
            std::lock_guard lock(state->mutex);
            if (!state->active || state->generation != generation)
                return;
            state->active = false;
            state->ch.try_send(std::chrono::steady_clock::now());
        });
}

inline detail::timer_state& timer::live(const char* what) const {
    return detail::live_state(state_, what, "timer");
}

// --- ticker ---

template <class Rep, class Period>
ticker::ticker(std::chrono::duration<Rep, Period> period)
    : state_(std::make_shared<detail::timer_state>()) {
    const std::chrono::steady_clock::duration ticks = checked(period);
    std::lock_guard lock(state_->mutex);
    start(ticks);
}

inline ticker& ticker::operator=(ticker&& other) noexcept {
    if (this != &other) {
        if (state_)
            stop();
        state_ = std::move(other.state_);
    }
    return *this;
}

inline ticker::~ticker() {
    if (state_)
        stop();
}

inline receiver<time_point> ticker::channel() const {
    return live("channel()").ch;
}

inline void ticker::stop() {
    detail::timer_state& s = live("stop()");
    std::lock_guard lock(s.mutex);
    (void)s.halt();
}

template <class Rep, class Period>
void ticker::reset(std::chrono::duration<Rep, Period> period) {
    const std::chrono::steady_clock::duration ticks = checked(period);
    detail::timer_state& s = live("reset()");
    std::lock_guard lock(s.mutex);
    (void)s.halt();
    start(ticks);
}

// The period in clock ticks, at least one; a huge one saturates (the ticker never ticks).
template <class Rep, class Period>
std::chrono::steady_clock::duration ticker::checked(std::chrono::duration<Rep, Period> period) {
    if (!(period > period.zero()))
        throw std::invalid_argument("weft: non-positive ticker period");
    return std::max(std::chrono::steady_clock::duration(1), detail::saturating_ticks(period));
}

inline detail::timer_state& ticker::live(const char* what) const {
    return detail::live_state(state_, what, "ticker");
}

namespace detail {

// One tick, on the timer thread: send the time (dropped if the reader is behind) and schedule
// the next tick, keeping the phase; after a long stall the missed ticks are skipped, not burst.
inline void schedule_tick(const std::shared_ptr<timer_state>& state, time_point due,
                          std::uint64_t generation) {
    state->id = timer_service::instance().schedule(due, [state, due, generation] {
        std::lock_guard lock(state->mutex);
        if (!state->active || state->generation != generation)
            return;
        const time_point now = std::chrono::steady_clock::now();
        state->ch.try_send(now); // full: the reader is behind; drop this tick
        time_point next = saturating_add(due, state->period);
        if (next <= now)
            next = saturating_add(now, state->period);
        schedule_tick(state, next, generation);
    });
}

} // namespace detail

inline void ticker::start(std::chrono::steady_clock::duration period) {
    state_->period = period;
    state_->active = true;
    detail::schedule_tick(state_, detail::saturating_add(std::chrono::steady_clock::now(), period),
                          state_->generation);
}

// --- callback_timer, after_func ---

inline callback_timer& callback_timer::operator=(callback_timer&& other) noexcept {
    if (this != &other) {
        release();
        id_ = std::exchange(other.id_, 0);
    }
    return *this;
}

inline bool callback_timer::stop() {
    return id_ != 0 && detail::timer_service::instance().cancel(id_);
}

inline void callback_timer::release() noexcept {
    if (id_ == 0)
        return;
    try {
        detail::timer_service::instance().cancel_and_wait(std::exchange(id_, 0));
    } catch (...) {
        // The service's lock failed (std::system_error): nothing better to do than leave it.
    }
}

template <class Rep, class Period, class Fn>
callback_timer after_func(std::chrono::duration<Rep, Period> delay, Fn fn) {
    static_assert(std::is_invocable_v<Fn&>, "weft::after_func: fn must be callable with no "
                                            "arguments");
    return callback_timer(detail::timer_service::instance().schedule(
        detail::deadline_after(delay), [fn = std::move(fn)]() mutable {
            try {
                fn();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "weft: exception in an after_func callback: %s\n", e.what());
            } catch (...) {
                std::fprintf(stderr, "weft: non-std exception in an after_func callback\n");
            }
        }));
}

} // namespace weft
