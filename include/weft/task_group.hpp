// weft::task_group and weft::parallel_for — spawn many tasks, then wait for all of them.
//
//   weft::task_group g;                       // on the current (or default) scheduler
//   for (auto& item : items) g.spawn([&item] { process(item); });
//   co_await g.wait();                        // in a task: suspends, the worker runs others
//
//   co_await weft::parallel_for(0, n, [&](std::size_t i) { out[i] = f(in[i]); });
//
// Waiting inside a task suspends it, so its worker helps by running the group's (and anyone
// else's) tasks instead of blocking. wait() rethrows the first exception a member threw, after
// every member has finished.
#pragma once

#include "scheduler.hpp"
#include "sync.hpp"
#include "task.hpp"

#include <algorithm>
#include <cstddef>
#include <exception>
#include <mutex>
#include <type_traits>
#include <utility>

namespace weft {

class task_group {
public:
    // Members run on `s`; by default on the scheduler of the calling worker, else the default.
    explicit task_group(scheduler& s) noexcept : scheduler_(s) {}
    task_group() noexcept : task_group(current_or_default()) {}
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;

    // Runs `f` (a callable, a task, or a callable returning a task) as a member of the group.
    template <class F>
    void spawn(F&& f) {
        pending_.add(1);
        scheduler_.spawn(run_member(this, std::decay_t<F>(std::forward<F>(f))));
    }

    // Suspends until every member spawned so far has finished, then rethrows the first
    // exception one of them threw (and forgets it, so the group can be reused).
    task<void> wait() {
        co_await pending_.async_wait();
        std::exception_ptr error;
        {
            std::lock_guard lock(error_mutex_);
            error = std::exchange(first_error_, nullptr);
        }
        if (error)
            std::rethrow_exception(error);
    }

private:
    static scheduler& current_or_default() noexcept {
        scheduler* s = scheduler::current();
        return s ? *s : default_scheduler();
    }

    template <class F>
    static task<void> run_member(task_group* group, F f) {
        try {
            if constexpr (detail::awaitable<F>) {
                co_await std::move(f);
            } else if constexpr (detail::awaitable<std::invoke_result_t<F&>>) {
                co_await f();
            } else {
                f();
            }
        } catch (...) {
            std::lock_guard lock(group->error_mutex_);
            if (!group->first_error_)
                group->first_error_ = std::current_exception();
        }
        // Last touch of the group: once the count reaches zero its owner may destroy it.
        group->pending_.done();
    }

    scheduler& scheduler_;
    wait_group pending_;
    std::mutex error_mutex_;
    std::exception_ptr first_error_;
};

// Calls f(i) for every i in [first, last) in parallel on the current (or default) scheduler,
// in about 8 chunks per worker so idle workers can steal; suspends until all are done and
// rethrows the first exception.
template <class F>
task<void> parallel_for(std::size_t first, std::size_t last, F f) {
    if (first >= last)
        co_return;
    task_group group;
    const std::size_t n = last - first;
    scheduler* s = scheduler::current();
    const std::size_t workers = s ? s->size() : default_scheduler().size();
    const std::size_t chunks = std::min(n, workers * 8);
    for (std::size_t c = 0; c < chunks; ++c) {
        const std::size_t begin = first + n * c / chunks;
        const std::size_t end = first + n * (c + 1) / chunks;
        group.spawn([&f, begin, end] {
            for (std::size_t i = begin; i < end; ++i)
                f(i);
        });
    }
    co_await group.wait();
}

} // namespace weft
