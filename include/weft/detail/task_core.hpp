// weft::task<T> itself — the lazy coroutine type, its promise, and how one coroutine starts
// another and is resumed when it finishes (join_counter). Nothing here runs on a scheduler:
// sync_wait, when_all and yield, which do, are in task.hpp, the header to include; the contract
// of task<T> is written there. Channels, select and the other waits need only this part.
#pragma once

#include "frame_pool.hpp"

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

// Misuse of a task that is a bug in the caller (awaiting a task that was moved from).
class task_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

template <class T = void>
class task;

namespace detail {

// What a callable's result R means as a task's value: task<T> gives T (is_task), anything else
// is its own value (an actor's handler may return either; when_any accepts only tasks).
template <class T>
struct task_value {
    using type = T;
    static constexpr bool is_task = false;
};
template <class T>
struct task_value<task<T>> {
    using type = T;
    static constexpr bool is_task = true;
};

// void results are std::monostate in when_all's tuple.
template <class T>
using non_void = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// when_all's access to its children: makes a child arrive at `join` when it finishes and
// returns its handle; takes the result of a finished one.
struct join_counter;
template <class T>
std::coroutine_handle<> enlist(task<T>& t, join_counter& join) noexcept;
// What co_await of a task does, for awaiters that fall back to a task: runs `t` here until it
// finishes or first suspends. Returns false if it finished (the caller goes on without a
// transfer), true if it suspended: it then resumes `parent` when it finishes. `join` is one
// join_counter(1) kept by the caller while it waits.
template <class T>
bool start_inline(task<T>& t, join_counter& join, std::coroutine_handle<> parent) noexcept;
template <class Promise>
bool start_handle(std::coroutine_handle<Promise> child, join_counter& join,
                  std::coroutine_handle<> parent) noexcept;
template <class T>
non_void<T> take_result(task<T>& t);

// Counts the children of a co_await or a when_all still running; the last one to finish
// resumes the parent. Starts at children + 1: the parent's own await_suspend takes the last
// unit after it has started them all and run the last one on its own stack. So a child that
// finishes early cannot resume a parent that is still starting others, and if every child has
// finished by then, the parent takes the last unit itself and goes on without a transfer: at
// -O0 and under the sanitizers a transfer is a nested call, and a loop of awaits that finish at
// once would otherwise grow the stack until it overflows.
struct join_counter {
    std::atomic<std::size_t> remaining;
    std::coroutine_handle<> parent;

    explicit join_counter(std::size_t children) : remaining(children + 1) {}
    join_counter(const join_counter&) = delete;
    join_counter& operator=(const join_counter&) = delete;

    // True for the caller that brought the count to zero: it resumes the parent.
    bool arrive() noexcept {
        // acq_rel: release publishes this child's result; the last arriver's acquire (a
        // child's, or the parent's own in await_suspend) sees every child's result before the
        // parent goes on.
        return remaining.fetch_sub(1, std::memory_order_acq_rel) == 1;
    }
};

// When a task finishes: arrives at its awaiter's join and resumes the awaiting coroutine if
// it was the last (the awaiter has given up its own unit: it is suspended). After a non-last
// arrival it touches nothing: the awaiter may already be destroying this frame.
struct resume_continuation {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) const noexcept {
        join_counter* join = h.promise().join;
        if (join && join->arrive())
            return join->parent;
        return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
};

struct task_promise_base : pooled_frame {
    join_counter* join = nullptr; // the awaiter's, set when it starts the task
    std::suspend_always initial_suspend() const noexcept { return {}; }
    resume_continuation final_suspend() const noexcept { return {}; }
};

template <class T>
struct task_promise : task_promise_base {
    std::variant<std::monostate, T, std::exception_ptr> result;

    task<T> get_return_object() noexcept;
    template <class U>
    requires std::convertible_to<U&&, T>
    void return_value(U&& value) { result.template emplace<1>(std::forward<U>(value)); }
    void unhandled_exception() noexcept { result.template emplace<2>(std::current_exception()); }
    T take() {
        if (result.index() == 2)
            std::rethrow_exception(std::get<2>(result));
        return std::move(std::get<1>(result));
    }
};

template <>
struct task_promise<void> : task_promise_base {
    std::exception_ptr error;

    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
    void take() {
        if (error)
            std::rethrow_exception(error);
    }
};

} // namespace detail

template <class T>
class [[nodiscard]] task {
    static_assert(!std::is_reference_v<T>, "task<T&> is not supported; return a pointer");

public:
    using promise_type = detail::task_promise<T>;
    using value_type = T;

    task() noexcept = default;
    task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            if (h_)
                h_.destroy();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    ~task() {
        if (h_)
            h_.destroy();
    }

    // False for a default-constructed or moved-from task.
    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

    // Starts the task and suspends the awaiter until it finishes; yields its value or
    // rethrows its exception.
    auto operator co_await() && {
        struct awaiter {
            std::coroutine_handle<promise_type> h;
            detail::join_counter join{1};
            bool await_ready() const {
                if (!h)
                    throw task_error("weft: co_await on an empty (moved-from) task");
                return false;
            }
            // The task runs here, on this stack; false (go on) if it finished meanwhile.
            bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
                return detail::start_handle(h, join, awaiting);
            }
            T await_resume() { return h.promise().take(); }
        };
        return awaiter{h_};
    }

private:
    friend struct detail::task_promise<T>;
    template <class U>
    friend std::coroutine_handle<> detail::enlist(task<U>&, detail::join_counter&) noexcept;
    template <class U>
    friend bool detail::start_inline(task<U>&, detail::join_counter&,
                                     std::coroutine_handle<>) noexcept;
    template <class U>
    friend detail::non_void<U> detail::take_result(task<U>&);
    explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

namespace detail {

template <class T>
std::coroutine_handle<> enlist(task<T>& t, join_counter& join) noexcept {
    t.h_.promise().join = &join;
    return t.h_;
}

// Runs `child`, which arrives at `join` when it finishes, until it finishes or suspends, then
// gives up the parent's unit: false when that was the last one (the child is done), true
// when the child still runs (its last arrival resumes `parent`).
template <class Promise>
bool start_handle(std::coroutine_handle<Promise> child, join_counter& join,
                  std::coroutine_handle<> parent) noexcept {
    join.parent = parent;
    child.promise().join = &join;
    child.resume();
    return !join.arrive();
}

template <class T>
bool start_inline(task<T>& t, join_counter& join, std::coroutine_handle<> parent) noexcept {
    return start_handle(t.h_, join, parent);
}

template <class T>
non_void<T> take_result(task<T>& t) {
    if constexpr (std::is_void_v<T>) {
        t.h_.promise().take();
        return {};
    } else {
        return t.h_.promise().take();
    }
}

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}

} // namespace detail

} // namespace weft
