// weft::mutex and weft::condition_variable — a lock for tasks (and threads), and waiting for a
// condition under it.
//
//   weft::mutex m;
//   weft::condition_variable cv;
//   {
//       std::unique_lock lock = co_await m.scoped_lock();   // suspends the task, not the worker
//       if (co_await cv.async_wait(ctx, lock, [&] { return ready; }) != weft::status::ok)
//           co_return; // cancelled; the lock is held again all the same
//   }
//
// The mutex is fair: unlock() hands ownership straight to the first waiter (FIFO), so a task
// that unlocks and locks again at once cannot starve the ones waiting. Threads (lock()) and
// tasks (async_lock()) wait in the same queue. Like std::mutex it is not recursive and has no
// owner check beyond "unlocking an unlocked mutex" (sync_error). It meets Lockable, so
// std::unique_lock<weft::mutex> is its guard; the guard's lock() blocks the thread.
//
// The condition variable works only with weft::mutex. Its waits unlock the mutex, sleep until a
// notify (or the context is done), and lock it again (waiting in the mutex's FIFO) before they
// return, also when cancelled. There are no spurious wake-ups, but another task may take the
// condition away between the notify and the re-lock: wait with a predicate. A task destroyed
// while it waits (its scheduler shut down) leaves both queues, and its guard is disowned
// (released without unlocking): it no longer holds the mutex.
#pragma once

#include "blocking_report.hpp"
#include "channel.hpp"
#include "context.hpp"
#include "detail/spin_mutex.hpp"
#include "detail/task_park.hpp"
#include "detail/wait_limit.hpp"
#include "detail/waiter.hpp"
#include "sync.hpp"
#include "task.hpp"

#include <coroutine>
#include <cstddef>
#include <mutex>
#include <type_traits>
#include <utility>

namespace weft {

class mutex {
    template <class Result>
    class lock_awaiter;

public:
    mutex() = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    // In a task: `co_await m.async_lock()` suspends the task until it owns the mutex.
    lock_awaiter<void> async_lock();
    // ... or until `ctx` is done first: status ok (locked) or cancelled (not locked). A context
    // done already returns cancelled, even if the mutex is free.
    lock_awaiter<status> async_lock(const context& ctx);
    // `co_await m.scoped_lock()`: async_lock, returning the guard that unlocks. With a context,
    // the guard owns the lock only if it was taken (check owns_lock()).
    lock_awaiter<std::unique_lock<mutex>> scoped_lock();
    lock_awaiter<std::unique_lock<mutex>> scoped_lock(const context& ctx);

    // A thread: blocks until it owns the mutex (in the same FIFO as tasks).
    void lock(weft::source_location loc = weft::source_location::current());
    status lock(const context& ctx, weft::source_location loc = weft::source_location::current());

    // Locks if free and nobody waits; never blocks.
    bool try_lock();
    // Hands the mutex to the first waiter, or leaves it free. Throws sync_error if unlocked.
    void unlock();

    // Snapshots, for tests and metrics.
    bool locked() const;
    std::size_t waiting() const;

private:
    friend class detail::task_park<mutex>;
    friend class condition_variable;
    static constexpr const char* k_instead = "co_await m.async_lock()";

    status lock_impl(detail::cancel_ref stop, const detail::blocking_site& site);
    // task_park's step: done (locked at once), cancelled (the context was done already) or
    // parked. `arg` is the stop token, or null.
    static detail::park_step step_lock(mutex& m, detail::waiter& w, void* arg);
    // Takes `w` out after a limit claimed it; if it was handed the lock but its task frame died,
    // hands the lock on.
    void cancel(detail::waiter& w) noexcept;
    // With mutex_ held: gives the lock to the first live waiter, or frees it.
    void hand_off(detail::deferred_wake& wake) noexcept;

    mutable detail::spin_mutex mutex_;
    bool locked_ = false;        // guarded by mutex_; stays true across a hand-off
    detail::wait_queue waiters_; // guarded by mutex_
};

// Waiting for a condition under a weft::mutex, for tasks.
class condition_variable {
public:
    condition_variable() = default;
    condition_variable(const condition_variable&) = delete;
    condition_variable& operator=(const condition_variable&) = delete;

    // `lock` must own its mutex. Unlocks it, waits for a notify, locks it again. Await the
    // returned task at once (it refers to `lock` and `pred`).
    task<void> async_wait(std::unique_lock<mutex>& lock);
    // Waits until pred() holds (checked under the lock, first before any wait).
    template <class Pred>
    task<void> async_wait(std::unique_lock<mutex>& lock, Pred pred);
    // ... or until `ctx` is done: ok if pred() holds when it returns, else cancelled. Either way
    // the lock is held again.
    template <class Pred>
    task<status> async_wait(const context& ctx, std::unique_lock<mutex>& lock, Pred pred);
    // One wait for a notify, or until `ctx` is done: ok (notified) or cancelled.
    task<status> async_wait(const context& ctx, std::unique_lock<mutex>& lock);

    // Wakes the first waiter that is still waiting (one whose context was cancelled is passed
    // over, so a notify is never spent on it). Need not hold the mutex.
    void notify_one() noexcept;
    // Wakes every waiter.
    void notify_all() noexcept;

    // A snapshot, for tests and metrics.
    std::size_t waiting() const;

private:
    friend class detail::task_park<condition_variable>;

    // The context forms' coroutines: they take the stop token by value (tasks start lazily).
    template <class Pred>
    task<status> wait_until_impl(detail::cancel_ref stop, std::unique_lock<mutex>& lock, Pred pred);
    task<status> wait_once_impl(detail::cancel_ref stop, std::unique_lock<mutex>& lock);
    // One sleep: link, unlock `lock`'s mutex, wait for a notify or the limit (null: none);
    // then lock again. done (notified) or cancelled.
    task<detail::park_step> wait_once(std::unique_lock<mutex>& lock,
                                      const detail::wait_limit* limit);
    static detail::park_step step_wait(condition_variable& cv, detail::waiter& w, void* arg);
    void cancel(detail::waiter& w) noexcept;
    static void check(const std::unique_lock<mutex>& lock);

    mutable detail::spin_mutex mutex_;
    detail::wait_queue waiters_; // guarded by mutex_
};

// ---- implementation ------------------------------------------------------------------------

// A task's lock: tries in await_ready (no suspension when the mutex is free), else parks in the
// queue with the context's stop token as its limit. Result: void, status, or the guard.
template <class Result>
class mutex::lock_awaiter {
public:
    lock_awaiter(mutex& m, detail::cancel_ref stop)
        : mutex_(m), limit_{{}, std::move(stop)},
          park_(m, &mutex::step_lock, limit_.stop.stop_possible() ? &limit_.stop : nullptr,
                detail::blocked_on::sync, &limit_) {}
    lock_awaiter(const lock_awaiter&) = delete;
    lock_awaiter& operator=(const lock_awaiter&) = delete;

    bool await_ready() { return park_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return park_.await_suspend(h); }
    Result await_resume() noexcept {
        // done (handed the lock) or cancelled; without a limit only the hand-off wakes us.
        const bool locked = park_.await_resume() == detail::park_step::done;
        if constexpr (std::is_same_v<Result, status>)
            return locked ? status::ok : status::cancelled;
        else if constexpr (std::is_same_v<Result, std::unique_lock<mutex>>)
            return locked ? Result(mutex_, std::adopt_lock) : Result(mutex_, std::defer_lock);
    }

private:
    mutex& mutex_;
    detail::wait_limit limit_;
    detail::task_park<mutex> park_;
};

inline auto mutex::async_lock() -> lock_awaiter<void> {
    return lock_awaiter<void>(*this, {});
}
inline auto mutex::async_lock(const context& ctx) -> lock_awaiter<status> {
    return lock_awaiter<status>(*this, detail::cancellation_of(ctx));
}
inline auto mutex::scoped_lock() -> lock_awaiter<std::unique_lock<mutex>> {
    return lock_awaiter<std::unique_lock<mutex>>(*this, {});
}
inline auto mutex::scoped_lock(const context& ctx) -> lock_awaiter<std::unique_lock<mutex>> {
    return lock_awaiter<std::unique_lock<mutex>>(*this, detail::cancellation_of(ctx));
}

inline void mutex::lock(weft::source_location loc) {
    (void)lock_impl({}, {"weft::mutex::lock()", k_instead, loc});
}
inline status mutex::lock(const context& ctx, weft::source_location loc) {
    return lock_impl(detail::cancellation_of(ctx), {"weft::mutex::lock(ctx)", k_instead, loc});
}

inline bool mutex::try_lock() {
    std::lock_guard lock(mutex_);
    // While the mutex is free nobody live waits: unlock() hands it to the first one.
    if (locked_)
        return false;
    locked_ = true;
    return true;
}

inline void mutex::unlock() {
    detail::deferred_wake wake; // signals after the unlock of mutex_
    std::lock_guard lock(mutex_);
    if (!locked_)
        throw sync_error("weft: unlock of unlocked mutex");
    hand_off(wake);
}

inline bool mutex::locked() const {
    std::lock_guard lock(mutex_);
    return locked_;
}

inline std::size_t mutex::waiting() const {
    std::lock_guard lock(mutex_);
    // relaxed: written under mutex_, which we hold.
    return waiters_.length.load(std::memory_order_relaxed);
}

inline status mutex::lock_impl(detail::cancel_ref stop, const detail::blocking_site& site) {
    detail::wait_context ctx(detail::thread_parker::current());
    detail::waiter w;
    w.ctx = &ctx;
    const detail::park_step first = step_lock(*this, w, stop.stop_possible() ? &stop : nullptr);
    if (first != detail::park_step::parked)
        return first == detail::park_step::done ? status::ok : status::cancelled;
    detail::note_blocking(site); // outside the lock: the handler may do anything
    if (detail::sleep_limited(ctx, detail::wait_limit{{}, stop}) != detail::park_step::parked) {
        cancel(w); // the stop claimed us: we were not handed the lock
        return status::cancelled;
    }
    return status::ok; // handed the lock
}

inline detail::park_step mutex::step_lock(mutex& m, detail::waiter& w, void* arg) {
    // Go's order (as semaphore): a context done before we look is a cancellation.
    if (arg && static_cast<const detail::cancel_ref*>(arg)->stop_requested())
        return detail::park_step::cancelled;
    std::lock_guard lock(m.mutex_);
    if (!m.locked_) {
        m.locked_ = true;
        return detail::park_step::done;
    }
    m.waiters_.push_back(&w);
    return detail::park_step::parked;
}

inline void mutex::cancel(detail::waiter& w) noexcept {
    detail::deferred_wake wake;
    std::lock_guard lock(mutex_);
    if (w.queue)
        waiters_.remove(&w);
    else if (w.outcome == detail::wait_outcome::completed)
        hand_off(wake); // handed the lock (outcome written under this lock), frame gone
}

inline void mutex::hand_off(detail::deferred_wake& wake) noexcept {
    // claim_first passes over waiters a limit claimed; their owners unlink themselves.
    if (detail::waiter* w = waiters_.claim_first())
        wake.add(w, detail::wait_outcome::completed); // locked_ stays true: w owns it now
    else
        locked_ = false;
}

// --- condition_variable ---

inline task<void> condition_variable::async_wait(std::unique_lock<mutex>& lock) {
    check(lock);
    (void)co_await wait_once(lock, nullptr);
}

template <class Pred>
task<void> condition_variable::async_wait(std::unique_lock<mutex>& lock, Pred pred) {
    check(lock);
    while (!pred())
        (void)co_await wait_once(lock, nullptr);
}

template <class Pred>
task<status> condition_variable::async_wait(const context& ctx, std::unique_lock<mutex>& lock,
                                            Pred pred) {
    check(lock);
    return wait_until_impl(detail::cancellation_of(ctx), lock, std::move(pred));
}

template <class Pred>
task<status> condition_variable::wait_until_impl(detail::cancel_ref stop,
                                                 std::unique_lock<mutex>& lock, Pred pred) {
    const detail::wait_limit limit{{}, std::move(stop)};
    while (!pred()) {
        if (limit.stop.stop_requested())
            co_return status::cancelled;
        if (co_await wait_once(lock, &limit) == detail::park_step::cancelled)
            co_return pred() ? status::ok : status::cancelled;
    }
    co_return status::ok;
}

inline task<status> condition_variable::async_wait(const context& ctx,
                                                   std::unique_lock<mutex>& lock) {
    check(lock);
    return wait_once_impl(detail::cancellation_of(ctx), lock);
}

inline task<status> condition_variable::wait_once_impl(detail::cancel_ref stop,
                                                       std::unique_lock<mutex>& lock) {
    const detail::wait_limit limit{{}, std::move(stop)};
    if (limit.stop.stop_requested())
        co_return status::cancelled;
    co_return co_await wait_once(lock, &limit) == detail::park_step::done ? status::ok
                                                                          : status::cancelled;
}

inline task<detail::park_step> condition_variable::wait_once(std::unique_lock<mutex>& lock,
                                                             const detail::wait_limit* limit) {
    // If this frame dies before it locks again (its scheduler shut down), the caller's guard
    // must not unlock a mutex it no longer owns: it is disowned.
    struct disown_unless_relocked {
        std::unique_lock<mutex>& lock;
        bool relocked = false;
        ~disown_unless_relocked() {
            if (!relocked)
                (void)lock.release();
        }
    } guard{lock};
    detail::park_step step;
    {
        detail::task_park<condition_variable> park(*this, &step_wait, lock.mutex(),
                                                   detail::blocked_on::sync, limit);
        step = co_await park; // done (notified) or cancelled (unlinked by task_park)
    }
    // Locked again whatever woke us: the caller's guard still says it owns the lock.
    co_await lock.mutex()->async_lock();
    guard.relocked = true;
    co_return step;
}

inline detail::park_step condition_variable::step_wait(condition_variable& cv, detail::waiter& w,
                                                       void* arg) {
    {
        std::lock_guard lock(cv.mutex_);
        cv.waiters_.push_back(&w);
    }
    // Unlock after linking: a notify that follows the unlock finds us in the queue.
    static_cast<mutex*>(arg)->unlock();
    return detail::park_step::parked;
}

inline void condition_variable::cancel(detail::waiter& w) noexcept {
    std::lock_guard lock(mutex_);
    detail::unlink(w);
}

inline void condition_variable::notify_one() noexcept {
    detail::deferred_wake wake; // signals after the unlock
    std::lock_guard lock(mutex_);
    if (detail::waiter* w = waiters_.claim_first())
        wake.add(w, detail::wait_outcome::completed);
}

inline void condition_variable::notify_all() noexcept {
    detail::deferred_wake wake;
    std::lock_guard lock(mutex_);
    while (detail::waiter* w = waiters_.claim_first())
        wake.add(w, detail::wait_outcome::completed);
}

inline std::size_t condition_variable::waiting() const {
    std::lock_guard lock(mutex_);
    // relaxed: written under mutex_, which we hold.
    return waiters_.length.load(std::memory_order_relaxed);
}

inline void condition_variable::check(const std::unique_lock<mutex>& lock) {
    if (!lock.owns_lock())
        throw sync_error("weft: condition_variable wait without owning the lock");
}

} // namespace weft
