// weft::future<R> and weft::promise<R> — the result of work that runs elsewhere, and the
// producer's end of it. A future is `co_await`ed in a task, which is suspended meanwhile so its
// worker runs other tasks, or get() on a plain thread; the promise sets its value or exception
// once, from any thread. An exception set by the producer is rethrown to the consumer. Both are
// move-only, and a future is read once.
//
//   weft::promise<int> p;
//   weft::future<int> f = p.get_future();
//   std::thread([p = std::move(p)]() mutable { p.set_value(42); }).detach();
//   int v = co_await std::move(f);   // in a task (or f.get() on a thread)
//
// spawn_blocking and actor_ref::ask return futures; make_ready_future wraps a value already
// known. A promise destroyed before it set anything sets broken_promise, so no consumer waits
// for ever.
//
// A wait can be given a weft::context: `f.wait(ctx)` on a thread, `co_await f.async_wait(ctx)`
// in a task. Either returns status::ok once the result is set (then read it: get() or
// co_await std::move(f), which no longer wait) or status::cancelled if the context is done
// first. A cancelled wait leaves the future as it was: the producer runs on, and the future
// can be waited for or read again later.
#pragma once

#include "blocking_report.hpp"
#include "channel.hpp" // weft::status
#include "detail/context_fwd.hpp"
#include "scheduler.hpp"

#include <atomic>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

// Misuse of a promise or future that is a bug in the caller: a second get_future(), a value set
// twice, a future read twice.
class future_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// What a future rethrows when its promise was destroyed without setting anything.
class broken_promise : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

template <class R>
class future;
template <class R>
class promise;

namespace detail {

template <class R>
class future_state;
template <class R>
class future_wait_awaiter;

// Lets spawn_blocking hand over a state it made itself (one allocation for the call and its
// result) without making the constructor public.
struct future_access {
    template <class R>
    static future<R> adopt(std::shared_ptr<future_state<R>> state) noexcept {
        return future<R>(std::move(state));
    }
    // f.async_wait(ctx) given the context's stop token, for callers that keep only the token
    // (a task that must not hold a reference to its caller's context).
    template <class R>
    static future_wait_awaiter<R> wait_for(future<R>& f, cancel_ref stop) {
        return future_wait_awaiter<R>(f.live_state(), std::move(stop));
    }
};

} // namespace detail

template <class R>
class [[nodiscard]] future {
public:
    future(future&&) noexcept = default;
    future& operator=(future&&) = delete;
    ~future() {
        // A task destroyed while suspended here (its scheduler shut down) must not be resumed
        // when the result arrives; after a normal read this changes nothing.
        if (state_)
            state_->abandon();
    }

    // True once the result is set (get() and co_await will not wait). Throws future_error
    // once the future has been read.
    bool ready() const { return live().ready(); }

    bool await_ready() const { return live().ready(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return state_->suspend(h); }
    R await_resume() { return take(); }

    // Blocks the calling thread until the result is set; returns it or rethrows.
    // (On a worker thread that would wait, this is reported: see blocking_report.hpp.)
    R get(weft::source_location loc = weft::source_location::current()) {
        if (!live().ready())
            detail::note_blocking({"weft::future::get", "co_await the future", loc});
        state_->wait();
        return take();
    }

    // Blocks the calling thread until the result is set (ok) or `ctx` is done first
    // (cancelled). Reads nothing: after ok, get() returns at once; after cancelled the future is
    // unchanged and may be waited for again. Throws future_error once the future has been read.
    status wait(const context& ctx, weft::source_location loc = weft::source_location::current()) {
        if (live().ready())
            return status::ok;
        detail::note_blocking({"weft::future::wait(ctx)", "co_await f.async_wait(ctx)", loc});
        return state_->wait(detail::cancellation_of(ctx)) ? status::ok : status::cancelled;
    }

    // In a task: `co_await f.async_wait(ctx)` is wait(ctx) that suspends the task. ok or
    // cancelled; after cancelled the task is no longer the future's consumer (a later result
    // does not resume it) and may wait again. Returns an awaitable to co_await at once (it
    // refers to the future).
    detail::future_wait_awaiter<R> async_wait(const context& ctx) {
        return detail::future_wait_awaiter<R>(live_state(), detail::cancellation_of(ctx));
    }

private:
    friend class promise<R>;
    friend struct detail::future_access;
    explicit future(std::shared_ptr<detail::future_state<R>> state) noexcept
        : state_(std::move(state)) {}

    static constexpr const char* k_gone = "weft: a future read twice (or moved from)";

    const detail::future_state<R>& live() const {
        if (!state_)
            throw future_error(k_gone);
        return *state_;
    }
    detail::future_state<R>& live_state() {
        if (!state_)
            throw future_error(k_gone);
        return *state_;
    }
    // Reads the result once: the future lets go of its state, so a second read throws.
    R take() {
        if (!state_)
            throw future_error(k_gone);
        const std::shared_ptr<detail::future_state<R>> state = std::move(state_);
        return state->take();
    }

    std::shared_ptr<detail::future_state<R>> state_;
};

// The producer's end of a future: sets its value or exception once, from any thread.
template <class R>
class promise {
public:
    promise() : state_(std::make_shared<detail::future_state<R>>()) {}
    promise(promise&&) noexcept = default;
    promise& operator=(promise&& other) noexcept {
        if (this != &other) {
            break_if_unset();
            state_ = std::move(other.state_);
            satisfied_ = other.satisfied_;
            retrieved_ = other.retrieved_;
        }
        return *this;
    }
    // Unset: the future rethrows broken_promise.
    ~promise() { break_if_unset(); }

    // The future this promise completes. Once; a second call throws future_error.
    future<R> get_future() {
        if (!state_ || retrieved_)
            throw future_error("weft: get_future() called twice (or on a moved-from promise)");
        retrieved_ = true;
        return future<R>(state_);
    }

    // Sets the value (nothing for R = void) and resumes or wakes the consumer. Once: a second
    // set_value or set_exception throws future_error.
    template <class... Args>
    void set_value(Args&&... args) {
        claim();
        state_->set_value(std::forward<Args>(args)...);
    }
    // Sets an exception for the consumer to rethrow. Once, as set_value.
    void set_exception(std::exception_ptr error) {
        claim();
        state_->set_exception(std::move(error));
    }

private:
    void claim() {
        if (!state_ || satisfied_)
            throw future_error("weft: a promise set twice (or a moved-from one)");
        satisfied_ = true;
    }
    void break_if_unset() noexcept {
        if (state_ && !satisfied_) {
            satisfied_ = true;
            state_->set_exception(std::make_exception_ptr(
                broken_promise("weft: promise destroyed before it set a value")));
        }
    }

    std::shared_ptr<detail::future_state<R>> state_;
    bool satisfied_ = false; // a value or exception was set
    bool retrieved_ = false; // get_future() was called
};

// A future whose value is already set: co_await and get() return it at once.
template <class R>
future<std::decay_t<R>> make_ready_future(R&& value) {
    promise<std::decay_t<R>> p;
    future<std::decay_t<R>> f = p.get_future();
    p.set_value(std::forward<R>(value));
    return f;
}
inline future<void> make_ready_future() {
    promise<void> p;
    future<void> f = p.get_future();
    p.set_value();
    return f;
}
// A future that rethrows `error` when read.
template <class R>
future<R> make_exceptional_future(std::exception_ptr error) {
    promise<R> p;
    future<R> f = p.get_future();
    p.set_exception(std::move(error));
    return f;
}

namespace detail {

// The meeting point of one producer and one consumer.
template <class R>
class future_state {
public:
    future_state() = default;
    future_state(const future_state&) = delete;
    future_state& operator=(const future_state&) = delete;
    virtual ~future_state() = default;

    // Producer side, once: the value (nothing for R = void) or an exception.
    template <class... Args>
    void set_value(Args&&... args) {
        if constexpr (std::is_void_v<R>)
            value_.emplace();
        else
            value_.emplace(std::forward<Args>(args)...);
        finish();
    }
    void set_exception(std::exception_ptr error) noexcept {
        error_ = std::move(error);
        finish();
    }
    bool ready() const noexcept {
        // acquire: pairs with the release in finish().
        return phase_.load(std::memory_order_acquire) == k_done;
    }

    // Consumer side, for future<R>.
    // Suspends `h` until the result is set; false if it already is (resume at once).
    bool suspend(std::coroutine_handle<> h) noexcept {
        awaiting_ = h;
        owner_ = scheduler::current();
        if (!owner_)
            owner_ = &default_scheduler();
        int expected = k_pending;
        // acq_rel: the release publishes awaiting_/owner_ to finish(); on failure (acquire) the
        // result is set and visible.
        return phase_.compare_exchange_strong(expected, k_awaiting, std::memory_order_acq_rel,
                                              std::memory_order_acquire);
    }
    // Blocks the calling thread until the result is set (true) or `stop` is requested first
    // (false; see end_wait).
    bool wait(const cancel_ref& stop) noexcept {
        if (!stop.stop_possible()) {
            wait();
            return true;
        }
        std::optional<cancel_callback<stopper>> on_stop;
        on_stop.emplace(*stop.get(), stopper{this});    // runs at once if already requested
        int p = phase_.load(std::memory_order_acquire); // acquire: pairs with finish()
        while (p == k_pending) {
            phase_.wait(p, std::memory_order_acquire);
            p = phase_.load(std::memory_order_acquire); // acquire: as above
        }
        on_stop.reset(); // from here on nothing stops us (waits for a running callback)
        return end_wait();
    }
    // Ends a wait that could be stopped, once its stop callback is gone: true if the result is
    // set by now (get() will not wait), else false, and a phase the stop left `stopped` goes
    // back to pending, so a later result wakes nobody but a later wait.
    bool end_wait() noexcept {
        int p = k_stopped;
        // acq_rel: on success the consumer takes the phase back from the stop callback (whose
        // CAS released it); on failure (acquire) it sees the result if finish() came first.
        if (phase_.compare_exchange_strong(p, k_pending, std::memory_order_acq_rel,
                                           std::memory_order_acquire))
            return false;
        return p == k_done;
    }

    // Blocks the calling thread until the result is set.
    void wait() const noexcept {
        // acquire: pairs with the release in finish().
        for (int p = phase_.load(std::memory_order_acquire); p != k_done;
             p = phase_.load(std::memory_order_acquire))
            phase_.wait(p, std::memory_order_acquire);
    }
    // The consumer is gone (its task's frame destroyed while suspended here): never resume it.
    void abandon() noexcept {
        // acq_rel: as in finish(); after this exchange finish() finds k_abandoned.
        phase_.exchange(k_abandoned, std::memory_order_acq_rel);
    }
    // Moves the exception out before rethrowing it, so the consumer's thread holds the only
    // reference and frees it: libstdc++ counts exception references where ThreadSanitizer
    // cannot see it, so a last release on the producer's thread would be reported as a race.
    // Producers likewise hand over an exception_ptr after their catch block has ended.
    R take() {
        if (error_) {
            std::exception_ptr error = std::move(error_);
            error_ = nullptr;
            std::rethrow_exception(std::move(error));
        }
        if constexpr (!std::is_void_v<R>)
            return std::move(*value_);
    }

private:
    static constexpr int k_pending = 0;   // no result yet
    static constexpr int k_awaiting = 1;  // ... and a task is suspended on it
    static constexpr int k_done = 2;      // the result is set
    static constexpr int k_abandoned = 3; // the consumer is gone
    static constexpr int k_stopped = 4;   // the consumer's context was done mid-wait: it wakes,
                                          // and moves the phase back to pending (end_wait)

    template <class>
    friend class future_wait_awaiter;

    // A consumer's stop callback, the third party next to producer and consumer. It claims a
    // wait still going on (pending or awaiting -> stopped) and wakes the consumer; after the
    // result (done) or the consumer's exit (abandoned) it does nothing. The consumer destroys
    // the callback before end_wait, so it never runs after the wait.
    struct stopper {
        future_state* self;
        void operator()() const noexcept {
            // acquire: a task's awaiting_/owner_, published by suspend()'s CAS.
            int p = self->phase_.load(std::memory_order_acquire);
            do {
                if (p != k_pending && p != k_awaiting)
                    return; // the result came first
                // acq_rel: the acquire as above; the release hands the phase to end_wait.
            } while (!self->phase_.compare_exchange_weak(p, k_stopped, std::memory_order_acq_rel,
                                                         std::memory_order_acquire));
            if (p == k_awaiting)
                self->owner_->schedule(self->awaiting_); // last touch: the task may run now
            else
                self->phase_.notify_all(); // a thread in wait(stop), or a task not yet suspended
        }
    };

    void finish() noexcept {
        // acq_rel: the release publishes the result to the consumer's acquire; the acquire
        // sees awaiting_/owner_ when the task suspended first.
        const int before = phase_.exchange(k_done, std::memory_order_acq_rel);
        if (before == k_awaiting)
            owner_->schedule(awaiting_);
        else if (before == k_pending)
            phase_.notify_all(); // a thread may be in wait()
        // stopped: the consumer is already woken; abandoned: nobody waits.
    }

    std::atomic<int> phase_{k_pending};
    std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> value_;
    std::exception_ptr error_;
    std::coroutine_handle<> awaiting_;
    scheduler* owner_ = nullptr;
};

// `co_await f.async_wait(ctx)`: suspends until the result is set (true) or the stop token is
// requested (false). The stop callback is registered before the task is published as the
// consumer (suspend's CAS), so a stop between the two is not lost: it finds the phase pending,
// claims it (stopped), and suspend's CAS fails, resuming the task at once.
template <class R>
class future_wait_awaiter {
public:
    future_wait_awaiter(future_state<R>& state, cancel_ref stop) noexcept
        : state_(state), stop_(std::move(stop)) {}
    future_wait_awaiter(const future_wait_awaiter&) = delete;
    future_wait_awaiter& operator=(const future_wait_awaiter&) = delete;

    bool await_ready() const noexcept { return state_.ready() || stop_.stop_requested(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        if (stop_.stop_possible())
            on_stop_.emplace(*stop_.get(), typename future_state<R>::stopper{&state_});
        return state_.suspend(h); // touches nothing of ours after its CAS
    }
    status await_resume() noexcept {
        on_stop_.reset(); // waits for a callback running right now
        return state_.end_wait() ? status::ok : status::cancelled;
    }

private:
    future_state<R>& state_;
    cancel_ref stop_;
    std::optional<cancel_callback<typename future_state<R>::stopper>> on_stop_;
};

} // namespace detail

} // namespace weft
