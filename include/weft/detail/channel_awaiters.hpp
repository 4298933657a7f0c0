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
#include "wait_limit.hpp"
#include "waiter.hpp"

#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace weft::detail {

// task_park's step: `slot` is the T to send or the std::optional<T> to receive into.
template <class T, class Dir>
park_step step_of(channel_state<T>& state, waiter& w, void* slot) {
    return state.step(Dir{}, *static_cast<slot_t<T, Dir>*>(slot), w);
}

// A task's send, until sent, closed, or a limit ends it (a default wait_limit: none). Moves
// from `value` only when it is sent. The result is finish(done / closed / timed_out /
// cancelled).
template <class T, class Finish>
auto async_send_impl(channel_state<T>* state, T& value, wait_limit limit, Finish finish)
    -> task<std::invoke_result_t<Finish&, park_step>> {
    const auto keep_alive = state ? state->shared_from_this() : nullptr;
    park_step step = park_step::again;
    if (!state) {
        step = co_await wait_for_limits(blocked_on::channel_send, limit);
    } else {
        while (step == park_step::again) {
            task_park<channel_state<T>> park(*state, &step_of<T, sending>, &value,
                                             blocked_on::channel_send, &limit);
            step = co_await park;
        }
    }
    co_return finish(step);
}

// A task's receive, until a value arrives, the channel is closed and drained, or a limit ends
// it. The result is finish(done / closed / timed_out / cancelled, the value if done).
template <class T, class Finish>
auto async_recv_impl(channel_state<T>* state, wait_limit limit, Finish finish)
    -> task<std::invoke_result_t<Finish&, park_step, std::optional<T>&&>> {
    const auto keep_alive = state ? state->shared_from_this() : nullptr;
    std::optional<T> out;
    park_step step = park_step::again;
    if (!state) {
        step = co_await wait_for_limits(blocked_on::channel_receive, limit);
    } else {
        while (step == park_step::again) {
            out.reset(); // a retry starts empty
            task_park<channel_state<T>> park(*state, &step_of<T, receiving>, &out,
                                             blocked_on::channel_receive, &limit);
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

// `co_await ch.async_send(v)` (Dir sending): true once sent, false if the channel is closed
// (the value is then left untouched). `co_await ch.async_recv()` (Dir receiving): a value, or
// nullopt once the channel is closed and drained.
template <class T, class Dir>
class channel_awaiter {
    static constexpr bool k_send = std::is_same_v<Dir, sending>;
    static constexpr blocked_on k_what =
        k_send ? blocked_on::channel_send : blocked_on::channel_receive;

public:
    using result_type = std::conditional_t<k_send, bool, std::optional<T>>;

    // A receive, into own_.
    explicit channel_awaiter(channel_state<T>* state) noexcept requires(!k_send)
        : state_(state), slot_(&own_) {}
    // A send of the caller's value (moved from only when sent), or of a copy kept in own_.
    channel_awaiter(channel_state<T>* state, T& value) noexcept requires k_send : state_(state),
                                                                                  slot_(&value) {}
    channel_awaiter(channel_state<T>* state, const T& value) requires k_send : state_(state),
                                                                               own_(value),
                                                                               slot_(&*own_) {}
    channel_awaiter(const channel_awaiter&) = delete;
    channel_awaiter& operator=(const channel_awaiter&) = delete;

    bool await_ready() {
        if (!state_)
            return false; // a nil channel: the task below waits for ever
        if (state_->wake_finishes()) {
            park_.emplace(*state_, &step_of<T, Dir>, slot_, k_what);
            if (park_->await_ready())
                return true;
            keep_alive_ = state_->shared_from_this(); // while parked
            return false;
        }
        tried_ = state_->try_now(Dir{}, *slot_);
        return tried_ != attempt::not_ready;
    }
    // False (go on without a transfer) when the wait or the fallback task is already over.
    bool await_suspend(std::coroutine_handle<> h) {
        if (park_)
            return park_->await_suspend(h);
        if constexpr (k_send)
            slow_ = async_send_impl(state_, *slot_, {}, &sent);
        else
            slow_ = async_recv_impl(state_, {}, &received<T>);
        return start_inline(slow_, slow_join_, h);
    }
    result_type await_resume() {
        if (slow_)
            return take_result(slow_);
        // Parked: done or closed. Tried: done, or closed (a receive: closed and drained).
        const bool done =
            park_ ? park_->await_resume() == park_step::done : tried_ == attempt::done;
        if constexpr (k_send)
            return done;
        else
            return std::move(own_); // empty unless done
    }

private:
    channel_state<T>* state_;
    std::optional<T> own_; // a receive's value, or the copy a send(const T&) sends
    slot_t<T, Dir>* slot_;
    attempt tried_ = attempt::not_ready;
    std::shared_ptr<channel_state<T>> keep_alive_; // outlives park_, which unlinks from it
    std::optional<task_park<channel_state<T>>> park_;
    task<result_type> slow_;
    join_counter slow_join_{1}; // slow_'s awaiter state
};

template <class T>
using send_awaiter = channel_awaiter<T, sending>;
template <class T>
using recv_awaiter = channel_awaiter<T, receiving>;

} // namespace weft::detail
