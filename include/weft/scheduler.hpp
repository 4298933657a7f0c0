// weft::scheduler — a work-stealing pool of worker threads that runs coroutine tasks, Go's M:N
// runtime in small: a million spawned tasks cost memory, not threads.
//
//   weft::scheduler s(4);                       // 4 workers (default: hardware threads)
//   s.spawn([] { ... });                        // a callable,
//   s.spawn([]() -> weft::task<> { ... });      // a callable returning a task,
//   s.spawn(some_task());                       // or a task: fire-and-forget
//   weft::go(f);                                // on this task's scheduler, else default
//
// Each worker owns a Chase-Lev deque: work spawned on a worker goes to the bottom of its own
// deque (LIFO, cache-hot), idle workers steal from the top of a random victim's (FIFO, oldest
// first). Work from outside threads goes to one injection queue, which every worker also checks
// every 61st task so it is never starved by local work. A worker with nothing to do searches
// briefly (at most half the workers at once), then parks on an event count: an idle scheduler
// uses no CPU.
//
// A spawned task that throws is reported to the handler set with on_unhandled_exception
// (default: print to stderr); it never calls std::terminate.
//
// Shutdown (the destructor), step by step:
//   1. `stopping_` is set and every worker woken. A worker checks the flag before each step, so
//      it stops after the step it is running: a task that keeps yielding cannot hold it.
//   2. The worker threads are joined. From here on none of our tasks runs; only outside wakers
//      (the timer thread, the blocking pool, plain threads) may still touch us, and they only
//      inject.
//   3. The deadlock watch stops: no check is scheduled any more, and one running on the timer
//      thread (it reads our state) has finished.
//   4. The queues are emptied, the injection queue under its lock since outside wakers may
//      still inject. Every queued handle belongs to the frame of a live spawned task (directly
//      or through the tasks it awaits), so dropping it loses nothing that step 5 does not free.
//   5. Every live spawned task's frame is destroyed, which destroys the tasks it owns. Work
//      still queued never runs. A frame's destructor may wake another task (a dropped ask breaks
//      its promise): that wake only injects a handle no worker will read, into a frame that is
//      itself destroyed here.
//
// Internals: detail/work_deque.hpp (the deques), detail/live_tasks.hpp (the spawned tasks alive,
// for step 5), detail/deadlock_watch.hpp (report_deadlocks), detail/task_host.hpp (what a waiting
// task needs of its scheduler).
#pragma once

#include "detail/deadlock_watch.hpp"
#include "detail/frame_pool.hpp"
#include "detail/io_driver.hpp"
#include "detail/live_tasks.hpp"
#include "detail/random.hpp"
#include "detail/spin_mutex.hpp"
#include "detail/task_host.hpp"
#include "detail/timer_queue.hpp"
#include "detail/work_deque.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace weft {

// What a suspended task waits for, as counted by the deadlock report.
using blocked_on = detail::blocked_on;

// What the deadlock report says: every worker is idle, nothing is queued, no timer is pending,
// no spawn_blocking call is running, and yet these tasks wait, and have done so for the whole
// grace period. Like Go's "all goroutines are asleep - deadlock!", except that weft cannot see
// plain threads: one that will send later makes the report a false alarm (hence the grace).
struct deadlock_report {
    std::size_t receiving = 0;   // tasks in async_recv
    std::size_t sending = 0;     // tasks in async_send
    std::size_t selecting = 0;   // tasks in async_select
    std::size_t wait_groups = 0; // tasks in wait_group::async_wait
    std::size_t mailboxes = 0;   // tasks in an actor's async_tell/async_ask, the mailbox full
    std::size_t sync = 0;        // tasks waiting on a semaphore, mutex or condition_variable
    std::size_t tasks() const noexcept {
        return receiving + sending + selecting + wait_groups + mailboxes + sync;
    }

    // "weft: all tasks are asleep - deadlock! 2 tasks blocked: 1 receiving from a channel, ..."
    std::string message() const {
        std::string text = "weft: all tasks are asleep - deadlock! " + std::to_string(tasks()) +
                           (tasks() == 1 ? " task" : " tasks") + " blocked:";
        const char* separator = " ";
        auto part = [&](std::size_t n, const char* what) {
            if (n == 0)
                return;
            text += separator + std::to_string(n) + " " + what;
            separator = ", ";
        };
        part(receiving, "receiving from a channel");
        part(sending, "sending on a channel");
        part(selecting, "in select");
        part(wait_groups, "waiting on a wait_group");
        part(mailboxes, "waiting for room in an actor's mailbox");
        part(sync, "waiting on a semaphore, mutex or condition_variable");
        return text;
    }
};

namespace detail {
class spawned_task;
struct worker;
} // namespace detail

// final: it implements detail::task_host (for the waits in detail/) without a virtual destructor.
class scheduler final : public detail::task_host {
public:
    // Starts `workers` worker threads (at least 1).
    explicit scheduler(std::size_t workers = default_worker_count());
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;
    // Stops the workers after their current step, joins them, destroys unfinished tasks (see
    // "Shutdown" above).
    ~scheduler();

    // GOMAXPROCS: the WEFT_WORKERS environment variable if set to a positive number, else
    // the hardware's thread count.
    static std::size_t default_worker_count();

    std::size_t size() const noexcept { return workers_.size(); }

    // Fire-and-forget: `f` is a task (or any awaitable), a callable returning one, or a plain
    // callable. Runs on a worker; an exception it throws goes to the unhandled-exception
    // handler.
    template <class F>
    void spawn(F&& f);

    // Makes `h` runnable on this scheduler: on the calling worker's own deque if it is one of
    // ours, else on the injection queue. Wakes a parked worker if any.
    void schedule(std::coroutine_handle<> h);

    // Makes `h`, a task just woken by the calling code, runnable next: on one of our workers it
    // goes to that worker's `next` slot (what was there moves to the deque), so a task that
    // wakes another and then waits itself hands its worker over without a round trip through
    // the queues or a wake-up of another worker. Elsewhere it is schedule(h).
    void schedule_woken(std::coroutine_handle<> h) override;

    // Makes `h` runnable behind everything already queued: the injection queue, FIFO. For
    // yield(): the task lets others go first.
    void schedule_last(std::coroutine_handle<> h);

    // The scheduler whose worker is running the calling thread, or null on other threads.
    static scheduler* current() noexcept;

    // Who hears about exceptions escaping spawned tasks. Set it before spawning work; the
    // default prints the exception's message to stderr.
    void on_unhandled_exception(std::function<void(std::exception_ptr)> handler);

    // Hands an exception nobody awaits to the on_unhandled_exception handler (default:
    // stderr). Spawned tasks and actors' tell handlers end up here.
    void report_unhandled(std::exception_ptr error) noexcept;

    // Opt-in deadlock report (Go's "all goroutines are asleep - deadlock!"): when every
    // worker has been idle for `grace` with nothing queued, no timer pending and no
    // spawn_blocking call running, while tasks wait on channels, select, wait groups or full
    // mailboxes, `handler` gets a deadlock_report (default: its message() on stderr). Reported
    // once per idle spell; the handler runs on the shared timer thread, so keep it short. Only
    // tasks that block after this call are counted: call it before spawning. Plain threads are
    // invisible to the scheduler, so one that sends after a long pause can cause a false
    // report; choose `grace` longer than such pauses.
    void
    report_deadlocks(std::function<void(const deadlock_report&)> handler = {},
                     std::chrono::steady_clock::duration grace = std::chrono::milliseconds(200));

    // Called by a task's wait (detail::task_wakeup) as it suspends (+1) and resumes (-1).
    // Returns whether it counted, so the matching -1 is given only for a counted +1.
    bool count_blocked(blocked_on what, int delta) noexcept override {
        return deadlock_.count(what, delta);
    }

    // The epoll set of this scheduler (weft::net): its tasks' fd waits join it.
    detail::io_driver& io() noexcept override { return io_; }
    // Its tasks' timers (sleeps, deadlines), fired by its workers.
    void add_timer(detail::timer_entry& e) override;
    void remove_timer(detail::timer_entry& e) noexcept override { timers_.remove(e); }

private:
    friend class detail::spawned_task;
    friend class detail::deadlock_watch<scheduler>;

    // A worker's loop, and where it looks for work.
    void run_worker(std::size_t index);
    std::coroutine_handle<> find_work(detail::worker& self);
    static std::coroutine_handle<> take_next(detail::worker& w) noexcept;
    std::coroutine_handle<> steal(detail::worker& self);
    void inject(std::coroutine_handle<> h);
    std::coroutine_handle<> take_injected();
    bool has_work() const noexcept;

    // The event count idle workers sleep on.
    void park();
    void park_in_poller(detail::worker& self);
    void queue_woken(detail::worker& self);
    static std::coroutine_handle<> take_ready(detail::worker& w);
    int poll_timeout_ms() const noexcept;
    void wake_one() noexcept;
    void pass_wake_on() noexcept;
    void wake_all() noexcept;

    // What the deadlock watch reads of us (see detail/deadlock_watch.hpp).
    bool all_workers_asleep() const noexcept;
    bool asleep_since(std::uint32_t seen_epoch) const noexcept;
    bool stopping() const noexcept;
    std::uint32_t epoch() const noexcept;
    // A registered socket or a pending timer may still wake a task.
    bool may_wake_later() const noexcept { return io_.has_registrations() || !timers_.empty(); }
    // Fires this scheduler's due timers; true if any fired.
    bool run_timers();

    // Shutdown steps 4 and 5.
    void destroy_unfinished();

    std::vector<std::unique_ptr<detail::worker>> workers_;
    std::vector<std::thread> threads_;

    detail::spin_mutex injected_mutex_;
    std::deque<std::coroutine_handle<>> injected_;
    std::atomic<std::size_t> injected_count_{0};

    std::atomic<bool> stopping_{false};
    std::atomic<std::uint32_t> epoch_{0};
    std::atomic<std::size_t> sleepers_{0}; // parked workers, the poller among them
    std::atomic<std::size_t> spinning_{0};
    // The parked worker blocked in epoll_wait, if any (counted in sleepers_ too).
    std::atomic<bool> poller_parked_{false};

    detail::io_driver io_;       // see detail/io_driver.hpp: who polls, and when
    detail::timer_queue timers_; // fired by the poller and by busy workers (run_timers)

    detail::live_tasks live_;

    std::mutex unhandled_mutex_; // guards unhandled_
    std::function<void(std::exception_ptr)> unhandled_;

    detail::deadlock_watch<scheduler> deadlock_{*this};
};

// The process-wide scheduler, started on first use with default_worker_count() workers, and
// never destroyed: when main returns, its tasks stop wherever they are, as goroutines do.
scheduler& default_scheduler();

// Go's `go f()`: spawn on the scheduler running the calling task, as a goroutine starts
// goroutines on its own runtime; from any other thread, on default_scheduler().
template <class F>
void go(F&& f) {
    scheduler* s = scheduler::current();
    (s ? *s : default_scheduler()).spawn(std::forward<F>(f));
}

// ---- implementation ------------------------------------------------------------------------

namespace detail {

// Something `co_await` accepts: an awaiter, or a type with a member operator co_await.
template <class A>
concept awaitable = requires(A&& a) {
    std::forward<A>(a).operator co_await();
}
|| requires(A& a, std::coroutine_handle<> h) {
    a.await_ready();
    a.await_suspend(h);
    a.await_resume();
};

// The root of every spawned piece of work: a coroutine nobody awaits. It is in its scheduler's
// live list while alive, so shutdown can destroy it wherever it is suspended.
class spawned_task {
public:
    struct promise_type : pooled_frame, live_link {
        scheduler* owner = nullptr; // while in owner's live list

        spawned_task get_return_object() noexcept {
            return spawned_task(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; } // the frame frees itself
        void return_void() noexcept {}
        void unhandled_exception() noexcept {
            if (owner)
                owner->report_unhandled(std::current_exception());
        }
        ~promise_type() {
            if (owner)
                owner->live_.untrack(*this);
        }
    };
    using handle = std::coroutine_handle<promise_type>;

    spawned_task(spawned_task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    spawned_task& operator=(spawned_task&&) = delete;
    ~spawned_task() {
        if (h_)
            h_.destroy(); // never handed to a scheduler
    }

    // Hands the task to `s`: tracked in its live list until it ends, then made runnable.
    void start_on(scheduler& s) {
        handle h = std::exchange(h_, {});
        h.promise().owner = &s;
        s.live_.track(h.promise());
        s.schedule(h);
    }

    // Shutdown step 5: `t`, taken out of its scheduler's list, is destroyed where it waits.
    static void destroy(live_link& t) noexcept {
        promise_type& p = static_cast<promise_type&>(t);
        p.owner = nullptr; // so its destructor does not look for the list
        handle::from_promise(p).destroy();
    }

private:
    explicit spawned_task(handle h) noexcept : h_(h) {}
    handle h_;
};

// Runs `f`: awaits it if it is awaitable, else calls it and awaits what it returns, if that is
// awaitable. `f` lives in this frame for as long as the work runs.
template <class F>
spawned_task run_spawned(F f) {
    if constexpr (awaitable<F>) {
        co_await std::move(f);
    } else {
        using result = std::invoke_result_t<F&>;
        if constexpr (awaitable<result>)
            co_await f();
        else
            f();
    }
}

// One worker's private state. Only its own thread touches `tick`, `next_runs` and `rng`;
// thieves touch only `deque` and, as a last resort, `next`.
struct worker {
    explicit worker(std::uint64_t seed) : rng(seed) {}
    work_deque<std::coroutine_handle<>> deque{256};
    // The task this worker just woke (Go's runnext): run before anything in the deque, so a
    // hand-off between two tasks stays on one worker with a warm cache. An address or null.
    std::atomic<void*> next{nullptr};
    // Tasks taken from `next` in a row; capped so two tasks waking each other cannot starve
    // the deque.
    std::uint32_t next_runs = 0;
    std::uint32_t tick = 0;
    fast_random rng;
    // While this worker dispatches fd events or fires timers, the tasks they wake are collected
    // in `woken` and then appended to `ready`, a FIFO that find_work serves before the deque
    // (and thieves after the deques). Not one by one into `next` and the deque: those are LIFO
    // for their owner, which served the newest readiness first and left the oldest connections
    // waiting (p99 of a 1000-connection echo: 300 ms against Go's 70); and not the injection
    // queue, which a worker busy with its deque serves only every 61 tasks (timers woke late).
    bool batching = false;
    // Set when this worker comes back from sleeping (on epoch_ or in epoll_wait); the first
    // task it then finds makes it pass the wake-up on if more work is queued (run_worker).
    bool just_woke = false;
    std::vector<std::coroutine_handle<>> woken;
    spin_mutex ready_mutex; // guards `ready`
    std::deque<std::coroutine_handle<>> ready;
    std::atomic<std::size_t> ready_count{0}; // ready.size(), read without the lock as a hint
};

// Consecutive runs from a worker's `next` slot before its deque gets a turn (Tokio's choice).
inline constexpr std::uint32_t k_max_next_runs = 3;

// Set once default_scheduler() has been started; lets a test see that go() in a task did not.
inline std::atomic<bool> default_scheduler_started{false};

} // namespace detail

// --- construction and shutdown ---

inline scheduler::scheduler(std::size_t workers) {
    const std::size_t n = std::max<std::size_t>(workers, 1);
    auto& seed_rng = detail::fast_random::for_this_thread();
    for (std::size_t i = 0; i < n; ++i)
        workers_.push_back(std::make_unique<detail::worker>(seed_rng.next()));
    threads_.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        threads_.emplace_back([this, i] { run_worker(i); });
}

inline scheduler::~scheduler() {
    // Step 1. release: workers that see the flag (acquire) also see everything before it.
    stopping_.store(true, std::memory_order_release);
    wake_all();
    for (auto& t : threads_) // step 2
        t.join();
    deadlock_.stop(); // step 3
    destroy_unfinished();
}

inline std::size_t scheduler::default_worker_count() {
    if (const char* text = std::getenv("WEFT_WORKERS")) {
        const long n = std::strtol(text, nullptr, 10);
        if (n > 0)
            return static_cast<std::size_t>(n);
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

// After the workers are gone: what is queued is dropped (step 4), then each live spawned task
// is destroyed (step 5).
inline void scheduler::destroy_unfinished() {
    {
        // A timer, blocking-pool or plain thread may still wake one of our tasks now
        // (inject() locks too); the frame it wakes is destroyed below and never runs.
        std::lock_guard lock(injected_mutex_);
        injected_.clear();
    }
    for (auto& w : workers_) {
        while (w->deque.pop()) {
        }
        w->next.store(nullptr, std::memory_order_relaxed); // relaxed: the workers are gone
        w->ready.clear();
    }
    live_.destroy_all(&detail::spawned_task::destroy);
}

// --- submitting work ---

template <class F>
void scheduler::spawn(F&& f) {
    detail::run_spawned(std::decay_t<F>(std::forward<F>(f))).start_on(*this);
}

inline void scheduler::schedule(std::coroutine_handle<> h) {
    auto& current = detail::current_worker::get();
    if (current.host == this && current.self->deque.push(h)) {
        // The only worker is the caller, awake by definition: no one to wake, and no
        // fence to pay for it (fork-join on one worker spawns at a high rate).
        if (workers_.size() == 1)
            return;
    } else {
        inject(h);
    }
    wake_one();
}

inline void scheduler::schedule_woken(std::coroutine_handle<> h) {
    auto& current = detail::current_worker::get();
    if (current.host != this)
        return schedule(h);
    if (current.self->batching) {
        current.self->woken.push_back(h);
        return;
    }
    // acq_rel: the release publishes the woken task's state to whoever takes the slot (this
    // worker, or a thief's acquire); the acquire takes over the previous occupant's.
    void* previous = current.self->next.exchange(h.address(), std::memory_order_acq_rel);
    if (previous)
        schedule(std::coroutine_handle<>::from_address(previous));
}

inline void scheduler::schedule_last(std::coroutine_handle<> h) {
    inject(h);
    wake_one();
}

inline scheduler* scheduler::current() noexcept {
    // Every task_host is a scheduler: this class is the only implementation.
    return static_cast<scheduler*>(detail::current_worker::get().host);
}

// --- exceptions and the deadlock report ---

inline void scheduler::on_unhandled_exception(std::function<void(std::exception_ptr)> handler) {
    std::lock_guard lock(unhandled_mutex_);
    unhandled_ = std::move(handler);
}

inline void scheduler::report_unhandled(std::exception_ptr error) noexcept {
    std::function<void(std::exception_ptr)> handler;
    {
        std::lock_guard lock(unhandled_mutex_);
        handler = unhandled_;
    }
    try {
        if (handler) {
            handler(error);
            return;
        }
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "weft: unhandled exception in a task or actor: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "weft: unhandled non-std exception in a task or actor\n");
    }
}

inline void scheduler::report_deadlocks(std::function<void(const deadlock_report&)> handler,
                                        std::chrono::steady_clock::duration grace) {
    if (!handler)
        handler = [](const deadlock_report& r) {
            std::fprintf(stderr, "%s\n", r.message().c_str());
        };
    deadlock_.enable(
        [handler = std::move(handler)](const detail::blocked_counts& blocked) {
            auto n = [&](blocked_on what) { return blocked[static_cast<std::size_t>(what)]; };
            handler(deadlock_report{.receiving = n(blocked_on::channel_receive),
                                    .sending = n(blocked_on::channel_send),
                                    .selecting = n(blocked_on::select),
                                    .wait_groups = n(blocked_on::wait_group),
                                    .mailboxes = n(blocked_on::mailbox),
                                    .sync = n(blocked_on::sync)});
        },
        grace);
}

// --- the workers ---

inline void scheduler::run_worker(std::size_t index) {
    detail::worker& self = *workers_[index];
    detail::current_worker::get() = {this, &self};
    // acquire: pairs with the release store in the destructor. Checked before every step,
    // so a task that keeps yielding cannot hold the worker past a stop.
    while (!stopping_.load(std::memory_order_acquire)) {
        if (std::coroutine_handle<> h = find_work(self)) {
            if (self.just_woke) {
                self.just_woke = false;
                pass_wake_on();
            }
            h.resume();
        } else {
            park();
        }
    }
    detail::current_worker::get() = {};
}

inline std::coroutine_handle<> scheduler::find_work(detail::worker& self) {
    // Every 61st task comes from the injection queue first, so outside submissions are
    // never starved by a worker that keeps feeding its own deque (61: Go's choice, a prime
    // that does not beat in step with common loop sizes).
    if (++self.tick % 61 == 0) {
        // The same beat polls the fds without waiting (Tokio's event_interval), unless an
        // idle worker is blocked in epoll_wait already; what it wakes lands in our queues.
        self.batching = true;
        if (io_.has_registrations() && io_.try_lock_poll()) {
            io_.poll(0);
            io_.unlock_poll();
        }
        run_timers();
        queue_woken(self);
        if (auto h = take_injected())
            return h;
    }
    if (self.next_runs < detail::k_max_next_runs)
        if (auto h = take_next(self)) {
            ++self.next_runs;
            return h;
        }
    self.next_runs = 0;
    if (auto h = take_ready(self)) // what fd events and timers woke, oldest first
        return h;
    if (auto h = self.deque.pop())
        return *h;
    if (auto h = take_next(self)) // over the cap, but nothing else is queued here
        return h;
    if (auto h = take_injected())
        return h;
    return steal(self);
}

inline std::coroutine_handle<> scheduler::take_next(detail::worker& w) noexcept {
    // relaxed: a cheap look first; most of the time the slot is empty.
    if (!w.next.load(std::memory_order_relaxed))
        return {};
    // acquire: pairs with the release in schedule_woken(); the exchange makes the take
    // exclusive between the owner and thieves.
    void* h = w.next.exchange(nullptr, std::memory_order_acquire);
    return h ? std::coroutine_handle<>::from_address(h) : std::coroutine_handle<>{};
}

// Tries every other worker once, from a random start; again while some steal lost a race.
inline std::coroutine_handle<> scheduler::steal(detail::worker& self) {
    const std::size_t n = workers_.size();
    if (n < 2)
        return {};
    for (int round = 0; round < 4; ++round) {
        bool contended = false;
        const std::size_t start = self.rng.below(static_cast<std::uint32_t>(n));
        for (std::size_t i = 0; i < n; ++i) {
            detail::worker& victim = *workers_[(start + i) % n];
            if (&victim == &self)
                continue;
            auto r = victim.deque.steal();
            if (r)
                return r.value;
            contended = contended || r.status == detail::steal_status::lost_race;
        }
        if (!contended)
            break;
    }
    // Every deque is empty: take what fd events or timers woke on another worker, oldest first,
    // or a task another worker woke but has not got to yet (it is busy running something else,
    // or it would have taken it).
    const std::size_t start = self.rng.below(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
        detail::worker& victim = *workers_[(start + i) % n];
        if (&victim != &self)
            if (auto h = take_ready(victim))
                return h;
    }
    for (std::size_t i = 0; i < n; ++i) {
        detail::worker& victim = *workers_[(start + i) % n];
        if (&victim != &self)
            if (auto h = take_next(victim))
                return h;
    }
    return {};
}

inline void scheduler::inject(std::coroutine_handle<> h) {
    std::lock_guard lock(injected_mutex_);
    injected_.push_back(h);
    // relaxed: a hint for has_work() and take_injected(); the lock orders the queue itself,
    // and wake_one()'s fence orders this store against a parking worker's check.
    injected_count_.store(injected_.size(), std::memory_order_relaxed);
}

inline std::coroutine_handle<> scheduler::take_injected() {
    // relaxed: a hint to skip the lock when empty; a missed item is found on the next look
    // (a parking worker re-checks after its fence).
    if (injected_count_.load(std::memory_order_relaxed) == 0)
        return {};
    std::lock_guard lock(injected_mutex_);
    if (injected_.empty())
        return {};
    auto h = injected_.front();
    injected_.pop_front();
    // relaxed: as in inject().
    injected_count_.store(injected_.size(), std::memory_order_relaxed);
    return h;
}

// Queued work. A worker's `next` slot does not count: its owner is awake and takes it
// before it looks anywhere else, so nobody needs waking for it.
inline bool scheduler::has_work() const noexcept {
    // relaxed loads: the caller issued a seq_cst fence first (see park()).
    if (injected_count_.load(std::memory_order_relaxed) != 0)
        return true;
    for (const auto& w : workers_)
        if (w->deque.size_hint() != 0 || w->ready_count.load(std::memory_order_relaxed) != 0)
            return true;
    return false;
}

// --- the event count ---

// A worker that found nothing announces itself in sleepers_, fences, and looks for work once
// more before it waits for epoch_ to move; whoever makes work runnable fences and then reads
// sleepers_. With both fences seq_cst one side always sees the other: either the worker finds
// the new work, or the producer sees the sleeper and bumps epoch_, which the worker's wait()
// cannot miss (it read epoch_ before announcing).
inline void scheduler::park() {
    // Search a little longer first (a task is often about to appear), but never with more
    // than half the workers at once: the rest would only burn CPU.
    const std::size_t max_spinning = std::max<std::size_t>(1, workers_.size() / 2);
    // relaxed: a soft cap, not a synchronization point.
    if (spinning_.fetch_add(1, std::memory_order_relaxed) < max_spinning) {
        detail::backoff spin;
        for (int i = 0; i < 16; ++i) {
            spin.snooze();
            if (has_work()) {
                spinning_.fetch_sub(1, std::memory_order_relaxed); // relaxed: as above
                return;
            }
        }
    }
    spinning_.fetch_sub(1, std::memory_order_relaxed); // relaxed: as above

    detail::worker& self = *detail::current_worker::get().self;
    self.batching = true;
    const bool fired = run_timers();
    queue_woken(self);
    if (fired)
        return; // they woke tasks
    if (io_.try_lock_poll()) {
        park_in_poller(self);
        return;
    }

    // acquire: pairs with the release increment in wake_one()/wake_all().
    const std::uint32_t seen = epoch_.load(std::memory_order_acquire);
    // relaxed: ordered by the fence just below.
    sleepers_.fetch_add(1, std::memory_order_relaxed);
    // seq_cst: pairs with the fence in wake_one() (see above).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // acquire: as in run_worker().
    if (!has_work() && !stopping_.load(std::memory_order_acquire)) {
        deadlock_.arm(seen);
        epoch_.wait(seen, std::memory_order_acquire); // acquire: as the load of seen
        self.just_woke = true;
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed); // relaxed: only a count
}

// A worker back from sleep that found a task wakes one more sleeper if work is still queued
// (Go's resetspinning -> wakep). Needed because wake_one() counts a sleeper that was already
// notified but has not yet left sleepers_: two spawns in a row both see two sleepers, both
// notify epoch_, and the second notify reaches nobody when the other sleeper is the poller in
// epoll_wait (or has been notified too). The woken worker decremented sleepers_ before this
// fence, so of a producer that missed that decrement and this check, one sees the other's
// write: either the producer's wake_one counted right, or we see its task here.
inline void scheduler::pass_wake_on() noexcept {
    // seq_cst: pairs with the fence in wake_one() (see above).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (has_work())
        wake_one();
}

// The idle worker that holds the poll token sleeps in epoll_wait rather than on epoch_, with
// the same handshake: it announces itself (sleepers_ and poller_parked_), fences, and looks for
// work once more; wake_one fences and reads both, and writes the driver's eventfd when the
// poller is the only sleeper. The tasks its events wake go to its own `next` slot and deque
// (schedule_woken on a worker of ours), so it runs them itself and others may steal them.
inline void scheduler::park_in_poller(detail::worker& self) {
    // relaxed: ordered by the fence below, as in park().
    sleepers_.fetch_add(1, std::memory_order_relaxed);
    poller_parked_.store(true, std::memory_order_relaxed);
    // seq_cst: pairs with the fence in wake_one(), as in park().
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // acquire: as in run_worker().
    self.batching = true;
    if (!has_work() && !stopping_.load(std::memory_order_acquire)) {
        deadlock_.arm(epoch_.load(std::memory_order_acquire)); // acquire: as in park()
        io_.poll(poll_timeout_ms());
        self.just_woke = true;
    }
    poller_parked_.store(false, std::memory_order_relaxed); // relaxed: a hint for wake_one
    sleepers_.fetch_sub(1, std::memory_order_relaxed);      // relaxed: only a count
    io_.unlock_poll();
    run_timers();
    queue_woken(self);
}

// Ends a batch (see worker::woken): the woken tasks join the worker's `ready` FIFO in the order
// they were woken, under one lock, and one sleeping worker is woken to share them.
inline void scheduler::queue_woken(detail::worker& self) {
    self.batching = false;
    if (self.woken.empty())
        return;
    {
        std::lock_guard lock(self.ready_mutex);
        self.ready.insert(self.ready.end(), self.woken.begin(), self.woken.end());
        // relaxed: a hint for has_work() and take_ready(), as injected_count_.
        self.ready_count.store(self.ready.size(), std::memory_order_relaxed);
    }
    self.woken.clear();
    wake_one();
}

inline std::coroutine_handle<> scheduler::take_ready(detail::worker& w) {
    // relaxed: a hint, as in take_injected().
    if (w.ready_count.load(std::memory_order_relaxed) == 0)
        return {};
    std::lock_guard lock(w.ready_mutex);
    if (w.ready.empty())
        return {};
    auto h = w.ready.front();
    w.ready.pop_front();
    w.ready_count.store(w.ready.size(), std::memory_order_relaxed); // relaxed: as above
    return h;
}

// Until the earliest timer (rounded up to a millisecond: epoll_wait's unit), or for ever.
inline int scheduler::poll_timeout_ms() const noexcept {
    const auto earliest = timers_.earliest();
    if (!earliest)
        return -1;
    const auto left = *earliest - std::chrono::steady_clock::now();
    if (left <= left.zero())
        return 0;
    return static_cast<int>(std::min<std::int64_t>(
        std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1 << 30));
}

inline bool scheduler::run_timers() {
    if (timers_.empty())
        return false;
    return timers_.run_due(std::chrono::steady_clock::now()) != 0;
}

// A timer earlier than the poller's timeout wakes it to wait less; a busy worker finds due
// timers on its beat.
inline void scheduler::add_timer(detail::timer_entry& e) {
    if (timers_.add(e)) {
        // seq_cst: pairs with the fence in park_in_poller(): either the poller sees the new
        // earliest deadline when it computes its timeout, or we see it parked and wake it.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        // relaxed: ordered by the fence above.
        if (poller_parked_.load(std::memory_order_relaxed))
            io_.wake();
    }
}

inline void scheduler::wake_one() noexcept {
    // seq_cst: pairs with the fences in park() and park_in_poller(): orders our queue write
    // before these reads.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // relaxed: ordered by the fence above.
    const std::size_t sleeping = sleepers_.load(std::memory_order_relaxed);
    if (sleeping == 0)
        return;
    // relaxed: as above. A poller seen here that has just left epoll_wait is awake anyway and
    // looks for work before it parks again.
    if (sleeping == 1 && poller_parked_.load(std::memory_order_relaxed)) {
        io_.wake();
        return;
    }
    // release: the woken worker's acquire of epoch_ sees the work we queued.
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_one();
}

inline void scheduler::wake_all() noexcept {
    // release: as in wake_one().
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_all();
    io_.wake();
}

// --- what the deadlock watch reads ---

inline bool scheduler::all_workers_asleep() const noexcept {
    // seq_cst: pairs with the watch's store of `armed` (deadlock_watch::arm and check).
    return sleepers_.load(std::memory_order_seq_cst) == workers_.size();
}

inline bool scheduler::asleep_since(std::uint32_t seen_epoch) const noexcept {
    // Any wake-up moves epoch_. relaxed/acquire: a stale read can only make the watch skip a
    // report or look once more.
    return sleepers_.load(std::memory_order_relaxed) == workers_.size() &&
           epoch_.load(std::memory_order_acquire) == seen_epoch && !has_work() && !stopping();
}

inline bool scheduler::stopping() const noexcept {
    return stopping_.load(std::memory_order_acquire); // acquire: as in run_worker()
}

inline std::uint32_t scheduler::epoch() const noexcept {
    return epoch_.load(std::memory_order_acquire); // acquire: as in park()
}

// --- the default scheduler ---

// Never destroyed (the exit race): as a function-local static it was destroyed at exit, in
// reverse order of construction. Its own workers were joined first, but other threads could
// still be inside it or enter it: a worker of another scheduler made earlier (a static one,
// destroyed later) whose task had just spawned here and was still in schedule()/wake_one(), a
// timer or blocking-pool thread (never joined) waking a task here, a detached thread calling
// go(). They then used the freed deques, injection queue and live list (SIGSEGV), or spawned
// onto a dead scheduler. And its destructor's join made exit hang on a task stuck in a blocking
// call. The timer service and the blocking pool are leaked for the same reason. The price: a
// task still running at exit may see the program's statics being destroyed, as any thread may.
inline scheduler& default_scheduler() {
    static scheduler* const instance = [] {
        // relaxed: a flag for tests, which read it after a wait that orders it.
        detail::default_scheduler_started.store(true, std::memory_order_relaxed);
        return new scheduler;
    }();
    return *instance;
}

namespace detail {

inline task_host& default_host() {
    return default_scheduler();
}

// Installs default_scheduler() as the fallback host of a task that waits on a thread no worker
// runs (see task_host.hpp), while the statics of each translation unit that includes this
// header are initialized.
inline const bool default_host_installed = [] {
    // release: pairs with the acquire in current_host().
    fallback_host.store(&default_host, std::memory_order_release);
    return true;
}();

} // namespace detail

} // namespace weft
