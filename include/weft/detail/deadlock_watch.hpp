// weft::detail::deadlock_watch — the machinery behind scheduler::report_deadlocks (Go's "all
// goroutines are asleep - deadlock!").
//
// Invariants:
//   - `blocked_` counts the tasks waiting right now, by kind: task_wakeup adds 1 as a task
//     suspends and takes it back as it resumes or its frame dies (count()). Only waits that
//     begin after enable() are counted, and sleep_for is never counted.
//   - At most one check is scheduled on the timer thread at a time (`armed_`).
//   - A report is made only if, `grace` after the last worker went to sleep in some epoch of the
//     scheduler's event count, every worker is still asleep in that epoch (no wake-up moved it),
//     nothing is queued, no timer is pending, no spawn_blocking call is running and tasks are
//     blocked. Once per idle spell (`reported_epoch_`).
//   - After stop() no check is scheduled, and one running then has finished.
//
// Locks: `mutex_` guards the report callback, `grace_`, the latest check's timer id, `closed_`
// and `reported_epoch_`. The atomics are read without it.
//
// What the watch reads of its Host (the scheduler), from a worker or the timer thread:
//   bool all_workers_asleep() — every worker is counted as asleep (a seq_cst load, see arm()).
//   bool asleep_since(std::uint32_t epoch) — every worker asleep since `epoch`, nothing queued,
//                                            and the scheduler is not stopping.
//   bool stopping() — the scheduler's destructor has begun.
//   std::uint32_t epoch() — the event count's epoch now.
//   bool may_wake_later() — a socket registered with its poller or a timer of its own may
//                           still wake a task.
#pragma once

#include "blocking_pool.hpp"
#include "deadline.hpp"
#include "task_host.hpp"
#include "timer_service.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>

namespace weft::detail {

// Blocked tasks by kind (index: blocked_on), as a report sees them.
using blocked_counts = std::array<std::size_t, k_counted_kinds>;

template <class Host>
class deadlock_watch {
public:
    explicit deadlock_watch(const Host& host) noexcept : host_(host) {}
    deadlock_watch(const deadlock_watch&) = delete;
    deadlock_watch& operator=(const deadlock_watch&) = delete;

    // Switches the watch on: `report` gets the counts of each confirmed deadlock, on the timer
    // thread.
    void enable(std::function<void(const blocked_counts&)> report,
                std::chrono::steady_clock::duration grace) {
        std::lock_guard lock(mutex_);
        report_ = std::move(report);
        grace_ = grace;
        // release: a worker that reads true (acquire) finds the callback set.
        enabled_.store(true, std::memory_order_release);
    }

    // task_host::count_blocked: a task's wait begins (+1) or ends (-1). Returns whether it
    // counted, so the matching -1 is given only for a counted +1.
    bool count(blocked_on what, int delta) noexcept {
        // relaxed: the count is read only by check(), which re-reads after the grace period.
        if (delta > 0 && (static_cast<std::size_t>(what) >= k_counted_kinds ||
                          !enabled_.load(std::memory_order_relaxed)))
            return false;
        blocked_[static_cast<std::size_t>(what)].fetch_add(delta, std::memory_order_relaxed);
        return true;
    }

    // A worker about to sleep in `seen_epoch`, after its seq_cst fence (scheduler::park): if it
    // is the last one awake and tasks are blocked, look again after the grace period.
    void arm(std::uint32_t seen_epoch) {
        // relaxed: enabled only switches on; a stale false skips one check.
        if (!enabled_.load(std::memory_order_relaxed))
            return;
        // seq_cst, the host's sleeper count and the CAS: pair with check()'s store of armed_
        // (see there), so a worker going to sleep and a finishing check never both skip arming.
        if (!host_.all_workers_asleep() || blocked_tasks() <= 0)
            return;
        bool idle = false;
        if (armed_.compare_exchange_strong(idle, true, std::memory_order_seq_cst))
            schedule_check(seen_epoch);
    }

    // After the workers are joined: no new check is scheduled, and one running now finishes.
    void stop() {
        timer_service::timer_id id = 0;
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
            id = timer_;
        }
        if (id)
            timer_service::instance().cancel_and_wait(id);
    }

private:
    std::int64_t blocked_tasks() const noexcept {
        std::int64_t total = 0;
        for (const auto& n : blocked_)
            total += n.load(std::memory_order_relaxed); // relaxed: see count()
        return total;
    }

    // Under the lock, so stop() either sees the new timer's id or stops it being made.
    void schedule_check(std::uint32_t seen_epoch) {
        std::lock_guard lock(mutex_);
        if (closed_)
            return;
        timer_ = timer_service::instance().schedule(deadline_after(grace_),
                                                    [this, seen_epoch] { check(seen_epoch); });
    }

    // On the timer thread, `grace` after the last worker went to sleep in epoch `seen_epoch`.
    void check(std::uint32_t seen_epoch) {
        // Every worker still asleep since then: any wake-up moves the epoch. A stale read can
        // only make us skip a report or look once more.
        if (!host_.asleep_since(seen_epoch) || blocked_tasks() <= 0) {
            // seq_cst: a worker that parks meanwhile either sees armed_ false and arms, or
            // has already counted itself asleep, which all_workers_asleep() reads next.
            armed_.store(false, std::memory_order_seq_cst);
            // Every worker may have woken and gone back to sleep since (a new epoch) while
            // this check was armed, so none of them armed one: look again from now. A worker
            // that is awake arms when it sleeps.
            if (!host_.stopping())
                arm(host_.epoch());
            return;
        }
        // A pending timer, a blocking call or a registered socket may still wake a task: look
        // again later, since no worker will wake up to arm a new check.
        if (timer_service::instance().pending() != 0 || blocking_pool::instance().running() != 0 ||
            host_.may_wake_later())
            return schedule_check(seen_epoch);
        blocked_counts counts{};
        for (std::size_t kind = 0; kind < counts.size(); ++kind) {
            // relaxed: see count().
            const std::int64_t n = blocked_[kind].load(std::memory_order_relaxed);
            counts[kind] = n > 0 ? static_cast<std::size_t>(n) : 0;
        }
        std::function<void(const blocked_counts&)> report;
        {
            std::lock_guard lock(mutex_);
            if (!closed_ && reported_epoch_ != seen_epoch) {
                reported_epoch_ = seen_epoch; // once per idle spell
                report = report_;
            }
        }
        armed_.store(false, std::memory_order_seq_cst); // seq_cst: see above
        if (report)
            report(counts);
    }

    const Host& host_;
    std::atomic<bool> enabled_{false};
    std::atomic<bool> armed_{false}; // a check is scheduled on the timer thread
    std::array<std::atomic<std::int64_t>, k_counted_kinds> blocked_{}; // by blocked_on

    std::mutex mutex_;
    std::function<void(const blocked_counts&)> report_;
    std::chrono::steady_clock::duration grace_{};
    timer_service::timer_id timer_ = 0; // the latest check scheduled
    bool closed_ = false;               // the scheduler is being destroyed
    std::uint32_t reported_epoch_ = ~0u;
};

} // namespace weft::detail
