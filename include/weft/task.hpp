// weft::task<T> — a lazy coroutine that produces a T (or throws), and the ways to run tasks:
// sync_wait from a plain thread, when_all to run several in parallel, yield to let others go.
//
//   weft::task<int> answer() { co_return 42; }
//   weft::task<int> twice() { int a = co_await answer(); co_return 2 * a; }
//   int v = weft::sync_wait(twice());                  // 84, on default_scheduler()
//   auto [x, y] = co_await weft::when_all(f(), g());   // f and g in parallel
//
// A task starts only when awaited (or spawned, or passed to sync_wait) and runs to its first
// suspension on the awaiting thread. If it finished by then, the awaiter simply goes on; if it
// suspended, it resumes its awaiter by symmetric transfer when done. So a chain of awaits never
// grows the stack, also in builds where a transfer is not a tail call (-O0, sanitizers). An
// exception thrown in a task reaches whoever awaits it. Awaiting a moved-from task throws
// task_error.
//
// A task is lazy and may suspend, so whatever it refers to must outlive it: a `task<>` function
// that takes a reference (or a coroutine lambda that captures by reference) must be awaited
// while the referent lives. Take parameters by value to keep them in the task's frame. A
// capturing coroutine lambda given to go(), spawn() or task_group::spawn() is kept alive by
// them until its task ends; one called by hand (`[x]() -> task<> {...}()`) is a temporary whose
// captures die at the end of the full expression.
//
// The task type itself (task<T>, task_error, and how a task starts another) is in
// detail/task_core.hpp, which needs no scheduler; this header adds what runs tasks.
#pragma once

#include "detail/task_core.hpp"
#include "scheduler.hpp"

#include <array>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace weft {

// A task could not finish because its scheduler was destroyed first (sync_wait reports it).
class scheduler_stopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Ts>
class when_all_tuple;
template <class T>
class when_all_vector;
} // namespace detail

// Runs `t` on `s` and blocks the calling thread until it finishes: returns its value or
// rethrows its exception. Throws scheduler_stopped if `s` is destroyed first. Do not call it on
// one of `s`'s own workers (it would block that worker; await the task instead).
template <class T>
T sync_wait(scheduler& s, task<T> t);

// sync_wait on default_scheduler().
template <class T>
T sync_wait(task<T> t) {
    return sync_wait(default_scheduler(), std::move(t));
}

// `co_await yield()`: lets every task already queued run first. On a thread that is not a
// worker it yields the thread.
inline auto yield() noexcept {
    struct awaiter {
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) const {
            if (scheduler* s = scheduler::current()) {
                s->schedule_last(h);
                return true;
            }
            std::this_thread::yield();
            return false;
        }
        void await_resume() const noexcept {}
    };
    return awaiter{};
}

// Runs the tasks in parallel on the current scheduler and yields all their results, in order
// (void results as std::monostate): `auto [a, b] = co_await when_all(f(), g());`. Waits for
// every task even if one throws, then rethrows the first exception in argument order. Await
// the result at once; it is not a task.
template <class... Ts>
[[nodiscard]] detail::when_all_tuple<Ts...> when_all(task<Ts>... tasks) {
    return detail::when_all_tuple<Ts...>(std::move(tasks)...);
}

// Runs every task in `tasks` in parallel and yields their results in order (nothing for void
// tasks). Waits for all, then rethrows the first exception in order.
template <class T>
[[nodiscard]] detail::when_all_vector<T> when_all(std::vector<task<T>> tasks) {
    return detail::when_all_vector<T>(std::move(tasks));
}

// ---- implementation ------------------------------------------------------------------------

namespace detail {

// sync_wait's meeting point between the task and the waiting thread.
template <class T>
struct sync_state {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>> value;
    std::exception_ptr error;

    // Under the lock, so the waiter (which takes the lock before returning) cannot free the
    // state while we still touch it.
    void finish() {
        std::lock_guard lock(mutex);
        done = true;
        cv.notify_one();
    }
};

// Destroyed with the frame of sync_wait's task: if that happens before the task finished (the
// scheduler shut down), tells the waiter instead of leaving it blocked for ever.
template <class T>
struct abandon_guard {
    sync_state<T>* state;
    bool finished = false;
    ~abandon_guard() {
        if (finished)
            return;
        state->error = std::make_exception_ptr(
            scheduler_stopped("weft: scheduler destroyed before the sync_wait task finished"));
        state->finish();
    }
};

template <class T>
task<void> run_for_sync_wait(task<T> t, sync_state<T>& state) {
    abandon_guard<T> guard{&state};
    try {
        // `inner` dies at the end of this block, so the task's frame (and the exception it may
        // hold) is gone before finish() lets the waiter return: the waiter never races with
        // our clean-up.
        task<T> inner = std::move(t);
        if constexpr (std::is_void_v<T>) {
            co_await std::move(inner);
            state.value.emplace();
        } else {
            state.value.emplace(co_await std::move(inner));
        }
    } catch (...) {
        state.error = std::current_exception();
    }
    guard.finished = true;
    state.finish();
}

} // namespace detail

template <class T>
T sync_wait(scheduler& s, task<T> t) {
    detail::sync_state<T> state;
    s.spawn(detail::run_for_sync_wait(std::move(t), state));
    std::unique_lock lock(state.mutex);
    state.cv.wait(lock, [&] { return state.done; });
    if (state.error)
        std::rethrow_exception(state.error);
    if constexpr (!std::is_void_v<T>)
        return std::move(*state.value);
}

namespace detail {

// Starts `children` (task handles) and suspends the parent until the last one finishes: all
// but the last go on the scheduler running the parent (where idle workers can steal them),
// the last runs at once on this thread, as a fork-join recursion wants. Each child was
// enlisted with `counter`, so it arrives there when it finishes. Returns false (the parent
// goes on) if all of them finished before the parent gave up its own unit.
template <class Handles>
bool start_children(join_counter& counter, std::coroutine_handle<> parent,
                    const Handles& children) {
    counter.parent = parent;
    scheduler* s = scheduler::current();
    if (!s)
        s = &default_scheduler();
    for (std::size_t i = 0; i + 1 < children.size(); ++i)
        s->schedule(children[i]);
    children.back().resume();
    // The parent's own unit, taken after every child has started (see join_counter).
    return !counter.arrive();
}

template <class... Ts>
class when_all_tuple {
public:
    explicit when_all_tuple(task<Ts>... tasks) : tasks_(std::move(tasks)...) {}

    bool await_ready() const {
        std::apply(
            [](const auto&... t) {
                if ((!t || ...))
                    throw task_error("weft: when_all of an empty (moved-from) task");
            },
            tasks_);
        return false;
    }
    bool await_suspend(std::coroutine_handle<> parent) {
        const auto handles = std::apply(
            [&](auto&... t) {
                return std::array<std::coroutine_handle<>, sizeof...(Ts)>{enlist(t, counter_)...};
            },
            tasks_);
        return start_children(counter_, parent, handles);
    }
    // Every result in order; rethrows the first exception in argument order. (Braces
    // evaluate left to right.)
    std::tuple<non_void<Ts>...> await_resume() {
        return std::apply([](auto&... t) { return std::tuple<non_void<Ts>...>{take_result(t)...}; },
                          tasks_);
    }

private:
    std::tuple<task<Ts>...> tasks_;
    join_counter counter_{sizeof...(Ts)};
};

template <class T>
class when_all_vector {
public:
    explicit when_all_vector(std::vector<task<T>> tasks) : tasks_(std::move(tasks)) {
        for (const auto& t : tasks_)
            if (!t)
                throw task_error("weft: when_all of an empty (moved-from) task");
    }

    bool await_ready() const noexcept { return tasks_.empty(); }
    bool await_suspend(std::coroutine_handle<> parent) {
        handles_.reserve(tasks_.size());
        for (auto& t : tasks_)
            handles_.push_back(enlist(t, counter_));
        return start_children(counter_, parent, handles_);
    }
    std::conditional_t<std::is_void_v<T>, void, std::vector<T>> await_resume() {
        if constexpr (std::is_void_v<T>) {
            for (auto& t : tasks_)
                take_result(t);
        } else {
            std::vector<T> values;
            values.reserve(tasks_.size());
            for (auto& t : tasks_)
                values.push_back(take_result(t));
            return values;
        }
    }

private:
    std::vector<task<T>> tasks_;
    std::vector<std::coroutine_handle<>> handles_;
    join_counter counter_{tasks_.size()};
};

} // namespace detail

} // namespace weft
