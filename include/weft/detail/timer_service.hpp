// weft::detail::timer_service — one thread that runs every timer callback of the process.
//
// after(), ticker and timer schedule short callbacks here instead of starting a thread each:
// a million pending timers cost a heap entry each, not a thread. Callbacks run on the timer
// thread, outside the lock, and must be quick (a try_send). The service is created on first
// use and never destroyed, so a timer outliving main() is harmless; its thread is detached
// and sleeps when nothing is due.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

namespace weft::detail {

class timer_service {
public:
    using clock = std::chrono::steady_clock;
    using timer_id = std::uint64_t;

    static timer_service& instance() {
        // Leaked on purpose: timers may be cancelled from static destructors after main().
        static timer_service* service = new timer_service;
        return *service;
    }

    // Runs `fn` on the timer thread at `when` (at once if it has passed) unless cancelled.
    timer_id schedule(clock::time_point when, std::function<void()> fn) {
        std::lock_guard lock(mutex_);
        const timer_id id = next_id_++;
        callbacks_.emplace(id, std::move(fn));
        heap_.push({when, id});
        if (heap_.top().id == id)
            wake_.notify_one(); // new earliest deadline
        return id;
    }

    // True if the timer was still pending and now never runs; false if it already ran (or is
    // running right now) or was cancelled before.
    bool cancel(timer_id id) {
        std::function<void()> dropped; // destroyed after the lock: its captures may call us
        std::lock_guard lock(mutex_);
        return take_pending(id, dropped);
    }

    // As cancel(), and if the callback is running right now, waits until it has returned: after
    // this the callback no longer touches anything of the caller's. Called from a callback (on
    // the timer thread) it does not wait: the only callback running is the caller itself.
    bool cancel_and_wait(timer_id id) {
        std::function<void()> dropped; // destroyed after the lock, as in cancel()
        std::unique_lock lock(mutex_);
        if (take_pending(id, dropped))
            return true;
        if (std::this_thread::get_id() != thread_)
            finished_.wait(lock, [&] { return running_ != id; });
        return false;
    }

    // Timers scheduled and not yet run or cancelled (a callback running now is not counted).
    std::size_t pending() {
        std::lock_guard lock(mutex_);
        return callbacks_.size();
    }

    timer_service(const timer_service&) = delete;
    timer_service& operator=(const timer_service&) = delete;

private:
    struct entry {
        clock::time_point when;
        timer_id id;
        // Earliest deadline on top; ties in scheduling order.
        bool operator<(const entry& other) const noexcept {
            return when != other.when ? when > other.when : id > other.id;
        }
    };

    timer_service() {
        std::thread worker([this] { run(); });
        thread_ = worker.get_id(); // before anyone can call cancel_and_wait (instance() returns)
        worker.detach();
    }

    // Under mutex_: takes `id`'s callback out if it is still pending. The caller destroys it
    // after releasing the lock.
    bool take_pending(timer_id id, std::function<void()>& out) {
        auto it = callbacks_.find(id);
        if (it == callbacks_.end())
            return false;
        out = std::move(it->second);
        callbacks_.erase(it);
        // Cancelled entries stay in the heap until due; rebuild when they dominate.
        if (heap_.size() > 64 && heap_.size() > 2 * callbacks_.size())
            rebuild_heap();
        return true;
    }

    void run() {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (heap_.empty()) {
                wake_.wait(lock);
                continue;
            }
            const entry next = heap_.top();
            if (clock::now() < next.when) {
                wake_.wait_until(lock, next.when);
                continue;
            }
            heap_.pop();
            auto it = callbacks_.find(next.id);
            if (it == callbacks_.end())
                continue; // cancelled
            std::function<void()> fn = std::move(it->second);
            callbacks_.erase(it);
            running_ = next.id;
            lock.unlock();
            fn();
            fn = nullptr; // its captures die outside the lock: their destructors may call us
            lock.lock();
            running_ = 0;
            finished_.notify_all();
        }
    }

    void rebuild_heap() {
        std::vector<entry> live;
        live.reserve(callbacks_.size());
        while (!heap_.empty()) {
            if (callbacks_.count(heap_.top().id))
                live.push_back(heap_.top());
            heap_.pop();
        }
        heap_ = std::priority_queue<entry>(std::less<entry>(), std::move(live));
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable finished_; // a callback returned (for cancel_and_wait)
    std::priority_queue<entry> heap_;
    std::unordered_map<timer_id, std::function<void()>> callbacks_;
    timer_id next_id_ = 1;
    timer_id running_ = 0;   // the callback running now, 0 if none
    std::thread::id thread_; // the timer thread: callbacks run there, one at a time
};

} // namespace weft::detail
