// weft::es::subscription — reads a store's global log from a position, first what is stored
// (catch-up, in bulk) and then each new commit as it lands (live), with no gap and no
// duplicate between the two: it is one cursor over one gapless log.
//
//   weft::es::subscription sub = store.subscribe_all(checkpoint + 1);
//   for (auto batch = sub.next(); !batch.empty(); batch = sub.next())   // empty: closed
//       for (const recorded_event& e : batch) apply(e);
//
//   auto batch = co_await sub.async_next();   // in a task: suspends the task, not its worker
//
//   weft::recv_result<std::vector<recorded_event>> r = sub.next(ctx);  // or async_next(ctx)
//   if (r.status() == weft::status::cancelled) ...   // ctx was done while nothing came
//
// next() blocks until at least one event is there; a batch holds at most `max` events, in
// position order. close() (from any thread) or destroying the store ends the subscription: a
// waiting next() returns an empty batch. Appends made by another process to the same file are
// seen within `poll_interval` (in-process appends wake readers at once); a store no other
// process can append to (memory_store) gives zero: no polling.
#pragma once

#include "../channel.hpp"
#include "../context.hpp"
#include "../select.hpp"
#include "../task.hpp"
#include "../time.hpp"
#include "event.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <utility>
#include <variant>
#include <vector>

namespace weft::es {

namespace detail {
class log_source; // a store's side of its subscriptions (below)
} // namespace detail

class subscription {
public:
    static constexpr std::chrono::milliseconds default_poll_interval{100};

    // Made by a store's subscribe_all(from); `from` < 1 reads from the first event.
    subscription(std::shared_ptr<detail::log_source> source, log_position from,
                 std::chrono::steady_clock::duration poll_interval = default_poll_interval);
    subscription(subscription&&) noexcept = default;
    subscription& operator=(subscription&&) noexcept = default;
    ~subscription() = default;

    // The next events (at least one, at most `max`); blocks while there are none. Empty once
    // the subscription or its store is closed.
    std::vector<recorded_event> next(std::size_t max = 256);
    // As next(), but returns an empty batch at `timeout` too (check closed() to tell apart).
    template <class Rep, class Period>
    std::vector<recorded_event> next_for(std::chrono::duration<Rep, Period> timeout,
                                         std::size_t max = 256);

    // next() for tasks: suspends the task while there is nothing to read.
    task<std::vector<recorded_event>> async_next(std::size_t max = 256);

    // next() that waits only until `ctx` is done: a batch, or status closed (the subscription
    // or its store is closed) or cancelled (nothing was read: the position is unchanged).
    // Events already there are returned even if `ctx` is done.
    recv_result<std::vector<recorded_event>> next(const context& ctx, std::size_t max = 256);
    // The same in a task.
    task<recv_result<std::vector<recorded_event>>> async_next(context ctx, std::size_t max = 256);

    // The position of the next event this subscription will deliver.
    log_position position() const noexcept;

    // Ends the subscription; a next() waiting on another thread returns an empty batch.
    void close();
    bool closed() const noexcept;

private:
    struct state;
    std::vector<recorded_event> next_until(std::chrono::steady_clock::time_point deadline,
                                           std::size_t max);

    std::unique_ptr<state> state_;
};

// ---- implementation ------------------------------------------------------------------------

namespace detail {

// Tells readers that the log grew. A store calls publish(head) after each commit, once the new
// events are visible to read_all; readers wait for the head to reach a position.
//
// Threads wait on a condition variable. Tasks wait with Go's broadcast idiom: `changed_` is a
// channel nobody sends on; publish(), wake_all() and close() close it, which wakes every task
// waiting on it at once, and leave a nil one that the next waiter replaces with a fresh channel
// (so a signal nobody waits on allocates nothing). A waiter takes the current channel under
// the mutex together with its checks, so a change after its checks closes the very channel it
// waits on: no wake-up is lost.
class commit_signal {
public:
    void publish(log_position head) {
        weft::channel<bool> fired;
        {
            std::lock_guard lock(mutex_);
            if (head <= head_)
                return;
            head_ = head;
            fired = std::exchange(changed_, weft::channel<bool>{});
        }
        changed_cv_.notify_all();
        if (fired)
            fired.close();
    }
    // Every waiter returns now and re-checks (a subscription was closed, the store is closing).
    void wake_all() {
        weft::channel<bool> fired;
        {
            std::lock_guard lock(mutex_);
            ++wake_epoch_;
            fired = std::exchange(changed_, weft::channel<bool>{});
        }
        changed_cv_.notify_all();
        if (fired)
            fired.close();
    }
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        wake_all();
    }
    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

    // How many times wake_all() has run. A waiter reads it before it checks its own reasons
    // to stop, and passes it to wait_until/async_wait, so a wake in between is not missed.
    std::uint64_t wake_epoch() const {
        std::lock_guard lock(mutex_);
        return wake_epoch_;
    }

    // Blocks until the head reaches `want`, the signal is closed, wake_all() runs after
    // `epoch` was read, `deadline`, or a stop request on `stop` (a context's cancellation).
    void wait_until(log_position want, std::uint64_t epoch,
                    std::chrono::steady_clock::time_point deadline, std::stop_token stop = {}) {
        std::unique_lock lock(mutex_);
        const auto done = [&] { return done_locked(want, epoch); };
        if (stop.stop_possible())
            changed_cv_.wait_until(lock, stop, deadline, done); // wakes on the stop request too
        else
            changed_cv_.wait_until(lock, deadline, done);
    }

    // In a task: returns when the head reaches `want`, the signal is closed, wake_all() runs
    // after `epoch` was read, or after `poll` (never, if `poll` is zero or less). Await it at
    // once.
    // Also returns when `done` (a context's done(); nil: never) is closed.
    task<void> async_wait(log_position want, std::uint64_t epoch,
                          std::chrono::steady_clock::duration poll,
                          weft::receiver<std::monostate> done = {}) {
        weft::channel<bool> changed;
        {
            std::lock_guard lock(mutex_);
            if (done_locked(want, epoch))
                co_return;
            if (!changed_)
                changed_ = weft::channel<bool>(0);
            changed = changed_;
        }
        if (poll > std::chrono::steady_clock::duration::zero())
            (void)co_await async_select(on_recv(changed), on_recv(done), on_timeout(poll));
        else if (done)
            (void)co_await async_select(on_recv(changed), on_recv(done));
        else
            (void)co_await changed.async_recv(); // returns when it is closed
    }

private:
    bool done_locked(log_position want, std::uint64_t epoch) const noexcept {
        return head_ >= want || closed_ || wake_epoch_ != epoch;
    }

    mutable std::mutex mutex_;               // guards everything below
    std::condition_variable_any changed_cv_; // _any: its waits can take a stop token
    weft::channel<bool> changed_; // nil until a task waits; closed and replaced on a change
    log_position head_ = 0;
    std::uint64_t wake_epoch_ = 0;
    bool closed_ = false;
};

// What a subscription reads: a store's shared internals, kept alive by its subscriptions.
class log_source {
public:
    virtual ~log_source() = default;
    virtual std::vector<recorded_event> read_all(log_position from, std::size_t max) const = 0;
    commit_signal& signal() noexcept { return signal_; }

private:
    commit_signal signal_;
};

} // namespace detail

struct subscription::state {
    state(std::shared_ptr<detail::log_source> s, log_position from,
          std::chrono::steady_clock::duration poll)
        : source(std::move(s)), next(from), poll_interval(poll) {}
    std::shared_ptr<detail::log_source> source;
    log_position next;
    std::chrono::steady_clock::duration poll_interval;
    std::atomic<bool> closed{false};

    bool is_closed() const noexcept {
        // acquire: pairs with the release in close().
        return closed.load(std::memory_order_acquire) || source->signal().closed();
    }
    std::vector<recorded_event> read(std::size_t max) {
        std::vector<recorded_event> batch = source->read_all(next, max == 0 ? 1 : max);
        if (!batch.empty())
            next = batch.back().position + 1;
        return batch;
    }
};

inline subscription::subscription(std::shared_ptr<detail::log_source> source, log_position from,
                                  std::chrono::steady_clock::duration poll_interval)
    : state_(std::make_unique<state>(std::move(source), from < 1 ? 1 : from, poll_interval)) {}

inline std::vector<recorded_event> subscription::next(std::size_t max) {
    return next_until(std::chrono::steady_clock::time_point::max(), max);
}

template <class Rep, class Period>
std::vector<recorded_event> subscription::next_for(std::chrono::duration<Rep, Period> timeout,
                                                   std::size_t max) {
    return next_until(weft::deadline_after(timeout), max);
}

inline task<std::vector<recorded_event>> subscription::async_next(std::size_t max) {
    state& s = *state_;
    for (;;) {
        const std::uint64_t epoch = s.source->signal().wake_epoch(); // before the checks
        if (s.is_closed())
            co_return std::vector<recorded_event>{};
        std::vector<recorded_event> batch = s.read(max);
        if (!batch.empty())
            co_return batch;
        co_await s.source->signal().async_wait(s.next, epoch, s.poll_interval);
    }
}

inline recv_result<std::vector<recorded_event>> subscription::next(const context& ctx,
                                                                   std::size_t max) {
    state& s = *state_;
    const std::stop_token stop = ctx.stop_token();
    for (;;) {
        const std::uint64_t epoch = s.source->signal().wake_epoch(); // before the checks
        if (s.is_closed())
            return status::closed;
        std::vector<recorded_event> batch = s.read(max);
        if (!batch.empty())
            return recv_result<std::vector<recorded_event>>(std::move(batch));
        if (stop.stop_requested())
            return status::cancelled;
        auto until = std::chrono::steady_clock::time_point::max();
        if (s.poll_interval > std::chrono::steady_clock::duration::zero())
            until = weft::deadline_after(s.poll_interval);
        s.source->signal().wait_until(s.next, epoch, until, stop);
    }
}

inline task<recv_result<std::vector<recorded_event>>> subscription::async_next(context ctx,
                                                                               std::size_t max) {
    state& s = *state_;
    for (;;) {
        const std::uint64_t epoch = s.source->signal().wake_epoch(); // before the checks
        if (s.is_closed())
            co_return status::closed;
        std::vector<recorded_event> batch = s.read(max);
        if (!batch.empty())
            co_return recv_result<std::vector<recorded_event>>(std::move(batch));
        // A hint, but not a lost cancel: a context cancelled unseen here has closed done(),
        // so the wait below returns at once and the next round sees it.
        if (ctx.cancelled())
            co_return status::cancelled;
        co_await s.source->signal().async_wait(s.next, epoch, s.poll_interval, ctx.done());
    }
}

inline log_position subscription::position() const noexcept {
    return state_->next;
}

inline void subscription::close() {
    // release: a reader that sees closed also sees everything before close().
    state_->closed.store(true, std::memory_order_release);
    state_->source->signal().wake_all();
}

inline bool subscription::closed() const noexcept {
    return state_->is_closed();
}

inline std::vector<recorded_event>
subscription::next_until(std::chrono::steady_clock::time_point deadline, std::size_t max) {
    state& s = *state_;
    for (;;) {
        const std::uint64_t epoch = s.source->signal().wake_epoch(); // before the checks
        if (s.is_closed())
            return {};
        std::vector<recorded_event> batch = s.read(max);
        if (!batch.empty())
            return batch;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
            return {};
        auto until = deadline;
        if (s.poll_interval > std::chrono::steady_clock::duration::zero() &&
            deadline - now > s.poll_interval)
            until = now + s.poll_interval;
        s.source->signal().wait_until(s.next, epoch, until);
    }
}

} // namespace weft::es
