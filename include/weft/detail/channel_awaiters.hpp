// weft::detail channel awaiters — how a task sends and receives: what `co_await ch.async_send(v)`
// and `co_await ch.async_recv()` are, and the tasks behind async_send_until / async_recv_until.
//
// A task's operation runs in steps (task_park.hpp): each step tries the channel and, when it
// must wait, links the task's waiter and suspends the task instead of its worker. Most
// operations need no coroutine frame of their own: a flavor whose wake-up finishes the
// operation (locked, with a nothrow move: wake_finishes()) waits inline in the awaiter, with one
// task_park. Elsewhere one attempt is made without waiting, and only if it finds nothing does
// the awaiter fall back to a task that loops (a lock-free channel wakes its waiters to retry).
//
// The results callers see are made by a `finish` callable from how the operation ended
// (park_step: done, closed or timed_out), so this header needs none of channel.hpp's public types.
#pragma once

#include "channel_flavor.hpp"
#include "channel_state.hpp"
#include "task_core.hpp"
#include "task_park.hpp"
#include "timer_service.hpp"
#include "waiter.hpp"

#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace weft::detail {

using steady_time = std::chrono::steady_clock::time_point;

// task_park's steps: `value` is the T to send, `out` the std::optional<T> to receive into.
template <class T>
park_step step_send_of(channel_state<T>& state, waiter& w, void* value) {
    return state.step(sending{}, *static_cast<T*>(value), w);
}
template <class T>
park_step step_recv_of(channel_state<T>& state, waiter& w, void* out) {
    return state.step(receiving{}, *static_cast<std::optional<T>*>(out), w);
}

// A task's wait on a nil channel: for ever, or until `deadline`.
inline task<void> wait_on_nil_async(blocked_on what, std::optional<steady_time> deadline) {
    task_wakeup wakeup(what);
    std::optional<deadline_claim> timer;
    if (deadline)
        timer.emplace(wakeup.context(), *deadline);
    co_await wakeup; // without a deadline nobody signals: the task waits until destroyed
}

// A task's send, until sent, closed, or `deadline` (nullopt: none). Moves from `value` only
// when it is sent. The result is finish(done / closed / timed_out).
template <class T, class Finish>
auto async_send_impl(channel_state<T>* state, T& value, std::optional<steady_time> deadline,
                     Finish finish) -> task<std::invoke_result_t<Finish&, park_step>> {
    const auto keep_alive = state ? state->shared_from_this() : nullptr;
    park_step step = park_step::timed_out;
    if (!state) {
        co_await wait_on_nil_async(blocked_on::channel_send, deadline);
    } else {
        for (step = park_step::again; step == park_step::again;) {
            task_park<channel_state<T>> park(*state, &step_send_of<T>, &value,
                                             blocked_on::channel_send,
                                             deadline ? &*deadline : nullptr);
            step = co_await park;
        }
    }
    co_return finish(step);
}

// A task's receive, until a value arrives, the channel is closed and drained, or `deadline`
// (nullopt: none). The result is finish(done / closed / timed_out, the value if done).
template <class T, class Finish>
auto async_recv_impl(channel_state<T>* state, std::optional<steady_time> deadline, Finish finish)
    -> task<std::invoke_result_t<Finish&, park_step, std::optional<T>&&>> {
    const auto keep_alive = state ? state->shared_from_this() : nullptr;
    std::optional<T> out;
    park_step step = park_step::timed_out;
    if (!state) {
        co_await wait_on_nil_async(blocked_on::channel_receive, deadline);
    } else {
        for (step = park_step::again; step == park_step::again;) {
            out.reset(); // a retry starts empty
            task_park<channel_state<T>> park(*state, &step_recv_of<T>, &out,
                                             blocked_on::channel_receive,
                                             deadline ? &*deadline : nullptr);
            step = co_await park;
        }
    }
    co_return finish(step, std::move(out)); // `out` is empty unless done
}

inline bool sent(park_step step) noexcept {
    return step == park_step::done;
}
template <class T>
std::optional<T> received(park_step, std::optional<T>&& out) {
    return std::move(out);
}

// co_await ch.async_send(v): true once sent, false if the channel is closed (the value is then
// left untouched).
template <class T>
class send_awaiter {
public:
    send_awaiter(channel_state<T>* state, T& value) noexcept : state_(state), value_(&value) {}
    send_awaiter(channel_state<T>* state, const T& value)
        : state_(state), copy_(value), value_(&*copy_) {}
    send_awaiter(const send_awaiter&) = delete;
    send_awaiter& operator=(const send_awaiter&) = delete;

    bool await_ready() {
        if (!state_)
            return false; // a nil channel: the task below waits for ever
        if (state_->wake_finishes()) {
            park_.emplace(*state_, &step_send_of<T>, value_, blocked_on::channel_send);
            if (park_->await_ready())
                return true;
            keep_alive_ = state_->shared_from_this(); // while parked
            return false;
        }
        tried_ = state_->try_now(sending{}, *value_);
        return tried_ != attempt::not_ready;
    }
    // False (go on without a transfer) when the wait or the fallback task is already over.
    bool await_suspend(std::coroutine_handle<> h) {
        if (park_)
            return park_->await_suspend(h);
        slow_ = async_send_impl(state_, *value_, std::nullopt, &sent);
        return start_inline(slow_, slow_join_, h);
    }
    bool await_resume() {
        if (park_)
            return park_->await_resume() == park_step::done;
        if (slow_)
            return take_result(slow_);
        return tried_ == attempt::done;
    }

private:
    channel_state<T>* state_;
    std::optional<T> copy_; // async_send(const T&) sends a copy
    T* value_;
    attempt tried_ = attempt::not_ready;
    std::shared_ptr<channel_state<T>> keep_alive_; // outlives park_, which unlinks from it
    std::optional<task_park<channel_state<T>>> park_;
    task<bool> slow_;
    join_counter slow_join_{1}; // slow_'s awaiter state
};

// co_await ch.async_recv(): a value, or nullopt once the channel is closed and drained.
template <class T>
class recv_awaiter {
public:
    explicit recv_awaiter(channel_state<T>* state) noexcept : state_(state) {}
    recv_awaiter(const recv_awaiter&) = delete;
    recv_awaiter& operator=(const recv_awaiter&) = delete;

    bool await_ready() {
        if (!state_)
            return false; // a nil channel: the task below waits for ever
        if (state_->wake_finishes()) {
            park_.emplace(*state_, &step_recv_of<T>, &out_, blocked_on::channel_receive);
            if (park_->await_ready())
                return true;
            keep_alive_ = state_->shared_from_this(); // while parked
            return false;
        }
        return state_->try_now(receiving{}, out_) != attempt::not_ready;
    }
    // False (go on without a transfer) when the wait or the fallback task is already over.
    bool await_suspend(std::coroutine_handle<> h) {
        if (park_)
            return park_->await_suspend(h);
        slow_ = async_recv_impl(state_, std::nullopt, &received<T>);
        return start_inline(slow_, slow_join_, h);
    }
    std::optional<T> await_resume() {
        if (park_)
            park_->await_resume(); // done (out_ holds the value) or closed (it is empty)
        else if (slow_)
            return take_result(slow_);
        return std::move(out_);
    }

private:
    channel_state<T>* state_;
    std::optional<T> out_;
    std::shared_ptr<channel_state<T>> keep_alive_; // outlives park_, which unlinks from it
    std::optional<task_park<channel_state<T>>> park_;
    task<std::optional<T>> slow_;
    join_counter slow_join_{1}; // slow_'s awaiter state
};

} // namespace weft::detail
