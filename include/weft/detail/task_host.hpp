// weft::detail::task_host — the scheduler as a waiting task sees it, so that the wait machinery
// (task_park.hpp, blocking_report.hpp) needs no scheduler.hpp.
//
// A task that waits in a wait queue needs two things from the scheduler that runs it: a way to
// be made runnable again when a claimant wakes it (schedule_woken), and a place to say what it
// waits for while it waits (count_blocked, read by the deadlock report). scheduler implements
// task_host; a waiting task finds its host through the thread it runs on:
//
//   1. On a worker thread: current_worker::get().host, the worker's own scheduler.
//   2. On any other thread (a task driven by a coroutine of another library): the fallback,
//      default_scheduler(). scheduler.hpp installs it in `fallback_host` while the program's
//      statics are initialized, from an inline variable; every public header that lets a task
//      wait includes scheduler.hpp, so in each translation unit that can make a task wait the
//      fallback is in place before any object defined after the include is initialized.
//
// One indirect call per wait (count_blocked) and per wake-up (schedule_woken); the scheduler is
// the only implementer.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace weft::detail {

// What a suspended task waits for, as counted by the deadlock report (weft::blocked_on).
enum class blocked_on : std::uint8_t {
    channel_receive,
    channel_send,
    select,
    wait_group,
    mailbox, // an actor sender waiting for room in a full mailbox
    sync,    // a semaphore, a mutex or a condition_variable
    timer,   // sleep_for: not counted (a pending timer rules a deadlock out anyway)
    io,      // a socket or another fd (weft::net): not counted (a peer may still come)
};

class io_driver;
class timer_entry;

// The kinds the deadlock report counts: every blocked_on before timer.
inline constexpr std::size_t k_counted_kinds = static_cast<std::size_t>(blocked_on::timer);

class task_host {
public:
    // Makes `h`, a task the calling code just woke, runnable (next on this worker if the caller
    // is one of the host's workers).
    virtual void schedule_woken(std::coroutine_handle<> h) = 0;
    // A task's wait begins (+1) or ends (-1). False when the +1 was not counted (the report is
    // off, or `what` is not counted): the matching -1 is then not given.
    virtual bool count_blocked(blocked_on what, int delta) noexcept = 0;
    // The epoll set a task's wait on an fd joins (io_driver.hpp).
    virtual io_driver& io() noexcept = 0;
    // A task's timer (a sleep, a wait's deadline), fired by the host's workers
    // (timer_queue.hpp). remove_timer returns once the timer can no longer fire.
    virtual void add_timer(timer_entry& e) = 0;
    virtual void remove_timer(timer_entry& e) noexcept = 0;

protected:
    task_host() = default;
    task_host(const task_host&) = default;
    task_host& operator=(const task_host&) = default;
    ~task_host() = default;
};

struct worker;

// The worker the calling thread is, if it is one: both null on other threads.
struct current_worker {
    task_host* host = nullptr;
    worker* self = nullptr;
    static current_worker& get() noexcept {
        thread_local current_worker current;
        return current;
    }
};

// default_scheduler(), installed by scheduler.hpp (see the top of this file).
inline std::atomic<task_host& (*)()> fallback_host{nullptr};

// The host of a task that suspends on the calling thread.
inline task_host& current_host() {
    if (task_host* host = current_worker::get().host)
        return *host;
    // acquire: pairs with the release store that installs it in scheduler.hpp.
    return fallback_host.load(std::memory_order_acquire)();
}

} // namespace weft::detail
